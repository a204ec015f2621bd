"""A sweep split over processes (torchrun's model, here two gloo workers on the CPU):
every run trains exactly once, in one of the processes, with the numbers it gets in a
single process, and a second call trains nothing."""
import json
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from lib.config import deep_merge, expand_runs, experiment_spec
from lib import results
from lib.sweeps import runner

SMALL = {"grid": {"arch": ["TF-TF", "SSM-TF"], "d_model": [4, 8]}, "seeds": 2, "train": {"steps": 20},
         "eval": {"n": 40}, "lr": {"grid": [3e-3, 1e-2], "trial_steps": 10, "repeats": 1}}


def _runs():
    return expand_runs(deep_merge(experiment_spec("A-fig4", "quick"), SMALL))


def _worker(rank: int, size: int, tmp: str, out: str, store: str):
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{tmp}/{store}", rank=rank, world_size=size)
    try:
        left = runner.train_runs([(r, Path(out)) for r in _runs()], "cpu",
                                 f"{tmp}/eval", progress=False)
        assert left == 0
    finally:
        dist.destroy_process_group()


def _records(out):
    return {p.stem: json.loads(p.read_text()) for p in (out / "runs").glob("*.json")}


def test_two_processes_split_a_sweep_and_match_one(tmp_path):
    runs = _runs()
    two, one = tmp_path / "two", tmp_path / "one"
    mp.spawn(_worker, args=(2, str(tmp_path), str(two), "pg1"), nprocs=2)
    recs = _records(two)
    assert sorted(recs) == sorted(r.id for r in runs)  # every run, once
    assert {results.read_machine(two, r)["rank"] for r in recs.values()} == {0, 1}  # both processes trained some
    assert len(list((two / "machine").glob("*.json"))) == len(runs)  # each run's sidecar, from either process
    assert json.loads((two / "lrs.json").read_text()).keys() == {runner.lr_key(r) for r in runs}

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        runner.train_runs([(r, one) for r in runs], "cpu", tmp_path / "eval", progress=False)
    finally:
        torch.set_num_threads(threads)
    for rid, rec in _records(one).items():  # the same learning rates and numbers as one process
        assert recs[rid]["lr"] == rec["lr"]
        assert abs(recs[rid]["final"]["loss"] - rec["final"]["loss"]) < 1e-5

    before = {p.name: p.stat().st_mtime_ns for p in (two / "runs").glob("*.json")}
    mp.spawn(_worker, args=(2, str(tmp_path), str(two), "pg2"), nprocs=2)  # nothing left to train
    assert {p.name: p.stat().st_mtime_ns for p in (two / "runs").glob("*.json")} == before


def test_share_balances_work_and_covers_every_ensemble():
    class E(list):
        pass

    class M:
        def __init__(self, c):
            self.c, self.cfg = c, type("C", (), {"steps": 1})()

        def cost(self):
            return self.c

    ensembles = [E([M(c)]) for c in (9, 7, 5, 3, 2, 1)]
    parts = [runner.share(ensembles, r, 2) for r in range(2)]
    assert sorted(id(e) for p in parts for e in p) == sorted(id(e) for e in ensembles)
    loads = [sum(e[0].c for e in p) for p in parts]
    assert abs(loads[0] - loads[1]) <= 1
