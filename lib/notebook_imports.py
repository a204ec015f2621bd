"""Which files of lib/ a notebook runs: its `import lib...` lines and, transitively, what
those modules import (read from the source, nothing is imported). dvc.yaml names these
files (or their folders) as each stage's deps, so that a change to lib/ reruns the
stages whose notebooks run the changed code and no other (tests/test_dvc_pipeline.py).

    python -m lib.notebook_imports [NAME ...]   # the deps a stage of notebooks/NAME.ipynb needs
"""
from __future__ import annotations

import argparse
import ast
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _module_file(name: str, root: Path) -> Path | None:
    path = root.joinpath(*name.split("."))
    if (path / "__init__.py").exists():
        return path / "__init__.py"
    return path.with_suffix(".py") if path.with_suffix(".py").exists() else None


def lib_imports(tree: ast.AST, package: str = "") -> set[str]:
    """Names of lib modules an AST imports, anywhere in it (a function's lazy import
    counts: it runs when the function does). `package` resolves relative imports."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            # `from lib.plots import retrieval` imports a module, `from lib.plots import save_table` a name
            names |= {base} | {f"{base}.{alias.name}" for alias in node.names}
    return {n for n in names if n == "lib" or n.startswith("lib.")}


def module_closure(names, root: Path = ROOT) -> set[Path]:
    """The files that importing `names` runs: each package's __init__ on the way, and what
    every one of them imports in turn."""
    seen: set[Path] = set()
    todo = list(names)
    while todo:
        parts = todo.pop().split(".")
        for i in range(1, len(parts) + 1):  # importing lib.a.b runs lib/__init__ and lib/a/__init__ first
            path = _module_file(".".join(parts[:i]), root)
            if path is None or path in seen:
                continue
            seen.add(path)
            package = ".".join(parts[:i] if path.name == "__init__.py" else parts[: i - 1])
            todo += lib_imports(ast.parse(path.read_text()), package)
    return seen


def notebook_code(path: Path) -> str:
    """A notebook's code cells as one module (IPython magics and shell lines left out)."""
    cells = json.loads(Path(path).read_text())["cells"]
    lines = [line for c in cells if c["cell_type"] == "code" for line in "".join(c["source"]).splitlines()
             if not line.lstrip().startswith(("%", "!"))]
    return "\n".join(lines)


def notebook_lib_files(notebook: Path, root: Path = ROOT) -> set[Path]:
    """Every lib/ file, relative to `root`, that running `notebook` imports."""
    files = module_closure(lib_imports(ast.parse(notebook_code(notebook))), root)
    return {f.relative_to(root) for f in files}


def covering_deps(files: set[Path], root: Path = ROOT) -> list[str]:
    """The shortest list of dvc deps that covers `files`: a folder where every .py file in it
    is needed, the files themselves elsewhere."""
    deps, folders = set(), {f.parent for f in files if f.parent != Path("lib")}
    for folder in folders:
        if {p.relative_to(root) for p in (root / folder).glob("*.py")} <= files:
            deps.add(folder.as_posix())
    deps |= {f.as_posix() for f in files if f.parent.as_posix() not in deps}
    return sorted(deps)


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m lib.notebook_imports", description=__doc__.split("\n\n")[0])
    ap.add_argument("names", nargs="*", help="notebook names without .ipynb (default: all)")
    args = ap.parse_args(argv)
    names = args.names or sorted(p.stem for p in (ROOT / "notebooks").glob("*.ipynb"))
    for name in names:
        deps = covering_deps(notebook_lib_files(ROOT / "notebooks" / f"{name}.ipynb"))
        print(f"{name}:\n" + "".join(f"  - {d}\n" for d in deps), end="")


if __name__ == "__main__":
    main()
