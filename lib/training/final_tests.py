"""Tests of a trained model beyond its validation set, run by the sweep runner once a
run has trained and stored in its record under `tests`.

An experiment asks for them in experiments.yaml:

    tests:
      extrapolation: {lengths: [100, 200, 400], n: 2000}   # paper B: greedy exact match per length
      duplicates: {segments: [2, 3, 4, 10], n: 2000}       # paper B: error and preference per segment
      lengths: {lengths: [10, 15, ..., 190], n: 1000}      # paper A: token accuracy per example length
      in_distribution: {n: 1000}                           # paper A: token accuracy at the training task
      witness: {n: 1000}                                   # paper A: accuracy on Thm 3.7's witness pairs

Paper B's two greedy-decode the k response tokens (temperature 0), fixing the released
code's scoring bugs (spec B.4): extrapolation compares the k new tokens, not the whole
decoded sequence, and duplicates runs at L = 100 with one segment count at a time.
Paper A's `lengths` (Fig 8) scores single, unpacked decode-recall examples of each length
teacher-forced, as its training validation does. Paper A's `witness` (Thm 3.7) scores the
last position of n witness pairs (lib/tasks/witness.py, seed WITNESS_SEED whatever the run's
seed), in fp32, each member set as its own batch (lib/training/witness.py): a model whose
attention windows read less than the pairs' shared suffix must stay at or below 1/2.
"""
from __future__ import annotations

import dataclasses
import inspect
from pathlib import Path

import torch

from ..tasks import Task, TaskError, eval_set, make_task
from ..tasks.paper_a import DecodeRecall
from ..tasks.paper_b import NGramRetrieval
from ..tasks.witness import WITNESS_SEED, WITNESS_TASKS, witness_pairs
from .metrics import evaluate, greedy_decode, greedy_exact_match, response
from .witness import witness_eval

EVAL_SEED = 2  # the test sets' seed: never a validation set's (seed 1)
# The test sets are cached apart from the validation sets: data/eval is the data stage's
# output, so a train stage must not add files to it (.dvcignore leaves this folder out).
TEST_SETS = "tests"


def length_task(task: NGramRetrieval, length: int) -> NGramRetrieval:
    """The run's task (its format) at exactly `length` symbols."""
    return dataclasses.replace(task, min_len=int(length), max_len=int(length))


def duplicates_task(task: NGramRetrieval, segments: int, length: int = 100) -> Task:
    """The run's task with its query in each of `segments` segments of `length` symbols."""
    return make_task("ngram_duplicates", num_symbols=task.num_symbols, n=task.n, k=task.k,
                     prefix=task.prefix, segments=int(segments), length=int(length))


def extrapolation(model, task: Task, data_dir: Path, *, lengths: list[int], n: int = 2000,
                  device=None) -> dict[str, float]:
    """Greedy exact match of the k response tokens at each test length L (sequences of
    exactly L symbols, the run's format)."""
    return {str(L): greedy_exact_match(model, eval_set(length_task(task, L), n, EVAL_SEED, data_dir), task.k,
                                       device=device)
            for L in lengths}


def duplicates(model, task: Task, data_dir: Path, *, segments: list[int], n: int = 2000,
               length: int = 100, device=None) -> dict[str, dict]:
    """The query occurs in each of s segments, each time with another continuation. Per s:
    `preference[j]` = share of examples whose greedy output is segment j's continuation,
    `error` = share matching none (spec B.2)."""
    out = {}
    for s in segments:
        batch = eval_set(duplicates_task(task, s, length), n, EVAL_SEED, data_dir)
        prompts, _ = response(batch, task.k)
        got = greedy_decode(model, prompts, task.k, device=device).numpy()  # [n, k]
        hits = (got[:, None, :] == batch.meta["segment_targets"]).all(-1)  # [n, s]
        out[str(s)] = {"error": float(1 - hits.any(1).mean()), "preference": hits.mean(0).round(6).tolist()}
    return out


def single_task(task: DecodeRecall, length: int) -> DecodeRecall:
    """The run's decode-recall task (its bit proportion), one unpacked example of `length` tokens."""
    return dataclasses.replace(task, length=int(length), pack_min=0, pack_max=0)


