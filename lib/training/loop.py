"""One training loop for every experiment of both papers.

It trains an ensemble: M models of one shape stepped together (lib.models.ensemble),
each member with its own task, seed, data stream, learning rate and evaluation set.
A single model is an ensemble of one, through the same code.

Per member: data from the task's seeded generator; the masked cross-entropy of
logits[t] against targets[t] (tasks lay out paper A's unshifted seq-to-seq targets
and paper B's next-token response targets themselves); AdamW; warm-up then linear
or cosine decay; gradient clipping of the member's own norm; periodic evaluation
with early stopping; checkpoint and resume. On a GPU the whole step (forward,
backward, clipping, optimizer) is captured as a CUDA graph, once per batch width, and
replayed. With `length_buckets` each data block's examples are sorted into batches of
alike lengths, each cut to its longest (bucket_block).
"""
from __future__ import annotations

import contextlib
import dataclasses
import math
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from ..models.ensemble import Ensemble
from ..tasks import Batch, Task
from .metrics import evaluate_ensemble
from .streams import MemberStreams, StreamCache


@dataclass
class TrainConfig:
    steps: int = 4000
    batch_size: int = 8
    lr: float = 1e-3
    weight_decay: float = 0.1
    decay: str = "all"  # which parameters weight decay shrinks: "all" (torch AdamW over every
    # parameter, paper A's code) or "trainer" (the Hugging Face Trainer's rule, paper B's code)
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    warmup: float = 100  # steps, or a fraction of the schedule's length when below 1
    schedule: str = "linear"  # linear | cosine | constant (after warm-up)
    schedule_steps: int | None = None  # the schedule's length when it is longer than `steps`
    # (None: `steps`): a learning-rate trial trains the first `steps` steps of a run's schedule
    clip: float = 1.0
    eval_every: int = 0  # steps between evaluations; 0 = only at the end
    eval_batch_size: int = 512
    early_stop: float | None = None  # a member stops once its eval `early_stop_metric` reaches this
    early_stop_metric: str = "token_acc"
    checkpoint_every: int = 0  # steps; 0 = never (needs a checkpoint path)
    data_block: int = 50  # steps of data drawn per generator call (the stream depends on it)
    cuda_graph: bool = True  # capture the training step on CUDA (one graph per batch width)
    length_buckets: bool = False  # sort each member's examples of a data block by length into
    # its batches, each cut to its longest example (bucket_block): little padding; exact for
    # causal models without embedding dropout, but another batching than random batches
    amp: str | None = None  # "bf16" for autocast on CUDA
    tf32: bool = False  # TF32 matmuls on CUDA (fp32 range, 10-bit mantissa), for the widest models
    eval_by: str | None = None  # a metadata key: evaluations also give exact match per its value
    snapshot_embeddings: bool = False  # keep the task's snapshot_tokens() embedding rows at each evaluation
    snapshots: tuple[float, ...] = (0.25, 0.5, 0.75, 1.0)  # fractions of a run's steps to return them at
    # Paper A's "to convergence, with 4x the compute after the loss plateaus" (INFERRED rule,
    # plateau_step): 0 = off; else a member stops at plateau_factor x more steps than it had
    # taken when its loss plateaued, `steps` being the cap.
    plateau_window: int = 0  # steps per window of the plateau test (a multiple of data_block)
    plateau_tol: float = 0.01  # relative drop of the mean loss between windows below which it plateaus
    plateau_factor: float = 4.0
    plateau_below: float | None = None  # a plateau counts only below this loss (e.g. under chance, so
    # that the chance plateau of a hard task is not taken for convergence); None = any plateau

    def validate(self):
        if self.steps < 1 or self.batch_size < 1:
            raise ValueError(f"steps and batch_size must be positive, got {self.steps}, {self.batch_size}")
        if self.decay not in DECAY_RULES:
            raise ValueError(f"unknown decay rule {self.decay!r}; use one of {', '.join(DECAY_RULES)}")
        if self.schedule not in ("linear", "cosine", "constant"):
            raise ValueError(f"unknown schedule {self.schedule!r}; use linear, cosine or constant")
        if not self.lr > 0:
            raise ValueError(f"lr must be positive, got {self.lr}")
        if self.schedule_steps is not None and self.schedule_steps < self.steps:
            raise ValueError(f"schedule_steps ({self.schedule_steps}) must be at least steps ({self.steps})")
        if self.data_block < 1:
            raise ValueError(f"data_block must be positive, got {self.data_block}")
        if self.plateau_window < 0 or not self.plateau_tol >= 0 or not self.plateau_factor > 0:
            raise ValueError("plateau_window must be >= 0 (0 = off), plateau_tol >= 0 and plateau_factor > 0")
        for name in ("eval_every", "checkpoint_every", "plateau_window"):
            every = getattr(self, name)
            if every and every % self.data_block:
                raise ValueError(f"{name} ({every}) must be a multiple of data_block ({self.data_block})")

    @property
    def horizon(self) -> int:
        """Steps of the warm-up and decay schedule (`schedule_steps`, else `steps`)."""
        return self.steps if self.schedule_steps is None else self.schedule_steps

    @property
    def warmup_steps(self) -> int:
        return int(self.warmup * self.horizon) if self.warmup < 1 else int(self.warmup)


