"""Run experiments' runs, one JSON per finished run; a rerun skips what is done.

    data/results/<profile>/<experiment>/runs/<run id>.json   one per run: what it learnt
    data/results/<profile>/<experiment>/machine/<run id>.json where and how fast it trained
    data/results/<profile>/<experiment>/lrs.json             learning rates chosen per configuration
    data/results/<profile>/<experiment>/results.parquet      one row per run
    data/results/<profile>/<experiment>/provenance.json      profile, device, commit, wall time
    data/results/<profile>/.locks/                           one sweep at a time per experiment

(the files' readers and writers: lib.results)

Runs train packed into ensembles (lib.training.train_ensemble): every pending run
whose model has the same shape, whatever its experiment, seed, learning rate, task
settings or attention window, steps together with the others. First the learning-rate
trials of every configuration that needs one, then the runs. Each ensemble's results
are written as soon as it finishes, so an interrupted sweep loses only the ensemble
in flight. A run's record and the results table hold only what the same settings give on
any machine; its device, commit, date and wall times go to machine/<run id>.json, which
.dvcignore leaves out of the train stages' output hashes (records written before hold
them inline; read_machine reads either). Every file is written atomically; one that does
not read back (cut short some other way) is set aside, renamed, and its content made
again. Two sweeps started on one results folder take turns: the second waits, then
trains what the first left.
"""
from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import json
import math
import multiprocessing
import os
import queue
import sys
import threading
import time
from collections import defaultdict
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, ThreadPoolExecutor, wait
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.distributed as dist
from tqdm import tqdm

from ..config import ConfigError, Run, data_dir as default_data_dir
from ..models import build_model
from ..models.ensemble import batches_members, stack_key
from ..models.registry import floats_per_token
from ..provenance import device_name, git_commit, provenance
from ..results import (atomic_write, chosen_lrs, lr_key, log_sweep, machine_path, read_json, read_machine, read_sweep_log,
                       results_table, write_json, write_snapshots)
from ..tasks import eval_set
from ..training import TrainConfig, resolve_device, train_ensemble, trial_loss
from ..training.final_tests import run_tests
from ..training.loop import lr_trials, pick_lr, trial_config
from ..training.streams import StreamCache


def _update_json(path: Path, entries: dict) -> None:
    """Add entries to a JSON mapping that several processes may write (lrs.json): the
    read-modify-write holds a lock, so no writer's entries are lost."""
    with _locked(_lock_path(path.parent, path.stem)):
        write_json(path, {**read_json(path), **entries})


class EnsemblesFailed(RuntimeError):
    """Some ensembles of a sweep raised (a GPU out of memory, say); every other finished run
    is recorded, and a rerun trains the failed ones again."""

    def __init__(self, failures: list[str]):
        self.failures = failures
        super().__init__(f"{len(failures)} ensemble(s) failed; the other finished runs are recorded and a "
                         "rerun trains the failed ones again:\n  " + "\n  ".join(failures))


def _finished(run: Run, out_dir: Path) -> bool:
    """Whether a run's record is written (and reads back)."""
    return bool(read_json(out_dir / "runs" / f"{run.id}.json"))


def _lock_path(out_dir: Path, what: str = "sweep") -> Path:
    """A results folder's lock files, beside the folders, in <profile>/.locks/: outside the
    folders DVC tracks."""
    return out_dir.parent / ".locks" / f"{out_dir.name}.{what}.lock"


