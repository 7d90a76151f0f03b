"""The package's modules sit in layers and import only downwards.

core      errors, fit, validate, formula, design, data, tables, engines, display
engines   lmer, reml, bayes, mixedlm
analysis  style, pooling, plots, compare
runs      provenance, study, benchmark

A module may import from its own layer's lower modules and from the layers
below; an engine does not import another engine; no two modules import
each other, directly or round a longer cycle; sibling imports stand at the
top of the module, except those of the PyMC engine (``bayes`` imports PyMC
when it is imported, which must not happen to a reader of a table). The
checker reads the sources with ``ast``; nothing is imported.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "code" / "multilevel"

LAYERS = {
    "core": ("errors", "fit", "validate", "mcmc", "formula", "design", "data",
             "tables", "engines", "display"),
    "engines": ("lmer", "reml", "bayes", "mixedlm"),
    "analysis": ("style", "pooling", "plots", "compare", "checking"),
    "runs": ("provenance", "study", "benchmark"),
}
#: Modules whose import starts a heavy optional engine: imported lazily.
HEAVY = ("bayes",)
RANK = {name: k for k, names in enumerate(LAYERS.values()) for name in names}
LAYER_OF = {name: layer for layer, names in LAYERS.items() for name in names}


def sources(root: Path = PACKAGE) -> dict[str, str]:
    """``{"multilevel.reml.pls": source, ...}`` for every module below root."""
    out = {}
    for path in sorted(root.rglob("*.py")):
        parts = ["multilevel", *path.relative_to(root).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path.read_text(encoding="utf-8")
    return out


def imports(name: str, source: str, known: set[str]) -> list[tuple[str, int, bool]]:
    """``(imported module, line, at top level)`` for each package import."""
    tree = ast.parse(source)
    package = name if name in known and _is_package(name, known) else (
        name.rsplit(".", 1)[0]
    )
    top = {id(node) for node in tree.body}
    top |= {id(n) for node in tree.body if isinstance(node, (ast.If, ast.Try))
            for n in ast.walk(node)}
    found = []
    for node in ast.walk(tree):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")
                parent = parent[: len(parent) - node.level + 1]
                base = ".".join(parent + ([base] if base else []))
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                targets.append(sub if sub in known else base)
        for target in dict.fromkeys(targets):
            if target == "multilevel" or not target.startswith("multilevel."):
                continue
            while target not in known and "." in target:
                target = target.rsplit(".", 1)[0]
            if target in known and target != name:
                found.append((target, node.lineno, id(node) in top))
    return found


def _is_package(name: str, known: set[str]) -> bool:
    return any(other.startswith(name + ".") for other in known)


def unit(module: str) -> str:
    """The layered unit of a module: ``multilevel.reml.pls`` -> ``reml``."""
    return module.split(".")[1] if module.count(".") else ""


def layer_problems(modules: dict[str, str]) -> list[str]:
    """Every breach of the rules above, as ``module:line: what``."""
    known = set(modules)
    problems = []
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for name, source in modules.items():
        here = unit(name)
        if here and here not in RANK:
            problems.append(f"{name}: not in any layer; add it to LAYERS")
            continue
        for target, line, at_top in imports(name, source, known):
            graph[name].add(target)
            there = unit(target)
            if not here or here == there:
                continue  # the package's __init__, or inside one unit
            if there not in RANK:
                continue  # reported for that module itself
            where = f"{name}:{line}"
            if RANK[there] > RANK[here]:
                problems.append(
                    f"{where}: {LAYER_OF[here]} module {here} imports "
                    f"{LAYER_OF[there]} module {there} (imports go downwards)"
                )
            elif LAYER_OF[here] == LAYER_OF[there] == "engines":
                problems.append(
                    f"{where}: engine {here} imports engine {there}; move what "
                    "they share into a core module"
                )
            if not at_top and there not in HEAVY:
                problems.append(
                    f"{where}: {here} imports {there} inside a function; "
                    "import it at the top of the module"
                )
    problems += [f"import cycle: {' -> '.join(c)}" for c in _cycles(graph)]
    return problems


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle through each strongly connected set of modules (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            members = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                members.append(w)
                if w == v:
                    break
            if len(members) > 1:
                found.append(_a_cycle(sorted(members), graph))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def _a_cycle(members: list[str], graph: dict[str, set[str]]) -> list[str]:
    start, inside = members[0], set(members)
    path, seen = [start], {start}
    while True:
        nxt = sorted(w for w in graph[path[-1]] if w in inside)
        back = [w for w in nxt if w == start]
        if back:
            return path + [start]
        step = next((w for w in nxt if w not in seen), None)
        if step is None:  # dead end inside the component: try from the next
            return members + [members[0]]
        path.append(step)
        seen.add(step)


# ------------------------------------------------------------------ the package


def test_every_module_is_in_a_layer():
    units = {unit(m) for m in sources()} - {""}
    assert units <= set(RANK), sorted(units - set(RANK))


def test_the_package_imports_only_downwards():
    assert layer_problems(sources()) == []


# ------------------------------------------------- the checker fails when it must


def _fake(**modules: str) -> dict[str, str]:
    return {f"multilevel.{k}": v for k, v in modules.items()} | {"multilevel": ""}


def test_a_core_module_importing_an_engine_fails():
    problems = layer_problems(_fake(
        fit="from multilevel.lmer import fit_lmer\n", lmer="x = 1\n",
    ))
    assert problems == [
        "multilevel.fit:1: core module fit imports engines module lmer "
        "(imports go downwards)"
    ]


def test_two_modules_importing_each_other_fail():
    problems = layer_problems(_fake(
        plots="from multilevel import pooling\n",
        pooling="def f():\n    from multilevel.plots import x\n",
    ))
    assert "import cycle: multilevel.plots -> multilevel.pooling -> " \
           "multilevel.plots" in problems
    assert any("pooling imports plots inside a function" in p for p in problems)


def test_a_longer_cycle_fails():
    problems = layer_problems(_fake(
        fit="import multilevel.tables\n",
        tables="from multilevel.validate import x\n",
        validate="from multilevel import fit\n",
    ))
    assert problems == [
        "import cycle: multilevel.fit -> multilevel.tables -> "
        "multilevel.validate -> multilevel.fit"
    ]


def test_an_engine_importing_an_engine_and_an_unknown_module_fail():
    problems = layer_problems(_fake(
        mixedlm="from multilevel.lmer import joint_coef_covariance\n",
        lmer="", helpers="",
    ))
    assert any("engine mixedlm imports engine lmer" in p for p in problems)
    assert "multilevel.helpers: not in any layer; add it to LAYERS" in problems


def test_a_subpackage_is_one_unit_and_relative_imports_resolve():
    modules = _fake(
        reml="from .fit import fit_reml\n",
        **{"reml.fit": "from .pls import solve\nfrom multilevel import bayes\n",
           "reml.pls": "from multilevel.tables import x\n"},
        tables="", bayes="",
    )
    assert layer_problems(modules) == [
        "multilevel.reml.fit:2: engine reml imports engine bayes; move what "
        "they share into a core module"
    ]
    assert [t for t, _, _ in imports("multilevel.reml.fit",
                                     modules["multilevel.reml.fit"],
                                     set(modules))] == [
        "multilevel.reml.pls", "multilevel.bayes"]


def test_a_lazy_import_of_the_pymc_engine_is_allowed():
    assert layer_problems(_fake(
        compare="def f():\n    from multilevel.bayes import unbake\n",
        bayes="",
    )) == []


@pytest.mark.parametrize("source", ["import multilevel\n", "import numpy\n"])
def test_imports_outside_the_modules_are_not_edges(source):
    assert layer_problems(_fake(fit=source)) == []


# ------------------------------------------------------------ the top level


def test_the_first_names_a_user_types_are_at_the_top_and_start_no_engine():
    code = (
        "import sys\n"
        "import multilevel\n"
        "from multilevel import simulate_cafes, fit_lmer, fit_reml, compare\n"
        "heavy = [m for m in ('rpy2', 'pymc', 'nutpie', 'statsmodels') "
        "if m in sys.modules]\n"
        "assert not heavy, heavy\n"
        "assert compare.__module__ == 'multilevel.compare'\n"
        "assert callable(simulate_cafes) and callable(fit_reml)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]


def test_fit_pymc_is_fetched_from_the_pymc_engine_when_asked_for():
    import multilevel
    import multilevel.bayes

    assert multilevel.fit_pymc is multilevel.bayes.fit_pymc
    with pytest.raises(AttributeError, match="no attribute 'fit_stan'"):
        multilevel.fit_stan  # noqa: B018 (the attribute access is the test)
