"""dvc.yaml says what each stage really uses and makes: the lib/ code its notebook imports
(so an edit to the plots retrains nothing, and an edit to the models reruns every stage that
builds one), and outputs that are never another stage's source."""
import ast
import zipfile
from pathlib import Path

import pytest
import yaml

from lib.config import ROOT
from lib.tasks import eval_set, make_task
from lib.notebook_imports import covering_deps, lib_imports, module_closure, notebook_lib_files

STAGES = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]


def _paths(entries):
    """dvc.yaml lists entries as 'path' or {'path': options}."""
    return [e if isinstance(e, str) else next(iter(e)) for e in entries]


def _notebook(stage: dict) -> Path:
    return ROOT / stage["cmd"].split()[1]


def _covered(path: Path, deps: list[str]) -> bool:
    return any(path == Path(d) or Path(d) in path.parents for d in deps)


@pytest.mark.parametrize("name", sorted(STAGES))
def test_stage_deps_cover_what_its_notebook_imports(name):
    stage = STAGES[name]
    deps = _paths(stage["deps"])
    assert "lib" not in deps, f"{name}: name the lib/ parts its notebook imports, not all of lib"
    missing = sorted(str(f) for f in notebook_lib_files(_notebook(stage)) if not _covered(f, deps))
    assert not missing, (f"{name} runs code its deps do not name: {missing} "
                         f"(`python -m lib.notebook_imports {_notebook(stage).stem}` lists what it needs)")


@pytest.mark.parametrize("name", sorted(STAGES))
def test_stage_never_writes_a_source(name):
    """A stage writes to data/ and figures/ only: its notebook and the library are deps, and a
    stage that rewrote one would be out of date as soon as it finished."""
    for out in _paths(STAGES[name].get("outs", [])):
        assert out.startswith(("data/", "figures/")), f"{name} writes {out}"
    assert not set(_paths(STAGES[name].get("outs", []))) & set(_paths(STAGES[name]["deps"]))


def test_train_stages_do_not_depend_on_figure_code():
    for name, stage in STAGES.items():
        if name.startswith("train"):
            deps = _paths(stage["deps"])
            assert not any(d.startswith(("lib/plots", "lib/claims")) for d in deps), name


def test_import_closure_follows_relative_and_lazy_imports(tmp_path):
    pkg = tmp_path / "lib" / "sub"
    pkg.mkdir(parents=True)
    (tmp_path / "lib" / "__init__.py").write_text("")
    (tmp_path / "lib" / "base.py").write_text("import os\n")
    (tmp_path / "lib" / "unused.py").write_text("")
    (pkg / "__init__.py").write_text("from .a import f\n")
    (pkg / "a.py").write_text("def f():\n    from ..base import x\n")
    files = module_closure(lib_imports(ast.parse("from lib.sub import f")), tmp_path)
    assert {f.relative_to(tmp_path).as_posix() for f in files} == {
        "lib/__init__.py", "lib/sub/__init__.py", "lib/sub/a.py", "lib/base.py"}
    rel = {f.relative_to(tmp_path) for f in files}
    assert covering_deps(rel, tmp_path) == ["lib/__init__.py", "lib/base.py", "lib/sub"]


def test_eval_sets_are_the_same_bytes_every_time(tmp_path):
    """data/eval's hash in dvc.lock must not depend on when or where the data stage ran:
    the npz (zip) members carry a fixed date, not the time of writing."""
    task = make_task("selective_copy", length=20)
    eval_set(task, 8, 1, tmp_path / "a")
    eval_set(task, 8, 1, tmp_path / "b")
    a, b = (next((tmp_path / d).glob("*.npz")) for d in "ab")
    assert a.read_bytes() == b.read_bytes()
    assert {m.date_time for m in zipfile.ZipFile(a).infolist()} == {(1980, 1, 1, 0, 0, 0)}
    assert (eval_set(task, 8, 1, tmp_path / "a").inputs == eval_set(task, 8, 1, tmp_path / "b").inputs).all()


def test_sync_recommits_only_stages_its_notebooks_changed():
    """lib.sync_notebooks records a stage in dvc.lock again only when the synced notebook is
    all that changed: a stage with changed code or outputs must still rerun."""
    from lib.sync_notebooks import stages_changed_only_by
    status = {
        "figure-A-fig4": [{"changed deps": {"notebooks/A-fig4.ipynb": "modified"}}],
        "figure-A-recall": [{"changed deps": {"notebooks/A-recall.ipynb": "modified", "lib/plots": "modified"}}],
        "figure-A-scale": [{"changed deps": {"notebooks/A-scale.ipynb": "modified"}},
                           {"changed outs": {"figures/quick/A-fig8.png": "modified"}}],
        "claims-B-ngram": [{"changed deps": {"notebooks/B-claims-ngram.ipynb": "modified"}}],
    }
    synced = {"notebooks/A-fig4.ipynb", "notebooks/A-recall.ipynb", "notebooks/A-scale.ipynb"}
    assert stages_changed_only_by(synced, status) == ["figure-A-fig4"]


def test_plots_and_metrics_name_files_the_pipeline_writes():
    """Top-level `plots:` read columns that the tables have, through a template in the repo,
    and every plotted or metrics file of the running profile is a stage's output."""
    import pandas as pd
    dvc = yaml.safe_load((ROOT / "dvc.yaml").read_text())
    written = {p.replace("${profile}", "quick") for s in STAGES.values()
               for p in _paths(s.get("outs", []) + s.get("metrics", []))}
    for entry in dvc["plots"]:
        (name, plot), = entry.items()
        assert (ROOT / plot["template"]).exists(), name
        for path, column in plot["y"].items():
            assert path in written or path.startswith("figures/gpu/"), f"{name}: no stage writes {path}"
            if (ROOT / path).exists():
                assert {plot["x"], column} <= set(pd.read_csv(ROOT / path).columns), f"{name}: {path}"
    for path in dvc["metrics"]:
        assert path.replace("figures/gpu/", "figures/quick/") in written, path


