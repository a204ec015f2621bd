"""Theorem 4.6 (paper A), associative recall with decoding, for
make_task('decode_recall_last'): words V0..V(|W|-1), then the last nb = log2|W| tokens
are bits #0/#1 naming a word w (MSB first); the last position must output the token
that followed the last occurrence of w among the context words. All weights are set by
hand; nothing is trained.

We build it with ONE Mamba layer and ONE attention layer (SSM -> TF): fewer layers than
the theorem's 1 Mamba + 2 attention. The theorem's first attention layer only copies the
previous token next to the current one; the real Mamba layer does that for free with its
causal depthwise conv1d (a tap at offset 1 is a length-2 shift register), so the second
attention layer of the paper is our only one. Residual rows (nbc = ceil(log2 |vocab|)):

  0 constant 1 | 1 bit indicator (+1 bit, -1 otherwise) | 2 bit value (#0 -> -1, #1 -> +1)
  3 filler (1 for non-bits; all embeddings have squared norm nbc + 3)
  u   (nbc rows)  +-1 binary code of the token; a word's low nb entries are the bits of its index
  q   (nb rows)   [SSM] the +-1 bits of the queried word, decoded from the bit register
  p   (nb rows)   [SSM conv] the low nb code entries of the PREVIOUS token
  out (nbc rows)  [attention] the code of the recalled token

Mamba (expand=1, d_state=1, A = -1, B = C = 1 via a constant channel; pairs of channels
reading +a and -a so that SiLU(a) - SiLU(-a) = a passes coordinates linearly):
  * bit register: nb channel pairs read the bit value; channel c has dt = delta_c on bit
    tokens and softplus(-300) <= e^-300 on words (pre-softplus dt = alpha_c ind + beta_c). Each bit
    multiplies the state by a_c = exp(-delta_c) and adds delta_c * bit, so after the nb bits
    (ages j = 0 for the last) pair c holds sum_j delta_c a_c^j b_j: a Vandermonde system
    G b with distinct nodes a_c (Chebyshev nodes in (0.05, 0.95)); out_proj applies G^-1 and
    writes the bits b exactly (up to float64 rounding, cond(G) < 1e7 for nb <= 10) into q.
    Words leave the register untouched (leak below L e^-300). This is the paper's shift
    register "updated only on bit tokens", realised with a diagonal (real) A.
  * previous token: nb channel pairs read u through the conv tap at offset 1, with dt ~ 0
    (no state) and D = 1: they output the previous token's code into p (zero at position 0).
Attention (1 head, window W, rotary pair (1, 3) at theta = pi / W, codes in unrotated dims):
  score(j) = S_c q . p_j  +  S_r cos((i - j) theta)  -  S_b [x_j is a bit]  (+ a constant)
  The code term is S_c nb on a match (previous token = w) and at most S_c (nb - 2) otherwise;
  the recency term increases with j by at least S_r (1 - cos theta) per step inside the window;
  the penalty removes the bit positions (whose follower is not a context word). Position 0
  (no previous token, a different RMSNorm scale) is kept out by a window of at most L - 1,
  which loses nothing: an occurrence at 0 has its follower at 1.
  With S_r (1 - cos theta) = S_c - 2.5 S_r = log W + 30 and S_b larger than all other terms,
  the most recent match has softmax mass > 1 - W e^-(log W + 30) whenever a match is in the
  window. The value is u_j (the follower), written into `out`; an untied head reads `out`
  with row t = code_t, so the argmax is the recalled token.
Window: W = min(L - 1, ceil(|W| ln 200) + nb + 2): a uniform word is absent from the last
W - nb - 2 context words with probability (1 - 1/|W|)^(W-nb-2) <= 0.5%, inside the
theorem's 99% with room for sampling noise (coupon-collector, O~(|V|)); the only
failures are such absences.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from ..models import ModelConfig, SequenceModel, build_model
from ..tasks import make_task
from ._common import base_embedding, BIG, SILU1, n_bits, pm1_codes, rms_scale, rope_settings

MARGIN = 30.0


def default_window(num_vocab: int, length: int) -> int:
    nb = int(math.log2(num_vocab))
    return int(min(length - 1, math.ceil(num_vocab * math.log(200)) + nb + 2))


def layout(vocab_size: int, nb: int) -> dict:
    nbc = n_bits(vocab_size)
    u0 = 4
    q0 = u0 + nbc
    p0 = q0 + nb
    o0 = p0 + nb
    rows = {"const": 0, "ind": 1, "bit": 2, "fill": 3, "u": slice(u0, u0 + nbc), "q": slice(q0, q0 + nb),
            "p": slice(p0, p0 + nb), "out": slice(o0, o0 + nbc)}
    return {"nb": nb, "nbc": nbc, "d": o0 + nbc, "rows": rows}


def register_nodes(nb: int) -> np.ndarray:
    """Distinct decays a_c in (0.05, 0.95): Chebyshev nodes keep the Vandermonde system well conditioned."""
    return 0.5 + 0.45 * np.cos((2 * np.arange(nb) + 1) * np.pi / (2 * nb))


def build_decode_recall(num_vocab: int = 32, length: int = 100, window: int | None = None,
                        task=None) -> SequenceModel:
    task = task or make_task("decode_recall_last", num_vocab=num_vocab, length=length)
    V, nw, nb = task.vocab_size, task.num_vocab, task.n_bits
    window = window or default_window(nw, task.length)
    lay = layout(V, nb)
    nbc, d, R = lay["nbc"], lay["d"], lay["rows"]
    pct, base, theta = rope_settings(d, math.pi / window)
    n_ch = 3 + 4 * nb
    expand = max(1, math.ceil(n_ch / d))
    cfg = ModelConfig(layers=["mamba", "attn"], d_model=d, heads=1, window=window, rotary_pct=pct,
                      rotary_base=base, mlp_ratio=1.0 / d, attn_norm="rmsnorm", final_norm="rmsnorm",
                      d_state=1, expand=expand, d_conv=2, tie_embeddings=False, emb_dropout=0.0,
                      kernels="torch")
    model = build_model(cfg, V, seq_len=task.length, seed=0).double()
    eps = cfg.norm_eps
    codes = pm1_codes(V, nbc)
    bit0, bit1 = nw, nw + 1
    # register: channel pairs (3 + 2c, 4 + 2c); previous-token pairs (3 + 2nb + 2k, 4 + 2nb + 2k)
    a = register_nodes(nb)
    delta = -np.log(a)
    G = delta[:, None] * a[:, None] ** np.arange(nb)[None, :]  # [channel c, age j]
    Ginv = np.linalg.inv(G)  # bits by age = Ginv @ register
    with torch.no_grad():
        for prm in model.parameters():
            prm.zero_()
        E = model.embed.weight
        base_embedding(E, R, codes)
        for t, b in ((bit0, -1.0), (bit1, 1.0)):
            E[t, R["ind"]], E[t, R["fill"]], E[t, R["bit"]] = 1.0, 0.0, b
        # ---- Mamba
        blk = model.layers[0]
        blk.norm.weight.fill_(1.0)
        m = blk.mixer
        Ein = m.d_inner
        r0 = rms_scale(nbc + 3, d, eps)
        W = m.in_proj.weight
        W[0, R["const"]] = r0
        W[1, R["ind"]], W[2, R["ind"]] = r0, -r0
        m.conv1d.weight[:, 0, -1] = 1.0
        reg = [(3 + 2 * c, 4 + 2 * c) for c in range(nb)]
        prev = [(3 + 2 * nb + 2 * k, 4 + 2 * nb + 2 * k) for k in range(nb)]
        for cp, cm in reg:
            W[cp, R["bit"]], W[cm, R["bit"]] = r0, -r0
        for k, (cp, cm) in enumerate(prev):
            src = R["u"].start + (nbc - nb) + k  # low nb entries of the code
            W[cp, src], W[cm, src] = r0, -r0
            m.conv1d.weight[cp, 0, -1] = m.conv1d.weight[cm, 0, -1] = 0.0
            m.conv1d.weight[cp, 0, -2] = m.conv1d.weight[cm, 0, -2] = 1.0  # tap at offset 1
            m.D[cp] = m.D[cm] = 1.0
        for cp, cm in reg + prev:
            W[Ein + cp, R["const"]] = W[Ein + cm, R["const"]] = r0  # gate SiLU(1)
        xp = m.x_proj.weight
        xp[0, 1], xp[0, 2] = 1.0, -1.0  # dt_low = ind (+1 bit, -1 word)
        xp[m.dt_rank, 0] = 1.0 / SILU1  # B = 1
        xp[m.dt_rank + 1, 0] = 1.0 / SILU1  # C = 1
        m.dt_proj.bias.fill_(-BIG)  # no state anywhere else
        for c, (cp, cm) in enumerate(reg):
            pre = math.log(math.expm1(delta[c]))  # softplus(pre) = delta_c on a bit
            alpha, beta = (pre + BIG) / 2, (pre - BIG) / 2  # words: softplus(-BIG)
            for ch in (cp, cm):
                m.dt_proj.weight[ch, 0], m.dt_proj.bias[ch] = alpha, beta
        m.A_log.zero_()
        o = m.out_proj.weight
        for k in range(nb):  # q row k (MSB first) = bit of age nb - 1 - k
            j = nb - 1 - k
            for c, (cp, cm) in enumerate(reg):
                o[R["q"].start + k, cp] = Ginv[j, c] / SILU1
                o[R["q"].start + k, cm] = -Ginv[j, c] / SILU1
        for k, (cp, cm) in enumerate(prev):
            o[R["p"].start + k, cp], o[R["p"].start + k, cm] = 1.0 / SILU1, -1.0 / SILU1
        # ---- attention
        at = model.layers[1]
        at.input_layernorm.weight.fill_(1.0)
        at.post_attention_layernorm.weight.fill_(1.0)
        r_q = rms_scale(nbc + 3 + 2 * nb, d, eps)  # last position: q and p rows full (+-1 each)
        r_k = rms_scale(nbc + 3 + nb, d, eps)  # a context word at j >= 1: p rows full, q rows empty
        G_ = math.log(window) + MARGIN
        S_r = G_ / (1.0 - math.cos(theta))
        S_c = 2.5 * S_r + G_
        S_b = 4.0 * (S_c * nb + 2 * S_r + G_)
        sq = math.sqrt(d)  # SDPA divides scores by sqrt(head_size)
        qkv_w, qkv_b = at.attention.query_key_value.weight, at.attention.query_key_value.bias
        K = d
        # recency: rotary pair (1, 3); q = (S_r sqrt d, 0) from the constant row, k = (1, 0) bias
        qkv_w[1, R["const"]] = S_r * sq * r_q
        qkv_b[K + 1] = 1.0
        # code match in unrotated dims 4..4+nb
        for k in range(nb):
            qkv_w[4 + k, R["q"].start + k] = S_c * sq * r_q
            qkv_w[K + 4 + k, R["p"].start + k] = r_k
        # penalty dim 4 + nb: k = r_k * ind / rms_j: exactly -1 on every context word j >= 1 (a constant
        # offset, which the softmax ignores) and > 0 on bits, which lose at least S_b
        pen = 4 + nb
        qkv_w[pen, R["const"]] = -S_b * sq * r_q
        qkv_w[K + pen, R["ind"]] = r_k
        for k in range(nbc):
            qkv_w[2 * K + R["u"].start + k, R["u"].start + k] = 1.0
            at.attention.dense.weight[R["out"].start + k, R["u"].start + k] = 1.0
        model.norm.weight.fill_(1.0)
        model.head.weight[:, R["out"]] = codes
    model.eval()
    model.construction = {"name": "decode_recall", "window": window, "theta": theta, "d_model": d,
                          "state_size": Ein * cfg.d_state, "d_inner": Ein, "d_state": cfg.d_state,
                          "d_conv": cfg.d_conv, "layout": lay, "codes": codes, "nodes": a,
                          "cond_G": float(np.linalg.cond(G))}
    return model
