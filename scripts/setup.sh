#!/usr/bin/env bash
# Install what the book needs on a Debian machine, or say exactly what is missing.
#
#   scripts/setup.sh            system packages (as root) + the Python environment
#   scripts/setup.sh --check    only report what is missing; install nothing
#
# System side (Debian 12 packages):
#   R 4.2 and the R packages the book runs: lme4, arm, merTools, broom.mixed;
#   r-base-dev, because rpy2 is compiled against R's headers; libblas-dev,
#   the BLAS PyTensor's C code links to (PYTENSOR_FLAGS in the Makefile);
#   xelatex and latexmk for the PDF, with the fonts Sphinx's LaTeX uses;
#   poppler-utils (pdftotext, pdffonts) for the tests that read the PDF;
#   chromium for the browser tests of the built site.
# Python side: .venv/ at the repository root, from requirements.lock (exact
# versions), the project installed editable, and the python3 Jupyter kernel
# registered inside .venv so the book's chapters execute with it.
set -euo pipefail

cd "$(dirname "$0")/.."

DEBIAN_PACKAGES=(
  r-base-core r-base-dev libblas-dev
  r-cran-lme4 r-cran-arm r-cran-mertools r-cran-broom.mixed
  latexmk texlive-xetex texlive-latex-recommended texlive-latex-extra
  texlive-fonts-recommended fonts-freefont-otf
  poppler-utils
  chromium
)
PYTHON=${PYTHON:-python3}
check_only=0
[[ "${1:-}" == "--check" ]] && check_only=1

say() { printf 'setup: %s\n' "$*"; }

# --- system packages --------------------------------------------------------
missing=()
if command -v dpkg-query >/dev/null 2>&1; then
  for pkg in "${DEBIAN_PACKAGES[@]}"; do
    status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
    [[ "$status" == "install ok installed" ]] || missing+=("$pkg")
  done
else
  say "this is not a Debian-like system (no dpkg-query)."
  say "install R >= 4.2 with lme4, arm, merTools, broom.mixed; xelatex, latexmk,"
  say "the FreeFont OTF fonts; poppler-utils; chromium. Then run this again."
  for tool in R xelatex latexmk pdftotext chromium; do
    command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
  done
  if ((${#missing[@]})); then
    say "missing commands: ${missing[*]}"
    exit 1
  fi
fi

if ((${#missing[@]})); then
  cmd="apt-get update && apt-get install -y --no-install-recommends ${missing[*]}"
  if ((check_only)) || [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null; then
    say "missing Debian packages: ${missing[*]}"
    say "install them as root with:"
    printf '\n    %s\n\n' "$cmd"
    exit 1
  fi
  say "installing Debian packages: ${missing[*]}"
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
    "${missing[@]}"
fi

# lme4 and friends must load in R, not only be listed by dpkg.
if ! Rscript -e 'for (p in c("lme4", "arm", "merTools", "broom.mixed"))
      suppressMessages(library(p, character.only = TRUE))' >/dev/null 2>&1; then
  say "R is installed but lme4, arm, merTools or broom.mixed does not load."
  say "reinstall them with: apt-get install --reinstall r-cran-lme4 r-cran-arm \
r-cran-mertools r-cran-broom.mixed"
  exit 1
fi

((check_only)) && { say "system packages: all present"; }

# --- Python environment -----------------------------------------------------
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
  say "requirements.lock is for Python 3.11; $PYTHON is $("$PYTHON" --version 2>&1)."
  say "set PYTHON=/path/to/python3.11 and run this again."
  exit 1
fi

stamp=.venv/.installed
lock_hash=$(cat requirements.lock pyproject.toml | sha256sum | cut -c1-16)
if [[ -f $stamp && "$(cat "$stamp")" == "$lock_hash" ]]; then
  ((check_only)) && say "Python environment: up to date (.venv)"
  exit 0
fi
if ((check_only)); then
  say "Python environment .venv is missing or older than requirements.lock."
  say "create it with: make env   (or: bash scripts/setup.sh)"
  exit 1
fi

say "creating .venv from requirements.lock"
[[ -x .venv/bin/python ]] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -r requirements.lock
.venv/bin/python -m pip install -q --no-deps -e .
.venv/bin/python -m ipykernel install --sys-prefix --name python3 \
  --display-name "Python 3 (mixed-models book)" >/dev/null
echo "$lock_hash" > "$stamp"
say "Python environment ready: .venv ($(.venv/bin/python --version))"
