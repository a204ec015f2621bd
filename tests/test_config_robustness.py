"""Issue 26: a configuration mistake never trains the wrong thing, a bad value fails before
any work in one line, one bad file never blocks a rerun, two sweeps never lose work."""
import json
import runpy
import subprocess
import sys
import threading
import time

import pandas as pd
import pytest
import torch

import lib.config as config
from lib.config import ConfigError, expand_runs, experiment_spec, load_params
from lib.provenance import git_commit
from lib import results
from lib.results import load_results
from lib.sweeps import run_sweep, runner

TINY = """\
profile: quick
_protocol: &protocol
  seeds: 1
  train: {steps: 6, batch_size: 4, warmup: 2}
experiments:
  T:
    <<: *protocol
    paper: A
    title: a tiny sweep
    task: {name: selective_copy, length: 24}
    eval: {n: 32, seed: 1}
    model: {family: micro, window: 8}
    grid: {arch: [TF-TF, SSM-TF], d_model: [4]}
    lr: {grid: [1.0e-2, 3.0e-2], trial_steps: 2}
    profiles:
      quick: {<<: *protocol, seeds: 1, lr: {grid: [1.0e-2]}}
      gpu: {}
      paper: {}
"""


def split(text: str, folder):
    """TINY as the repository holds it: the profile in params.yaml, the rest in experiments.yaml."""
    profile, experiments = text.split("\n", 1)
    (folder / "params.yaml").write_text(profile + "\n")
    (folder / "experiments.yaml").write_text(experiments)
    return folder / "params.yaml"


@pytest.fixture
def tiny_repo(tmp_path, monkeypatch):
    """params.yaml + experiments.yaml = TINY (for load_params and the CLI), results under tmp_path/work."""
    repo = tmp_path / "repo"
    repo.mkdir()
    split(TINY, repo)
    monkeypatch.setattr(config, "ROOT", repo)
    monkeypatch.setenv("COMPANION_WORKDIR", str(tmp_path / "work"))
    return tmp_path / "work" / "data" / "results"


def spec_from(text, tmp_path, profile="quick"):
    (tmp_path / "params.yaml").write_text(text)
    return expand_runs(experiment_spec("T", profile, load_params(tmp_path / "params.yaml")))


def cli(monkeypatch, *args):
    monkeypatch.setattr(sys, "argv", ["python -m lib.sweeps", *args])
    runpy.run_module("lib.sweeps", run_name="__main__")


# -- 1. configuration mistakes are refused, naming the experiment and the nearest key ------

def test_tiny_params_and_the_real_ones_validate(tmp_path):
    assert len(spec_from(TINY, tmp_path)) == 2
    params = load_params()  # every experiment of params.yaml at every profile
    for name in params["experiments"]:
        for profile in config.PROFILES:
            assert expand_runs(experiment_spec(name, profile, params))


@pytest.mark.parametrize("old, new, match", [
    ("  T:\n", "  T:\n    seeds: 2\n    seeds: 3\n", r"line 8: the key 'seeds' is given twice.*first on line 7"),
    ("      paper: {}\n", "      paper: {}\n  T:\n    paper: A\n", r"the key 'T' is given twice"),
    ("      quick: {", "      quik: {", r"T: unknown key 'profiles.quik' \(did you mean 'quick'\?\)"),
    ("seeds: 1, lr", "seedz: 1, lr", r"T: unknown key 'profiles.quick.seedz' \(did you mean 'seeds'\?\)"),
    ("    title:", "    trian: {steps: 3}\n    title:", r"T: unknown key 'trian' \(did you mean 'train'\?\)"),
    ("task: {name: selective_copy,", "task: {name: selective_copy, lenght: 3,",
     r"T: unknown key 'task.lenght' \(did you mean 'length'\?\)"),
    ("d_model: [4]", "d_modle: [4]", r"T: unknown key 'grid.d_modle' \(did you mean 'd_model'\?\)"),
    ("model: {family: micro,", "model: {family: micro, widow: 3,",
     r"T: unknown key 'model.widow' \(did you mean 'window'\?\)"),
    ("lr: {grid: [1.0e-2]}}", "lr: {}}", r"T: profiles.quick.lr is empty, which changes nothing"),
    ("lr: {grid: [1.0e-2]}}", "lr: {grid: []}}", r"T: lr.grid is \[\]; it must list at least one learning rate"),
    ("      gpu: {}\n", "", r"T: profiles.gpu is missing"),
    ("profile: quick\n", "profile: quik\n", r"profile is 'quik'; it must be one of quick, gpu, paper"),
    ("experiments:", "experiment: {}\nexperiments:", r"unknown key 'experiment' \(did you mean 'experiments'\?\)"),
    ("    eval: {n: 32, seed: 1}", "    eval: {n: 32, seed: 1, mx_len: 3}", r"T: unknown key 'eval.mx_len'"),
])
def test_a_configuration_mistake_is_refused(tmp_path, old, new, match):
    assert old in TINY
    with pytest.raises(ConfigError, match=match):
        spec_from(TINY.replace(old, new, 1), tmp_path)