def test_a_sweep_without_a_terminal_prints_a_line_per_finished_ensemble(tmp_path, capsys):
    """Under `dvc repro` the sweep runs in a papermill kernel, whose stderr is no terminal:
    it prints runs done of total and the time elapsed, which papermill --log-output shows."""
    from lib.config import expand_runs
    from lib.sweeps import run_sweep
    spec = {"name": "tiny", "profile": "quick", "task": {"name": "selective_copy", "length": 24},
            "eval": {"n": 16, "seed": 1}, "model": {"family": "micro", "window": 8},
            "grid": {"arch": ["TF-TF", "SSM-TF"], "d_model": [4]}, "seeds": 1,
            "train": {"steps": 2, "batch_size": 4, "warmup": 1}, "lr": {"grid": [1e-2]}}
    run_sweep(expand_runs(spec), tmp_path / "results", profile="quick", data_dir=tmp_path / "eval", progress=True)
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("[runs]")]
    assert lines and lines[-1].startswith("[runs] 2/2 done (") and lines[-1].endswith("s elapsed")


def test_train_stages_show_the_sweeps_progress_not_a_cell_counter():
    for name, stage in STAGES.items():
        if name.startswith("train"):
            assert "--log-output" in stage["cmd"] and "--no-progress-bar" in stage["cmd"], name


SAVES = {  # how a notebook writes a figure or table -> the files that makes
    r"save_figure\([^,]+, \"([^\"]+)\"": (".png", ".pdf"),
    r"save_table\([^,]+, \"([^\"]+)\"": (".csv", ".md"),
    r"write_metrics\([^,]+, \"([^\"]+)\"": ("metrics-{}.json",),
    r"/ \"([^\"]+)\.csv\"": (".csv",),
}


@pytest.mark.parametrize("name", sorted(n for n in STAGES if not n.startswith(("data", "train"))))
def test_stage_outs_name_every_file_its_notebook_writes(name):
    """A file a stage writes but does not declare is neither tracked nor cleaned by dvc."""
    import re
    stage = STAGES[name]
    declared = set(_paths(stage.get("outs", []) + stage.get("metrics", [])))
    from lib.notebook_imports import notebook_code
    code = notebook_code(_notebook(stage))
    for pattern, suffixes in SAVES.items():
        for file_id in re.findall(pattern, code):
            for suffix in suffixes:
                file = suffix.format(file_id) if "{}" in suffix else file_id + suffix
                assert f"figures/${{profile}}/{file}" in declared, f"{name} writes {file} undeclared"


READS_SETTINGS = ("experiment_spec(", "describe(", "load_experiment(", "rung_difficulty(")


@pytest.mark.parametrize("name", sorted(n for n in STAGES if not n.startswith(("data", "train"))))
def test_a_stage_that_reads_experiment_settings_tracks_them(name):
    """A figure that counts planned runs or prints a protocol goes stale when experiments.yaml
    changes and the results do not, unless its stage depends on those settings."""
    from lib.notebook_imports import notebook_code
    stage = STAGES[name]
    if not any(call in notebook_code(_notebook(stage)) for call in READS_SETTINGS):
        return
    read = {d.split("/")[3] for d in _paths(stage["deps"]) if d.startswith("data/results/${profile}/")}
    assert {f"data/settings/{e}.json" for e in read} <= set(_paths(stage["deps"])), name


def test_a_train_stage_depends_on_the_settings_of_what_it_trains():
    """An edit to one experiment reruns the stage that trains it (and no other train stage)."""
    for name, stage in STAGES.items():
        if name.startswith("train"):
            trained = {out.split("/")[3] for out in _paths(stage["outs"])}
            settings = {d.split("/")[2].removesuffix(".json") for d in _paths(stage["deps"])
                        if d.startswith("data/settings/")}
            assert settings == trained, name


def test_params_hold_only_what_a_user_varies():
    """`dvc exp show` has a column per tracked param: stages track `profile` only, and every
    experiment's protocol is in experiments.yaml, which the data stage turns into one
    data/settings file per experiment."""
    assert set(yaml.safe_load((ROOT / "params.yaml").read_text())) == {"profile"}
    for name, stage in STAGES.items():
        assert set(stage.get("params", [])) <= {"profile"}, name
    data = STAGES["data"]
    assert "experiments.yaml" in _paths(data["deps"]) and "data/settings" in _paths(data["outs"])
    from lib.notebook_imports import notebook_code
    assert "write_settings(" in notebook_code(_notebook(data))


def test_sync_recommits_only_from_an_executed_copy_of_the_same_code(tmp_path):
    """An executed copy of older code (the notebook edited since) must not mark its stage done."""
    import json
    from lib.sync_notebooks import same_code

    def notebook(path, code, injected=False):
        cells = [{"cell_type": "code", "id": "a", "metadata": {}, "source": [code], "outputs": []}]
        if injected:
            cells.insert(0, {"cell_type": "code", "id": "p", "metadata": {"tags": ["injected-parameters"]},
                             "source": ['profile = "gpu"'], "outputs": []})
        path.write_text(json.dumps({"cells": cells}))
        return path

    source = notebook(tmp_path / "nb.ipynb", "x = 1\n")
    assert same_code(notebook(tmp_path / "ran.ipynb", "x = 1\n", injected=True), source)
    assert not same_code(notebook(tmp_path / "old.ipynb", "x = 0\n", injected=True), source)
