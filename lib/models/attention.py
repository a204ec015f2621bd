"""A GPT-NeoX layer: parallel residual h + Attn(LN1 h) + MLP(LN2 h), partial RoPE
(rotary_pct = 0 gives NoPE) and an optional sliding-window causal mask.

Parameter names and the fused query_key_value layout follow transformers'
GPTNeoXLayer, so a state_dict moves between the two (tests use it as an oracle).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

ACTIVATIONS = {"silu": nn.SiLU, "gelu": nn.GELU}


def make_norm(kind: str, d: int, eps: float = 1e-5) -> nn.Module:
    if kind == "layernorm":
        return nn.LayerNorm(d, eps=eps)
    if kind == "rmsnorm":
        return nn.RMSNorm(d, eps=eps)
    raise ValueError(f"unknown norm {kind!r}; use 'layernorm' or 'rmsnorm'")


def window_mask(length: int, window: int | None, device=None) -> torch.Tensor:
    """Bool [L, L]: query i sees key j iff 0 <= i - j < window (causal when window is None)."""
    i = torch.arange(length, device=device)
    rel = i[:, None] - i[None, :]
    allowed = rel >= 0
    if window is not None:
        allowed &= rel < window
    return allowed


def rotary_dims(head_size: int, rotary_pct: float) -> int:
    """int(head_size * pct), as in GPT-NeoX and paper A's code: odd counts included (paper
    A's d = 4, 12, 20 with one head give 1, 3, 5 rotated dims; apply_rope says how)."""
    return int(head_size * rotary_pct)


def apply_rope(x: torch.Tensor, n_rot: int, base: float) -> torch.Tensor:
    """x: [B, H, L, hs]; rotate the first n_rot dims, GPT-NeoX's rotate-half convention.

    With n = n_rot, h = n // 2, c = n - h, position t and f_j = base^(-2j/n) (j < c), the
    angle table is cat(f, f) * t trimmed to its first n columns, and
    out = x * cos + cat(-x[h:], x[:h]) * sin over the first n dims, that is
        out[i] = x[i] cos(f_i t) - x[i + h] sin(f_i t)          for i < c,
        out[i] = x[i] cos(f_{i-c} t) + x[i - c] sin(f_{i-c} t)  for c <= i < n.
    Even n (c = h): GPT-NeoX's rotary embedding, dims i and i + n/2 rotated as a pair.
    Odd n: paper A's code (micro_hf/models/rope.py, whose RotaryEmbedding drops the table's
    last column when its dim is odd, the rest being GPT-NeoX's): the shifts h and c differ,
    so no dims pair up and the map is not a rotation (it does not keep norms); at n = 1 it
    is out[0] = x[0] (cos t - sin t), a scale that depends on the position."""
    if n_rot == 0:
        return x
    L = x.shape[-2]
    inv_freq = 1.0 / (base ** (torch.arange(0, n_rot, 2, device=x.device, dtype=torch.float32) / n_rot))
    freqs = torch.outer(torch.arange(L, device=x.device, dtype=torch.float32), inv_freq)
    emb = torch.cat([freqs, freqs], dim=-1)[..., :n_rot]  # ceil(n/2) * 2 columns, trimmed to n
    cos, sin = emb.cos().to(x.dtype), emb.sin().to(x.dtype)
    rot, keep = x[..., :n_rot], x[..., n_rot:]
    half = n_rot // 2
    rotated = torch.cat([-rot[..., half:], rot[..., :half]], dim=-1)
    return torch.cat([rot * cos + rotated * sin, keep], dim=-1)


class Attention(nn.Module):
    def __init__(self, d: int, heads: int = 1, window: int | None = None,
                 rotary_pct: float = 0.25, rotary_base: float = 10000.0):
        super().__init__()
        if d % heads:
            raise ValueError(f"width {d} is not divisible by {heads} heads")
        self.heads, self.head_size, self.window = heads, d // heads, window
        self.n_rot, self.rotary_base = rotary_dims(d // heads, rotary_pct), rotary_base
        self.query_key_value = nn.Linear(d, 3 * d)
        self.dense = nn.Linear(d, d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, L, d = x.shape
        qkv = self.query_key_value(x).view(B, L, self.heads, 3 * self.head_size).transpose(1, 2)
        q, k, v = qkv.chunk(3, dim=-1)
        q, k = apply_rope(q, self.n_rot, self.rotary_base), apply_rope(k, self.n_rot, self.rotary_base)
        if self.window is None:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        else:
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=window_mask(L, self.window, x.device))
        return self.dense(y.transpose(1, 2).reshape(B, L, d))


class MLP(nn.Module):
    def __init__(self, d: int, ratio: float = 4, act: str = "gelu"):
        super().__init__()
        hidden = int(ratio * d)
        self.dense_h_to_4h = nn.Linear(d, hidden)
        self.act = ACTIVATIONS[act]()
        self.dense_4h_to_h = nn.Linear(hidden, d)

    def forward(self, x):
        return self.dense_4h_to_h(self.act(self.dense_h_to_4h(x)))


class AttentionLayer(nn.Module):
    """GPT-NeoX parallel-residual layer; returns h + attn + mlp."""

    def __init__(self, d: int, heads: int = 1, window: int | None = None, rotary_pct: float = 0.25,
                 rotary_base: float = 10000.0, mlp_ratio: float = 4, mlp_act: str = "gelu",
                 norm: str = "layernorm", norm_eps: float = 1e-5):
        super().__init__()
        self.input_layernorm = make_norm(norm, d, norm_eps)
        self.post_attention_layernorm = make_norm(norm, d, norm_eps)
        self.attention = Attention(d, heads, window, rotary_pct, rotary_base)
        self.mlp = MLP(d, mlp_ratio, mlp_act)

    def forward(self, h):
        return h + self.attention(self.input_layernorm(h)) + self.mlp(self.post_attention_layernorm(h))