def test_params_and_experiments_files_are_read_together(tmp_path):
    """The repository's layout: params.yaml holds the profile, experiments.yaml beside it the
    experiments; a key in the wrong file is refused rather than shadowing the other's."""
    params = load_params(split(TINY, tmp_path))
    assert params["profile"] == "quick" and list(params["experiments"]) == ["T"]
    (tmp_path / "params.yaml").write_text("profile: quick\nexperiments: {}\n")
    with pytest.raises(ConfigError, match="params.yaml: `experiments` belongs in experiments.yaml"):
        load_params(tmp_path / "params.yaml")
    (tmp_path / "params.yaml").write_text("profile: quick\nprofiel: gpu\n")
    with pytest.raises(ConfigError, match=r"params.yaml: unknown key 'profiel' \(did you mean 'profile'\?\)"):
        load_params(tmp_path / "params.yaml")
    split(TINY.replace("experiments:", "profile: gpu\nexperiments:"), tmp_path)
    with pytest.raises(ConfigError, match="experiments.yaml: `profile` belongs in params.yaml"):
        load_params(tmp_path / "params.yaml")


def test_each_experiment_settings_file_changes_only_with_its_experiment(tiny_repo):
    """data/settings/<name>.json, which the stages of an experiment depend on: its entry with
    anchors merged, the same bytes until that experiment's settings change."""
    params = load_params()
    params["experiments"]["U"] = {**params["experiments"]["T"], "title": "another"}
    paths = {p.stem: p for p in config.write_settings(params)}
    assert json.loads(paths["T"].read_text()) == params["experiments"]["T"]
    assert paths["T"].parent == tiny_repo.parent / "settings"
    before = {name: p.read_bytes() for name, p in paths.items()}
    params["experiments"]["U"]["seeds"] = 3
    config.write_settings(params)
    assert paths["T"].read_bytes() == before["T"] and paths["U"].read_bytes() != before["U"]


def test_a_profile_may_override_what_its_anchor_set(tmp_path):
    """`{<<: *protocol, seeds: 1}` repeats a key through a merge: not a duplicate."""
    assert spec_from(TINY.replace("seeds: 1, lr", "seeds: 2, lr"), tmp_path)[0].seed == 0


# -- 2. bad values fail before any work, in one line that names experiment and key ---------

def tiny_spec(**changes):
    spec = {"name": "tiny", "profile": "quick", "task": {"name": "selective_copy", "length": 24},
            "eval": {"n": 32, "seed": 1}, "model": {"family": "micro", "window": 8},
            "grid": {"arch": ["TF-TF"], "d_model": [4]}, "seeds": 1,
            "train": {"steps": 6, "batch_size": 4, "warmup": 2}, "lr": {"grid": [1e-2]}}
    spec.update(changes)
    return {k: v for k, v in spec.items() if v is not None}