def lengths(model, task: Task, data_dir: Path, *, lengths: list[int], n: int = 1000,
            device=None) -> dict[str, float]:
    """Teacher-forced token accuracy (paper A's "character accuracy"; an example with no
    target position counts as right, as in its code) on single examples of each length."""
    return {str(L): evaluate(model, eval_set(single_task(task, L), n, EVAL_SEED, data_dir), device=device)
            ["token_acc"] for L in lengths}


def in_distribution(model, task: Task, data_dir: Path, *, n: int = 1000, device=None) -> dict[str, float]:
    """Teacher-forced token accuracy on a test set of the run's own training task. Paper A's
    Table 1 evaluates at bit proportion 0.2 (the runs' validation set), but one version of
    the authors' mini data code builds the evaluation set at the training proportion; this
    is that second evaluation (issue 23 §3), for any task."""
    return {"token_acc": evaluate(model, eval_set(task, n, EVAL_SEED, data_dir), device=device)["token_acc"]}


def witness(model, task: Task, data_dir: Path | None = None, *, n: int = 1000, device=None) -> dict:
    """Thm 3.7's witness check of a trained model: accuracy at the last position of n witness
    pairs of its task (the same pairs for every run of the task), with its standard error over
    pairs, the pairs answered alike and right on both members, R, the model's sum of windows and
    receptive field (None with an SSM layer), whether the theorem binds it, and the largest gap
    between the two members' logits (0.0 for a bound model). The pairs are generated, not cached."""
    if device is not None:
        model = model.to(device)
    return witness_eval(model, task, witness_pairs(task, n, WITNESS_SEED))


TESTS = {"extrapolation": extrapolation, "duplicates": duplicates, "lengths": lengths,
         "in_distribution": in_distribution, "witness": witness}
NEEDS = {"extrapolation": (NGramRetrieval,), "duplicates": (NGramRetrieval,), "lengths": (DecodeRecall,),
         "in_distribution": None, "witness": WITNESS_TASKS}  # the task types (exactly) it tests; None: any


def settings_of(name: str) -> set[str]:
    """The settings a test takes: its keyword-only arguments but the device."""
    params = inspect.signature(TESTS[name]).parameters.values()
    return {p.name for p in params if p.kind is p.KEYWORD_ONLY and p.name != "device"}


def check(tests: dict, task: Task) -> None:
    """Refuse unknown tests or tasks they cannot test, before any training."""
    for name, settings in (tests or {}).items():
        if name not in TESTS:
            raise TaskError(f"unknown test {name!r}; tests are {', '.join(TESTS)}")
        needs = NEEDS[name]
        if needs is not None and type(task) not in needs:
            wanted = f"the {needs[0].name} task" if len(needs) == 1 else \
                f"one of the tasks {', '.join(t.name for t in needs)}"
            raise TaskError(f"the {name} test needs {wanted}, not {task.name!r}")
        bad = set(settings) - settings_of(name)
        if bad:
            raise TaskError(f"test {name!r} has no setting {', '.join(sorted(bad))}")
        if name == "witness":  # a standard error needs two pairs; the task's pairs must exist
            n = settings.get("n", 1000)
            if not isinstance(n, int) or n < 2:
                raise TaskError(f"the witness test needs n >= 2 pairs, not {n!r}")
            try:
                witness_pairs(task, 2, WITNESS_SEED)
            except ValueError as e:
                raise TaskError(f"the witness test: {e}") from None
        for L in settings.get("lengths", []):  # building a task validates it
            (single_task if name == "lengths" else length_task)(task, L)
        for s in settings.get("segments", []) if name == "duplicates" else []:
            duplicates_task(task, s, settings.get("length", 100))


def run_tests(model, task: Task, tests: dict, data_dir: Path, device=None) -> dict:
    """Every requested test of one trained model, in fp32 on `device`."""
    if not tests:
        return {}
    device = torch.device(device) if device is not None else next(model.parameters()).device
    model = model.to(device)
    with torch.autocast(device.type, enabled=False):
        return {name: TESTS[name](model, task, Path(data_dir) / TEST_SETS, device=device, **settings)
                for name, settings in tests.items()}

