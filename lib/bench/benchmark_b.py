"""Paper B's training speed, ours against the authors' setup (Table 1 or gpu-profile size).

For each family (Transformer, Mamba, Mamba2, HybridI by default) it trains the same model
(`paper_b(family)`, same initialisation) on n-gram retrieval (lengths 50-100, suffix
format) at batch 64 in each of these ways, in one process on one GPU:

- `hf_trainer`, the authors' setup: `transformers.Trainer` with bf16 autocast, AdamW,
  cosine schedule with 10% warm-up, clipping at 1.0, over our SequenceModel wrapped to
  return its masked loss. A collator pads each batch of shuffled examples to its longest
  one, labels -100 off the response, as an HF causal-LM collator does.
- `train_loop`: the project's own `lib.training.train` (bf16 autocast, the whole step as
  one CUDA graph), which reads its own seeded stream of the same task padded to one
  shape, as the graph needs. Its time is the difference of a run of warmup+steps steps
  and one of warmup steps, so start-up, capture and clean-up cancel; the loop's own data
  drawing (in the training thread) stays in.
- `sweep`: the loop exactly as `lib.sweeps` runs it on `--members` runs of the model
  (default 4, one per learning rate of the gpu profile's grid, each with its own seed's
  stream): one ensemble in one CUDA graph where the layers batch over members
  (Transformer, Mamba, HybridI M/T), else each run alone, all at once from their own
  threads and CUDA streams (the Mamba-2 and two-stream families), tokens counted over all
  members. A sweep trains up to COMPANION_CONCURRENT such groups at once; this path times one.
- `sweep_buckets`: `sweep` with the sweeps' option `train.length_buckets`: each member's
  examples of a data block sorted by length into its batches, each cut to its longest
  (rounded up to 8), one CUDA graph per width (lib.training.loop.bucket_block); tokens and
  padding counted on the sorted batches.
- `compiled`: each layer under torch.compile (regional, dynamic lengths; mamba-ssm's
  scans left out of the graphs), bf16 autocast, fused AdamW, and the examples sorted
  into length buckets (cut into batches, batch order shuffled) so little is padding.
  The warm-up steps meet every bucket shape, so no compilation should fall in the timed
  steps (the row's note counts any). If compiling fails the same loop runs eagerly, and
  the row says so.
- `graphed`: `compiled`, plus the whole step captured as one CUDA graph per batch shape
  (its warm-up and capture steps undone before timing), batches of sorted lengths padded
  only to their longest, and the mixers' depthwise convolutions as shifted multiply-adds
  (lib.models.mamba.causal_conv) that compile into one kernel.
- `packed` (Mamba only): `graphed` with two examples a row, the shortest of each sorted
  batch beside its longest, the pair apart by d_conv - 1 separators at which every
  Mamba-1 mixer zeroes the convolution's input and resets the scan's state, so each
  example trains exactly as alone (tests/test_models.py). Why it may be faster:
  mamba-ssm's selective scan gives each row and channel one 32-thread block, of 4 items
  a thread up to 128 positions whatever the length, of 8 up to 256; 32 rows of ~150 are
  half the blocks of 64 rows of ~75, each with twice the items.

`hf_trainer`, `compiled`, `graphed` and `packed` read the same pre-drawn examples. Tokens/s counts
the real (non-pad) input tokens of the timed steps over their wall time, step end to step
end after `warmup` steps, so each loop's own data handling counts as in a real run; padded
tokens/s counts every position. With `--isolate` each (family, path) runs in a fresh Python
process, so no path inherits another's CUDA-graph pools or cached memory (on 2026-12-07
paths that followed three others in one process ran out of an H100's memory). Model FLOPs per real token are the standard
6 N + 12 L_attn d T (N non-embedding parameters, L_attn attention layers, d the width,
T = the task's padded length, one T for every path so that MFU ratios equal throughput
ratios; the SSM scans' own arithmetic is not counted). MFU divides by the device's
dense bf16 peak (None for an unknown device). Memory is torch's peak allocation.

    python -m lib.bench.benchmark_b [--families transformer,mamba,mamba2,hybridI_1m] [--steps 30]
        [--warmup 10] [--batch 64] [--d-model 1024] [--repeats N | --depth 0.5] [--members 4]
        [--isolate] [--json out.json]
    # the gpu profile's paper-B size: --d-model 256 --heads 4 --depth 0.5
    python -m lib.bench.benchmark_b --device cpu --allow-cpu   # tiny functional run, no GPU
"""
from __future__ import annotations

import argparse
import contextlib
import copy
import functools
import gc
import importlib
import importlib.util
import importlib.metadata
import json
import math
import os
import random
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

