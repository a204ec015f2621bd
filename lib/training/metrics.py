"""Evaluation: masked token accuracy (paper A's char_acc), exact match of the
response (teacher-forced), and greedy decoding of the response (paper B)."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ..tasks import Batch


def _score(logits: torch.Tensor, b: Batch):
    """Per example: token accuracy over the scored positions (1 if none, as in paper A's
    code) and exact match; plus the summed cross-entropy over the loss mask and its count."""
    right = (logits.argmax(-1) == b.targets) & b.score
    n_scored = b.score.sum(-1)
    acc = torch.where(n_scored > 0, right.sum(-1) / n_scored.clamp(min=1), 1.0)
    exact = (right.sum(-1) == n_scored).float()
    ce = F.cross_entropy(logits.flatten(0, -2), b.targets.flatten(), reduction="none").view(b.mask.shape)
    return acc, exact, (ce * b.mask).sum(-1), b.mask.sum(-1)


@torch.no_grad()
def evaluate(model, batch: Batch, batch_size: int = 512, device=None) -> dict:
    """Teacher-forced metrics over the score positions of every example.
    token_acc: mean over examples of the fraction of scored tokens right (an example
    with nothing to score counts as right, as in paper A's code); exact_match: all of
    an example's scored tokens right; loss: mean cross-entropy over the loss mask."""
    was_training = model.training
    model.eval()
    device = device or next(model.parameters()).device
    acc, exact, loss_sum, loss_n = [], [], 0.0, 0
    for s in range(0, len(batch), batch_size):
        b = batch[s:s + batch_size].to(device)
        a, e, ls, ln = _score(model(b.inputs).float(), b)
        acc.append(a), exact.append(e)
        loss_sum, loss_n = loss_sum + ls.sum().item(), loss_n + int(ln.sum())
    model.train(was_training)
    return {"token_acc": torch.cat(acc).mean().item(), "exact_match": torch.cat(exact).mean().item(),
            "loss": loss_sum / max(loss_n, 1)}


EVAL_CHUNK_TOKENS = 1 << 20  # ~2 GB per Mamba activation of width 512 in fp32


@torch.no_grad()
def evaluate_ensemble(ens, batches: list[Batch | None], batch_size: int = 512,
                      by: str | None = None) -> list[dict | None]:
    """`evaluate` for every member of an ensemble at once, each on its own evaluation
    set (all of one size); None where a member has none. With `by`, a per-example
    metadata key holding small integers (e.g. paper B's target position), each member's
    metrics also hold `exact_by_<by>`: exact match per value 0..max (None where no example)."""
    present = [b for b in batches if b is not None]
    if not present:
        return [None] * len(batches)
    if len({tuple(b.inputs.shape) for b in present}) > 1:
        raise ValueError("an ensemble's evaluation sets must have one shape")
    was_training = ens.training
    ens.eval()
    device = next(ens.parameters()).device
    filled = [b if b is not None else present[0] for b in batches]
    stack = lambda f: torch.stack([getattr(b, f) for b in filled]).to(device)  # noqa: E731
    full = Batch(stack("inputs"), stack("targets"), stack("mask"), {}, stack("score"))
    n = full.inputs.shape[1]
    # chunk so that one chunk's logits stay near batch_size examples' worth per member, and
    # a chunk of a large ensemble of long sequences holds at most EVAL_CHUNK_TOKENS tokens
    M, L = full.inputs.shape[0], full.inputs.shape[2]
    step = max(1, min(batch_size // max(1, M // 8), EVAL_CHUNK_TOKENS // (M * L)))
    parts = []
    for s in range(0, n, step):
        b = Batch(full.inputs[:, s:s + step], full.targets[:, s:s + step], full.mask[:, s:s + step], {},
                  full.score[:, s:s + step])
        parts.append(_score(ens(b.inputs).float(), b))
    acc, exact, ls, ln = (torch.cat([p[k] for p in parts], dim=1) for k in range(4))
    ens.train(was_training)
    out = [{"token_acc": acc[i].mean().item(), "exact_match": exact[i].mean().item(),
            "loss": ls[i].sum().item() / max(int(ln[i].sum()), 1)} for i in range(len(batches))]
    if by is not None:
        for o, b, e in zip(out, filled, exact.cpu().numpy()):
            o[f"exact_by_{by}"] = per_value(b.meta[by], e)
    return [o if b is not None else None for o, b in zip(out, batches)]


def per_value(keys, values) -> list[float | None]:
    """Mean of `values` for each integer key 0..max(keys), None where a key never occurs."""
    keys = np.asarray(keys, dtype=np.int64)
    n = np.bincount(keys, minlength=keys.max() + 1)
    total = np.bincount(keys, weights=np.asarray(values, dtype=np.float64), minlength=len(n))
    return [round(float(t / c), 6) if c else None for t, c in zip(total, n)]


@torch.no_grad()
def greedy_decode(model, prompts: torch.Tensor, k: int, batch_size: int = 512, device=None) -> torch.Tensor:
    """Append k argmax tokens to each prompt (all prompts of one length); returns [B, k]."""
    was_training = model.training
    model.eval()
    device = device or next(model.parameters()).device
    outs = []
    for s in range(0, len(prompts), batch_size):
        seq = prompts[s:s + batch_size].to(device)
        for _ in range(k):
            nxt = model(seq)[:, -1].argmax(-1, keepdim=True)
            seq = torch.cat([seq, nxt], dim=1)
        outs.append(seq[:, -k:].cpu())
    model.train(was_training)
    return torch.cat(outs)


def response(batch: Batch, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(prompts, expected k tokens) of a next-token batch whose examples share a prompt length."""
    plen = batch.meta["prompt_len"]
    if len(set(plen.tolist())) != 1:
        raise ValueError("greedy evaluation needs examples of one prompt length; evaluate each length apart")
    P = int(plen[0])
    return batch.inputs[:, :P], batch.targets[:, P - 1:P - 1 + k]


def greedy_exact_match(model, batch: Batch, k: int, **kw) -> float:
    prompts, expected = response(batch, k)
    return (greedy_decode(model, prompts, k, **kw) == expected).all(1).float().mean().item()
