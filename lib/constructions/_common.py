"""Pieces both constructions share: +-1 binary token codes, the RoPE frequency the
attention layers look back with, and an evaluator for the last position."""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

SILU1 = float(F.silu(torch.tensor(1.0, dtype=torch.float64)))  # SiLU(1), the constant channel's value
BIG = 300.0  # |pre-softplus dt|: dt = 300 on "write" tokens, softplus(-300) <= e^-300 elsewhere


def n_bits(n: int) -> int:
    """Bits of a binary code for n distinct items (at least 1)."""
    return max(1, math.ceil(math.log2(n)))


def pm1_codes(n: int, bits: int) -> torch.Tensor:
    """[n, bits] float64: row t is the binary expansion of t (MSB first) with 0 -> -1, 1 -> +1.
    Distinct rows, all of squared norm `bits`; for y with no zero entry, argmax_t code_t . y
    is the unique t with code_t = sign(y)."""
    t = torch.arange(n)[:, None]
    b = (t >> torch.arange(bits - 1, -1, -1)[None, :]) & 1
    return (2.0 * b - 1.0).double()


def rope_settings(head_size: int, theta: float) -> tuple[float, float, float]:
    """(rotary_pct, rotary_base, theta_used) such that the attention layer rotates exactly
    the first 4 dims of each head: pair (0, 2) at frequency 1 rad (GPT-NeoX's first
    frequency is always base^0 = 1) and pair (1, 3) at frequency `theta`. theta_used is
    that frequency computed with the layer's own float32 formula, so the codes we put in
    the embedding rotate in step with the layer."""
    if head_size < 5:
        raise ValueError("the constructions need a head size of at least 5")
    pct = 4.5 / head_size  # int(head_size * pct) // 2 * 2 == 4
    base = float(theta ** -2.0)  # base^(-2/4) = theta
    inv_freq = 1.0 / (base ** (torch.arange(0, 4, 2, dtype=torch.float32) / 4))
    return pct, base, float(inv_freq[1])


def rms_scale(sq_norm: float, d: int, eps: float) -> float:
    """RMSNorm divides a vector of squared norm sq_norm (width d) by this."""
    return math.sqrt(sq_norm / d + eps)


@torch.no_grad()
def last_position_predictions(model, inputs: torch.Tensor, batch: int = 500,
                              dtype=torch.float64) -> torch.Tensor:
    """argmax of the model's logits at the last position, evaluated in batches."""
    model = model.to(dtype).eval()
    out = []
    for i in range(0, len(inputs), batch):
        out.append(model(inputs[i:i + batch])[:, -1].argmax(-1))
    return torch.cat(out)


def batch_size_for(length: int, budget: float = 4e7) -> int:
    """Examples per forward so the [B, L, L] attention scores stay within ~budget entries."""
    return int(max(1, min(1000, budget // (length * length))))


def as_numpy(x) -> np.ndarray:
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