import torch
import torch.nn.functional as F
from torch import nn

from ..models import build_model, paper_b
from ..models.ensemble import batches_members
from ..models.mamba import set_resets
from ..provenance import device_name, git_commit
from ..tasks import make_task
from ..tasks.paper_b import PAD
from ..training import TrainConfig, lr_factor, train_ensemble
from ..training.loop import bucket_block
from ..training.streams import Stream

PEAK_BF16 = [("H100 PCIe", 756e12), ("H100", 989e12), ("H200", 989e12), ("A100", 312e12)]  # dense FLOP/s
LR, WEIGHT_DECAY, WARMUP_FRAC, CLIP = 1e-4, 0.01, 0.1, 1.0  # the authors' TrainingArguments
SWEEP_LRS = (1e-4, 3e-4, 1e-3, 3e-3)  # the gpu profile's grid (experiments.yaml), one rate a `sweep` member
GPU_DEFAULTS = dict(steps=30, warmup=10, batch=64, d_model=1024, heads=16, repeats=None)
CPU_DEFAULTS = dict(steps=3, warmup=1, batch=4, d_model=64, heads=4, repeats=1)


def lm_loss(model, ids, labels):
    """Mean cross-entropy over the response positions (labels -100 elsewhere)."""
    return F.cross_entropy(model(ids).flatten(0, 1).float(), labels.flatten(), ignore_index=-100)


def draw_examples(task, n: int, seed: int = 0) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """n examples as unpadded (input ids, labels)."""
    b = task.build(seed, n, stream="benchmark")
    labels = torch.where(b.mask, b.targets, -100)
    return [(b.inputs[i, :n_i], labels[i, :n_i]) for i, n_i in enumerate((b.inputs != PAD).sum(1).tolist())]


