# The book's commands. `make book` builds it, `make test` tests it; both
# install what is missing first (see scripts/setup.sh).
SHELL := /bin/bash
PY := .venv/bin/python
OUT ?= _build
PORT ?= 8000

# One BLAS thread per process: with two sampling processes and default BLAS
# threads, PyMC's sampler ran more than 10x slower on this 2-core machine.
export OPENBLAS_NUM_THREADS := 1
export OMP_NUM_THREADS := 1
export MKL_NUM_THREADS := 1
export PYTHONHASHSEED := 0
export MPLBACKEND := Agg
# Compiled models are cached in one folder under the build directory, which
# the book's kernels, the tests, the study and the benchmark share and
# `make clean` removes: PyTensor's C modules, numba's functions and JAX's
# programs. (multilevel.bayes picks the same folder when run by hand from
# the checkout; MULTILEVEL_COMPILE_CACHE names another.)
COMPILE_CACHE := $(abspath $(OUT))/.compile-cache
export MULTILEVEL_COMPILE_CACHE := $(COMPILE_CACHE)
export NUMBA_CACHE_DIR := $(COMPILE_CACHE)/numba
export JAX_COMPILATION_CACHE_DIR := $(COMPILE_CACHE)/jax
export JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS := 0
export JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES := 0
# JAX passes the data a model closes over to its compiled programs as
# arguments, so one compilation serves every data set of the same shape.
export JAX_USE_SIMPLIFIED_JAXPR_CONSTANTS := 1
# PyTensor's C code links to Debian's BLAS (libblas-dev, pulled in by
# r-base-dev); without it PyTensor warns on stderr on a fresh compile cache.
export PYTENSOR_FLAGS := blas__ldflags=-lblas,base_compiledir=$(COMPILE_CACHE)/pytensor
# R starts with the book's profile: it drops empty library folders from R's
# library path, which R otherwise warns about in %%R outputs.
export R_PROFILE_USER := $(CURDIR)/code/multilevel/Rprofile

.PHONY: book test unit lint env check serve notebooks pdf html quarto lock clean \
  print-env execution-seconds

# Everything a build reads: when none of it is newer than the last build,
# `make book` (and so `make test`) does not rebuild.
SOURCES := _quarto.yml references.bib conf.py index.qmd $(wildcard book/*.qmd) \
  $(shell find code scripts -name '*.py' -o -name '*.html' -o -name '*.css' \
          -o -name '*.csv' -o -name '*.json' 2>/dev/null) \
  $(wildcard results/*/* benchmarks/*) code/multilevel/Rprofile \
  requirements.lock pyproject.toml

## book: the site, the PDF and the notebooks, into _build/
book: env $(OUT)/.built

$(OUT)/.built: $(SOURCES)
	$(PY) scripts/build_book.py --root . --out $(OUT)
	@touch $@

html: env
	$(PY) scripts/build_book.py --root . --out $(OUT) --formats html

pdf: env
	$(PY) scripts/build_book.py --root . --out $(OUT) --formats pdf

notebooks: env
	$(PY) scripts/build_book.py --root . --out $(OUT) --formats notebooks

## test: the whole test suite (unit, cross-engine, bridge, fixture build,
## and the checks of the built book when _build/ holds one), its files
## shared between TEST_JOBS processes (pytest-xdist; a file's functions stay
## together in one process, so its module fixtures run once, and each test
## class is one unit of its own: a chapter's grading runs)
TEST_JOBS ?= 2
test: book
	$(PY) -m pytest -n $(TEST_JOBS) --dist loadscope

## unit: ruff, then the fast tests: no book build, no MCMC, no R, no browser
## or LaTeX (the book gates' own tests, tests/test_bookcheck.py, start both)
UNIT_MARKERS := not slow and not build and not book and not needs_r
unit: env lint
	$(PY) -m pytest -q -n $(TEST_JOBS) --dist loadfile -m "$(UNIT_MARKERS)" \
	  --ignore=tests/test_bookcheck.py

## lint: ruff over the whole repository (configured in pyproject.toml)
lint: env
	$(PY) -m ruff check .

## env: system packages (as root) and .venv from requirements.lock
env:
	@bash scripts/setup.sh

## check: report what is missing without installing anything
check:
	@bash scripts/setup.sh --check

## serve: preview the built site on http://127.0.0.1:$(PORT)/
serve:
	@test -f $(OUT)/html/index.html || { echo "no site yet: run 'make book' first"; exit 1; }
	$(PY) -m http.server --bind 127.0.0.1 --directory $(OUT)/html $(PORT)

## quarto: render with Quarto itself, if it is installed
quarto: env
	@command -v quarto >/dev/null 2>&1 || { \
	  echo "quarto is not installed. Install it from https://quarto.org/docs/get-started/"; \
	  echo "(a .deb for Debian), then run 'make quarto' again. 'make book' builds the"; \
	  echo "same book with Sphinx without Quarto."; exit 1; }
	QUARTO_PYTHON=$(CURDIR)/$(PY) quarto render

## lock: re-resolve requirements.lock from pyproject.toml (needs the registry)
lock:
	rm -rf /tmp/lock-venv && python3 -m venv /tmp/lock-venv
	/tmp/lock-venv/bin/pip install -q --upgrade pip
	/tmp/lock-venv/bin/pip install -q -e '.[book,test]'
	/tmp/lock-venv/bin/pip freeze --exclude-editable | grep -v '^-e ' > requirements.lock

## execution-seconds: save the chapters' execution times of the last build
## (benchmarks/execution-seconds.json), by which a clean clone shares the
## chapters between its Sphinx runs
execution-seconds: $(OUT)/.built
	$(PY) scripts/build_book.py --root . --out $(OUT) --save-execution-seconds

## print-env: the variables every command here runs with (compile caches,
## threads), as the kernels, the tests and the command lines see them
print-env:
	@$(PY) -c "import os; [print(k + '=' + os.environ.get(k, '')) for k in \
	  ('MULTILEVEL_COMPILE_CACHE', 'NUMBA_CACHE_DIR', \
	   'JAX_COMPILATION_CACHE_DIR', 'JAX_USE_SIMPLIFIED_JAXPR_CONSTANTS', \
	   'PYTENSOR_FLAGS', 'OPENBLAS_NUM_THREADS', \
	   'R_PROFILE_USER')]"

clean:
	rm -rf $(OUT) $(COMPILE_CACHE) .jupyter_cache tests/fixture_book/_build
