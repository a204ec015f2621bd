"""params.yaml -> runs -> results: validation before work, resumable sweeps,
provenance, and the DVC pipeline's shape."""
import json

import pytest
import yaml

from lib.config import ROOT, ConfigError, expand_runs, experiment_spec, load_params
from lib.results import load_results
from lib.sweeps import run_sweep

PARAMS = load_params()


def tiny_spec(**changes):
    spec = {
        "name": "tiny", "profile": "quick",
        "task": {"name": "selective_copy", "length": 24},
        "eval": {"n": 32, "seed": 1},
        "model": {"family": "micro", "window": 8},
        "grid": {"arch": ["TF-TF", "SSM-TF"], "d_model": [4]},
        "seeds": 2,
        "train": {"steps": 6, "batch_size": 4, "warmup": 2},
        "lr": {"grid": [1e-2]},
    }
    spec.update(changes)
    return spec


def test_every_experiment_expands_at_every_profile():
    for name in PARAMS["experiments"]:
        for profile in ("quick", "gpu", "paper"):
            runs = expand_runs(experiment_spec(name, profile, PARAMS))
            assert runs and len({r.id for r in runs}) == len(runs)


def test_quick_profile_is_smaller_than_paper():
    for name in PARAMS["experiments"]:
        quick, paper = (expand_runs(experiment_spec(name, p, PARAMS)) for p in ("quick", "paper"))
        steps = lambda runs: sum(r.train.get("steps", 0) for r in runs)  # noqa: E731
        assert steps(quick) < steps(paper) / 20


def test_a_fig4_follows_paper_protocol():
    spec = experiment_spec("A-fig4", "paper", PARAMS)
    assert spec["seeds"] == 11
    assert spec["train"] == {"steps": 4000, "batch_size": 8, "weight_decay": 0.1, "warmup": 100,
                             "schedule": "linear", "clip": 1.0}
    assert spec["lr"]["grid"] == pytest.approx([10 ** (-4 + i / 2) for i in range(9)], rel=1e-3)
    assert spec["eval"]["n"] >= 1000


@pytest.mark.parametrize("change, match", [
    ({"task": {"name": "copy"}}, "tiny: unknown task 'copy'.*selective_copy"),
    ({"task": {"name": "selective_copy", "vocab": 3}}, "unknown key 'task.vocab'.*num_vocab"),
    ({"grid": {"arch": ["SSM-RNN"], "d_model": [4]}}, "tiny: unknown layer 'RNN'"),
    ({"model": {"family": "micro", "window": 50}}, "window 50 is larger than the sequence"),
    ({"model": {"family": "micro", "window": 8, "heads": 3}}, "divisible by 3 heads"),
    ({"model": {"family": "resnet"}}, "unknown model family"),
    ({"task": {"name": "decode_recall_last", "num_vocab": 20}}, "power of two"),
])
def test_bad_input_fails_before_any_work(change, match):
    """Task and model errors too come as one ConfigError that names the experiment."""
    with pytest.raises(ConfigError, match=match):
        expand_runs(tiny_spec(**change))


def test_unknown_profile_and_experiment():
    with pytest.raises(ConfigError, match="unknown profile 'fast'.*quick, gpu, paper"):
        experiment_spec("A-fig4", "fast", PARAMS)
    with pytest.raises(ConfigError, match="unknown experiment 'A-fig99'"):
        experiment_spec("A-fig99", "quick", PARAMS)


def test_sweep_writes_results_and_resumes(tmp_path):
    """A second call finds every run finished and trains nothing; a lost run is redone alone."""
    runs = expand_runs(tiny_spec())
    out = tmp_path / "results"
    table = run_sweep(runs, out, profile="quick", data_dir=tmp_path / "eval", progress=False)
    assert len(table) == 4 and set(table["arch"]) == {"TF-TF", "SSM-TF"}
    assert table["params"].tolist() == [488, 488, 872, 872] or sorted(table["params"]) == [488, 488, 872, 872]
    df, prov = load_results(out)
    assert prov["profile"] == "quick" and prov["runs"] == 4 and prov["resumed"] == 0
    assert {"device", "commit", "wall_s"} <= set(prov)

    files = sorted((out / "runs").glob("*.json"))
    stamps = {f: f.stat().st_mtime_ns for f in files}
    files[0].unlink()  # as if the sweep had been killed before this run finished
    again = run_sweep(runs, out, profile="quick", data_dir=tmp_path / "eval", progress=False)
    assert json.loads((out / "provenance.json").read_text())["resumed"] == 3
    assert all(f.stat().st_mtime_ns == stamps[f] for f in files[1:])  # finished runs untouched
    assert again.equals(table)  # same seed, same numbers


