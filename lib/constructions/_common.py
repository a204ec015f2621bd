"""Pieces both constructions share: +-1 binary token codes, the RoPE frequency the
attention layers look back with, and an evaluator for the last position."""
from __future__ import annotations

import math

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


def base_embedding(E: torch.Tensor, rows: dict, codes: torch.Tensor) -> None:
    """The rows both constructions share: a constant 1, a +-1 indicator (set to -1 here;
    each builder raises it on its special tokens), a filler 1 that keeps token norms equal,
    and the +-1 token code u."""
    E[:, rows["const"]] = 1.0
    E[:, rows["ind"]] = -1.0
    E[:, rows["fill"]] = 1.0
    E[:, rows["u"]] = codes


def rope_settings(head_size: int, theta: float) -> tuple[float, float, float]:
    """(rotary_pct, rotary_base, theta_used) such that the attention layer rotates exactly
    the first 4 dims of each head: pair (0, 2) at frequency 1 rad (GPT-NeoX's first
    frequency is always base^0 = 1) and pair (1, 3) at frequency `theta`. theta_used is
    that frequency computed with the layer's own float32 formula, so the codes we put in
    the embedding rotate in step with the layer."""
    if head_size < 5:
        raise ValueError("the constructions need a head size of at least 5")
    pct = 4.5 / head_size  # int(head_size * pct) == 4
    base = float(theta ** -2.0)  # base^(-2/4) = theta
    inv_freq = 1.0 / (base ** (torch.arange(0, 4, 2, dtype=torch.float32) / 4))
    return pct, base, float(inv_freq[1])


def rms_scale(sq_norm: float, d: int, eps: float) -> float:
    """RMSNorm divides a vector of squared norm sq_norm (width d) by this."""
    return math.sqrt(sq_norm / d + eps)


@torch.no_grad()
def last_position_logits(model, ids: torch.Tensor) -> torch.Tensor:
    """The model's logits at the LAST position only, [B, vocab]: the same modules and
    weights as model.forward, but the final attention layer evaluates just the last
    query (O(L) instead of O(L^2) per example). tests/test_constructions.py checks it
    against model(ids)[:, -1]."""
    from ..models.attention import AttentionLayer, apply_rope

    last = model.layers[-1]
    if not isinstance(last, AttentionLayer):
        raise ValueError("last_position_logits needs a model whose last layer is attention")
    h = model.dropout(model.embed(ids))
    for layer in model.layers[:-1]:
        h = layer(h)
    att = last.attention
    B, L, d = h.shape
    qkv = att.query_key_value(last.input_layernorm(h)).view(B, L, att.heads, 3 * att.head_size).transpose(1, 2)
    q, k, v = qkv.chunk(3, dim=-1)
    q, k = apply_rope(q, att.n_rot, att.rotary_base), apply_rope(k, att.n_rot, att.rotary_base)
    w = L if att.window is None else min(att.window, L)
    q, k, v = q[:, :, -1:], k[:, :, -w:], v[:, :, -w:]
    scores = (q @ k.transpose(-1, -2)) / math.sqrt(att.head_size)
    y = torch.softmax(scores, dim=-1) @ v  # [B, H, 1, hs]
    y = att.dense(y.transpose(1, 2).reshape(B, 1, d))[:, 0]
    hl = h[:, -1]
    out = hl + y + last.mlp(last.post_attention_layernorm(hl))
    return model.head(model.norm(out))[..., : model.vocab_size]


@torch.no_grad()
def last_position_predictions(model, inputs: torch.Tensor, batch: int = 1000, full: bool = False,
                              dtype=torch.float64) -> torch.Tensor:
    """argmax of the model's logits at the last position, evaluated in batches
    (full=True runs the whole model.forward, else last_position_logits)."""
    if next(model.parameters()).dtype != dtype:  # never round the float64 weights in place
        import copy
        model = copy.deepcopy(model).to(dtype)
    model.eval()
    out = []
    for i in range(0, len(inputs), batch):
        x = inputs[i:i + batch]
        logits = model(x)[:, -1] if full else last_position_logits(model, x)
        out.append(logits.argmax(-1))
    return torch.cat(out)
