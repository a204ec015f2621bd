"""Paper B's speed benchmark runs end to end on the CPU (tiny model): the HF Trainer
baseline and our three paths all train, and the JSON holds what the GPU run reports."""
import json
import math

import pytest

pytest.importorskip("accelerate")  # transformers' Trainer needs it


def test_benchmark_b_runs_on_cpu(tmp_path):
    from lib.bench.benchmark_b import main

    out = tmp_path / "bench.json"
    main(["--device", "cpu", "--allow-cpu", "--families", "transformer", "--steps", "2", "--batch", "2",
          "--json", str(out)])
    report = json.loads(out.read_text())
    rows = {r["path"]: r for r in report["rows"]}
    assert set(rows) == {"hf_trainer", "train_loop", "sweep", "sweep_buckets", "compiled", "graphed"}
    assert rows["sweep"]["members"] == 4 and rows["sweep"]["real"] > rows["train_loop"]["real"]
    # sorted batches cut to their longest: less padding than the same runs padded to one length
    assert rows["sweep_buckets"]["pad_frac"] < rows["sweep"]["pad_frac"]
    for r in rows.values():
        assert r["family"] == "transformer"
        assert math.isfinite(r["final_loss"]) and 0 < r["tokens_per_s"] <= r["padded_tokens_per_s"]
        assert 0 <= r["pad_frac"] < 1 and r["speedup_vs_hf"] > 0
    assert rows["hf_trainer"]["speedup_vs_hf"] == 1.0
    assert report["settings"]["batch"] == 2 and report["commit"]
    assert all("peak_reserved_gb" in r for r in rows.values())  # None on the CPU
    assert [p.name for p in tmp_path.iterdir()] == ["bench.json"]  # rewritten whole after every path


def test_packed_mamba_trains_as_unpacked(tmp_path):
    """Two examples a row (`packed`) train a Mamba exactly as one a row (`graphed`): the
    same examples, the same losses after the same steps, up to float rounding."""
    from lib.bench.benchmark_b import main

    rows = {r["path"]: r for r in main(["--device", "cpu", "--allow-cpu", "--families", "mamba",
                                        "--paths", "graphed,packed", "--steps", "2", "--batch", "5"])}
    assert rows["packed"]["real"] == rows["graphed"]["real"]
    assert rows["packed"]["final_loss"] == pytest.approx(rows["graphed"]["final_loss"], rel=1e-5)
    assert "two examples a row" in rows["packed"]["note"]


def test_sweep_path_packs_runs_as_the_sweeps_do():
    """`sweep` trains a family whose layers batch over members as one ensemble, and one
    whose layers do not (the two-stream blocks) as separate runs, as lib.sweeps packs them."""
    from lib.bench.benchmark_b import main

    rows = main(["--device", "cpu", "--allow-cpu", "--families", "transformer,hybrid2s", "--paths",
                 "train_loop,sweep", "--steps", "1", "--batch", "2", "--members", "2"])
    by = {(r["family"], r["path"]): r for r in rows}
    assert by["transformer", "sweep"]["one_ensemble"] and not by["hybrid2s", "sweep"]["one_ensemble"]
    for family in ("transformer", "hybrid2s"):  # member 0 is the one-model run: same seed, data, loss
        assert by[family, "sweep"]["final_loss"] == pytest.approx(by[family, "train_loop"]["final_loss"], rel=1e-4)
        assert by[family, "sweep"]["real"] > by[family, "train_loop"]["real"]


def test_isolated_paths_measure_what_the_shared_process_does():
    """`--isolate` runs each (family, path) in its own process: the same training (same
    tokens, same loss after the same steps) as in one shared process, and a path whose
    process fails is one error row, not a crash of the benchmark."""
    import argparse

    from lib.bench.benchmark_b import main, run_isolated

    settings = ["--device", "cpu", "--allow-cpu", "--families", "transformer", "--paths", "train_loop,sweep",
                "--steps", "1", "--batch", "2", "--members", "2"]
    shared = {r["path"]: r for r in main(settings)}
    isolated = {r["path"]: r for r in main(settings + ["--isolate"])}
    assert set(isolated) == set(shared) == {"train_loop", "sweep"}
    for path, r in isolated.items():
        assert r["family"] == "transformer" and r["real"] == shared[path]["real"]
        assert r["final_loss"] == pytest.approx(shared[path]["final_loss"], rel=1e-5)

    args = argparse.Namespace(device="cpu", steps=1, warmup=1, batch=2, d_model=None, heads=None, repeats=None,
                              depth=1.0, members=1, no_compile=False, allow_cpu=True, path_timeout=300)
    row, error = run_isolated("no_such_family", "train_loop", args)
    assert row is None and "exited with" in error
    args.path_timeout = 0.01  # killed long before it could finish: an error row, no hang
    row, error = run_isolated("transformer", "train_loop", args)
    assert row is None and "ran past --path-timeout" in error
