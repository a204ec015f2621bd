"""Figures of paper A's constructed hybrids, drawn from the models' real activations
(forward hooks): A-fig3 (selective copy: input, the SSM's u/v rows, the attention
output), A-fig9 and A-fig10 (embedding of the input and the model's output, as
heatmaps with values -1/0/1)."""
from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
import torch

from ..models.attention import apply_rope, window_mask

CMAP = "RdBu_r"  # diverging: -1 blue, 0 white, +1 red


@torch.no_grad()
def activations(model, ids: torch.Tensor) -> dict[str, np.ndarray]:
    """One forward pass of a constructed model on ids [L] (or [1, L]) with hooks on the
    embedding, every layer and the last attention: returns embedding [L, d], the residual
    after each layer (h1, h2 ...) [L, d], attention probabilities [L, L] of the last
    attention layer, and the logits [L, V]."""
    ids = ids.reshape(1, -1)
    acts, hooks = {}, []
    hooks.append(model.embed.register_forward_hook(lambda m, i, o: acts.__setitem__("embedding", o[0])))
    for k, layer in enumerate(model.layers):
        hooks.append(layer.register_forward_hook(lambda m, i, o, k=k: acts.__setitem__(f"h{k + 1}", o[0])))
    att = model.layers[-1].attention

    def attn_probs(m, inp, out):
        x = inp[0]
        B, L, d = x.shape
        qkv = m.query_key_value(x).view(B, L, m.heads, 3 * m.head_size).transpose(1, 2)
        q, k, _ = qkv.chunk(3, dim=-1)
        q, k = apply_rope(q, m.n_rot, m.rotary_base), apply_rope(k, m.n_rot, m.rotary_base)
        s = (q @ k.transpose(-1, -2)) / math.sqrt(m.head_size)
        s = s.masked_fill(~window_mask(L, m.window), float("-inf"))
        acts["attention"] = torch.softmax(s, -1)[0, 0]

    hooks.append(att.register_forward_hook(attn_probs))
    hooks.append(att.register_forward_hook(lambda m, i, o: acts.__setitem__("attention_out", o[0])))
    try:
        acts["logits"] = model(ids)[0]
    finally:
        for h in hooks:
            h.remove()
    return {k: v.detach().double().numpy() for k, v in acts.items()}


def _tok_labels(task, ids) -> list[str]:
    toks = task.tokens()
    return [toks[i] for i in np.asarray(ids).reshape(-1)]


def _heat(ax, M, title, xlabel="position", ylabel="residual row"):
    im = ax.imshow(M, aspect="auto", cmap=CMAP, vmin=-1, vmax=1, interpolation="nearest")
    ax.set_title(title, fontsize=10)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    return im


def _row_ticks(ax, layout):
    ticks, labels = [], []
    for name, r in layout["rows"].items():
        if isinstance(r, slice):
            ticks.append((r.start + r.stop - 1) / 2)
        else:
            ticks.append(r)
        labels.append(name)
    ax.set_yticks(ticks)
    ax.set_yticklabels(labels, fontsize=7)


def fig_selective_copy_flow(model, task, ids) -> plt.Figure:
    """A-fig3: the input; the SSM's output rows u (token code) and v (stored distance, as
    (cos v theta, sin v theta) and decoded back to v); the attention at the last position
    and the token the model outputs."""
    a = activations(model, torch.as_tensor(ids))
    c = model.construction
    R, th = c["layout"]["rows"], c["theta"]
    L = len(np.asarray(ids).reshape(-1))
    labels = _tok_labels(task, ids)
    h1 = a["h1"]
    stored = h1[:, [R["v_cos"], R["v_sin"]]]
    has = np.abs(stored).sum(1) > 0.5
    v = np.where(has, np.rint(np.arctan2(stored[:, 1], stored[:, 0]) / th), np.nan)
    pred = a["logits"].argmax(-1)
    fig, axes = plt.subplots(4, 1, figsize=(max(8, 0.42 * L), 8.2),
                             gridspec_kw={"height_ratios": [0.5, 2.2, 0.9, 1.3]}, sharex=True)
    ax = axes[0]
    ax.set_xlim(-0.5, L - 0.5)
    ax.set_ylim(0, 1)
    ax.set_yticks([])
    for t, s in enumerate(labels):
        ax.text(t, 0.5, s, ha="center", va="center", fontsize=8,
                color="C3" if s.startswith("#") else "k", fontweight="bold" if s.startswith("#") else None)
    ax.set_title("input (number tokens in red)", fontsize=10)
    u = h1[:, R["u"]].T
    _heat(axes[1], np.vstack([u, np.full((1, L), np.nan), stored.T]),
          "SSM output: u = token code (top); v = stored (cos v\u03b8, sin v\u03b8) of the latest number (bottom), decoded v in between",
          xlabel="", ylabel="row")
    axes[1].set_yticks([u.shape[0] // 2, u.shape[0] + 1.5])
    axes[1].set_yticklabels(["u", "v"])
    for t in range(L):
        if not np.isnan(v[t]):
            axes[1].text(t, u.shape[0], f"{int(v[t])}", ha="center", va="center", fontsize=7)
    att = a["attention"][-1]
    axes[2].bar(np.arange(L), att, color="C0")
    axes[2].set_ylim(0, 1.05)
    axes[2].set_ylabel("attention")
    vl = int(v[-1])
    axes[2].set_title(f"attention of the last position: mass {att[L - 1 - vl]:.6f} on position "
                      f"{L - 1 - vl} = last \u2212 {vl}", fontsize=10)
    out = a["attention_out"][:, R["out"]].T
    _heat(axes[3], out / np.abs(out).max(), f"attention output (code of the copied token); the model outputs "
          f"{task.tokens()[pred[-1]]!r} at the last position", ylabel="row")
    axes[3].set_xticks(range(L))
    axes[3].set_xticklabels(range(L), fontsize=7)
    axes[3].annotate("", xy=(L - 1 - vl, -0.1), xytext=(L - 1, -0.1), xycoords=("data", "axes fraction"),
                     arrowprops={"arrowstyle": "->", "color": "C3"})
    return fig


def fig_input_output(model, task, ids, name: str) -> plt.Figure:
    """A-fig9 / A-fig10: the embedding of the input (rows x positions) and the model's output
    (the residual stream after the last layer, rescaled by its final RMSNorm so rows are in
    [-1, 1]), with the construction's row blocks named on the y axis."""
    a = activations(model, torch.as_tensor(ids))
    emb = a["embedding"].T
    last = a[f"h{len(model.layers)}"]
    out = (last / np.abs(last).max(axis=1, keepdims=True).clip(min=1.0)).T
    L = emb.shape[1]
    fig, axes = plt.subplots(1, 2, figsize=(13, 0.16 * emb.shape[0] + 2.5), sharey=True)
    _heat(axes[0], emb, f"{name} input (embedding)")
    im = _heat(axes[1], out, f"{name} output (residual after the last layer, scaled)")
    _row_ticks(axes[0], model.construction["layout"])
    pred = a["logits"].argmax(-1)[-1]
    axes[1].set_xlabel(f"position (the last one outputs {task.tokens()[pred]!r})")
    cb = fig.colorbar(im, ax=axes, ticks=[-1, 0, 1], fraction=0.02)
    cb.ax.set_yticklabels(["-1", "0", "1"])
    for ax in axes:
        ax.set_xlim(-0.5, L - 0.5)
    return fig