@pytest.mark.parametrize("change, match", [
    ({"eval": {"n": 0}}, r"tiny: eval.n is 0; it must be a positive whole number"),
    ({"lr": {"grid": [0]}}, r"tiny: lr.grid holds 0; every learning rate must be a positive number"),
    ({"lr": {"grid": ["abc", 1e-2], "trial_steps": 2}}, r"tiny: lr.grid holds 'abc'"),
    ({"lr": {"grid": [1e-3, 1e-2], "trial_steps": 0}}, r"tiny: lr.trial_steps is 0; it must be a positive"),
    ({"lr": {"grid": [1e-3, 1e-2]}}, r"tiny: lr.trial_steps is None"),
    ({"train": {"steps": "200"}}, r"tiny: train.steps is '200'; it must be a whole number \(text, not a number"),
    ({"train": {"steps": 6, "lr": "1e-3"}, "lr": {}}, r"train.lr is '1e-3'.*write 1.0e-3"),
    ({"train": {"steps": 0}}, r"tiny: train: steps and batch_size must be positive"),
    ({"grid": {"arch": ["TF-TF"], "d_model": [4], "train.lr": [1e-2, 0]}, "lr": {}},
     r"tiny: train: lr must be positive"),
    ({"seeds": 0}, r"tiny: seeds is 0; it must be a positive whole number"),
    ({"grid": {"arch": ["TF-TF"], "d_model": []}}, r"tiny: grid.d_model is \[\]; it must list at least one value"),
    ({"task": None}, r"tiny: no `task` settings"),
    ({"model": None}, r"tiny: no `model` settings"),
    ({"task": {"length": 24}}, r"tiny: task.name is missing"),
    ({"tests": {"lengths": {"lengths": [10], "n": 0}}}, r"tiny: tests.lengths.n is 0"),
])
def test_a_bad_value_fails_before_any_work(change, match):
    with pytest.raises(ConfigError, match=match) as e:
        expand_runs(tiny_spec(**change))
    assert "\n" not in str(e.value)


def test_device_and_time_budget_are_checked_before_any_work(tiny_repo, monkeypatch):
    with pytest.raises(ConfigError, match="time budget is 0 s; it must be a positive number"):
        runner.check_arguments("cpu", 0)
    with pytest.raises(ConfigError, match="device 'gpu'"):
        runner.check_arguments("gpu")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="device 'cuda': this machine has no CUDA GPU"):
            runner.check_arguments("cuda")
    for args, match in ((["--time-budget", "0"], "time budget"), (["--profile", "quik"], "did you mean 'quick'")):
        with pytest.raises(SystemExit) as e:  # the CLI: one line, its exit status non-zero
            cli(monkeypatch, "--experiments", "T", "--device", "cpu", *args)
        assert str(e.value.code).startswith("python -m lib.sweeps: ") and match in str(e.value.code)
    assert not tiny_repo.exists()  # nothing trained, nothing written


def test_notebooks_show_a_config_error_in_one_line(capsys):
    """IPython (papermill's kernels) prints _render_traceback_ instead of the frames."""
    shell = pytest.importorskip("IPython.core.interactiveshell").InteractiveShell.instance()
    result = shell.run_cell("from lib.config import ConfigError\nraise ConfigError('T: seeds is 0')")
    assert isinstance(result.error_in_exec, ConfigError)
    assert capsys.readouterr().out.strip() == "ConfigError: T: seeds is 0"


# -- 3. bad files, two sweeps, provenance ------------------------------------------------

def test_an_unreadable_record_or_lrs_json_is_set_aside_and_made_again(tmp_path, capsys):
    runs = expand_runs(tiny_spec(lr={"grid": [1e-2, 3e-2], "trial_steps": 2}, seeds=2))
    out, data = tmp_path / "results", tmp_path / "eval"
    first = run_sweep(runs, out, profile="quick", data_dir=data, progress=False)
    record, lrs = out / "runs" / f"{runs[0].id}.json", out / "lrs.json"
    cut = {p: p.read_text()[:40] for p in (record, lrs)}  # as a full disk or a bad copy leaves them
    for p, text in cut.items():
        p.write_text(text)
    again = run_sweep(runs, out, profile="quick", data_dir=data, progress=False)
    err = capsys.readouterr().err
    for p, text in cut.items():
        assert f"warning: {p} does not parse" in err
        aside = list(p.parent.glob(f"{p.name}.unreadable-*"))
        assert len(aside) == 1 and aside[0].read_text() == text  # kept for a look, not deleted
        assert json.loads(p.read_text())  # made again
    assert again.equals(first)


def test_results_parquet_is_written_atomically(tmp_path, monkeypatch):
    runs = expand_runs(tiny_spec())
    out = tmp_path / "results"
    table = run_sweep(runs, out, profile="quick", data_dir=tmp_path / "eval", progress=False)

    def dies_halfway(self, path, **kwargs):
        open(path, "wb").write(b"PAR1 half a file")
        raise KeyboardInterrupt

    monkeypatch.setattr(pd.DataFrame, "to_parquet", dies_halfway)
    with pytest.raises(KeyboardInterrupt):
        runner.collect(runs, out, profile="quick", device="cpu", wall_s=1.0, resumed=0)
    assert load_results(out)[0].equals(table)


