"""Copy the outputs of executed notebooks (data/executed/, written by `dvc repro`) into
their sources in notebooks/, cell by cell (matched by cell id), so that the committed
notebooks show what the pipeline printed and nbval checks those outputs.

    python -m lib.sync_notebooks [--profile quick] [NAME ...]   # default: every executed one
    python -m lib.sync_notebooks --train                        # 02-train's checked cells

The sources keep the quick profile's outputs (what CI checks). Other profiles' executed
copies go whole to notebooks/<profile>/NAME.ipynb, for reading in JupyterLab: the `gpu`
results a researcher came for, beside the source (nbval skips those folders).

Only outputs and execution counts change; sources, metadata and papermill's injected
parameter cell stay out. 02-train runs once per training stage, each on some experiments,
so its source (which nbval runs on all of them) is not synced from those: after a change to
experiments.yaml, run it on every experiment,

    papermill notebooks/02-train.ipynb data/executed/02-train-all-quick.ipynb \
        -p experiments all -p profile quick --cwd notebooks

(finished quick runs are kept, so this trains only what is new) and `--train` copies the
outputs of its checked cells (the printed protocol and the parameter table) into the source;
its training log stays out.

A notebook is its stage's dependency, so new outputs change its hash: a stage whose only
change is the notebook synced here, from an executed copy of the same code, is then recorded
in dvc.lock again (`dvc commit`), since its outputs are what that notebook makes. Without this, the committed lock would name the
notebooks as they were before the sync and `dvc status` on a fresh clone would rerun them.
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SKIP = {"02-train"}
TRAIN_EXECUTED = ROOT / "data" / "executed" / "02-train-all-quick.ipynb"
CHECKED = "# NBVAL_CHECK_OUTPUT"


def _lines(value):
    """nbformat's on-disk form: multi-line strings as lists of lines."""
    return value.splitlines(keepends=True) if isinstance(value, str) else value


def _normalise(outputs: list[dict]) -> list[dict]:
    for out in outputs:
        if "text" in out:
            out["text"] = _lines(out["text"])
        for mime, value in out.get("data", {}).items():
            if not mime.endswith("json"):
                out["data"][mime] = _lines(value)
    return outputs


def sync(executed: Path, source: Path, checked_only: bool = False) -> int:
    """Copy `executed`'s outputs into `source`; returns how many cells changed. `checked_only`:
    only the cells nbval checks (marked NBVAL_CHECK_OUTPUT), for 02-train, whose other cells
    print a training log."""
    ran = {c.get("id"): c for c in json.loads(executed.read_text())["cells"] if c["cell_type"] == "code"}
    nb = json.loads(source.read_text())
    changed = 0
    for cell in nb["cells"]:
        if cell["cell_type"] != "code" or cell.get("id") not in ran:
            continue
        if checked_only and not "".join(cell["source"]).startswith(CHECKED):
            continue
        outputs = _normalise(ran[cell["id"]].get("outputs", []))
        if outputs != cell.get("outputs"):
            changed += 1
        cell["outputs"], cell["execution_count"] = outputs, ran[cell["id"]].get("execution_count")
    tmp = source.with_suffix(".tmp")
    tmp.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
    tmp.replace(source)
    return changed


def copy_executed(executed: Path, target: Path, profile: str) -> None:
    """The whole executed notebook, with a first cell saying what it is, and without
    papermill's per-cell timings (they would change every render)."""
    nb = json.loads(executed.read_text())
    for cell in nb["cells"]:
        cell.get("metadata", {}).pop("papermill", None)
        cell.get("metadata", {}).pop("execution", None)
        if cell["cell_type"] == "code":
            cell["outputs"] = _normalise(cell.get("outputs", []))
        if isinstance(cell.get("source"), str):
            cell["source"] = _lines(cell["source"])
    nb.get("metadata", {}).pop("papermill", None)
    name = target.stem
    note = {"cell_type": "markdown", "id": f"{profile}-copy", "metadata": {}, "source": _lines(
        f"*The `{profile}`-profile render of [`../{name}.ipynb`](../{name}.ipynb), outputs included: "
        f"a copy to read, not to edit. Regenerate it with `papermill notebooks/{name}.ipynb "
        f"data/executed/{name}-{profile}.ipynb -p profile {profile} --cwd notebooks` (or "
        f"`dvc repro` with `profile: {profile}`), then `python -m lib.sync_notebooks --profile {profile}`.*")}
    nb["cells"] = [note] + [c for c in nb["cells"] if c.get("id") != note["id"]]
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".tmp")
    tmp.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
    tmp.replace(target)


def failure(executed: Path) -> str | None:
    """The first error an executed notebook printed ("cell ID: Name: message"), or None. A
    papermill run that failed still writes its copy, and syncing it would commit a traceback."""
    for cell in json.loads(executed.read_text())["cells"]:
        for out in cell.get("outputs", []) if cell["cell_type"] == "code" else []:
            if out.get("output_type") == "error":
                return f"cell {cell.get('id')}: {out.get('ename')}: {out.get('evalue')}"[:300]
    return None


