"""Models on paper A's Thm 3.7 witness pairs (the pairs: lib/tasks/witness.py).

A stack of attention layers (no SSM layer) with windows W_1..W_k reads, at the last position,
the last sum_i (W_i - 1) + 1 tokens (`receptive_field`; our window W covers the query and the
W - 1 tokens before it, spec A.3). When that is at most R - 1, the shared suffix of a witness
pair, Thm 3.7 binds the model (`is_bound`): it computes bit-identical logits on both members
(each member set runs as its own batch, row for row, in fp32 or wider) and cannot beat 1/2 on
the pairs. `witness_eval` measures it; lib/training/final_tests.py runs it as the final test
`witness` on every trained run that asks for it (A-fig14, A-fig15), and
lib/claims/paper_a_theory.py on untrained and constructed models and in the claim rule.
"""
from __future__ import annotations

import copy
import math

import numpy as np
import torch

from ..tasks import Task
from ..tasks.witness import WitnessPairs, dependency_range


def attention_only(cfg) -> bool:
    return all(name == "attn" for name in cfg.layers)


def sum_windows(cfg, length: int) -> int | None:
    """sum_i W_i over attention layers (a full-attention layer counts L); None with an SSM layer."""
    if not attention_only(cfg):
        return None
    w = length if cfg.window is None else min(cfg.window, length)
    return len(cfg.layers) * w


def receptive_field(cfg, length: int) -> int | None:
    """Tokens the last position of an attention-only stack can read: sum_i (W_i - 1) + 1
    (capped at L); None (unbounded) as soon as one layer is an SSM."""
    if not attention_only(cfg):
        return None
    w = length if cfg.window is None else min(cfg.window, length)
    return min(length, len(cfg.layers) * (w - 1) + 1)


def is_bound(cfg, task: Task) -> bool:
    """Thm 3.7 applies: attention only, and the last position reads at most the shared R - 1 tokens."""
    rf = receptive_field(cfg, task.length)
    return rf is not None and rf <= dependency_range(task) - 1


@torch.no_grad()
def _last_logits(model, x: np.ndarray, batch: int, dtype) -> torch.Tensor:
    was = model.training
    model.eval()
    p = next(model.parameters())
    out = []
    for i in range(0, len(x), batch):
        ids = torch.as_tensor(x[i:i + batch], dtype=torch.long, device=p.device)
        with torch.autocast(p.device.type, enabled=False):
            out.append(model(ids)[:, -1].to(dtype).cpu())
    model.train(was)
    return torch.cat(out)


def witness_eval(model, task: Task, pairs: WitnessPairs, batch: int = 500) -> dict:
    """A model's answers at the last position of both members of every pair. Each member set is
    run as its own batch, row i at the same place in both, so a model that reads only the shared
    suffix computes bit-identical logits on the two. Logits in fp32, or the model's float64: a
    half-precision model is evaluated on an fp32 copy, autocast off. acc: the mean over both
    members; se: its standard error over pairs (per-pair score 0, 1/2 or 1); agree: pairs
    answered alike; max_logit_gap: the largest difference of the two members' logits (0.0 on
    every pair for a bound model)."""
    dtype = next(model.parameters()).dtype
    if dtype not in (torch.float32, torch.float64):
        model, dtype = copy.deepcopy(model).float(), torch.float32
    la, lb = _last_logits(model, pairs.x, batch, dtype), _last_logits(model, pairs.x2, batch, dtype)
    pa, pb = la.argmax(-1).numpy(), lb.argmax(-1).numpy()
    score = ((pa == pairs.y).astype(float) + (pb == pairs.y2)) / 2
    n = len(pairs)
    cfg = model.cfg
    return {"n_pairs": n, "acc": float(score.mean()),
            "se": float(score.std(ddof=1) / math.sqrt(n)) if n > 1 else float("nan"),
            "agree": float((pa == pb).mean()), "both_right": float(((pa == pairs.y) & (pb == pairs.y2)).mean()),
            "max_logit_gap": float((la - lb).abs().max()), "R": pairs.R,
            "sum_windows": sum_windows(cfg, task.length), "receptive_field": receptive_field(cfg, task.length),
            "bound": is_bound(cfg, task)}


__all__ = ["attention_only", "is_bound", "receptive_field", "sum_windows", "witness_eval"]