def test_a_second_sweep_on_one_folder_waits_then_trains_nothing_twice(tmp_path, capsys):
    runs = expand_runs(tiny_spec(seeds=2))
    out = tmp_path / "results"
    sweep = threading.Thread(target=run_sweep, args=(runs, out),
                             kwargs=dict(profile="quick", data_dir=tmp_path / "eval", progress=False))
    with runner._locked(runner._lock_path(out)):  # as a first sweep holds it while it trains
        sweep.start()
        time.sleep(2)
        assert not list(out.glob("runs/*.json"))  # the second waits
    sweep.join()
    assert f"another sweep is training {out}; waiting" in capsys.readouterr().err
    assert len(list(out.glob("runs/*.json"))) == 2


def test_two_writers_of_lrs_json_lose_no_entry(tmp_path):
    path = tmp_path / "A" / "lrs.json"

    def writer(start):
        for i in range(start, start + 200):
            runner._update_json(path, {f"k{i}": i})

    threads = [threading.Thread(target=writer, args=(i * 200,)) for i in range(2)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert len(json.loads(path.read_text())) == 400


def test_provenance_is_dirty_when_params_yaml_is_modified(tmp_path, monkeypatch):
    monkeypatch.delenv("COMPANION_COMMIT", raising=False)
    (tmp_path / "params.yaml").write_text("profile: quick\n")
    git = lambda *a: subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *a],  # noqa: E731
                                    cwd=tmp_path, check=True, capture_output=True)
    git("init", "-q")
    git("add", "params.yaml")
    git("commit", "-qm", "params")
    assert not git_commit(tmp_path).endswith("+dirty")
    (tmp_path / "params.yaml").write_text("profile: gpu\n")
    assert git_commit(tmp_path).endswith("+dirty")


def test_an_interrupted_sweep_is_logged(tiny_repo, monkeypatch):
    finish = runner._finish
    calls = []

    def interrupted_at_the_second(*args):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt  # ctrl-C while the second ensemble trains
        finish(*args)

    monkeypatch.setattr(runner, "_finish", interrupted_at_the_second)
    with pytest.raises(KeyboardInterrupt):
        runner.run_experiments(["T"], "quick", device="cpu", progress=False)
    [entry] = results.read_sweep_log(tiny_repo / "quick")
    assert entry["interrupted"] and entry["runs_trained"] == 1 and entry["runs_left"] == 1 and "wall_s" in entry


def test_a_failed_ensemble_costs_only_its_own_runs(tiny_repo, monkeypatch, capsys):
    """One ensemble raising (a GPU out of memory beside other sweeps, as on 2026-12-08) used to
    end the sweep before any finished run was recorded. Now the others are recorded, tabled and
    logged, the error names the failed ensemble in one line, and a rerun trains only it."""
    train, calls = runner._train, []

    def first_fails(ens, *args):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("CUDA error: CUBLAS_STATUS_ALLOC_FAILED when calling `cublasCreate(handle)`\nmore")
        return train(ens, *args)

    monkeypatch.setattr(runner, "_train", first_fails)
    monkeypatch.setenv("COMPANION_CPU_WORKERS", "1")  # in this process, where the patch holds
    with pytest.raises(SystemExit) as exit_:
        cli(monkeypatch, "--experiments", "T", "--device", "cpu")
    message = str(exit_.value.code)
    assert message.startswith("python -m lib.sweeps: 1 ensemble(s) failed; the other finished runs are recorded")
    assert "x T " in message and "RuntimeError: CUDA error: CUBLAS_STATUS_ALLOC_FAILED" in message
    assert "more" not in message  # the error's first line only
    assert "failed:" in capsys.readouterr().err  # reported as it happens, beside the progress lines
    out = tiny_repo / "quick" / "T"
    assert len(list(out.glob("runs/*.json"))) == 1 and len(pd.read_parquet(out / "results.parquet")) == 1
    [entry] = results.read_sweep_log(tiny_repo / "quick")
    assert entry["failed_ensembles"] == 1 and entry["runs_trained"] == 1 and entry["runs_left"] == 1
    cli(monkeypatch, "--experiments", "T", "--device", "cpu")  # the rerun: only the failed run trains
    assert len(calls) == 3 and len(pd.read_parquet(out / "results.parquet")) == 2
    assert results.read_sweep_log(tiny_repo / "quick")[-1]["runs_trained"] == 1