# The Hugging Face Trainer's exclusions (Trainer.get_decay_parameter_names): parameters of
# nn.LayerNorm modules, and names matching these patterns (lower-cased). In our models that
# leaves out biases (dt_bias too), every norm's weight, and nothing else: A_log, D, the
# convolutions, the embedding and the two-stream gates are decayed, as the authors' Trainer
# did. (Their SSM backbones name the final norm `norm_f`, which no pattern matches, so
# the Trainer decayed it there; ours is `norm` and is not. Its effect at weight decay 0.01
# is negligible; we keep the rule as the Trainer states it.)
_TRAINER_NO_DECAY = re.compile(r"bias|layernorm|rmsnorm|(?:^|\.)norm(?:$|\.)|_norm(?:$|\.)")


def decayed_names(model: torch.nn.Module, rule: str = "all") -> list[str]:
    """Names of the parameters that weight decay shrinks under `rule` (DECAY_RULES)."""
    if rule == "all":
        return [n for n, _ in model.named_parameters()]
    in_layernorm = {f"{mn}.{pn}".lstrip(".") for mn, mod in model.named_modules()
                    if isinstance(mod, torch.nn.LayerNorm) for pn, _ in mod.named_parameters()}
    return [n for n, _ in model.named_parameters()
            if n not in in_layernorm and not _TRAINER_NO_DECAY.search(n.lower())]


DECAY_RULES = ("all", "trainer")


def lr_factor(step: int, cfg: TrainConfig) -> float:
    """Multiplier of the peak learning rate after `step` optimizer steps (HF semantics), on a
    schedule of cfg.horizon steps."""
    w = cfg.warmup_steps
    if step < w:
        return step / max(1, w)
    if cfg.schedule == "constant":
        return 1.0
    progress = (step - w) / max(1, cfg.horizon - w)
    if cfg.schedule == "linear":
        return max(0.0, 1.0 - progress)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def masked_loss(logits: torch.Tensor, batch: Batch) -> torch.Tensor:
    """Mean cross-entropy over the masked positions."""
    if not batch.mask.any():
        return logits.sum() * 0.0
    return F.cross_entropy(logits[batch.mask].float(), batch.targets[batch.mask])