def pad_batch(examples, multiple: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    width = math.ceil(max(len(x) for x, _ in examples) / multiple) * multiple
    ids = torch.full((len(examples), width), PAD, dtype=torch.long)
    labels = torch.full((len(examples), width), -100, dtype=torch.long)
    for i, (x, y) in enumerate(examples):
        ids[i, :len(x)], labels[i, :len(y)] = x, y
    return ids, labels


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def free_memory(device):
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def peak_gb(device):
    return round(torch.cuda.max_memory_allocated(device) / 2 ** 30, 2) if device.type == "cuda" else None


def peak_reserved_gb(device):
    """What the caching allocator held at most (allocated, cached and graph pools alike)."""
    return round(torch.cuda.max_memory_reserved(device) / 2 ** 30, 2) if device.type == "cuda" else None


def measured(r: dict, steps: int, device, peak: float | None, flops_per_token: float) -> dict:
    """A path's raw result (real and padded tokens, wall time of `steps` timed steps) with
    the rates, padding, MFU and this process's peak memory."""
    tps = r["real"] / r["wall_s"]
    return {**r, "tokens_per_s": round(tps), "padded_tokens_per_s": round(r["padded"] / r["wall_s"]),
            "step_ms": round(1e3 * r["wall_s"] / steps, 2), "pad_frac": round(1 - r["real"] / r["padded"], 3),
            "mfu": round(tps * flops_per_token / peak, 4) if peak else None, "peak_mem_gb": peak_gb(device),
            "peak_reserved_gb": peak_reserved_gb(device), "flops_per_token": flops_per_token}


# --------------------------------------------------------------------------- the authors' setup

class LossOnly(nn.Module):
    """What Trainer calls: forward(input_ids, labels, attention_mask) -> {"loss"}; no logits
    are returned, so none are kept or copied. Right padding needs no mask in a causal model.
    It notes each batch's token counts as it trains on it (the collator's calls run ahead)."""

    def __init__(self, model):
        super().__init__()
        self.model, self.last_loss, self.counts = model, None, []

    def forward(self, input_ids, labels, attention_mask=None, n_real=None):
        self.counts.append((n_real, input_ids.numel()))
        loss = lm_loss(self.model, input_ids, labels)
        self.last_loss = loss.detach()
        return {"loss": loss}


def run_hf(base, examples, args, device) -> dict:
    import transformers
    from transformers import Trainer, TrainerCallback, TrainingArguments

    total, marks = args.warmup + args.steps, {}

    def collate(features):  # pads to the batch's longest example, as the authors' collator does
        ids, labels = pad_batch([(f["input_ids"], f["labels"]) for f in features])
        return {"input_ids": ids, "labels": labels, "attention_mask": (ids != PAD).long(),
                "n_real": int((ids != PAD).sum())}

    class Clock(TrainerCallback):  # synchronises only at the two ends of the timed window
        def on_step_end(self, _args, state, control, **kw):
            if state.global_step in (args.warmup, total):
                sync(device)
                marks[state.global_step] = time.perf_counter()

    warmup = {"warmup_steps": WARMUP_FRAC} if int(transformers.__version__.split(".")[0]) >= 5 \
        else {"warmup_ratio": WARMUP_FRAC}
    model = LossOnly(copy.deepcopy(base))
    with tempfile.TemporaryDirectory() as out:
        targs = TrainingArguments(
            output_dir=out, bf16=device.type == "cuda", use_cpu=device.type == "cpu",
            per_device_train_batch_size=args.batch, max_steps=total, learning_rate=LR,
            lr_scheduler_type="cosine", weight_decay=WEIGHT_DECAY, max_grad_norm=CLIP, report_to=[],
            save_strategy="no", logging_steps=10 ** 6, dataloader_num_workers=0, remove_unused_columns=False,
            disable_tqdm=True, seed=0, **warmup)
        data = [{"input_ids": x, "labels": y} for x, y in examples]
        trainer = Trainer(model=model, args=targs, train_dataset=data, data_collator=collate, callbacks=[Clock()])
        trainer.train()
        optim = getattr(targs.optim, "value", targs.optim)
    timed = model.counts[args.warmup:total]
    return {"path": "hf_trainer", "wall_s": marks[total] - marks[args.warmup], "real": sum(c[0] for c in timed),
            "padded": sum(c[1] for c in timed), "final_loss": float(model.last_loss),
            "note": f"transformers {transformers.__version__}, optim {optim}"}


# --------------------------------------------------------------------------- ours

def run_train_loop(base, task, args, device, members: int = 1, buckets: bool = False) -> dict:
    """The project's loop (`train_loop`: one model), or the sweeps' own loop (`sweep`):
    `members` runs of the model as lib.sweeps trains the runs of one shape (a family's
    learning rates and seeds): one ensemble (lib.training.train_ensemble) where the layers
    batch over members, else each run alone, all at once from their own threads and CUDA
    streams. Each member has its own seed's stream and one of the gpu profile's learning
    rates. Tokens count every member's real tokens. `buckets`: the sweeps' loop with
    TrainConfig.length_buckets (`sweep_buckets`): sorted batches cut to their longest,
    one CUDA graph per width."""
    total = args.warmup + args.steps
    seeds = list(range(members))
    lrs = [SWEEP_LRS[i % len(SWEEP_LRS)] for i in seeds] if members > 1 else [LR]
    together = members == 1 or batches_members(base.cfg.layers)  # as lib.sweeps packs them
    cuda = device.type == "cuda"
    streams = [torch.cuda.Stream(device) for _ in seeds] if cuda and not together else []

    def run(steps):
        cfg = TrainConfig(steps=steps, batch_size=args.batch, lr=LR, weight_decay=WEIGHT_DECAY, warmup=WARMUP_FRAC,
                          schedule="cosine", clip=CLIP, decay="trainer", data_block=steps, cuda_graph=True,
                          amp="bf16", length_buckets=buckets)
        models = [copy.deepcopy(base) for _ in seeds]
        sync(device)
        t0 = time.perf_counter()
        if together:
            res = train_ensemble(models, [task] * members, cfg, seeds=seeds, lrs=lrs, device=device,
                                 progress=False)
        else:
            def alone(i):  # as lib.sweeps.runner's on_stream: one thread, one stream per run
                with torch.cuda.stream(streams[i]) if cuda else contextlib.nullcontext():
                    out = train_ensemble([models[i]], [task], cfg, seeds=[i], lrs=[lrs[i]], device=device,
                                         progress=False)
                    if cuda:
                        streams[i].synchronize()
                return out[0]
            with ThreadPoolExecutor(max_workers=members if cuda else 1) as pool:
                res = list(pool.map(alone, seeds))
        sync(device)
        return time.perf_counter() - t0, res

    run(args.warmup)  # first-call costs: cuBLAS, kernel and Triton autotuning
    short, _ = run(args.warmup)
    free_memory(device)  # the peak of the timed run alone
    long, res = run(total)
    blocks = []
    for seed in seeds:  # the very batches each member trained on
        stream = Stream(task, seed, args.batch, total, total)
        stream.expect()
        x, y, m = stream.read(stream.open(), 0)
        blocks.append((x.long(), y.long(), m))
    real = padded = 0
    # a bucketed loop sorts each block, so the timed steps hold other examples, cut to widths
    # (an ensemble's: its widest member's); one ensemble, or each run alone
    for group in [seeds] if together else [[i] for i in seeds]:
        x, y, m = (torch.stack([blocks[i][k] for i in group], 1) for k in range(3))  # [steps, M, B, L]
        widths = [x.shape[-1]] * total
        if buckets:
            x, _, _, widths = bucket_block(x, y, m, block=0)
        real += int((x[args.warmup:] != PAD).sum())
        padded += sum(len(group) * args.batch * w for w in widths[args.warmup:])
    # the timed steps' share of the long run; a difference that noise makes non-positive
    # (a few steps on a busy CPU) falls back to the long run's mean step time
    wall = long - short if long > short else long * args.steps / total
    how = "CUDA graph" if cuda else "eager (no CUDA)"
    packing = f"{members} models as one ensemble" if together else \
        f"{members} models alone, " + (f"at once from {members} threads" if cuda else "one after another") + \
        " (layers that do not batch over members)"
    how += (", length buckets" + (" (one CUDA graph per width)" if cuda else "")) if buckets else ""
    name = "sweep_buckets" if buckets else "sweep" if members > 1 else "train_loop"
    return {"path": name, "wall_s": wall, "real": real, "padded": padded,
            "final_loss": res[0]["history"]["train_loss"][-1], "members": members, "one_ensemble": together,
            "note": how if members == 1 else f"{how}, {packing} (losses of member 0)"}


@contextlib.contextmanager
def opaque_mamba_kernels():
    """Dynamo would try to trace into mamba-ssm's CUDA extension and Triton autotuners; a
    graph break around each scan is what we want. mamba.py imports them at call time,
    so wrapping the module attributes is enough."""
    patched = []
    for mod, name in [("mamba_ssm.ops.selective_scan_interface", "selective_scan_fn"),
                      ("mamba_ssm.ops.triton.ssd_combined", "mamba_chunk_scan_combined")]:
        try:
            m = importlib.import_module(mod)
        except Exception:  # not installed (CPU machines)
            continue
        patched.append((m, name, getattr(m, name)))
        setattr(m, name, torch.compiler.disable(getattr(m, name)))
    try:
        yield
    finally:
        for m, name, fn in patched:
            setattr(m, name, fn)


def _length_groups(examples, batch: int, n_batches: int) -> list[list]:
    """The examples sorted by length, cut into n_batches groups of `batch`."""
    order = sorted(range(len(examples)), key=lambda i: len(examples[i][0]))
    return [[examples[i] for i in order[k * batch:(k + 1) * batch]] for k in range(n_batches)]


def _shuffle_warm_first(batches: list, warmup: int, seed: int) -> list:
    """Shuffle the batches' order, then move one batch of each shape to the front: the
    warm-up steps meet every shape (up to `warmup` of them), so no compilation (inductor's
    or Triton's) falls in the timed steps."""
    random.Random(seed).shuffle(batches)
    head, tail = [], []
    for b in batches:
        new = b[0].shape[1] not in {h[0].shape[1] for h in head}
        (head if new and len(head) < warmup else tail).append(b)
    return head + tail


def bucket_batches(examples, batch: int, n_batches: int, warmup: int, seed: int = 0, multiple: int = 8) -> list:
    """(ids, labels) batches of sorted lengths, each padded to a multiple of `multiple` (the
    larger, the fewer shapes), in shuffled order with every shape among the warm-up steps."""
    return _shuffle_warm_first([pad_batch(g, multiple) for g in _length_groups(examples, batch, n_batches)],
                               warmup, seed)


def pack_batches(examples, batch: int, n_batches: int, warmup: int, gap: int, seed: int = 0,
                 multiple: int = 8) -> list:
    """bucket_batches' batches with two examples a row, each batch's shortest with its
    longest, `gap` PAD separators between them marked in a third tensor, `resets` (see
    lib.models.mamba.Mamba): (ids, labels, resets), half as many rows, each about twice as
    long. The same examples make the same token-mean loss."""
    batches = []
    for g in _length_groups(examples, batch, n_batches):
        half, rows, cuts = len(g) // 2, [], []
        for (xa, ya), (xb, yb) in zip(g[:half], reversed(g[half:])):
            rows.append((torch.cat([xa, torch.full((gap,), PAD), xb]), torch.cat([ya, torch.full((gap,), -100), yb])))
            cuts.append(len(xa))
        if len(g) % 2:  # an odd batch: its middle example has a row to itself
            rows.append(g[half])
        ids, labels = pad_batch(rows, multiple)
        resets = torch.zeros_like(ids, dtype=torch.bool)
        for i, n in enumerate(cuts):
            resets[i, n:n + gap] = True
        batches.append((ids, labels, resets))
    return _shuffle_warm_first(batches, warmup, seed)


def packable(model) -> bool:
    """Packing (pack_batches) keeps sequences apart in Mamba-1 mixers only."""
    return all(name == "mamba" for name in model.cfg.layers)


def compile_blocks(model, dynamic: bool) -> None:
    """Regional torch.compile: one compilation per distinct block, not per layer."""
    torch._dynamo.reset()
    for name in ("recompile_limit", "cache_size_limit"):  # one graph serves every layer; never fall back
        if hasattr(torch._dynamo.config, name):
            setattr(torch._dynamo.config, name, 64)
    for layer in model.layers:
        layer.compile(dynamic=dynamic)


def run_compiled(base, examples, args, device, compiled: bool) -> dict:
    from torch._dynamo.utils import counters
    total = args.warmup + args.steps
    model = copy.deepcopy(base).to(device).train()
    if compiled:
        compile_blocks(model, dynamic=True)
    opt = torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=WEIGHT_DECAY, fused=True)
    sched_cfg = TrainConfig(steps=total, warmup=WARMUP_FRAC, schedule="cosine")
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(s, sched_cfg))
    autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda")
    batches = bucket_batches(examples, args.batch, total, args.warmup)
    if device.type == "cuda":
        batches = [(x.pin_memory(), y.pin_memory()) for x, y in batches]
    graphs = {}
    with opaque_mamba_kernels():
        for i, (ids, labels) in enumerate(batches):
            if i == args.warmup:
                sync(device)
                t0, graphs["before"] = time.perf_counter(), counters["stats"]["unique_graphs"]
            ids, labels = ids.to(device, non_blocking=True), labels.to(device, non_blocking=True)
            with autocast:
                loss = lm_loss(model, ids, labels)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), CLIP, foreach=True)
            opt.step()
            sched.step()
            opt.zero_grad(set_to_none=True)
        sync(device)
    timed = batches[args.warmup:]
    return {"path": "compiled", "wall_s": time.perf_counter() - t0,
            "real": sum(int((x != PAD).sum()) for x, _ in timed), "padded": sum(x.numel() for x, _ in timed),
            "final_loss": float(loss.detach()),
            "note": (f"torch.compile, {counters['stats']['unique_graphs']} graphs, "
                     f"{counters['stats']['unique_graphs'] - graphs['before']} compiled while timed"
                     if compiled else "eager")}


