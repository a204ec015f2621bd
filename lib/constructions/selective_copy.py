"""Theorem 4.3 (paper A): a 2-layer hybrid, Mamba -> attention, that solves selective
copying at the last position of EVERY input that contains a number token. All weights
are set by hand from (|V|, N, L); nothing is trained.

Data flow (d = 7 + 2*nb, nb = ceil(log2 |vocab|); rows of the residual stream):

  row 0        constant 1                       (a "bias" row: x_proj and the attention have none)
  row 1        number indicator: +1 number, -1 otherwise
  row 2        filler: 1 for non-numbers, so every token embedding has squared norm nb + 3
  rows 3, 4    number code (cos v*theta, sin v*theta) of a number token #v, 0 for words
  rows 5, 6    [written by the SSM] (cos v*theta, sin v*theta) of the MOST RECENT number   (Fig 3's "v")
  rows 7..     u: the +-1 binary code of the token (nb rows)                                 (Fig 3's "u")
  rows 7+nb..  [written by the attention] the code of the token v positions back (nb rows)

1. Embedding: token t -> the rows above (all tokens have the same norm, so the SSM's
   RMSNorm is one known scale r0 for every token).
2. Mamba (the real selective scan, expand=1, d_state=1, d_conv=1 with an identity tap): channels
   c0 = SiLU(1) (constant, from row 0), c1/c2 = SiLU(+-ind), c3..c6 = SiLU(+-cos), SiLU(+-sin).
   Because SiLU(a) - SiLU(-a) = a for every a, a pair of channels carries a coordinate
   LINEARLY although SiLU is not odd. dt = softplus(300 * (c1 - c2)) = softplus(+-300):
   300 on a number, <= e^-300 (0 in float32) on a word; A = -1; B = 1/(300 SiLU(1)) * c0 = 1/300
   and C = c0 / SiLU(1) = 1. On a number the state becomes exp(-300) h + x = x (overwrite, old
   value damped by e^-300); on a word it is multiplied by exp(-dt) >= 1 - e^-300 and receives
   <= e^-300 |x| / 300: over L steps the leak is below L e^-300, i.e. nothing in float64. D = 0,
   gate SiLU(z) = SiLU(1) from row 0, and out_proj takes the channel differences / SiLU(1): rows
   5, 6 receive exactly (cos v*theta, sin v*theta) of the latest number, at every later position.
3. Attention (1 head, NoPE except 4 rotary dims, window W = N + 1 = max distance + 1): the key
   is a constant (bias only) kappa (1, 0) in the rotary pair of frequency theta = pi / W, so at
   position j it is kappa (cos j theta, sin j theta). The query reads rows 5, 6:
   q = rho (cos v theta, -sin v theta), rotated at i to rho (cos (i - v) theta, sin (i - v) theta).
   The score of key j is S cos((i - v - j) theta): inside the window |i - v - j| <= W - 1,
   so |angle| < pi and the score is maximal exactly at j = i - v, with a gap of at least
   S (1 - cos theta) to every other key. S is chosen so this gap is log(W) + 30, which puts
   a softmax mass above 1 - e^-30 on the right key. The value is the token code u (rows 7..),
   the output projection writes it into the last nb rows. The MLP is zero.
4. Read-out: an untied head with row t = code_t on the last nb rows (final RMSNorm only
   rescales). The attention output is sum_j a_j u_j with a_target > 1/2 and |u_j| equal up to
   the RMSNorm scale (ratio <= sqrt((nb+4)/(nb+3))), so its sign pattern is the target's code
   and the argmax of code_t . y is the target token, uniquely.

Why RoPE for the relative offset: the attention layers of lib.models have no absolute
positions, and with a query rotated by the stored distance, "exactly v back" is one
dot product. The embedding then needs no position code at all: d = O(log |V|),
independent of L (the theorem allows O(max(log|V|, log L))). RoPE angles are computed by
the layer in float32; the error on (i - j) theta is below ~L * 2^-23 rad, far below the
gap 1 - cos(pi/W) for the sizes we test (L <= 4096).

Paper's "window N": distances run to N = 4 + numbers; looking N back needs the window to
hold N + 1 positions (the current one included), so window = N + 1.
"""
from __future__ import annotations

import math

import torch

from ..models import ModelConfig, SequenceModel, build_model
from ..tasks import make_task
from ._common import base_embedding, BIG, SILU1, n_bits, pm1_codes, rms_scale, rope_settings

MARGIN = 30.0  # softmax logit gap beyond log(window)


def layout(vocab_size: int) -> dict:
    nb = n_bits(vocab_size)
    rows = {"const": 0, "ind": 1, "fill": 2, "num_cos": 3, "num_sin": 4, "v_cos": 5, "v_sin": 6,
            "u": slice(7, 7 + nb), "out": slice(7 + nb, 7 + 2 * nb)}
    return {"nb": nb, "d": 7 + 2 * nb, "rows": rows}