def member_losses(logits: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """[M, B, L, V] logits -> [M] masked mean cross-entropy of each member (0 if nothing is masked)."""
    ce = F.cross_entropy(logits.flatten(0, 2).float(), targets.flatten(), reduction="none").view(mask.shape)
    m = mask.float()
    return (ce * m).sum((1, 2)) / m.sum((1, 2)).clamp(min=1)


BUCKET_MULTIPLE = 8  # a bucketed batch's width is rounded up to this: fewer widths, fewer CUDA graphs


def response_ends(mask: torch.Tensor) -> torch.Tensor:
    """[..., L] mask -> [...] one past each row's last masked position (0 for none)."""
    pos = torch.arange(1, mask.shape[-1] + 1, device=mask.device)
    return torch.where(mask, pos, 0).amax(-1)


def bucket_block(inputs: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor, block: int,
                 multiple: int = BUCKET_MULTIPLE) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, list[int]]:
    """Length buckets for one data block ([n, M, B, L] tensors, block index `block`): each
    member's n * B examples sorted (stably) by where their response ends and cut into its n
    batches, the batches' order shuffled by a permutation of the block index alone, the
    same for every member (so the members' j-th batches have alike lengths). Returns the
    reordered tensors and each step's width: the longest response end among its members'
    examples, rounded up to `multiple` (at most L). Positions past a row's last masked one
    carry no loss and, in a causal model, change nothing before them, so a batch cut to
    its width trains exactly as padded (up to float rounding). A member's data stays a
    function of its own stream and the block index."""
    n, M, B, L = mask.shape
    ends = response_ends(mask).permute(1, 0, 2).reshape(M, n * B)  # [M, n*B]
    order = torch.sort(ends, dim=1, stable=True).indices
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(1_000_003 * block + 17)).to(mask.device)

    def regroup(t):
        flat = t.permute(1, 0, 2, 3).reshape(M, n * B, L)
        flat = torch.gather(flat, 1, order[:, :, None].expand(-1, -1, L))
        return flat.view(M, n, B, L).permute(1, 0, 2, 3)[perm]

    sorted_ends = torch.gather(ends, 1, order).view(M, n, B).permute(1, 0, 2)[perm]  # [n, M, B]
    widths = [min(L, max(multiple, -(-int(e) // multiple) * multiple)) for e in sorted_ends.amax((1, 2)).tolist()]
    return regroup(inputs), regroup(targets), regroup(mask), widths


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


class MemberAdamW:
    """AdamW (torch.optim.AdamW's arithmetic) over an ensemble's [M, P] parameters, with
    a learning rate per member; its state lives in tensors so a CUDA graph can hold it."""

    def __init__(self, flat: torch.Tensor, grad: torch.Tensor, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                 decay_mask: torch.Tensor | None = None):
        """decay_mask: [P], 1 where weight decay applies and 0 where not (None: everywhere)."""
        self.flat, self.grad = flat, grad
        self.betas, self.eps, self.wd = betas, eps, weight_decay
        self.decay = None if decay_mask is None else decay_mask.to(flat.device, flat.dtype)[None, :]
        self.t = torch.zeros((), device=flat.device)
        self.m, self.v = torch.zeros_like(flat), torch.zeros_like(flat)

    @torch.no_grad()
    def step(self, lr: torch.Tensor) -> None:
        """lr: [M] learning rates of this step."""
        b1, b2 = self.betas
        self.t += 1
        lr = lr[:, None]
        bc1, bc2_sqrt = 1 - b1 ** self.t, (1 - b2 ** self.t).sqrt()
        self.flat.mul_(1 - lr * self.wd if self.decay is None else 1 - lr * self.wd * self.decay)
        self.m.lerp_(self.grad, 1 - b1)
        self.v.mul_(b2).addcmul_(self.grad, self.grad, value=1 - b2)
        self.flat.sub_(lr / bc1 * self.m / (self.v.sqrt() / bc2_sqrt + self.eps))

    def state(self) -> dict:
        return {"t": self.t, "m": self.m, "v": self.v}

    @torch.no_grad()
    def load(self, state: dict) -> None:
        for name in ("t", "m", "v"):
            getattr(self, name).copy_(state[name])


@torch.no_grad()
def clip_members_(grad: torch.Tensor, max_norm: float) -> torch.Tensor:
    """clip_grad_norm_ per member: grad [M, P], each row scaled to norm <= max_norm."""
    norm = grad.pow(2).sum(1).sqrt()
    grad.mul_((max_norm / (norm + 1e-6)).clamp(max=1.0)[:, None])
    return norm


def _decay_mask(ens: Ensemble, model: torch.nn.Module, rule: str) -> torch.Tensor:
    """[P] mask over the ensemble's flat parameters: 1 on the parameters `rule` decays."""
    decayed = set(decayed_names(model, rule))
    return torch.cat([torch.full((model.get_parameter(n).numel(),), float(n in decayed)) for n in ens.names])


def _autocast(cfg: TrainConfig, device: torch.device):
    if cfg.amp == "bf16" and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return torch.autocast("cpu", enabled=False)


def train_ensemble(models: list, tasks: list[Task], cfg: TrainConfig, *, seeds: list[int],
                   lrs: list[float] | None = None, eval_batches: list[Batch | None] | None = None,
                   device="auto", checkpoint: str | Path | None = None, progress: bool = True,
                   desc: str = "train", streams: StreamCache | None = None) -> list[dict]:
    """Train M models of one shape together; member i has its own task, seed, learning
    rate and evaluation set. Returns one result per member (history, final metrics, steps).

    A member's result does not depend on what else is in the ensemble, up to float
    rounding: its data stream, dropout masks and initialisation come from its seed. The
    trained weights are written back into `models`. `streams` shares data streams with
    other ensembles of a sweep (lib.training.streams). With `checkpoint`, the ensemble's
    state is saved every `cfg.checkpoint_every` steps and a call that finds it resumes."""
    cfg.validate()
    M = len(models)
    lrs = [cfg.lr] * M if lrs is None else list(lrs)
    eval_batches = [None] * M if eval_batches is None else list(eval_batches)
    if not (len(tasks) == len(seeds) == len(lrs) == len(eval_batches) == M):
        raise ValueError("train_ensemble needs one task, seed, lr and eval batch per model")
    if cfg.length_buckets and any(getattr(m.cfg, "emb_dropout", 0) for m in models):
        # keyed dropout numbers the positions of the batch's shape, and a cut batch's width
        # is the longest example over all members: masks would depend on the ensemble
        raise ValueError("length_buckets cannot train a model with embedding dropout (its masks would depend "
                         "on the other members' lengths); set emb_dropout to 0 or length_buckets to false")
    device = resolve_device(device)
    torch.manual_seed(seeds[0])  # dropout of models that run their own forward
    ens = Ensemble(models, device=device).train()
    opt = MemberAdamW(ens.flat, ens.flat_grad, cfg.betas, cfg.eps, cfg.weight_decay,
                      decay_mask=None if cfg.decay == "all" else _decay_mask(ens, models[0], cfg.decay))
    base_lr = torch.tensor(lrs, dtype=torch.float32, device=device)
    active = torch.ones(M, device=device)  # 0 once a member has stopped early
    seeds_t = torch.tensor(seeds, dtype=torch.int64, device=device)
    step_t = torch.zeros((), dtype=torch.int64, device=device)
    factor = torch.zeros((), device=device)
    losses = torch.zeros(cfg.steps, M, device=device)
    evals: list[list[dict]] = [[] for _ in range(M)]
    kept: list[list[tuple]] = [[] for _ in range(M)]  # (step, embedding rows, output-head rows or None)
    stopped_at = [None] * M
    plateau_at = [None] * M  # the step at which each member's loss plateaued (plateau_window)
    step, t0 = 0, time.time()
    ckpt = Path(checkpoint) if checkpoint else None
    if ckpt is not None and ckpt.exists():
        state = torch.load(ckpt, map_location=device, weights_only=False)
        ens.load_state_dict(state["model"])
        opt.load(state["opt"])
        step, evals, stopped_at = state["step"], state["evals"], state["stopped_at"]
        kept = state.get("kept", kept)
        plateau_at = state.get("plateau_at", plateau_at)
        losses[:step] = state["losses"][:step]
        active.copy_(state["active"])
        step_t.fill_(step)
        torch.set_rng_state(state["torch_rng"].cpu())  # map_location moved it
        t0 -= state.get("wall_s", 0.0)  # the wall time reported counts the checkpoint's training too

    data = MemberStreams(tasks, seeds, cfg.batch_size, cfg.data_block, cfg.steps, streams, start_step=step)
    autocast = _autocast(cfg, device)

    def train_step(inputs, targets, mask):
        ens.flat_grad.zero_()
        with autocast:
            per_member = member_losses(ens(inputs, seeds_t, step_t), targets, mask)
        per_member.sum().backward()
        if cfg.clip:
            clip_members_(ens.flat_grad, cfg.clip)
        opt.step(base_lr * factor * active)
        step_t.add_(1)
        return per_member.detach()

    graphs: dict[int, tuple] = {}  # batch width -> (CUDA graph, its loss output, its static inputs)
    pool = None
    use_graph = cfg.cuda_graph and device.type == "cuda"
    bar = tqdm(total=cfg.steps, initial=step, desc=desc, disable=not progress, leave=False)

    gate_names = [n for n in ens.names if n.endswith(".beta")]  # two-stream blocks' gates
    snap_rows = list(tasks[0].snapshot_tokens()) if cfg.snapshot_embeddings else []

    def run_eval(only=None):
        """Evaluate the ensemble; record it for the running members (or those in `only`)."""
        with autocast:  # evaluation in the training precision (bf16 under amp)
            metrics = evaluate_ensemble(ens, eval_batches, batch_size=cfg.eval_batch_size, by=cfg.eval_by)
        with torch.no_grad():
            gates = torch.stack([ens.p(n).reshape(M) for n in gate_names], 1).tanh().abs().tolist() \
                if gate_names else None
            rows = ens.p("embed.weight")[:, snap_rows].float().cpu() if snap_rows else None
            # an untied output head (paper B's Transformer) has its own rows for these tokens
            out_rows = ens.p("head.weight")[:, snap_rows].float().cpu() \
                if snap_rows and "head.weight" in ens.names else None
        for i, m in enumerate(metrics):
            if m is not None and stopped_at[i] is None and (only is None or i in only):
                evals[i].append({"step": step, "examples": step * cfg.batch_size, **m,
                                 **({"gates": [round(g, 6) for g in gates[i]]} if gates else {})})
                if rows is not None:
                    kept[i].append((step, rows[i].clone(), None if out_rows is None else out_rows[i].clone()))
        return metrics

    while step < cfg.steps and stopped_at.count(None):
        inputs, targets, mask = data.next_block(device)
        n = len(inputs)
        width = [inputs.shape[-1]] * n
        if cfg.length_buckets:
            inputs, targets, mask, width = bucket_block(inputs, targets, mask, step // cfg.data_block)
        for j in range(n):
            factor.fill_(lr_factor(step, cfg))
            batch = [t[j][..., :width[j]] for t in (inputs, targets, mask)]
            if use_graph:
                if width[j] not in graphs:
                    static = [t.clone() for t in batch]
                    pool = pool or torch.cuda.graph_pool_handle()  # one memory pool for all widths: they
                    # replay one at a time, and each graph's output is read before the next replays
                    graphs[width[j]] = (*_capture(train_step, static, ens, opt, step_t, cfg.tf32, pool), static)
                graph, graph_out, static = graphs[width[j]]
                for s, x in zip(static, batch):
                    s.copy_(x)
                with _GRAPH_LOCK:
                    graph.replay()
                losses[step].copy_(graph_out)
            else:
                with _matmul_precision(cfg.tf32 and device.type == "cuda"):
                    losses[step].copy_(train_step(*batch))
            step += 1
        bar.update(n)
        if cfg.eval_every and step % cfg.eval_every == 0 and step < cfg.steps and any(eval_batches):
            metrics = run_eval()
            ens.train()
            if cfg.early_stop is not None:
                for i, m in enumerate(metrics):
                    if m is not None and stopped_at[i] is None and m[cfg.early_stop_metric] >= cfg.early_stop:
                        stopped_at[i] = step
                        active[i] = 0.0  # a stopped member's parameters no longer move
        if cfg.plateau_window and step % cfg.plateau_window == 0:
            history = losses[:step].T.float().cpu().numpy()
            done = set()
            for i in range(M):
                if stopped_at[i] is not None:
                    continue
                if plateau_at[i] is None:
                    plateau_at[i] = plateau_step(history[i], cfg.plateau_window, cfg.plateau_tol,
                                                 cfg.plateau_below)
                if plateau_at[i] is not None and step >= plateau_at[i] * (1 + cfg.plateau_factor):
                    done.add(i)
            # a member that stops here is scored at its last step (unless just evaluated),
            # since the final evaluation covers only the members still running
            fresh = {i for i in done if not (evals[i] and evals[i][-1]["step"] == step)}
            if fresh and any(eval_batches):
                run_eval(only=fresh)
                ens.train()
            for i in done:
                stopped_at[i] = step
                active[i] = 0.0
        if ckpt is not None and cfg.checkpoint_every and step % cfg.checkpoint_every == 0:
            ckpt.parent.mkdir(parents=True, exist_ok=True)
            torch.save({"model": ens.state_dict(), "opt": opt.state(), "step": step,
                        "evals": evals, "kept": kept, "stopped_at": stopped_at, "plateau_at": plateau_at,
                        "losses": losses[:step].cpu(),
                        "active": active.cpu(), "torch_rng": torch.get_rng_state(),
                        "wall_s": time.time() - t0}, ckpt.with_suffix(".tmp"))
            ckpt.with_suffix(".tmp").replace(ckpt)
    bar.close()
    data.close()
    if any(b is not None for b in eval_batches) and stopped_at.count(None):
        run_eval()
    ens.unstack_into(models)
    loss_hist = losses[:step].cpu().T.tolist()
    wall = time.time() - t0
    out = []
    for i in range(M):
        n_steps = stopped_at[i] or step
        hist = {"step": list(range(1, n_steps + 1)),
                "examples": [s * cfg.batch_size for s in range(1, n_steps + 1)],
                "train_loss": loss_hist[i][:n_steps], "eval": evals[i]}
        out.append({"history": hist, "final": evals[i][-1] if evals[i] else {}, "steps": n_steps,
                    "snapshots": pick_snapshots(kept[i], n_steps, cfg.snapshots),
                    "early_stopped": stopped_at[i] is not None, "plateau_at": plateau_at[i],
                    "wall_s": wall / M, "ensemble_wall_s": wall,
                    "members": M, "config": dataclasses.asdict(dataclasses.replace(cfg, lr=lrs[i]))})
    return out


@contextlib.contextmanager
def _matmul_precision(tf32: bool):
    """TF32 or full fp32 matmuls for what runs (or is captured) inside; the flag is global."""
    before = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = tf32
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32 = before


def pick_snapshots(kept: list[tuple], steps: int, fractions) -> dict[str, dict]:
    """The kept embedding rows nearest to each fraction of a run's `steps` (paper B's
    snapshots at 25/50/75/100% of training: a run that stops early is cut at its own end).
    A kept entry is (step, rows) or (step, rows, output-head rows or None)."""
    out = {}
    for f in fractions if kept else ():
        target = f * steps
        step, rows, *head = min(kept, key=lambda sr: (abs(sr[0] - target), sr[0]))
        out[f"{f:g}"] = {"step": step, "rows": rows}
        if head and head[0] is not None:
            out[f"{f:g}"]["out_rows"] = head[0]
    return out


# Ensembles capture and replay graphs from several threads at once (lib.sweeps): captures
# and replays take turns, and a capture's matmul precision is set while no one else captures.
_GRAPH_LOCK = threading.Lock()
_SIDE_STREAMS: dict[int, torch.cuda.Stream] = {}


def _side_stream() -> torch.cuda.Stream:
    """The one side stream of this device on which runs from the default stream capture.
    One for all captures, as torch.cuda.graph's default capture stream: the caching
    allocator reuses a freed block only on the stream that freed it, so graphs of several
    widths (length buckets) share their memory pool only if captured on one stream. With a
    new stream per capture, each width's warm-up and graph allocated afresh (likely why
    benchmark_b's one-ensemble sweep_buckets ran out of an H100's memory, 2026-12-07)."""
    device = torch.cuda.current_device()
    if device not in _SIDE_STREAMS:
        _SIDE_STREAMS[device] = torch.cuda.Stream()
    return _SIDE_STREAMS[device]


def _capture(train_step, static, ens, opt, step_t, tf32: bool, pool=None):
    """Capture one training step as a CUDA graph (PyTorch's whole-network recipe), to be
    replayed on the current stream. The warm-up steps it needs are undone, so the first
    replay is step one.

    Warm-up and capture run on the current stream, which must be this thread's alone
    (lib.sweeps gives each training thread its own): torch.cuda.Stream() hands out streams
    from a shared pool of 32, so a stream made here could be one another thread is using.
    Only a run on the default stream gets a side stream (`_side_stream`), as it is then the
    only one training."""
    if torch.cuda.current_stream() == torch.cuda.default_stream():
        side = _side_stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            out = _capture(train_step, static, ens, opt, step_t, tf32, pool)
        torch.cuda.current_stream().wait_stream(side)
        return out
    state = [ens.flat, opt.m, opt.v, opt.t, step_t]
    saved = [t.clone() for t in state]
    # Warm-up runs under the lock too: Triton's autotuner (Mamba-2's kernels) synchronizes
    # the device the first time it meets a kernel configuration, which fails while another
    # thread captures. One evaluation-mode fp32 forward tunes what evaluation will meet.
    with _GRAPH_LOCK:
        for _ in range(2):
            train_step(*static)
        with torch.no_grad():
            for t, s in zip(state, saved):
                t.copy_(s)
            ens.eval()
            ens(static[0][:, :1])
            ens.train()
        torch.cuda.current_stream().synchronize()
    # The raw API: torch.cuda.graph() would synchronize the whole device, which breaks
    # captures running in other threads at the same time.
    graph = torch.cuda.CUDAGraph()
    with _GRAPH_LOCK, _matmul_precision(tf32):
        graph.capture_begin(pool=pool, capture_error_mode="thread_local")
        try:
            out = train_step(*static)
        finally:
            graph.capture_end()
    return graph, out


def plateau_step(losses, window: int, tol: float, below: float | None = None) -> int | None:
    """The first step at which a training loss has plateaued, or None: the end of the
    first window (of `window` steps, windows back to back from step 0) whose mean loss is
    less than `tol` (relative) below the previous window's mean, and, with `below`, under
    that level. INFERRED: paper A trains "to convergence, with 4x the compute after the
    loss plateaus" without saying how a plateau is detected; the test is ours."""
    losses = np.asarray(losses, dtype=float)
    means = [losses[k:k + window].mean() for k in range(0, len(losses) - window + 1, window)]
    for k in range(1, len(means)):
        if not means[k] < means[k - 1] * (1 - tol) and (below is None or means[k] < below):
            return (k + 1) * window
    return None


def train(model: torch.nn.Module, task: Task, cfg: TrainConfig, *, seed: int, eval_batch: Batch | None = None,
          device="auto", checkpoint: str | Path | None = None, progress: bool = True,
          desc: str = "train") -> dict:
    """Train one model: an ensemble of one. Returns its history and final metrics; the
    same seed gives the same data stream and (on the CPU) the same curves."""
    return train_ensemble([model], [task], cfg, seeds=[seed], lrs=[cfg.lr], eval_batches=[eval_batch],
                          device=device, checkpoint=checkpoint, progress=progress, desc=desc)[0]


# Paper A's learning-rate trials (spec A.4), as the authors' micro_hf code runs them
# (main.py's --auto_lr, train_utils.train(one_epoch=True)): each candidate trains the first
# epoch (1,000 steps) of the real run's 4,000-step schedule, warm-up and linear decay exactly
# as in the run (the scheduler is built for all epochs, training stops after one); a trial
# scores the mean of its training losses over those steps (train_epoch's avg_loss); the
# whole grid is tried twice and the single trial with the lowest score gives the learning
# rate (losses.sort() over (loss, lr) pairs: an exact tie goes to the smaller lr).
# We add a tolerance to that tie rule: adjacent grid values often score within 0.1% of
# each other, and float rounding (another packing of the ensembles, another GPU) flipped
# such picks between reruns.
LR_TIE_RTOL = 1e-3
# Names the trial rule in the key of every chosen learning rate (lib.results.lr_key),
# so that rates chosen under an earlier rule are chosen again rather than reused.
TRIAL_RULE = "run-schedule prefix, mean loss, best single trial"


def trial_loss(result: dict) -> float:
    """Paper A's learning-rate criterion: a trial's mean training loss over all its steps
    (inf if any is not finite)."""
    losses = result["history"]["train_loss"]
    return float(np.mean(losses)) if len(losses) and np.all(np.isfinite(losses)) else math.inf


def lr_trials(grid: list[float], repeats: int, seed: int = 0) -> list[tuple[float, int]]:
    """(lr, seed) of paper A's learning-rate trials: every candidate `repeats` times, with
    trial seeds seed + 1000, seed + 2000, ... (never a run's own seed)."""
    return [(float(lr), seed + 1000 * (r + 1)) for lr in grid for r in range(repeats)]


def trial_config(cfg: TrainConfig, trial_steps: int) -> TrainConfig:
    """A trial trains the first `trial_steps` steps of the run's own schedule (warm-up and
    decay over the run's cfg.horizon steps, not squeezed into the trial), without evaluation."""
    steps = min(int(trial_steps), cfg.steps)
    return dataclasses.replace(cfg, steps=steps, schedule_steps=cfg.horizon, eval_every=0, early_stop=None,
                               checkpoint_every=0, data_block=min(cfg.data_block, steps))


def pick_lr(losses: dict[float, list[float]], rtol: float = LR_TIE_RTOL) -> tuple[float, dict[float, float]]:
    """The learning rate of the single best trial: the lowest trial_loss over every candidate
    and repeat. Tie rule: among the candidates whose best trial is within `rtol` (relative)
    of that lowest loss, the smallest lr. The choice depends only on the losses, not on
    their order. Returns (lr, best trial loss per candidate)."""
    best = {float(lr): min((float(x) for x in v), default=math.inf) for lr, v in losses.items()}
    if not best:
        raise ValueError("pick_lr needs at least one candidate")
    lowest = min(best.values())
    if not math.isfinite(lowest):  # every trial diverged: the smallest lr
        return min(best), best
    return min(lr for lr, x in best.items() if x <= lowest + rtol * abs(lowest)), best


def choose_lr(make_model, task: Task, cfg: TrainConfig, grid: list[float], *, trial_steps: int,
              repeats: int = 1, seed: int = 0, device="auto", progress: bool = False) -> tuple[float, dict]:
    """Paper A's auto-lr (spec A.4) for one configuration: train each candidate `repeats`
    times for the first `trial_steps` steps of the run's schedule (trial_config; all trials
    as one ensemble), score each trial by its mean training loss (trial_loss) and keep the
    lr of the best one (pick_lr). Returns (lr, best trial loss per candidate).
    The sweep runner does the same for many configurations at once."""
    if len(grid) == 1:
        return float(grid[0]), {}
    trials = lr_trials(grid, repeats, seed)
    results = train_ensemble([make_model(s) for _, s in trials], [task] * len(trials),
                             trial_config(cfg, trial_steps), seeds=[s for _, s in trials],
                             lrs=[lr for lr, _ in trials], device=device, progress=progress, desc="lr trials")
    per_lr: dict[float, list[float]] = {}
    for (lr, _), res in zip(trials, results):
        per_lr.setdefault(lr, []).append(trial_loss(res))
    return pick_lr(per_lr)