@contextlib.contextmanager
def _locked(path: Path, waiting: str | None = None):
    """Hold an exclusive lock on `path`, saying `waiting` while another process holds it.
    flock: the kernel frees it when its process dies, even by SIGKILL."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if waiting:
                print(waiting, file=sys.stderr, flush=True)
            fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


@contextlib.contextmanager
def _sweep_lock(out_dirs):
    """One sweep at a time on a results folder: a second one started on it waits, then
    trains only what the first left. Under torchrun the first process holds the locks for
    all (the others wait for it at train_runs' barrier)."""
    with contextlib.ExitStack() as stack:
        if world()[0] == 0:
            for d in sorted({str(d) for d in out_dirs}):  # one order: two sweeps never wait on each other
                stack.enter_context(_locked(_lock_path(Path(d)),
                                            f"another sweep is training {d}; waiting for it to finish"))
        yield


def _downsample(xs: list[float], points: int = 100) -> list[float]:
    if len(xs) <= points:
        return [float(x) for x in xs]
    return [float(np.mean(c)) for c in np.array_split(np.asarray(xs), points)]


_PROBES: dict[str, object] = {}
_BUILD_LOCK = threading.Lock()


def _probe(run: Run, vocab_size: int, seq_len: int):
    """One model of a run's configuration (built once): its shape, size and parameter count."""
    key = json.dumps([run.model, vocab_size, seq_len], sort_keys=True)
    if key not in _PROBES:
        _PROBES[key] = build_model(run.model_config(), vocab_size, seq_len=seq_len, seed=0)
    return _PROBES[key]


class Member:
    """One model to train inside an ensemble: a run, or one learning-rate trial of a run's
    configuration. Its weights are built only when its ensemble trains."""

    def __init__(self, run: Run, lr: float, seed: int, train: dict, out_dir: Path, trial: bool = False):
        self.run, self.lr, self.seed, self.trial, self.out_dir = run, lr, seed, trial, out_dir
        self.task, self.eval_task = run.make_task(), run.make_eval_task()
        self.cfg = TrainConfig(**{**train, "lr": lr})
        self.seq_len = max(self.task.seq_len, self.eval_task.seq_len)
        self.probe = _probe(run, self.task.vocab_size, self.seq_len)

    def build(self):
        with _BUILD_LOCK:  # build_model seeds torch's global generator
            return build_model(self.run.model_config(), self.task.vocab_size, seq_len=self.seq_len,
                               seed=self.seed)

    def pack_key(self) -> tuple:
        """Members with equal keys train as one ensemble. Layers that an ensemble can only
        loop over (vmap=False in their registration) gain nothing from it: they train alone."""
        if not batches_members(self.probe.cfg.layers):
            return ("alone", id(self))
        train = {k: v for k, v in vars(self.cfg).items() if k != "lr"}
        return (stack_key(self.probe), json.dumps(train, sort_keys=True, default=str), self.task.seq_len,
                self.eval_task.seq_len if not self.trial else 0, self.run.eval["n"] if not self.trial else 0)

    def max_members(self) -> int:
        """mamba-ssm's scan launches one CUDA block row per channel, at most 65535 of them."""
        cfg = self.probe.cfg
        return 65535 // (cfg.expand * cfg.d_model) if "mamba" in cfg.layers else 1 << 30

    def cost(self) -> float:
        """Rough memory of one member's training step, in floats (activations + optimizer):
        each layer's registered estimate, or for a layer without one, measured on the probe."""
        cfg, L = self.probe.cfg, self.task.seq_len
        per_token = sum(self._layer_floats(i, L) for i in range(len(cfg.layers))) + 3 * self.task.vocab_size
        return self.cfg.batch_size * L * per_token + 4 * self.probe.num_params()

    def _layer_floats(self, i: int, seq_len: int) -> float:
        cache = self.probe.__dict__.setdefault("_floats_per_token", {})  # measured once per probe
        if (i, seq_len) not in cache:
            with _BUILD_LOCK:  # probes are shared by the threads that pack ensembles
                cache[i, seq_len] = floats_per_token(self.probe.cfg.layers[i], self.probe.cfg, seq_len,
                                                     self.probe.layers[i])
        return cache[i, seq_len]


def pack(members: list[Member], budget: float, max_members: int) -> list[list[Member]]:
    """Group members by pack key, then cut each group to fit the memory budget."""
    groups = defaultdict(list)
    for m in members:
        groups[m.pack_key()].append(m)
    out = []
    for group in groups.values():
        cap = max(1, min(max_members, int(budget // group[0].cost()), group[0].max_members()))
        out += [group[i:i + cap] for i in range(0, len(group), cap)]
    return out


CONCURRENT = 16  # ensembles training at once on one GPU, unless --concurrent / $COMPANION_CONCURRENT says


def concurrent_ensembles() -> int:
    """Ensembles training at once on one GPU (`python -m lib.sweeps --concurrent N` sets it)."""
    return int(os.environ.get("COMPANION_CONCURRENT", CONCURRENT))


def prepare_cuda() -> None:
    """Concurrent ensembles' kernels overlap only across separate hardware queues (CUDA's
    default is 8). CUDA reads the setting when it starts, so a sweep sets it before any
    ensemble trains; a value the user set stays."""
    os.environ.setdefault("CUDA_DEVICE_MAX_CONNECTIONS", "32")


def _memory(device) -> float:
    """Floats of activations this process's ensembles may hold at once on a GPU: ~24 GB
    shared by every process on it (CUDA graphs hold their own memory besides)."""
    # torchrun may start several processes per GPU (LOCAL_WORLD_SIZE of them on this host)
    sharing = math.ceil(int(os.environ.get("LOCAL_WORLD_SIZE", 1)) / max(1, torch.cuda.device_count()))
    return 6e9 / sharing


def memory_budget(device) -> tuple[float, int]:
    """Floats of activations per ensemble and most members per ensemble, per device (on a
    GPU, an equal share of _memory for each of the ensembles that train at once)."""
    if device.type != "cuda":
        return 1.5e8, 64
    return _memory(device) / concurrent_ensembles(), 4096


def admits(running: list[float], new: float, total: float) -> bool:
    """Whether an ensemble of memory cost `new` may start beside `running` ones within
    `total`. One alone always may: a run too large for the budget (a paper-scale model,
    packed alone) then trains with fewer beside it instead of running the GPU out of memory."""
    return not running or sum(running) + new <= total


def checkpoints_dir() -> str | None:
    """A folder where ensembles save their state every ~500 steps, so that a sweep killed
    mid-ensemble resumes it (on the same machine): `--checkpoints DIR` or
    $COMPANION_CHECKPOINTS; unset, nothing is saved."""
    return os.environ.get("COMPANION_CHECKPOINTS") or None
CHECKPOINT_EVERY = 500  # steps, rounded to the data block


def _train(members: list[Member], device, data_dir: Path, streams: StreamCache) -> list[dict]:
    evals = [None if m.trial else eval_set(m.eval_task, m.run.eval["n"], m.run.eval["seed"], data_dir)
             for m in members]
    cfg, ckpt = members[0].cfg, _checkpoint(members)
    if ckpt is not None:
        cfg = dataclasses.replace(cfg, checkpoint_every=cfg.data_block * max(1, CHECKPOINT_EVERY // cfg.data_block))
    models = [m.build() for m in members]
    out = train_ensemble(models, [m.task for m in members], cfg, seeds=[m.seed for m in members],
                         lrs=[m.lr for m in members], eval_batches=evals, device=device, progress=False,
                         streams=streams, checkpoint=ckpt)
    for m, model, res in zip(members, models, out):  # tests of the trained weights (paper B)
        if not m.trial:
            res["tests"] = run_tests(model, m.task, m.run.tests, data_dir, device)
    return out


def _checkpoint(members: list[Member]) -> Path | None:
    """Where an ensemble's training state is saved (with COMPANION_CHECKPOINTS), named by
    its members in order: only the same ensemble resumes from it."""
    folder = checkpoints_dir()
    if not folder:
        return None
    ident = json.dumps([[str(m.out_dir), m.run.id, m.trial, m.lr, m.seed] for m in members])
    return Path(folder) / f"{hashlib.sha256(ident.encode()).hexdigest()[:16]}.pt"


def _finish(on_done, ens: list[Member], results: list[dict]) -> None:
    """Record an ensemble's results, then drop its checkpoint: a crash between the end of
    training and the record (a CUDA error surfacing late) resumes near the end, not at 0."""
    on_done(ens, results)
    if (ckpt := _checkpoint(ens)) is not None:
        ckpt.unlink(missing_ok=True)


def _announce(ensembles: list[list[Member]]) -> StreamCache:
    """One stream cache for a sweep: members of any ensemble that read the same stream
    (same task and seed) share its blocks, drawn once."""
    cache = StreamCache()
    for ens in ensembles:
        cfg = ens[0].cfg
        cache.announce([m.task for m in ens], [m.seed for m in ens], cfg.batch_size, cfg.data_block, cfg.steps)
    return cache


# -- several processes (torchrun): each trains its share of a sweep's ensembles ----------

def world() -> tuple[int, int]:
    """(rank, number of processes) of a torch.distributed job, else (0, 1)."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _gather(obj) -> list:
    """Every process's `obj`, on every process."""
    if world()[1] == 1:
        return [obj]
    out = [None] * world()[1]
    dist.all_gather_object(out, obj)
    return out


def _barrier() -> None:
    if world()[1] > 1:
        dist.barrier()


def _memory_cost(ens: list[Member]) -> float:
    return len(ens) * ens[0].cost()


def _work(ens: list[Member]) -> float:
    return _memory_cost(ens) * ens[0].cfg.steps


def share(ensembles: list[list[Member]], rank: int, size: int) -> list[list[Member]]:
    """This process's ensembles: longest first, each to the process with the least work so
    far. Every process computes the same split from the same list, so none is trained twice."""
    load, mine = [0.0] * size, []
    for ens in sorted(ensembles, key=lambda e: -_work(e)):
        r = min(range(size), key=lambda i: (load[i], i))
        load[r] += _work(ens)
        if r == rank:
            mine.append(ens)
    return mine


class _ProgressLines:
    """`[runs] 12/56 done (4 x A-fig4 SSM-TF d=8), 3m20s elapsed` on stderr as ensembles finish."""

    def __init__(self, desc: str, total: int, enabled: bool):
        self.desc, self.total, self.enabled, self.finished, self.t0 = desc, total, enabled, 0, time.time()

    def done(self, ens: list[Member]) -> None:
        self.finished += len(ens)
        if self.enabled:
            elapsed = int(time.time() - self.t0)
            print(f"[{self.desc}] {self.finished}/{self.total} done ({_describe(ens)}), "
                  f"{elapsed // 60}m{elapsed % 60:02d}s elapsed", file=sys.stderr, flush=True)


def _describe(ens: list[Member]) -> str:
    """`4 x A-fig4 SSM-TF d=8`: an ensemble in one line."""
    m = ens[0]
    return f"{len(ens)} x {m.run.experiment} {'-'.join(m.probe.cfg.layers)} d={m.probe.cfg.d_model}"


def train_all(ensembles: list[list[Member]], device, data_dir: Path, on_done, *, desc: str, progress: bool,
              deadline: float | None = None, concurrent: int | None = None) -> list[str]:
    """Train ensembles (this process's share of them under torchrun), calling
    on_done(members, results) in this thread as each finishes. An ensemble that raises
    (a GPU out of memory, say) is reported and skipped: the others train on and are recorded,
    and the returned list names the failed ones (empty when all finished). On a GPU several train at
    once, each from its own thread on its own CUDA stream: a small ensemble's step is a
    chain of tiny kernels, so one alone leaves the GPU idle."""
    for m in {(m.eval_task.key(), m.run.eval["n"], m.run.eval["seed"]): m
              for ens in ensembles for m in ens if not m.trial}.values():
        eval_set(m.eval_task, m.run.eval["n"], m.run.eval["seed"], data_dir)  # written once, before threads
    order = share(ensembles, *world())  # longest first; all of them in a single process
    streams = _announce(order)
    # A bar where there is a terminal; elsewhere (a notebook run by papermill under `dvc repro`,
    # a log file) one line per finished ensemble, which papermill --log-output passes on
    lines = progress and not sys.stderr.isatty()
    bar = tqdm(total=len(order), desc=desc, disable=not progress or lines)
    count = _ProgressLines(desc, sum(len(ens) for ens in order), enabled=lines)
    failures = []

    def settle(ens, done: Future):  # record a finished ensemble; a failed one is reported, not fatal
        try:
            results = done.result()
        except Exception as e:  # noqa: BLE001 - any error of one ensemble: the others' runs still count
            failures.append(f"{_describe(ens)}: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}")
            print(f"[{desc}] failed: {failures[-1]}", file=sys.stderr, flush=True)
        else:
            _finish(on_done, ens, results)
        bar.update(1)
        count.done(ens)

    if device.type != "cuda":
        for ens, done in _train_on_cpu(order, data_dir, streams, deadline):
            settle(ens, done)
        bar.close()
        return failures

    concurrent = min(concurrent or concurrent_ensembles(), 32)
    # Each training thread owns one stream for its ensemble's whole life (data, capture,
    # replays). Made here, in one go: the pool torch.cuda.Stream() draws from holds 32.
    free = queue.SimpleQueue()
    for _ in range(concurrent):
        free.put(torch.cuda.Stream(device))

    def on_stream(ens):
        stream = free.get()
        try:
            with torch.cuda.stream(stream):
                t0 = time.time()
                out = _train(ens, device, data_dir, streams)
                stream.synchronize()
        finally:
            free.put(stream)
        if progress:
            m = ens[0]
            tqdm.write(f"{desc}: {len(ens)} x {m.run.experiment} {'-'.join(m.probe.cfg.layers)} "
                       f"d={m.probe.cfg.d_model}, {m.cfg.steps} steps in {time.time() - t0:.0f} s")
        return out

    total = _memory(device) * concurrent / concurrent_ensembles()  # as much as `concurrent` full ensembles
    with ThreadPoolExecutor(max_workers=concurrent) as pool:
        todo, running = list(order), {}
        while todo or running:
            while todo and len(running) < concurrent and (deadline is None or time.time() < deadline) \
                    and admits([_memory_cost(e) for e in running.values()], _memory_cost(todo[0]), total):
                ens = todo.pop(0)
                running[pool.submit(on_stream, ens)] = ens
            if not running:
                break
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for f in done:
                settle(running.pop(f), f)
    bar.close()
    return failures


def cpu_workers() -> int:
    """Processes that train ensembles at once on a CPU (`python -m lib.sweeps --cpu-workers N`
    sets it; default: one per core this process may use, shared among torchrun's processes)."""
    if os.environ.get("COMPANION_CPU_WORKERS"):
        return int(os.environ["COMPANION_CPU_WORKERS"])
    return max(1, len(os.sched_getaffinity(0)) // int(os.environ.get("LOCAL_WORLD_SIZE", 1)))


@contextlib.contextmanager
def _one_thread():
    """A micro model's ops are too small for torch's intra-op threads: one thread per
    ensemble trains as fast as two (measured, docs/benchmarks.md), so a CPU's cores go to
    ensembles side by side instead. Every CPU ensemble trains on one thread, whatever the
    machine's core count, so the same seed gives the same numbers everywhere."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _cpu_worker(ens: list[Member], data_dir: Path) -> list[dict]:
    """One ensemble in a worker process (its own stream cache: the blocks are the same)."""
    torch.set_num_threads(1)
    return _train(ens, torch.device("cpu"), data_dir, _announce([ens]))


def _train_on_cpu(order: list[list[Member]], data_dir: Path, streams: StreamCache, deadline: float | None):
    """Yield (ensemble, future of its results) as ensembles finish: in this process when one worker is
    asked for or there is one ensemble, else in a pool of cpu_workers() processes."""
    workers = min(cpu_workers(), len(order))
    if workers <= 1:
        with _one_thread():
            for ens in order:
                if deadline is not None and time.time() > deadline:
                    return
                done = Future()
                try:
                    done.set_result(_train(ens, torch.device("cpu"), data_dir, streams))
                except Exception as e:  # noqa: BLE001 - the caller reports it
                    done.set_exception(e)
                yield ens, done
        return
    # spawn, not fork: a forked child of a process whose OpenMP threads have started can hang
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        todo, running = list(order), {}
        while todo or running:
            while todo and len(running) < workers and (deadline is None or time.time() < deadline):
                ens = todo.pop(0)
                running[pool.submit(_cpu_worker, ens, data_dir)] = ens
            if not running:
                return
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for f in done:
                yield running.pop(f), f


def _needs_trials(run: Run, lrs: dict) -> bool:
    """Whether a run's learning rate is still to be chosen by trials: its grid holds more
    than one rate and its folder's lrs.json (`lrs`) has no choice for its configuration."""
    return len(run.lr.get("grid") or []) > 1 and lr_key(run) not in lrs


def choose_learning_rates(items: list[tuple[Run, Path]], device, data_dir: Path, progress: bool,
                          deadline: float | None = None) -> list[str]:
    """Paper A's auto-lr (spec A.4) for every configuration without a cached choice, the
    trials of all configurations packed into ensembles (lr_trials, trial_config, pick_lr).
    Returns the trial ensembles that failed (their configurations stay without a choice)."""
    todo = {}
    for run, out in items:
        if _needs_trials(run, read_json(out / "lrs.json")):
            todo[(str(out), lr_key(run))] = (run, out)
    if not todo:
        return []
    members = []
    for run, out in todo.values():
        trial = dataclasses.asdict(trial_config(TrainConfig(**run.train), int(run.lr["trial_steps"])))
        for lr, seed in lr_trials(run.lr["grid"], int(run.lr.get("repeats", 1))):
            members.append(Member(run, lr, seed, trial, out, trial=True))
    losses = defaultdict(lambda: defaultdict(list))
    several = world()[1] > 1

    def record_complete(losses, write: bool) -> dict:
        """Choose the learning rate of every configuration whose trials have all finished."""
        chosen = {}
        for key in list(losses):
            run, out = todo[key]
            if sum(len(v) for v in losses[key].values()) == len(run.lr["grid"]) * int(run.lr.get("repeats", 1)):
                lr, mean = pick_lr(losses.pop(key))
                chosen[key] = {"lr": lr, "trial_losses": mean, "labels": run.labels}
                if write:
                    _update_json(out / "lrs.json", {key[1]: chosen[key]})
        return chosen

    def on_done(ens, results):
        for m, res in zip(ens, results):
            losses[(str(m.out_dir), lr_key(m.run))][m.lr].append(trial_loss(res))
        if not several:  # recorded as they complete, so a sweep cut short keeps them
            record_complete(losses, write=True)

    failures = train_all(pack(members, *memory_budget(device)), device, data_dir, on_done, desc="lr trials",
                         progress=progress, deadline=deadline)
    if several:  # a configuration's trials may have trained in several processes: pool them
        merged = defaultdict(lambda: defaultdict(list))
        for part in _gather({k: dict(v) for k, v in losses.items()}):
            for key, per_lr in part.items():
                for lr, xs in per_lr.items():
                    merged[key][lr] += xs
        chosen = record_complete(merged, write=world()[0] == 0)
        _barrier()
        for (out, key), entry in chosen.items():  # without a shared file system, each keeps a copy
            if key not in read_json(Path(out) / "lrs.json"):
                _update_json(Path(out) / "lrs.json", {key: entry})
    return failures


def learning_rate(run: Run, out_dir: Path) -> float:
    grid = run.lr.get("grid") or [run.train.get("lr", 1e-3)]
    return float(grid[0]) if len(grid) == 1 else float(read_json(out_dir / "lrs.json")[lr_key(run)]["lr"])


def record(m: Member, res: dict) -> dict:
    """What a run learnt: the same settings give the same record on any machine."""
    return {"id": m.run.id, "experiment": m.run.experiment, "labels": m.run.labels, "seed": m.run.seed,
            "params": m.probe.num_params(), "params_non_embedding": m.probe.num_params(non_embedding=True),
            "lr": m.lr, "final": res["final"], "steps": res["steps"], "early_stopped": res["early_stopped"],
            "plateau_at": res.get("plateau_at"), "eval_curve": res["history"]["eval"],
            "train_loss": _downsample(res["history"]["train_loss"]), "tests": res.get("tests", {}),
            "snapshot_steps": {f: snap["step"] for f, snap in (res.get("snapshots") or {}).items()},
            "run": {k: v for k, v in m.run.__dict__.items() if k != "labels"}}


def machine_record(res: dict, device) -> dict:
    """Where, when and how fast a run trained (MACHINE_FIELDS), for its sidecar."""
    return {"wall_s": res["wall_s"], "ensemble_wall_s": res["ensemble_wall_s"], "ensemble_members": res["members"],
            "device": device_name(device), "rank": world()[0], "commit": git_commit(),
            "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


def train_runs(items: list[tuple[Run, Path]], device="auto", data_dir: str | Path | None = None,
               progress: bool = True, time_budget_s: float | None = None) -> int:
    """Train every (run, results folder) not finished yet. With `time_budget_s`, start no
    new ensemble after that many seconds (a later call resumes). Returns runs left to do;
    raises EnsemblesFailed, after recording every run that finished, if any ensemble failed."""
    device, data_dir = check_arguments(device, time_budget_s), Path(data_dir or default_data_dir())
    deadline = None if time_budget_s is None else time.time() + time_budget_s
    _barrier()  # every process lists the same finished runs
    pending = [(r, o) for r, o in items if not _finished(r, o)]
    failures = choose_learning_rates(pending, device, data_dir, progress, deadline)
    # a time budget may have cut the trials short
    pending = [(r, o) for r, o in pending if not _needs_trials(r, read_json(o / "lrs.json"))]
    members = [Member(r, learning_rate(r, o), r.seed, r.train, o) for r, o in pending]

    written = []

    def on_done(ens, results):
        for m, res in zip(ens, results):
            path = m.out_dir / "runs" / f"{m.run.id}.json"
            if res.get("snapshots"):  # before the record: a record means the run is complete
                write_snapshots(path.with_suffix(".npz"), res["snapshots"])
            written.append((str(path), record(m, res), machine_record(res, device)))
            write_json(machine_path(m.out_dir, m.run.id), written[-1][2])
            write_json(path, written[-1][1])

    failures += train_all(pack(members, *memory_budget(device)), device, data_dir, on_done, desc="runs",
                          progress=progress, deadline=deadline)
    if world()[1] > 1:  # every finished run reaches the first process, shared file system or not
        parts = _gather(written)
        if world()[0] == 0:
            for path, rec, machine in (x for part in parts for x in part):
                if not Path(path).exists():
                    write_json(machine_path(Path(path).parents[1], rec["id"]), machine)
                    write_json(Path(path), rec)
        _barrier()
        failures = [f for part in _gather(failures) for f in part]  # every process raises alike
    if failures:
        raise EnsemblesFailed(failures)
    return sum(not _finished(r, o) for r, o in items)


def check_arguments(device, time_budget_s: float | None = None) -> torch.device:
    """A sweep's device (resolved) and time budget, refused before any work if unusable."""
    if time_budget_s is not None and not time_budget_s > 0:
        raise ConfigError(f"the time budget is {time_budget_s} s; it must be a positive number of seconds")
    try:
        resolved = resolve_device(device)
    except RuntimeError as e:  # a name torch does not know
        raise ConfigError(f"device {device!r}: {e}; use auto, cpu or cuda") from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {device!r}: this machine has no CUDA GPU that torch {torch.__version__} "
                          "can use; use cpu or auto")
    return resolved


def run_sweep(runs: list[Run], out_dir: str | Path, *, profile: str, data_dir: str | Path | None = None,
              device="auto", progress: bool = True) -> pd.DataFrame:
    """Train one experiment's runs not already finished under out_dir; return the table of all."""
    out_dir = Path(out_dir)
    check_arguments(device)
    with _sweep_lock([out_dir]):
        t0 = time.time()
        done_before = sum(_finished(r, out_dir) for r in runs)
        failed = None
        try:
            train_runs([(r, out_dir) for r in runs], device, data_dir, progress)
        except EnsemblesFailed as e:  # the table still holds every run that finished
            failed = e
        table = collect(runs, out_dir, profile=profile, device=device, wall_s=time.time() - t0,
                        resumed=done_before)
        if failed:
            raise failed
        return table


def collect(runs: list[Run], out_dir: Path, *, profile: str, device, wall_s: float, resumed: int) -> pd.DataFrame:
    """results.parquet and provenance.json of one experiment from its finished runs."""
    records = [rec for r in runs if (rec := read_json(out_dir / "runs" / f"{r.id}.json"))]
    table = results_table(records)
    atomic_write(out_dir / "results.parquet", lambda tmp: table.to_parquet(tmp, index=False))
    machine = [read_machine(out_dir, r) for r in records]
    prov = provenance(profile=profile, device=resolve_device(device), wall_s=wall_s)
    commits = {r.get("commit") for r in machine}
    # the sweeps behind this table: not an earlier one whose runs a change of protocol has
    # since replaced (it trained runs, none from its commit left); learning-rate trials count
    sweeps = [s for s in read_sweep_log(out_dir.parent) if out_dir.name in s["experiments"]
              and (not s.get("runs_trained") or s.get("commit") in commits or not commits)]
    # where the runs trained (the sweeps' machines, else each run's GPU), which may not be
    # where this table is written
    devices = sorted({s["device"] for s in sweeps} or {r["device"] for r in machine if "device" in r})
    if devices:
        prov["device"] = ", ".join(devices)
    prov.update(runs=len(runs), runs_finished=len(records), resumed=resumed,
                train_wall_s=float(sum(r.get("wall_s", 0.0) for r in machine)),
                run_commits=sorted({r.get("commit", "unrecorded") for r in machine}))
    if sweeps:  # experiments train together: the wall time of the sweeps that trained this one
        prov["sweep_wall_s"] = float(sum(s["wall_s"] for s in sweeps))
        prov["sweeps"] = len(sweeps)
    write_json(out_dir / "provenance.json", prov)
    return table


def _machine(device) -> str:
    """The device, with the number of GPUs a torchrun sweep spread over ("4x NVIDIA H100")."""
    gpus = min(world()[1], torch.cuda.device_count()) if device.type == "cuda" else 1
    return f"{gpus}x {device_name(device)}" if gpus > 1 else device_name(device)


def plan_runs(names: list[str], profile: str, only: dict[str, list[str]] | None = None) -> pd.DataFrame:
    """What a sweep of these experiments (and `only` selection) would train, without training:
    one row per experiment and configuration (its grid labels, seeds pooled) with the runs
    selected, finished and left, and whether its learning rate is still to be chosen by
    trials (only where runs are left: finished runs keep the rate they trained with). For
    planning a GPU chunk: `python -m lib.sweeps ... --plan`."""
    from ..config import expand_runs, experiment_spec, results_dir, select_runs

    every = {n: expand_runs(experiment_spec(n, profile)) for n in dict.fromkeys(names)}
    pool = [r for runs in every.values() for r in runs]
    rows = {}
    for n in every:
        runs = select_runs(every[n], only, within=pool)
        out = results_dir(profile, n)
        lrs = read_json(out / "lrs.json")
        for r in runs:
            key = (n, json.dumps(r.labels, sort_keys=True))
            row = rows.setdefault(key, {"experiment": n, **r.labels, "selected": 0, "finished": 0,
                                        "lr trials": _needs_trials(r, lrs)})
            row["selected"] += 1
            row["finished"] += _finished(r, out)
    table = pd.DataFrame(list(rows.values()))
    if not table.empty:
        table.insert(table.columns.get_loc("finished") + 1, "left", table["selected"] - table["finished"])
        table["lr trials"] &= table["left"] > 0  # trials run only for runs still to train
    return table


def prune_stale(names: list[str], profile: str) -> dict[str, int]:
    """Delete from these experiments' results folders what no current configuration reads:
    run records, their machine sidecars and snapshots whose run id the settings no longer
    make, and lrs.json entries of earlier settings or trial rules. Results folders persist
    (a changed sweep loses no finished work), so after a change of settings they hold both;
    a committed DVC output with stale files hashes differently from a fresh run's. Returns
    the files removed per experiment (lrs.json entries counted as files)."""
    from ..config import expand_runs, experiment_spec, results_dir

    removed = {}
    for n in dict.fromkeys(names):
        ids = {r.id for r in expand_runs(experiment_spec(n, profile))}
        out = results_dir(profile, n)
        if not out.exists():
            removed[n] = 0
            continue
        with _sweep_lock([out]):  # never beside a sweep writing there
            stale = [f for folder in ("runs", "machine") for f in sorted((out / folder).glob("*"))
                     if f.is_file() and f.name.split(".")[0] not in ids]
            for f in stale:
                f.unlink()
            lrs, kept = read_json(out / "lrs.json"), chosen_lrs(n, profile)
            if len(kept) < len(lrs):
                write_json(out / "lrs.json", kept)
        removed[n] = len(stale) + len(lrs) - len(kept)
    return removed


def run_experiments(names: list[str], profile: str, *, device="auto", data_dir: str | Path | None = None,
                    progress: bool = True, time_budget_s: float | None = None,
                    only: dict[str, list[str]] | None = None) -> dict[str, pd.DataFrame]:
    """Train several experiments of experiments.yaml together (their runs share ensembles), then
    write each one's results table and provenance. Returns the tables of finished runs.
    With `only` ({label: values}, lib.config.select_runs) just those runs train; the tables
    hold every finished run.
    Under torchrun every process calls this; each trains its share (`share`), and the
    first writes the tables (the others return {})."""
    from ..config import expand_runs, experiment_spec, results_dir, select_runs

    prepare_cuda()
    names = list(dict.fromkeys(names))  # an experiment named twice trains once
    runs = {n: expand_runs(experiment_spec(n, profile)) for n in names}  # all validated before any work
    pool = [r for n in names for r in runs[n]]  # a value need exist in one of the experiments only
    chosen = {n: select_runs(runs[n], only, within=pool) for n in names}
    check_arguments(device, time_budget_s)
    dirs = {n: results_dir(profile, n) for n in names}
    with _sweep_lock(dirs.values()):
        t0 = time.time()
        done = {n: sum(_finished(r, dirs[n]) for r in runs[n]) for n in names}
        lrs_before = {n: len(read_json(dirs[n] / "lrs.json")) for n in names}

        def log(**extra):  # what this sweep trained, if anything, in <profile>/sweeps.jsonl
            now = {n: sum(_finished(r, dirs[n]) for r in runs[n]) for n in names}
            trained = sum(now.values()) - sum(done.values())
            lrs_chosen = sum(len(read_json(dirs[n] / "lrs.json")) - lrs_before[n] for n in names)
            if trained or lrs_chosen:
                log_sweep(dirs[names[0]].parent, {
                    "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                    "wall_s": round(time.time() - t0, 1), "device": _machine(resolve_device(device)),
                    "commit": git_commit(), "experiments": names, "runs_trained": trained,
                    "lrs_chosen": lrs_chosen, "runs_left": sum(len(runs[n]) for n in names) - sum(now.values()),
                    "concurrent": concurrent_ensembles(), "processes": world()[1], **extra})

        failed = None
        try:
            train_runs([(r, dirs[n]) for n in names for r in chosen[n]], device, data_dir, progress, time_budget_s)
        except EnsemblesFailed as e:  # the other runs finished: tables and log as usual, then the error
            failed = e
        except BaseException:  # ctrl-C, an error: what finished counts in the tables' wall time too
            if world()[0] == 0:
                log(interrupted=True)
            raise
        wall = time.time() - t0
        if world()[0] == 0:  # the first process writes the tables, provenance and log
            log(**({"failed_ensembles": len(failed.failures)} if failed else {}))
            tables = {n: collect(runs[n], dirs[n], profile=profile, device=device, wall_s=wall, resumed=done[n])
                      for n in names}
        if failed:
            raise failed
        return tables if world()[0] == 0 else {}