def build_selective_copy(num_vocab: int = 26, numbers: int = 5, length: int = 100,
                         task=None) -> SequenceModel:
    """The constructed SSM->TF hybrid for make_task('selective_copy', num_vocab=num_vocab,
    numbers=numbers, length=length). Returns a float64 SequenceModel in eval mode."""
    task = task or make_task("selective_copy", num_vocab=num_vocab, numbers=numbers, length=length)
    V, nw = task.vocab_size, task.num_vocab
    dist = {nw + j: task.first_number + j for j in range(task.numbers)}  # number token id -> distance
    max_dist = max(dist.values())
    window = max_dist + 1
    lay = layout(V)
    nb, d, R = lay["nb"], lay["d"], lay["rows"]
    pct, base, theta = rope_settings(d, math.pi / window)
    cfg = ModelConfig(layers=["mamba", "attn"], d_model=d, heads=1, window=window, rotary_pct=pct,
                      rotary_base=base, mlp_ratio=1.0 / d, attn_norm="rmsnorm", final_norm="rmsnorm",
                      d_state=1, expand=1, d_conv=1, tie_embeddings=False, emb_dropout=0.0,
                      kernels="torch")
    model = build_model(cfg, V, seq_len=task.length, seed=0).double()
    eps = cfg.norm_eps
    codes = pm1_codes(V, nb)
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
        # ---- 1. embedding
        E = model.embed.weight
        base_embedding(E, R, codes)
        for t, v in dist.items():
            E[t, R["ind"]] = 1.0
            E[t, R["fill"]] = 0.0
            E[t, R["num_cos"]] = math.cos(v * theta)
            E[t, R["num_sin"]] = math.sin(v * theta)
        # ---- 2. Mamba
        blk = model.layers[0]
        blk.norm.weight.fill_(1.0)
        m = blk.mixer
        Ein = m.d_inner
        r0 = rms_scale(nb + 3, d, eps)  # every token embedding has squared norm nb + 3
        W = m.in_proj.weight
        W[0, R["const"]] = r0  # c0 = SiLU(1)
        W[1, R["ind"]], W[2, R["ind"]] = r0, -r0  # c1 - c2 = ind
        W[3, R["num_cos"]], W[4, R["num_cos"]] = r0, -r0
        W[5, R["num_sin"]], W[6, R["num_sin"]] = r0, -r0
        for c in range(3, 7):
            W[Ein + c, R["const"]] = r0  # z = 1 -> gate SiLU(1)
        m.conv1d.weight[:, 0, -1] = 1.0  # identity tap (causal conv reads the current token only)
        xp = m.x_proj.weight
        xp[0, 1], xp[0, 2] = 1.0, -1.0  # dt_low = ind
        xp[m.dt_rank, 0] = 1.0 / (BIG * SILU1)  # B = 1/BIG
        xp[m.dt_rank + 1, 0] = 1.0 / SILU1  # C = 1
        m.dt_proj.weight[:, 0] = BIG  # dt = softplus(+-BIG)
        m.A_log.zero_()  # A = -1
        m.D.zero_()
        o = m.out_proj.weight
        o[R["v_cos"], 3], o[R["v_cos"], 4] = 1.0 / SILU1, -1.0 / SILU1
        o[R["v_sin"], 5], o[R["v_sin"], 6] = 1.0 / SILU1, -1.0 / SILU1
        # ---- 3. attention
        at = model.layers[1]
        at.input_layernorm.weight.fill_(1.0)
        at.post_attention_layernorm.weight.fill_(1.0)
        r1 = rms_scale(nb + 4, d, eps)  # residual after the first number: + (cos^2 + sin^2)
        gap = 1.0 - math.cos(theta)  # nearest wrong key, in units of S
        S = (math.log(window) + MARGIN) / gap
        kappa = S * math.sqrt(d)  # SDPA divides by sqrt(head_size); rho = 1
        qkv_w, qkv_b = at.attention.query_key_value.weight, at.attention.query_key_value.bias
        # head layout: q = rows 0..d-1, k = d..2d-1, v = 2d..3d-1; rotary pair (1, 3) at theta
        qkv_w[1, R["v_cos"]] = r1
        qkv_w[3, R["v_sin"]] = -r1
        qkv_b[d + 1] = kappa
        for k in range(nb):
            qkv_w[2 * d + R["u"].start + k, R["u"].start + k] = 1.0
            at.attention.dense.weight[R["out"].start + k, R["u"].start + k] = 1.0
        # MLP stays zero
        # ---- 4. read-out
        model.norm.weight.fill_(1.0)
        model.head.weight[:, R["out"]] = codes
    model.eval()
    model.construction = {"name": "selective_copy", "window": window, "theta": theta, "score_scale": S,
                          "d_model": d, "state_size": Ein * cfg.d_state, "d_inner": Ein,
                          "d_state": cfg.d_state, "layout": lay, "codes": codes,
                          "attention_mass_bound": 1.0 / (1.0 + math.exp(-MARGIN))}
    return model
