"""Evaluation: masked token accuracy (paper A's char_acc), exact match of the
response (teacher-forced), and greedy decoding of the response (paper B)."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..tasks import Batch


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
        logits = model(b.inputs).float()
        right = (logits.argmax(-1) == b.targets) & b.score
        n_scored = b.score.sum(1)
        acc.append(torch.where(n_scored > 0, right.sum(1) / n_scored.clamp(min=1), 1.0))
        exact.append((right.sum(1) == n_scored).float())
        if b.mask.any():
            loss_sum += F.cross_entropy(logits[b.mask], b.targets[b.mask], reduction="sum").item()
            loss_n += int(b.mask.sum())
    model.train(was_training)
    return {"token_acc": torch.cat(acc).mean().item(), "exact_match": torch.cat(exact).mean().item(),
            "loss": loss_sum / max(loss_n, 1)}


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