def test_cpu_worker_processes_give_the_numbers_of_one_process(tmp_path, monkeypatch):
    """On a CPU, ensembles train side by side in worker processes, one thread each: the
    records are those of the same sweep in one process (and of a core count of one)."""
    from lib.sweeps.runner import cpu_workers

    runs = expand_runs(tiny_spec())  # two shapes: two ensembles, one per worker
    records = {}
    for workers in ("1", "2"):
        monkeypatch.setenv("COMPANION_CPU_WORKERS", workers)
        assert cpu_workers() == int(workers)
        out = tmp_path / f"workers{workers}"
        run_sweep(runs, out, profile="quick", data_dir=tmp_path / "eval", progress=False)
        records[workers] = {f.name: f.read_bytes() for f in (out / "runs").glob("*.json")}
    assert len(records["1"]) == 4 and records["1"] == records["2"]


def test_run_records_and_table_hold_nothing_machine_dependent(tmp_path):
    """A run's record, snapshots and the results table are the same bytes on any machine and
    at any time (DVC hashes them); its device, commit and wall times go to its machine sidecar,
    which provenance.json sums."""
    from lib.results import MACHINE_FIELDS, machine_path

    runs = expand_runs(tiny_spec(seeds=1, grid={"arch": ["SSM-TF"], "d_model": [4]}))
    out = tmp_path / "results"
    table = run_sweep(runs, out, profile="quick", data_dir=tmp_path / "eval", progress=False)
    record = json.loads((out / "runs" / f"{runs[0].id}.json").read_text())
    machine = json.loads(machine_path(out, runs[0].id).read_text())
    assert not set(MACHINE_FIELDS) & set(record) and not set(MACHINE_FIELDS) & set(table.columns)
    assert set(machine) == set(MACHINE_FIELDS) and machine["wall_s"] > 0 and machine["device"].startswith("cpu")
    prov = json.loads((out / "provenance.json").read_text())
    assert prov["train_wall_s"] == pytest.approx(machine["wall_s"]) and prov["run_commits"] == [machine["commit"]]


def test_records_with_machine_fields_inline_still_read(tmp_path):
    """Records written before the sidecars (the committed gpu results) hold device, commit and
    wall time inline: the provenance still finds them there."""
    from lib import results
    from lib.sweeps import runner

    runs = expand_runs(tiny_spec(seeds=1, grid={"arch": ["SSM-TF"], "d_model": [4]}))
    out = tmp_path / "results"
    run_sweep(runs, out, profile="quick", data_dir=tmp_path / "eval", progress=False)
    path = out / "runs" / f"{runs[0].id}.json"
    old = {**json.loads(path.read_text()), "wall_s": 12.5, "device": "NVIDIA H200", "commit": "941b35c"}
    path.write_text(json.dumps(old))
    results.machine_path(out, runs[0].id).unlink()
    table = runner.collect(runs, out, profile="quick", device="cpu", wall_s=1.0, resumed=1)
    assert len(table) == 1 and results.read_machine(out, old)["device"] == "NVIDIA H200"
    prov = json.loads((out / "provenance.json").read_text())
    assert prov["train_wall_s"] == 12.5 and prov["run_commits"] == ["941b35c"] and prov["device"] == "NVIDIA H200"


def test_snapshot_files_do_not_change_with_the_clock(tmp_path, monkeypatch):
    """The runs' snapshot files (.npz, hashed by DVC like the records) carry no time of
    writing: the same rows give the same bytes."""
    import time

    import numpy as np
    import torch

    from lib.results import load_snapshots, write_snapshots

    snaps = {"0.5": {"rows": torch.arange(12.0).view(3, 4), "step": 7}}
    write_snapshots(tmp_path / "a.npz", snaps)
    later = time.time() + 3 * 86400
    monkeypatch.setattr(time, "time", lambda: later)
    write_snapshots(tmp_path / "b.npz", snaps)
    assert (tmp_path / "a.npz").read_bytes() == (tmp_path / "b.npz").read_bytes()
    step, rows = load_snapshots(tmp_path / "a.json")["0.5"]
    assert step == 7 and np.array_equal(rows, np.arange(12.0).reshape(3, 4))