def run_graphed(base, examples, args, device, compiled: bool, packed: bool = False) -> dict:
    """`compiled`, plus the whole step (forward, backward, clipping, AdamW) captured as one
    CUDA graph per batch shape (batches of sorted lengths, little padding), and the
    mixers' depthwise convolutions as shifted multiply-adds that compile into one kernel.
    Warming up and capturing take a few training steps per shape; they are undone (weights
    and optimizer state reset in place) before the steps that count. `packed`: two
    examples a row (pack_batches), for Mamba-1 stacks."""
    from torch._dynamo.utils import counters
    total, cuda = args.warmup + args.steps, device.type == "cuda"
    model = copy.deepcopy(base).to(device).train()
    for m in model.modules():
        if hasattr(m, "shifted_conv"):
            m.shifted_conv = True
    compiled = compiled and cuda  # the CPU run only checks the code path
    # Examples sorted by length make batches of nearly equal lengths, each padded only to
    # its longest. Mamba-2's reshapes fail inductor's range analysis under dynamic shapes
    # (torch 2.11): its blocks compile once per batch shape instead, so its lengths are
    # padded to a multiple of 16 (few shapes, few compilations)
    dynamic = not any(n.endswith("mamba2") or "mamba2_" in n for n in model.cfg.layers)
    if compiled:
        compile_blocks(model, dynamic)
    params = list(model.parameters())
    opt = torch.optim.AdamW(params, lr=torch.tensor(LR, device=device) if cuda else LR,
                            weight_decay=WEIGHT_DECAY, fused=cuda, capturable=cuda)
    sched_cfg = TrainConfig(steps=total, warmup=WARMUP_FRAC, schedule="cosine")
    autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=cuda)
    if packed:
        if not packable(model):
            raise ValueError(f"packing needs Mamba-1 layers only, not {model.cfg.layers}")
        batches = pack_batches(examples, args.batch, total, args.warmup, gap=model.cfg.d_conv - 1, multiple=1)
    else:
        batches = bucket_batches(examples, args.batch, total, args.warmup, multiple=1 if dynamic else 16)

    def resets(*r):  # a packed batch's third tensor marks its separators; others have none
        set_resets(model, r[0] if r else None)

    def step(ids, labels):
        with autocast:
            loss = lm_loss(model, ids, labels)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, CLIP, foreach=True)
        opt.step()
        opt.zero_grad(set_to_none=not cuda)  # a graph's gradients stay where it captured them
        return loss.detach()

    graphs = {}
    with opaque_mamba_kernels():
        if cuda:  # warm up (and compile) every shape on a side stream, then capture each
            start = [p.detach().clone() for p in params]
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                for shape in sorted({b[0].shape for b in batches}):
                    x, y, *r = next([t.to(device) for t in b] for b in batches if b[0].shape == shape)
                    resets(*r)
                    for _ in range(2):
                        step(x, y)
                    graphs[shape] = [x, y, *r]
            torch.cuda.current_stream().wait_stream(side)
            pool = torch.cuda.graph_pool_handle()
            for shape, (x, y, *r) in graphs.items():
                resets(*r)  # each shape's graph reads its own separators' tensor
                g = torch.cuda.CUDAGraph()
                with torch.cuda.graph(g, pool=pool):
                    out = step(x, y)
                graphs[shape] = (g, out, [x, y, *r])
            with torch.no_grad():  # undo the warm-up and capture steps: timed training starts fresh
                for p, p0 in zip(params, start):
                    p.copy_(p0)
                for state in opt.state.values():  # AdamW's step count and moments, in place
                    for v in state.values():
                        if torch.is_tensor(v):
                            v.zero_()
            batches = [tuple(t.pin_memory() for t in b) for b in batches]
        n_graphs = counters["stats"]["unique_graphs"]
        for i, (ids, labels, *r) in enumerate(batches):
            if i == args.warmup:
                sync(device)
                t0 = time.perf_counter()
            lr = LR * lr_factor(i, sched_cfg)
            if cuda:
                g, loss, static = graphs[ids.shape]
                for dst, src in zip(static, (ids, labels, *r)):
                    dst.copy_(src, non_blocking=True)
                opt.param_groups[0]["lr"].fill_(lr)
                g.replay()
            else:
                opt.param_groups[0]["lr"] = lr
                resets(*r)
                loss = step(ids, labels)
        sync(device)
    timed = batches[args.warmup:]
    how = f"torch.compile ({n_graphs} graphs)" if compiled else "eager"
    how += ", two examples a row" if packed else ""
    return {"path": "packed" if packed else "graphed", "wall_s": time.perf_counter() - t0,
            "real": sum(int((b[0] != PAD).sum()) for b in timed), "padded": sum(b[0].numel() for b in timed),
            "final_loss": float(loss),
            "note": f"{how}, {len(graphs)} CUDA graphs, shifted conv" if cuda else f"{how}, no CUDA graphs"}


