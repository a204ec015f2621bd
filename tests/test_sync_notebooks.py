"""lib.sync_notebooks: the quick outputs go into the sources cell by cell; other profiles'
renders go whole into notebooks/<profile>/, without the per-render timings."""
import json

from lib.sync_notebooks import copy_executed, sync


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