def test_crash_before_the_record_keeps_the_checkpoint(tmp_path, monkeypatch):
    """A run whose training ended but whose record was never written (the process died in
    between) resumes from its checkpoint, not from step 0, and gives the same numbers; once
    recorded, the checkpoint is gone."""
    from lib.sweeps import runner
    record = runner.record
    monkeypatch.setenv("COMPANION_CHECKPOINTS", str(tmp_path / "ckpt"))
    monkeypatch.setattr(runner, "CHECKPOINT_EVERY", 1)
    runs = expand_runs(tiny_spec(grid={"arch": ["SSM-TF"], "d_model": [4]}, seeds=1, lr={},
                                 train={"steps": 6, "batch_size": 4, "warmup": 2, "data_block": 2}))
    out, data = tmp_path / "results", tmp_path / "eval"

    def dies(*args):
        raise RuntimeError("CUDA error: out of memory")  # as a late asynchronous error surfaces

    monkeypatch.setattr(runner, "record", dies)
    with pytest.raises(RuntimeError, match="out of memory"):
        run_sweep(runs, out, profile="quick", data_dir=data, progress=False)
    assert len(list((tmp_path / "ckpt").glob("*.pt"))) == 1 and not list((out / "runs").glob("*.json"))
    monkeypatch.setattr(runner, "record", record)
    resumed = run_sweep(runs, out, profile="quick", data_dir=data, progress=False)
    assert not list((tmp_path / "ckpt").glob("*.pt"))
    fresh = run_sweep(runs, tmp_path / "fresh", profile="quick", data_dir=data, progress=False)
    assert resumed.equals(fresh)


def test_dvc_pipeline_shape():
    """data -> train -> figure, each stage a papermill notebook run at ${profile}; every
    experiment of params.yaml is trained by a stage that writes its results folder."""
    dvc = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    trained = {out if isinstance(out, str) else next(iter(out)) for name, st in dvc.items()
               if name.startswith("train") for out in st["outs"]}
    assert trained == {f"data/results/${{profile}}/{e}" for e in PARAMS["experiments"]}
    for name, stage in dvc.items():
        cmd = stage["do"]["cmd"] if "do" in stage else stage["cmd"]
        assert cmd.startswith("papermill notebooks/") and "-p profile ${profile}" in cmd
        nb = cmd.split()[1]
        assert (ROOT / nb).exists(), nb
    assert PARAMS["profile"] == "quick"  # the embedded default


def test_chosen_lrs_reads_only_the_current_configurations(tmp_path, monkeypatch):
    """A results folder persists, so lrs.json keeps the choices of earlier settings; a
    notebook reading the choices sees only those of this profile's configurations."""
    import dataclasses
    import json

    from lib.config import expand_runs, experiment_spec, results_dir
    from lib.results import chosen_lrs, lr_key
    monkeypatch.setenv("COMPANION_WORKDIR", str(tmp_path))
    runs = expand_runs(experiment_spec("A-fig5", "quick"))
    stale = dataclasses.replace(runs[0], train={**runs[0].train, "warmup": 12345})
    entries = {lr_key(r): {"lr": 0.01, "labels": r.labels} for r in runs}
    entries[lr_key(stale)] = {"lr": 1.0, "labels": runs[0].labels}
    out = results_dir("quick", "A-fig5")
    out.mkdir(parents=True)
    (out / "lrs.json").write_text(json.dumps(entries))
    chosen = chosen_lrs("A-fig5", "quick")
    assert lr_key(stale) not in chosen and set(chosen) == {lr_key(r) for r in runs}
    assert len(chosen) == len(runs) // experiment_spec("A-fig5", "quick")["seeds"]


def test_chosen_lrs_falls_back_to_the_earlier_trial_rule_only_when_asked(tmp_path, monkeypatch):
    """Runs trained before the trial rule entered the key keep their choices under the old
    key: a notebook describing those runs can still show them, marked, while the sweep (which
    asks for the current rule only) tries anew."""
    import json

    from lib.config import expand_runs, experiment_spec, results_dir
    from lib.results import chosen_lrs, lr_key
    monkeypatch.setenv("COMPANION_WORKDIR", str(tmp_path))
    runs = expand_runs(experiment_spec("A-fig5", "quick"))
    old_key = lambda r: json.dumps({k: v for k, v in json.loads(lr_key(r)).items() if k != "trials"}, sort_keys=True)
    entries = {old_key(r): {"lr": 0.1, "labels": r.labels} for r in runs}
    entries[lr_key(runs[0])] = {"lr": 0.01, "labels": runs[0].labels}  # one configuration tried anew
    out = results_dir("quick", "A-fig5")
    out.mkdir(parents=True)
    (out / "lrs.json").write_text(json.dumps(entries))
    assert set(chosen_lrs("A-fig5", "quick")) == {lr_key(runs[0])}
    both = chosen_lrs("A-fig5", "quick", earlier_rule=True)
    assert both[lr_key(runs[0])] == {"lr": 0.01, "labels": runs[0].labels}
    earlier = [v for k, v in both.items() if k != lr_key(runs[0])]
    assert earlier and all(v["lr"] == 0.1 and v["trial rule"] == "earlier" for v in earlier)