def run_ours_compiled(base, examples, args, device, run=run_compiled) -> dict:
    try:
        return run(base, examples, args, device, compiled=not args.no_compile)
    except Exception as e:  # mamba-ssm's custom ops may break torch.compile: record it, run eagerly
        if args.no_compile:
            raise
        error = f"{type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''}"
        del e
    print(f"  torch.compile failed ({error}); running eagerly", flush=True)
    torch._dynamo.reset()
    free_memory(device)
    row = run(base, examples, args, device, compiled=False)
    return {**row, "note": f"eager: torch.compile failed ({error})"}


# --------------------------------------------------------------------------- driver

def flops_per_token(model, T: int) -> float:
    n_attn = sum("attn" in name or name.startswith("twostream") for name in model.cfg.layers)
    return 6 * model.num_params(non_embedding=True) + 12 * n_attn * model.cfg.d_model * T


def versions() -> dict:
    out = {}
    for pkg in ("torch", "transformers", "accelerate", "mamba-ssm", "triton"):
        try:
            out[pkg] = importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            out[pkg] = None
    return out


def peak_flops(name: str) -> float | None:
    return next((v for key, v in PEAK_BF16 if key in name), None)


def run_isolated(family: str, path: str, args) -> tuple[dict | None, str | None]:
    """One (family, path) measured in a fresh Python process with the same settings: its
    row (tokens/s, peak memory and the rest as that process measured them), or its error."""
    with tempfile.TemporaryDirectory() as tmp:
        out = f"{tmp}/row.json"
        cmd = [sys.executable, "-m", "lib.bench.benchmark_b", "--families", family, "--paths", path,
               "--device", args.device, "--json", out]
        for key in ("steps", "warmup", "batch", "d_model", "heads", "repeats", "depth", "members"):
            if getattr(args, key) is not None:
                cmd += [f"--{key.replace('_', '-')}", str(getattr(args, key))]
        cmd += [flag for flag, on in (("--no-compile", args.no_compile), ("--allow-cpu", args.allow_cpu)) if on]
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=args.path_timeout)
        except subprocess.TimeoutExpired:  # subprocess.run has killed it
            return None, f"its process ran past --path-timeout ({args.path_timeout} s) and was killed"
        try:
            with open(out) as f:
                report = json.load(f)
        except (FileNotFoundError, ValueError):  # killed, or failed before writing: its last words
            last = (done.stderr.strip() or done.stdout.strip() or "no output").splitlines()[-1]
            return None, f"its process exited with {done.returncode}: {last}"[:500]
    if report["rows"]:
        row = report["rows"][0]
        row.pop("speedup_vs_hf", None)  # against this process's own baseline, set below
        return row, None
    return None, report["errors"][0]["error"] if report["errors"] else "no row and no error"