def _code(nb: dict) -> dict:
    """Code cells' sources by id, without papermill's injected parameter cell."""
    return {c.get("id"): "".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code"
            and "injected-parameters" not in c.get("metadata", {}).get("tags", [])}


def same_code(executed: Path, source: Path) -> bool:
    """Whether `executed` ran the code `source` holds now (not an older version of it)."""
    return _code(json.loads(executed.read_text())) == _code(json.loads(source.read_text()))


def stages_changed_only_by(notebooks: set[str], status: dict) -> list[str]:
    """Stages of `dvc status --json` whose one change is a dependency among `notebooks`."""
    stages = []
    for stage, changes in status.items():
        kinds = {kind: paths for change in changes if isinstance(change, dict) for kind, paths in change.items()}
        if set(kinds) == {"changed deps"} and set(kinds["changed deps"]) <= notebooks:
            stages.append(stage)
    return stages


def recommit(notebooks: set[str]) -> list[str]:
    """Record in dvc.lock the stages that only the synced notebooks changed; returns them."""
    if not notebooks or shutil.which("dvc") is None or not (ROOT / "dvc.lock").exists():
        return []
    run = subprocess.run(["dvc", "status", "--json"], cwd=ROOT, capture_output=True, text=True)
    if run.returncode != 0:
        return []
    stages = stages_changed_only_by(notebooks, json.loads(run.stdout or "{}"))
    if stages:
        subprocess.run(["dvc", "commit", "--force", "--quiet", *stages], cwd=ROOT, check=True)
    return stages


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m lib.sync_notebooks", description=__doc__.split("\n\n")[0])
    ap.add_argument("names", nargs="*", help="notebook names without .ipynb (default: all executed)")
    ap.add_argument("--profile", default="quick")
    ap.add_argument("--train", action="store_true", help=f"sync 02-train's checked cells from "
                    f"{TRAIN_EXECUTED.relative_to(ROOT)} (a quick run on every experiment)")
    args = ap.parse_args(argv)
    executed = ROOT / "data" / "executed"
    synced = set()
    if args.train:
        src = ROOT / "notebooks" / "02-train.ipynb"
        if not TRAIN_EXECUTED.exists():
            raise SystemExit(f"sync_notebooks: no {TRAIN_EXECUTED.relative_to(ROOT)}; run `papermill "
                             "notebooks/02-train.ipynb data/executed/02-train-all-quick.ipynb -p experiments all "
                             "-p profile quick --cwd notebooks` first")
        if (error := failure(TRAIN_EXECUTED)):
            raise SystemExit(f"sync_notebooks: {TRAIN_EXECUTED.relative_to(ROOT)} failed ({error}); nothing synced")
        if not same_code(TRAIN_EXECUTED, src):
            raise SystemExit(f"sync_notebooks: {TRAIN_EXECUTED.relative_to(ROOT)} ran other code than "
                             "notebooks/02-train.ipynb holds now; run it again")
        print(f"02-train: {sync(TRAIN_EXECUTED, src, checked_only=True)} checked cells changed")
        synced.add(src.relative_to(ROOT).as_posix())
    names = [] if args.train and not args.names else (
        args.names or sorted({p.stem.removesuffix(f"-{args.profile}") for p in executed.glob(f"*-{args.profile}.ipynb")}))
    names = [n for n in names if n not in SKIP and (ROOT / "notebooks" / f"{n}.ipynb").exists()]
    for name in names:  # every copy checked before any is written
        ran = executed / f"{name}-{args.profile}.ipynb"
        if not ran.exists():
            raise SystemExit(f"sync_notebooks: no executed copy {ran.relative_to(ROOT)}; run `dvc repro` first")
        if (error := failure(ran)):
            raise SystemExit(f"sync_notebooks: {ran.relative_to(ROOT)} failed ({error}); nothing synced, "
                             "fix and run it again")
    for name in names:
        src, ran = ROOT / "notebooks" / f"{name}.ipynb", executed / f"{name}-{args.profile}.ipynb"
        if args.profile != "quick":  # a render to read: copied whole, not synced into the source
            copy_executed(ran, ROOT / "notebooks" / args.profile / f"{name}.ipynb", args.profile)
            print(f"{name}: notebooks/{args.profile}/{name}.ipynb written")
            continue
        print(f"{name}: {sync(ran, src)} cells changed")
        if same_code(ran, src):  # an executed copy of older code leaves its stage to rerun
            synced.add(src.relative_to(ROOT).as_posix())
    for stage in recommit(synced):
        print(f"dvc.lock: {stage} recorded with its synced notebook")


if __name__ == "__main__":
    main()