def test_an_experiment_named_twice_trains_once(tiny_repo, monkeypatch, capsys):
    cli(monkeypatch, "--experiments", "T,T", "--device", "cpu")
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1]) == {"T": 2}
    [entry] = results.read_sweep_log(tiny_repo / "quick")
    assert entry["experiments"] == ["T"] and entry["runs_trained"] == 2 and "interrupted" not in entry


def test_plan_lists_what_a_sweep_would_train_and_trains_nothing(tmp_path, monkeypatch, capsys):
    """--plan: per configuration of the selection, runs finished and left, and whether its
    learning-rate trials are still to run; a finished run and a chosen rate count as done."""
    from lib.config import expand_runs, experiment_spec, results_dir, select_runs
    from lib.results import lr_key, write_json
    monkeypatch.setenv("COMPANION_WORKDIR", str(tmp_path))
    plan = runner.plan_runs(["A-fig6"], "quick", {"d_model": ["4"]})
    assert len(plan) == 4 and (plan["left"] == plan["selected"]).all() and plan["lr trials"].all()
    runs = select_runs(expand_runs(experiment_spec("A-fig6", "quick")), {"d_model": ["4"], "arch": ["TF-TF"]})
    out = results_dir("quick", "A-fig6")
    write_json(out / "lrs.json", {lr_key(runs[0]): {"lr": 0.01, "labels": runs[0].labels}})
    write_json(out / "runs" / f"{runs[0].id}.json", {"id": runs[0].id})
    row = runner.plan_runs(["A-fig6"], "quick", {"d_model": ["4"]}).query("arch == 'TF-TF'").iloc[0]
    assert (row["finished"], row["left"], row["lr trials"]) == (1, len(runs) - 1, False)
    with pytest.raises(SystemExit) as e:
        cli(monkeypatch, "--profile", "quick", "--experiments", "A-fig6", "--only", "d_model=4", "--plan")
    assert e.value.code == 0 and "7 of 8 selected runs left to train" in capsys.readouterr().out
    assert not (out / "results.parquet").exists()  # nothing trained, no table written


def test_prune_removes_only_what_earlier_settings_left(tmp_path, monkeypatch, capsys):
    """--prune: records, sidecars, snapshots and lrs.json entries that the current settings do
    not make are deleted; the current ones stay byte for byte; a second prune removes nothing."""
    import dataclasses

    from lib.config import expand_runs, experiment_spec, results_dir
    from lib.results import lr_key, machine_path, read_json, write_json
    monkeypatch.setenv("COMPANION_WORKDIR", str(tmp_path))
    runs = expand_runs(experiment_spec("A-fig6", "quick"))
    old = dataclasses.replace(runs[0], train={**runs[0].train, "steps": 12345})
    out = results_dir("quick", "A-fig6")
    for r in (runs[0], old):
        write_json(out / "runs" / f"{r.id}.json", {"id": r.id})
        write_json(machine_path(out, r.id), {"device": "cpu"})
        (out / "runs" / f"{r.id}.npz").write_bytes(b"rows")
    write_json(out / "lrs.json", {lr_key(runs[0]): {"lr": 0.01}, lr_key(old): {"lr": 1.0}})
    assert old.id != runs[0].id and lr_key(old) != lr_key(runs[0])
    assert runner.prune_stale(["A-fig6"], "quick") == {"A-fig6": 4}
    assert sorted(p.name for p in (out / "runs").iterdir()) == sorted([f"{runs[0].id}.json", f"{runs[0].id}.npz"])
    assert [p.name for p in (out / "machine").iterdir()] == [f"{runs[0].id}.json"]
    assert read_json(out / "lrs.json") == {lr_key(runs[0]): {"lr": 0.01}}
    with pytest.raises(SystemExit) as e:
        cli(monkeypatch, "--profile", "quick", "--experiments", "A-fig6,A-fig7", "--prune")
    assert e.value.code == 0 and capsys.readouterr().out.strip() == '{"A-fig6": 0, "A-fig7": 0}'