PATHS = ("hf_trainer", "train_loop", "sweep", "sweep_buckets", "compiled", "graphed", "packed")


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m lib.bench.benchmark_b", description=__doc__.split("\n")[0])
    ap.add_argument("--families", default="transformer,mamba,mamba2,hybridI_1m")
    ap.add_argument("--paths", default="hf_trainer,train_loop,sweep,sweep_buckets,compiled,graphed,packed",
                    help="packed: Mamba (Mamba-1 only) families")
    ap.add_argument("--steps", type=int, help="timed steps (GPU 30, CPU 3)")
    ap.add_argument("--warmup", type=int, help="untimed steps first (GPU 10, CPU 1)")
    ap.add_argument("--batch", type=int, help="examples per step (GPU 64, CPU 4)")
    ap.add_argument("--d-model", type=int, help="width (GPU 1024, CPU 64)")
    ap.add_argument("--heads", type=int, help="attention heads (GPU 16, CPU 4)")
    ap.add_argument("--repeats", type=int, help="repeats of the layer pattern (GPU Table 1's, CPU 1)")
    ap.add_argument("--depth", type=float, default=1.0,
                    help="a fraction of Table 1's depth, as the reduced profiles set it (with --repeats unset)")
    ap.add_argument("--members", type=int, default=4, help="models in the `sweep` path's ensemble")
    ap.add_argument("--no-compile", action="store_true", help="the 'compiled' path without torch.compile")
    ap.add_argument("--device", default="auto", choices=["auto", "cuda", "cpu"])
    ap.add_argument("--allow-cpu", action="store_true", help="run without CUDA: tiny defaults, code paths only")
    ap.add_argument("--isolate", action="store_true",
                    help="each (family, path) in a fresh Python process (no memory left over from another path)")
    ap.add_argument("--path-timeout", type=float, default=None,
                    help="with --isolate: seconds after which a path's process is killed (an error row)")
    ap.add_argument("--json", default=None, help="the report, rewritten after every path")
    args = ap.parse_args(argv)
    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else
                          args.device if args.device != "auto" else "cpu")
    if device.type == "cpu" and not args.allow_cpu:
        ap.error("this benchmark is for a GPU; pass --allow-cpu for a tiny functional run on the CPU")
    for k, v in (GPU_DEFAULTS if device.type == "cuda" else CPU_DEFAULTS).items():
        setattr(args, k, v if getattr(args, k) is None else getattr(args, k))
    if args.warmup < 1 or args.steps < 1 or args.members < 1:
        ap.error("--warmup, --steps and --members must be at least 1")
    if not 0 < args.depth <= 1:
        ap.error(f"--depth is a fraction of Table 1's depth, in (0, 1]; got {args.depth}")
    unknown = set(args.paths.split(",")) - set(PATHS)
    if unknown:
        ap.error(f"unknown path(s) {', '.join(sorted(unknown))}; paths are {', '.join(PATHS)}")
    if device.type == "cuda" and torch.cuda.device_count() > 1:  # Trainer would wrap the model in DataParallel
        ap.error("one GPU only: set CUDA_VISIBLE_DEVICES=0")
    task, paths = make_task("ngram"), args.paths.split(",")
    if "hf_trainer" in paths and importlib.util.find_spec("transformers") is None:
        ap.error('the hf_trainer path needs the baseline extra: pip install -e ".[baseline]" '
                 "(or leave hf_trainer out of --paths)")
    examples = draw_examples(task, args.batch * (args.warmup + args.steps))
    peak = peak_flops(device_name(device)) if device.type == "cuda" else None
    rows, errors = [], []
    families = args.families.split(",")
    settings = {k: getattr(args, k) for k in ("families", "paths", "steps", "warmup", "batch", "d_model", "heads",
                                              "repeats", "depth", "members", "no_compile", "isolate")}

    def report() -> dict:
        """Speed-ups against each family's Trainer row, and the JSON (rewritten whole after
        every path, through a temporary file, so a run cut short keeps what finished)."""
        for r in rows:
            hf = next((b for b in rows if b["family"] == r["family"] and b["path"] == "hf_trainer"), None)
            if hf is not None:
                r["speedup_vs_hf"] = round(r["tokens_per_s"] / hf["tokens_per_s"], 2)
        best = {f: max((r["speedup_vs_hf"] for r in rows if r["family"] == f and r["path"] != "hf_trainer"
                        and "speedup_vs_hf" in r), default=None) for f in families}
        if args.json:
            tmp = f"{args.json}.part"
            with open(tmp, "w") as f:
                json.dump({"device": device_name(device), **versions(),
                           "commit": git_commit(), "peak_bf16_flops": peak, "task": task.config(),
                           "flops_formula": "6 N_non_embedding + 12 L_attn d_model T, T = task seq_len",
                           "settings": settings, "best_speedup_vs_hf": best, "rows": rows, "errors": errors},
                          f, indent=1)
            os.replace(tmp, args.json)
        return best

    for family in families:
        base = build_model(paper_b(family, d_model=args.d_model, heads=args.heads, repeats=args.repeats,
                                   depth=args.depth), task.vocab_size, seed=0)
        fpt = flops_per_token(base, task.seq_len)
        print(f"{family}: {base.num_params(non_embedding=True) / 1e6:.1f}M non-embedding parameters", flush=True)
        runs = {"hf_trainer": lambda: run_hf(base, examples, args, device),
                "train_loop": lambda: run_train_loop(base, task, args, device),
                "sweep": lambda: run_train_loop(base, task, args, device, members=args.members),
                "sweep_buckets": lambda: run_train_loop(base, task, args, device, members=args.members, buckets=True),
                "compiled": lambda: run_ours_compiled(base, examples, args, device),
                "graphed": lambda: run_ours_compiled(base, examples, args, device, run_graphed),
                "packed": lambda: run_ours_compiled(base, examples, args, device,
                                                    functools.partial(run_graphed, packed=True))}
        for path in paths:
            if path == "packed" and not packable(base):
                continue  # the separators keep sequences apart in Mamba-1 mixers, not in attention
            if args.isolate:
                row, error = run_isolated(family, path, args)
            else:
                free_memory(device)
                try:
                    row, error = measured(runs[path](), args.steps, device, peak, fpt), None
                except Exception as e:  # keep the other rows of a long GPU run
                    row, error = None, f"{type(e).__name__}: {e}"[:500]
            if error is not None:
                errors.append({"family": family, "path": path, "error": error})
                print(f"  {path} FAILED: {error}", flush=True)
            else:
                rows.append({"family": family, **row})
                print(f"  {path}: {row['tokens_per_s']} tokens/s, {row['step_ms']} ms/step, "
                      f"loss {row['final_loss']:.3f} ({row['note']})", flush=True)
            report()
        del base
    best = report()
    size = "Table 1 size" if args.d_model == 1024 and args.depth == 1 and args.repeats is None else \
        f"width {args.d_model}, depth {args.depth if args.repeats is None else f'{args.repeats} repeats'}"
    print(f"\n{device_name(device)}: paper B models at {size}, n-gram retrieval, batch {args.batch}, "
          f"{args.steps} timed steps after {args.warmup}")
    head = ("family", "path", "tok/s", "padded tok/s", "ms/step", "pad %", "MFU %", "peak GB", "resv GB", "x HF",
            "loss")
    print("{:12s} {:13s} {:>9s} {:>13s} {:>8s} {:>6s} {:>6s} {:>8s} {:>8s} {:>5s} {:>6s}".format(*head))
    for r in rows:
        mfu = "-" if r["mfu"] is None else f"{100 * r['mfu']:.1f}"
        print(f"{r['family']:12s} {r['path']:13s} {r['tokens_per_s']:9d} {r['padded_tokens_per_s']:13d} "
              f"{r['step_ms']:8.1f} {100 * r['pad_frac']:6.1f} {mfu:>6} "
              f"{r['peak_mem_gb'] if r['peak_mem_gb'] is not None else '-':>8} "
              f"{r.get('peak_reserved_gb') if r.get('peak_reserved_gb') is not None else '-':>8} "
              f"{r.get('speedup_vs_hf', '-'):>5} {r['final_loss']:6.3f}")
    print("best speedup over the HF Trainer (issue 20's target: 2x, by the `sweep` path): "
          + ", ".join(f"{f} {'-' if s is None else f'{s}x'}" for f, s in best.items()))
    return rows


if __name__ == "__main__":
    main()
