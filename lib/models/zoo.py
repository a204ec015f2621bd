"""The papers' models as ModelConfigs.

Paper A's micro models (spec A.3) are named by their layer order, "SSM-TF" being
a Mamba layer then an attention layer; any registered layer name may stand in the
order too ("conv-TF"). Paper B's Table 1 families (spec B.3)
keep their layer patterns at any width and depth.
"""
from __future__ import annotations

import math

from .lm import ModelConfig
from .registry import LAYERS, ModelError

A_LAYER = {"TF": "attn", "SSM": "mamba"}


def arch_layers(arch: str) -> list[str]:
    """'SSM-TF' -> ['mamba', 'attn']; a registered layer's name stands for itself."""
    parts = arch.split("-")
    bad = [p for p in parts if p not in A_LAYER and p not in LAYERS]
    if bad:
        raise ModelError(f"unknown layer {bad[0]!r} in architecture {arch!r}; use TF, SSM or a registered "
                         f"layer ({', '.join(sorted(LAYERS))}), e.g. 'SSM-TF'")
    return [A_LAYER.get(p, p) for p in parts]


def micro(arch: str, d_model: int, heads: int = 1, window: int | None = 20, d_state: int = 16,
          **overrides) -> ModelConfig:
    """Paper A's micro_hf model: tied embeddings, embedding dropout 0.1, GPT-NeoX layers
    with a 2d SiLU MLP and RoPE on 25% of each head, Mamba with state 16 and expand 2
    (spec A.3: the paper's 'state 1' never reached the model), final LayerNorm."""
    cfg = dict(layers=arch_layers(arch), d_model=d_model, heads=heads, window=window, d_state=d_state,
               rotary_pct=0.25, mlp_ratio=2, mlp_act="silu", attn_norm="layernorm", expand=2,
               tie_embeddings=True, emb_dropout=0.1, final_norm="layernorm", init="micro")
    return ModelConfig(**{**cfg, **overrides})


# Paper B, Table 1: (layer pattern, repeats at the paper's scale)
B_FAMILIES = {
    "transformer": (["attn"], 12),
    "transformer_nope": (["attn"], 12),
    "mamba": (["mamba"], 24),
    "mamba2": (["mamba2"], 24),
    **{f"hybridI_{n}m": (["mamba"] * n + ["attn"], r) for n, r in zip((1, 2, 3, 4), (8, 6, 5, 4))},
    **{f"hybridI_{n}m2": (["mamba2"] * n + ["attn"], r) for n, r in zip((1, 2, 3, 4), (8, 6, 5, 4))},
    "hybrid2s": (["twostream_mamba"], 8),
    "hybrid2s_m2": (["twostream_mamba2"], 8),
    "hybrid2sr": (["twostream_mamba_rev"], 8),
    "hybrid2sr_m2": (["twostream_mamba2_rev"], 8),
}


def paper_b(family: str, d_model: int = 1024, heads: int = 16, d_state: int = 16,
            repeats: int | None = None, depth: float = 1.0, **overrides) -> ModelConfig:
    """A Table 1 family. The Transformer is GPT-NeoX (LayerNorm, untied head); the SSMs
    and hybrids follow mamba-ssm (RMSNorm, tied embeddings, vocabulary padded to 8),
    with GPT-NeoX attention layers that use RMSNorm inside the hybrids. No dropout.
    `depth` scales every family's repeats of its layer pattern (rounded up, at least
    one), for the reduced-scale profiles; `repeats` sets them outright."""
    if family not in B_FAMILIES:
        raise ModelError(f"unknown paper B model {family!r}; known: {', '.join(B_FAMILIES)}")
    if not 0 < depth <= 1:
        raise ModelError(f"depth is a fraction of Table 1's depth, in (0, 1]; got {depth}")
    pattern, default_repeats = B_FAMILIES[family]
    if repeats is None:
        repeats = max(1, math.ceil(default_repeats * depth - 1e-9))
    layers = pattern * repeats
    common = dict(layers=layers, d_model=d_model, heads=heads, d_state=d_state, mlp_ratio=4,
                  mlp_act="gelu", rotary_pct=0.25, emb_dropout=0.0, init="mamba_ssm")
    if family.startswith("transformer"):
        cfg = dict(common, attn_norm="layernorm", final_norm="layernorm", tie_embeddings=False, init="gpt_neox",
                   rotary_pct=0.0 if family.endswith("nope") else 0.25)
    else:
        cfg = dict(common, attn_norm="rmsnorm", final_norm="rmsnorm", tie_embeddings=True, pad_vocab_to=8)
    cfg.update(overrides)
    return ModelConfig(**cfg)


# Paper A's "mini" models (spec A.5; Fig 8, Table 1): ~100M parameters at width 1024.
MINI_PATTERNS = {"T_rope": ["attn"], "mamba": ["mamba"], "hybrid": ["mamba", "attn"]}


def mini(arch: str, d_model: int = 1024, layers: int = 12, heads: int = 16, d_state: int = 32,
         window: int | None = 20, **overrides) -> ModelConfig:
    """Paper A's mini models, 12 layers each (Table 1's caption). The released scripts build
    them with Hugging Face configs whose exact settings are uncertain (spec A.5); our
    choices (INFERRED): T_rope is a GPT-NeoX stack (4d GELU MLP, RoPE on 25% of each head,
    LayerNorm, untied head); mamba is a Mamba stack (no MLP, RMSNorm, tied embeddings);
    hybrid alternates Mamba then attention (the micro convention) with the Transformer's
    layers; state 32 and a 20-token attention window are the mini code's defaults. No
    dropout. `layers` counts blocks, so the hybrid has 6 of each kind at 12."""
    if arch not in MINI_PATTERNS:
        raise ModelError(f"unknown mini model {arch!r}; known: {', '.join(MINI_PATTERNS)}")
    pattern = MINI_PATTERNS[arch]
    if layers < len(pattern) or layers % len(pattern):
        raise ModelError(f"mini {arch}: {layers} layers do not repeat the pattern {pattern}")
    cfg = dict(layers=pattern * (layers // len(pattern)), d_model=d_model, heads=heads, window=window,
               d_state=d_state, mlp_ratio=4, mlp_act="gelu", rotary_pct=0.25, emb_dropout=0.0, init="micro")
    if arch == "T_rope":
        cfg.update(attn_norm="layernorm", final_norm="layernorm", tie_embeddings=False)
    else:
        cfg.update(attn_norm="layernorm", final_norm="rmsnorm", tie_embeddings=True)
    return ModelConfig(**{**cfg, **overrides})
