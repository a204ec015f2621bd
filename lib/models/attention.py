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
    # int(head_size * pct) as in GPT-NeoX, rounded down to even: at paper A's tiny
    # widths an odd count (d=4 gives 1) cannot be rotated in pairs and is left as is.
    return int(head_size * rotary_pct) // 2 * 2


def apply_rope(x: torch.Tensor, n_rot: int, base: float) -> torch.Tensor:
    """x: [B, H, L, hs]; rotate the first n_rot dims, GPT-NeoX's rotate-half convention."""
    if n_rot == 0:
        return x
    L = x.shape[-2]
    inv_freq = 1.0 / (base ** (torch.arange(0, n_rot, 2, device=x.device, dtype=torch.float32) / n_rot))
    freqs = torch.outer(torch.arange(L, device=x.device, dtype=torch.float32), inv_freq)
    emb = torch.cat([freqs, freqs], dim=-1)
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
