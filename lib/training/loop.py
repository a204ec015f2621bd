"""One training loop for every experiment of both papers.

Data stream from the task's seeded generator; the loss is the masked
cross-entropy of logits[t] against targets[t] (tasks lay out paper A's unshifted
seq-to-seq targets and paper B's next-token response targets themselves).
AdamW, warm-up then linear or cosine decay, gradient clipping, periodic
evaluation with early stopping, checkpoint and resume.
"""
from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from ..tasks import Batch, Task, rng_for
from .metrics import evaluate


@dataclass
class TrainConfig:
    steps: int = 4000
    batch_size: int = 8
    lr: float = 1e-3
    weight_decay: float = 0.1
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    warmup: float = 100  # steps, or a fraction of `steps` when below 1
    schedule: str = "linear"  # linear | cosine | constant (after warm-up)
    clip: float = 1.0
    eval_every: int = 0  # steps between evaluations; 0 = only at the end
    eval_batch_size: int = 512
    early_stop: float | None = None  # stop once the eval `early_stop_metric` reaches this
    early_stop_metric: str = "token_acc"
    checkpoint_every: int = 0  # steps; 0 = never (needs a checkpoint path)
    amp: str | None = None  # "bf16" for autocast on CUDA

    def validate(self):
        if self.steps < 1 or self.batch_size < 1:
            raise ValueError(f"steps and batch_size must be positive, got {self.steps}, {self.batch_size}")
        if self.schedule not in ("linear", "cosine", "constant"):
            raise ValueError(f"unknown schedule {self.schedule!r}; use linear, cosine or constant")
        if not self.lr > 0:
            raise ValueError(f"lr must be positive, got {self.lr}")

    @property
    def warmup_steps(self) -> int:
        return int(self.warmup * self.steps) if self.warmup < 1 else int(self.warmup)


def lr_factor(step: int, cfg: TrainConfig) -> float:
    """Multiplier of the peak learning rate after `step` optimizer steps (HF semantics)."""
    w = cfg.warmup_steps
    if step < w:
        return step / max(1, w)
    if cfg.schedule == "constant":
        return 1.0
    progress = (step - w) / max(1, cfg.steps - w)
    if cfg.schedule == "linear":
        return max(0.0, 1.0 - progress)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def masked_loss(logits: torch.Tensor, batch: Batch) -> torch.Tensor:
    """Mean cross-entropy over the masked positions."""
    if not batch.mask.any():
        return logits.sum() * 0.0
    return F.cross_entropy(logits[batch.mask].float(), batch.targets[batch.mask])


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def train(model: torch.nn.Module, task: Task, cfg: TrainConfig, *, seed: int, eval_batch: Batch | None = None,
          device="auto", checkpoint: str | Path | None = None, progress: bool = True,
          desc: str = "train") -> dict:
    """Train `model` on a stream from `task`; return the history and final metrics.

    The same seed gives the same data stream and (on the CPU) the same curves.
    With `checkpoint`, state is saved every `cfg.checkpoint_every` steps and a run
    that finds its checkpoint continues from it."""
    cfg.validate()
    device = resolve_device(device)
    model.to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, betas=cfg.betas, eps=cfg.eps,
                            weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(s, cfg))
    rng = rng_for(seed, f"{task.key()}/train")
    torch.manual_seed(seed)  # dropout
    hist = {"step": [], "examples": [], "train_loss": [], "eval": []}
    step, t0 = 0, time.time()
    ckpt = Path(checkpoint) if checkpoint else None
    if ckpt is not None and ckpt.exists():
        state = torch.load(ckpt, map_location=device, weights_only=False)
        model.load_state_dict(state["model"]), opt.load_state_dict(state["opt"])
        sched.load_state_dict(state["sched"])
        rng.bit_generator.state, step, hist = state["rng"], state["step"], state["hist"]
        torch.set_rng_state(state["torch_rng"])

    def run_eval():
        m = evaluate(model, eval_batch, batch_size=cfg.eval_batch_size, device=device)
        hist["eval"].append({"step": step, "examples": step * cfg.batch_size, **m})
        return m

    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if cfg.amp == "bf16" and device.type == "cuda" \
        else torch.autocast("cpu", enabled=False)
    bar = tqdm(total=cfg.steps, initial=step, desc=desc, disable=not progress, leave=False)
    stopped = False
    model.train()
    while step < cfg.steps:
        batch = task.sample(rng, cfg.batch_size).to(device)
        with autocast:
            loss = masked_loss(model(batch.inputs), batch)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.clip)
        opt.step()
        sched.step()
        step += 1
        hist["step"].append(step), hist["examples"].append(step * cfg.batch_size)
        hist["train_loss"].append(float(loss.detach()))
        bar.update(1)
        if eval_batch is not None and cfg.eval_every and step % cfg.eval_every == 0 and step < cfg.steps:
            m = run_eval()
            model.train()
            bar.set_postfix({cfg.early_stop_metric: f"{m[cfg.early_stop_metric]:.3f}"})
            if cfg.early_stop is not None and m[cfg.early_stop_metric] >= cfg.early_stop:
                stopped = True
                break
        if ckpt is not None and cfg.checkpoint_every and step % cfg.checkpoint_every == 0:
            ckpt.parent.mkdir(parents=True, exist_ok=True)
            torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict(),
                        "rng": rng.bit_generator.state, "step": step, "hist": hist,
                        "torch_rng": torch.get_rng_state()}, ckpt.with_suffix(".tmp"))
            ckpt.with_suffix(".tmp").replace(ckpt)
    bar.close()
    final = run_eval() if eval_batch is not None and not stopped else (hist["eval"][-1] if stopped else {})
    return {"history": hist, "final": final, "steps": step, "early_stopped": stopped,
            "wall_s": time.time() - t0, "config": dataclasses.asdict(cfg)}


def choose_lr(make_model, task: Task, cfg: TrainConfig, grid: list[float], *, trial_steps: int,
              repeats: int = 1, seed: int = 0, device="auto", progress: bool = False) -> tuple[float, dict]:
    """Paper A's auto-lr (spec A.4): train each candidate for `trial_steps` with the
    run's schedule, `repeats` times; keep the one with the lowest final training loss
    (mean over the last tenth of the trial, then over repeats). Returns (lr, losses)."""
    if len(grid) == 1:
        return float(grid[0]), {}
    losses = {}
    for lr in grid:
        finals = []
        for r in range(repeats):
            trial = dataclasses.replace(cfg, lr=float(lr), steps=trial_steps, eval_every=0, early_stop=None,
                                        checkpoint_every=0)
            out = train(make_model(seed + 1000 * (r + 1)), task, trial, seed=seed + 1000 * (r + 1),
                        device=device, progress=progress, desc=f"lr {lr:.2g}")
            tail = out["history"]["train_loss"][-max(1, trial_steps // 10):]
            finals.append(float(np.mean(tail)) if np.all(np.isfinite(tail)) else math.inf)
        losses[float(lr)] = float(np.mean(finals))
    best = min(losses, key=lambda k: (losses[k], k))
    return best, losses
