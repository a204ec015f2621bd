"""The library's layers import only downward (issue 24 §2), read from the source with `ast`
(nothing is imported; a function's lazy import counts like any other).

LAYERS is the rule, lowest first: a module may import its own layer and the layers below
it, never one above. Two more: above the sweeps results are read (lib.results), not made,
so the readers never import the layers that train or measure; and only lib.plots draws
(matplotlib, seaborn). A new module of lib/ must be placed in a layer here."""
import ast
from pathlib import Path

import pytest

from lib.config import ROOT
from lib.notebook_imports import lib_imports

LAYERS = [  # (name, its packages and modules), lowest first
    ("tasks, models, training", ("lib.tasks", "lib.models", "lib.training", "lib.constructions")),
    ("config, provenance", ("lib.config", "lib.provenance")),
    ("results I/O", ("lib.results",)),
    ("sweeps", ("lib.sweeps",)),
    ("analysis", ("lib.analysis",)),
    ("benchmarks", ("lib.bench",)),  # beside the sweeps; lib.bench.position_toy reads lib.analysis.position
    ("claims", ("lib.claims",)),
    ("plots", ("lib.plots",)),
    ("tools", ("lib.notebook_imports", "lib.sync_notebooks")),  # for dvc.yaml and the notebooks, above all
]
READERS, PRODUCERS = ("lib.analysis", "lib.claims", "lib.plots"), ("lib.sweeps", "lib.bench")
DRAWING = ("matplotlib", "seaborn")
DRAWS = ("lib.plots",)  # the only layer that may import DRAWING


def _module(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _package(path: Path) -> str:
    """What relative imports resolve against: the package itself for an __init__."""
    module = _module(path)
    return module if path.name == "__init__.py" else module.rpartition(".")[0]


def _within(name: str, prefixes) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def _rank(name: str) -> int | None:
    for rank, (_, members) in enumerate(LAYERS):
        if _within(name, members):
            return rank
    return None


def _third_party(tree: ast.AST) -> set[str]:
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            names.add(node.module.split(".")[0])
    return names


MODULES = {_module(p): p for p in sorted((ROOT / "lib").rglob("*.py")) if p != ROOT / "lib" / "__init__.py"}


def test_every_module_has_a_layer():
    assert not [m for m in MODULES if _rank(m) is None], "add the new module to LAYERS"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_only_look_down(module):
    path, rank = MODULES[module], _rank(module)
    tree = ast.parse(path.read_text())
    imported = lib_imports(tree, _package(path))
    above = sorted({f"{name} ({LAYERS[r][0]})" for name in imported if (r := _rank(name)) is not None and r > rank})
    assert not above, f"{module} ({LAYERS[rank][0]}) imports from a layer above it: {above}"
    if _within(module, READERS):
        producers = sorted(name for name in imported if _within(name, PRODUCERS))
        assert not producers, f"{module} reads results through lib.results, not {producers}"
    if not _within(module, DRAWS):
        drawing = sorted(_third_party(tree) & set(DRAWING))
        assert not drawing, f"{module} draws ({drawing}); drawing belongs in lib.plots"


def test_the_rule_catches_an_upward_import():
    """The check itself: a relative import from analysis into plots is seen as one."""
    tree = ast.parse("def f():\n    from ..plots import retrieval\n")
    names = lib_imports(tree, "lib.analysis")
    assert "lib.plots.retrieval" in names and _rank("lib.plots.retrieval") > _rank("lib.analysis.retrieval")
    assert _rank("lib.sweeps.runner") < _rank("lib.bench.cost") and _rank("lib.results") < _rank("lib.sweeps")
    assert _within("lib.plots.position", READERS) and _within("lib.sweeps.runner", PRODUCERS)
