"""lib.sync_notebooks: the quick outputs go into the sources cell by cell; other profiles'
renders go whole into notebooks/<profile>/, without the per-render timings."""
import json
import re
from pathlib import Path

import pytest

from lib import sync_notebooks
from lib.config import load_params
from lib.sync_notebooks import copy_executed, failure, sync

ROOT = Path(__file__).resolve().parent.parent


def notebook(outputs, papermill=False):
    meta = {"papermill": {"duration": 1.5}} if papermill else {}
    return {"cells": [{"cell_type": "markdown", "id": "m", "metadata": {}, "source": ["# Title\n"]},
                      {"cell_type": "code", "id": "c", "metadata": dict(meta), "execution_count": 1,
                       "source": ["print(1)"], "outputs": outputs}],
            "metadata": dict(meta), "nbformat": 4, "nbformat_minor": 5}


def test_quick_outputs_go_into_the_source_by_cell_id(tmp_path):
    out = [{"name": "stdout", "output_type": "stream", "text": "a\nb\n"}]
    (tmp_path / "ran.ipynb").write_text(json.dumps(notebook(out, papermill=True)))
    (tmp_path / "src.ipynb").write_text(json.dumps(notebook([])))
    assert sync(tmp_path / "ran.ipynb", tmp_path / "src.ipynb") == 1
    nb = json.loads((tmp_path / "src.ipynb").read_text())
    assert nb["cells"][1]["outputs"][0]["text"] == ["a\n", "b\n"] and "papermill" not in nb["metadata"]
    assert sync(tmp_path / "ran.ipynb", tmp_path / "src.ipynb") == 0  # a second sync changes nothing


def test_a_gpu_render_is_copied_whole_with_a_note_and_no_timings(tmp_path):
    out = [{"name": "stdout", "output_type": "stream", "text": "gpu numbers\n"}]
    (tmp_path / "ran.ipynb").write_text(json.dumps(notebook(out, papermill=True)))
    target = tmp_path / "gpu" / "B-ngram.ipynb"
    copy_executed(tmp_path / "ran.ipynb", target, "gpu")
    first = target.read_text()
    nb = json.loads(first)
    assert nb["cells"][0]["id"] == "gpu-copy" and "`gpu`-profile render" in "".join(nb["cells"][0]["source"])
    assert nb["cells"][2]["outputs"][0]["text"] == ["gpu numbers\n"]
    assert "papermill" not in nb["metadata"] and "papermill" not in nb["cells"][2]["metadata"]
    copy_executed(tmp_path / "ran.ipynb", target, "gpu")  # idempotent: one note, same bytes
    assert target.read_text() == first


def test_02_train_takes_only_its_checked_cells(tmp_path):
    def train_nb(checked_out, log_out):
        nb = notebook(checked_out)
        nb["cells"][1]["source"] = ["# NBVAL_CHECK_OUTPUT\n", "print(spec)"]
        nb["cells"].append({"cell_type": "code", "id": "t", "metadata": {}, "execution_count": 2,
                            "source": ["run_experiments(names)"], "outputs": log_out})
        return nb
    protocol = [{"name": "stdout", "output_type": "stream", "text": "== A-new: ...\n"}]
    log = [{"name": "stderr", "output_type": "stream", "text": "[runs] 3/3 done\n"}]
    (tmp_path / "ran.ipynb").write_text(json.dumps(train_nb(protocol, log)))
    (tmp_path / "src.ipynb").write_text(json.dumps(train_nb([], [])))
    assert sync(tmp_path / "ran.ipynb", tmp_path / "src.ipynb", checked_only=True) == 1
    cells = json.loads((tmp_path / "src.ipynb").read_text())["cells"]
    assert cells[1]["outputs"][0]["text"] == ["== A-new: ...\n"] and cells[2]["outputs"] == []


def test_02_train_prints_the_protocol_of_every_experiment():
    """nbval runs 02-train on every experiment and compares its printed protocol: an
    experiment added without refreshing it (python -m lib.sync_notebooks --train) fails CI
    after a full quick retrain; this says so in a second."""
    nb = json.loads((ROOT / "notebooks" / "02-train.ipynb").read_text())
    printed = set()
    for cell in nb["cells"]:
        for out in cell.get("outputs", []):
            printed |= set(re.findall(r"^== ([\w.-]+): ", "".join(out.get("text", [])), flags=re.M))
    assert printed == set(load_params()["experiments"]), "refresh with `python -m lib.sync_notebooks --train`"


def test_a_failed_execution_is_refused_before_anything_is_written(tmp_path, monkeypatch):
    err = [{"output_type": "error", "ename": "ModuleNotFoundError", "evalue": "No module named 'lib'", "traceback": []}]
    ok = [{"name": "stdout", "output_type": "stream", "text": "fine\n"}]
    for name, out in (("A-ok", ok), ("B-bad", err)):
        (tmp_path / "data" / "executed").mkdir(parents=True, exist_ok=True)
        (tmp_path / "data" / "executed" / f"{name}-gpu.ipynb").write_text(json.dumps(notebook(out)))
        (tmp_path / "notebooks").mkdir(exist_ok=True)
        (tmp_path / "notebooks" / f"{name}.ipynb").write_text(json.dumps(notebook([])))
    assert failure(tmp_path / "data" / "executed" / "A-ok-gpu.ipynb") is None
    assert "ModuleNotFoundError" in failure(tmp_path / "data" / "executed" / "B-bad-gpu.ipynb")
    monkeypatch.setattr(sync_notebooks, "ROOT", tmp_path)
    monkeypatch.setattr(sync_notebooks, "TRAIN_EXECUTED", tmp_path / "data" / "executed" / "02-train-all-quick.ipynb")
    with pytest.raises(SystemExit, match="B-bad-gpu.ipynb failed .*ModuleNotFoundError"):
        sync_notebooks.main(["--profile", "gpu", "A-ok", "B-bad"])
    assert not (tmp_path / "notebooks" / "gpu").exists()  # not even the good one
    sync_notebooks.main(["--profile", "gpu", "A-ok"])
    assert (tmp_path / "notebooks" / "gpu" / "A-ok.ipynb").exists()
