"""A sequence model is a list of layer names (mad-lab style): `["mamba", "attn"]`
is paper A's SSM-TF hybrid. Each name maps to a residual block through the layer
registry (lib.models.registry, where a new mixer is added); the model wraps them
with an embedding and a final norm and head.
"""
from __future__ import annotations

import dataclasses
import functools
import math
from dataclasses import dataclass, field

import torch
from torch import nn

from .attention import AttentionLayer, make_norm
from .mamba import Mamba, Mamba2
from .registry import LAYERS, ModelError  # noqa: F401 (re-exported)
from .registry import build_mixer, check_layers, layer_spec, register_layer, register_mixer


@dataclass
class ModelConfig:
    layers: list[str]
    d_model: int
    # attention (GPT-NeoX layer)
    heads: int = 1
    window: int | None = None  # sliding-window size; None = full causal attention
    rotary_pct: float = 0.25  # 0 = NoPE
    rotary_base: float = 10000.0
    mlp_ratio: float = 2.0
    mlp_act: str = "silu"
    attn_norm: str = "layernorm"
    # state-space layers
    d_state: int = 16
    expand: int = 2
    d_conv: int = 4
    headdim: int = 64  # Mamba-2 head size
    kernels: str = "auto"  # "auto": mamba-ssm kernels on CUDA when installed; "torch"; "cuda"
    # model
    tie_embeddings: bool = True
    emb_dropout: float = 0.1
    final_norm: str = "layernorm"
    norm_eps: float = 1e-5
    pad_vocab_to: int = 1
    init: str = "micro"  # "micro": paper A's HF init; "gpt_neox": paper B's Transformer; "mamba_ssm": its SSMs/hybrids
    # registered mixers' own settings, by layer name: {"conv": {"kernel": 3}} (lib.models.registry)
    mixer_settings: dict[str, dict] = field(default_factory=dict)

    def validate(self, seq_len: int | None = None) -> None:
        for name in self.layers:
            layer_spec(name)  # an unknown name fails first, listing the known ones
        if not self.layers:
            raise ModelError("a model needs at least one layer")
        if self.d_model < 1:
            raise ModelError(f"d_model must be positive, got {self.d_model}")
        uses_attn = any(layer_spec(n).uses_heads for n in self.layers)
        if uses_attn and self.d_model % self.heads:
            raise ModelError(f"d_model {self.d_model} is not divisible by {self.heads} heads")
        if self.window is not None:
            if self.window < 1:
                raise ModelError(f"window must be >= 1 (or None for full attention), got {self.window}")
            if seq_len is not None and self.window > seq_len:
                raise ModelError(f"window {self.window} is larger than the sequence ({seq_len} tokens)")
        check_layers(self)  # mixers' settings and each layer's own checks
        if self.init not in INITS:
            raise ModelError(f"unknown init {self.init!r}; use one of {sorted(INITS)}")
        if self.kernels not in ("auto", "torch", "cuda"):
            raise ModelError(f"kernels must be 'auto', 'torch' or 'cuda', got {self.kernels!r}")


# --------------------------------------------------------------------------- blocks

def _attn_layer(cfg: ModelConfig) -> AttentionLayer:
    return AttentionLayer(cfg.d_model, cfg.heads, cfg.window, cfg.rotary_pct, cfg.rotary_base,
                          cfg.mlp_ratio, cfg.mlp_act, cfg.attn_norm, cfg.norm_eps)


class SSMBlock(nn.Module):
    """h + Mixer(RMSNorm(h)): HF's MambaBlock / mamba-ssm's Block without MLP; the layer of
    every registered mixer (lib.models.registry).

    Every block of every model adds its update to the residual stream once: h <- h + f(h).
    Paper B's code does not, for HybridI (spec B.3, `hybrid_seq.py`): its loop adds the
    layer's input again after each layer, whose output already holds it, so each layer does
    h <- 2h + f(h). Behind pre-norms that is h <- h + f(h)/2 up to scale, i.e. layer k's
    update enters with weight 2^-k against the first layer's (2^-19 for the last of 20
    layers, below bf16's resolution). We keep the standard stream (our choice, INFERRED):
    the paper describes plain interleaved blocks (its Fig 2), the code's own comment doubts
    the extra add, and the doubling would leave most of the depth inert. The two-stream
    block below does follow the code, where the extra h is bounded (TwoStreamBlock)."""

    def __init__(self, kind: str, cfg: ModelConfig):
        super().__init__()
        self.norm = nn.RMSNorm(cfg.d_model, eps=cfg.norm_eps)
        self.mixer = build_mixer(kind, cfg)

    def forward(self, h):
        return h + self.mixer(self.norm(h))


class TwoStreamBlock(nn.Module):
    """Paper B's Hybrid2S block: an attention layer and a Mamba mixer read the same
    input; a learned scalar gate tanh(beta), zero at init, mixes in the gated stream.
    Forward (spec B.3): t = AttnLayer(h) (which already contains h), m = Mixer(norm h),
    out = m + tanh(beta) t  (reversed: t + tanh(beta) m),  h <- h + out. As in the authors'
    `hybrid_par.py`, the stream therefore carries h (1 + tanh(beta)) (reversed: 2h): kept,
    because "the two streams' hidden states are combined" is the paper's definition of the
    block and the factor is at most 2 per block, 1 at initialisation."""

    def __init__(self, kind: str, cfg: ModelConfig, reverse: bool):
        super().__init__()
        self.attn = _attn_layer(cfg)
        self.ssm = SSMBlock(kind, cfg)
        self.beta = nn.Parameter(torch.zeros(()))
        self.reverse = reverse

    def forward(self, h):
        t, m = self.attn(h), self.ssm.mixer(self.ssm.norm(h))
        gate = torch.tanh(self.beta)
        return h + (t + gate * m if self.reverse else m + gate * t)


def build_layer(name: str, cfg: ModelConfig) -> nn.Module:
    """A registered layer: a mixer inside its pre-norm residual block, or a whole block."""
    spec = layer_spec(name)
    return SSMBlock(name, cfg) if spec.mixer is not None else spec.build(cfg)


# --------------------------------------------------------------------------- the papers' layers

def _ssm_settings(cfg: ModelConfig, headdim: bool) -> dict:
    """The built-in SSMs read the config's flat fields, which the committed experiments name."""
    out = dict(d_state=cfg.d_state, expand=cfg.expand, d_conv=cfg.d_conv, kernels=cfg.kernels)
    return {**out, "headdim": cfg.headdim} if headdim else out


def _mamba2_check(cfg: ModelConfig) -> str | None:
    if (cfg.expand * cfg.d_model) % cfg.headdim:
        return f"Mamba2 needs expand*d_model ({cfg.expand * cfg.d_model}) divisible by headdim {cfg.headdim}"
    return None


def _attn_memory(cfg: ModelConfig, seq_len: int) -> float:
    return 2 * cfg.heads * seq_len + 12 * cfg.d_model  # scores of every head, and the MLP


def _ssm_memory(cfg: ModelConfig, seq_len: int) -> float:
    return 8 * cfg.expand * cfg.d_model  # the inner width's projections, convolution and scan


# The SSMs run mamba-ssm's kernels (custom autograd functions) on a GPU, which vmap cannot
# batch (vmap=False): ensembles run Mamba-2 and the two-stream blocks one member at a time,
# attention and Mamba through their hand-written batched forms (lib.models.ensemble).
register_layer("attn", _attn_layer, uses_heads=True, memory=_attn_memory)
register_mixer("mamba", Mamba, settings=functools.partial(_ssm_settings, headdim=False), vmap=False,
               memory=_ssm_memory)
register_mixer("mamba2", Mamba2, settings=functools.partial(_ssm_settings, headdim=True), vmap=False,
               check=_mamba2_check, memory=_ssm_memory)
for _kind in ("mamba", "mamba2"):
    for _reverse in (False, True):
        register_layer(f"twostream_{_kind}{'_rev' if _reverse else ''}",
                       functools.partial(TwoStreamBlock, _kind, reverse=_reverse), vmap=False, uses_heads=True,
                       check=_mamba2_check if _kind == "mamba2" else None, memory=_ssm_memory)


# --------------------------------------------------------------------------- model

class SequenceModel(nn.Module):
    def __init__(self, cfg: ModelConfig, vocab_size: int):
        super().__init__()
        cfg.validate()
        self.cfg = cfg
        self.vocab_size = vocab_size
        padded = math.ceil(vocab_size / cfg.pad_vocab_to) * cfg.pad_vocab_to
        self.embed = nn.Embedding(padded, cfg.d_model)
        self.dropout = nn.Dropout(cfg.emb_dropout)
        self.layers = nn.ModuleList(build_layer(name, cfg) for name in cfg.layers)
        self.norm = make_norm(cfg.final_norm, cfg.d_model, cfg.norm_eps)
        self.head = nn.Linear(cfg.d_model, padded, bias=False)
        if cfg.tie_embeddings:
            self.head.weight = self.embed.weight
        INITS[cfg.init](self)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        h = self.dropout(self.embed(ids))
        for layer in self.layers:
            h = layer(h)
        return self.head(self.norm(h))[..., : self.vocab_size]

    def num_params(self, non_embedding: bool = False) -> int:
        """Trainable parameters, each shared tensor once. `non_embedding` leaves out the
        embedding and an untied head (paper B's Table 1 convention)."""
        skip = {id(self.embed.weight), id(self.head.weight)} if non_embedding else set()
        seen, total = set(skip), 0
        for p in self.parameters():
            if p.requires_grad and id(p) not in seen:
                seen.add(id(p))
                total += p.numel()
        return total


def _init_micro(model: SequenceModel) -> None:
    """Paper A (spec A.3): every Linear (dt_proj included) and the embedding N(0, 0.02),
    zero biases; A_log = log(1..N), D = 1; convolutions and norms keep PyTorch's defaults."""
    for m in model.modules():
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, std=0.02)
            if getattr(m, "bias", None) is not None:
                nn.init.zeros_(m.bias)


def _init_gpt_neox(model: SequenceModel) -> None:
    """Paper B's Transformer: Hugging Face GPTNeoXForCausalLM's _init_weights, i.e. every
    Linear (the untied output head included) and the embedding N(0, initializer_range =
    0.02), zero biases, LayerNorms at one and zero. The same rule as paper A's micro init."""
    _init_micro(model)


def _inv_softplus_dt(n: int, dt_min: float = 1e-3, dt_max: float = 0.1, floor: float = 1e-4) -> torch.Tensor:
    """mamba-ssm's dt initialisation: dt log-uniform in [dt_min, dt_max] (clamped at `floor`),
    stored through its inverse softplus so that softplus(bias) = dt."""
    dt = torch.exp(torch.rand(n) * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min)).clamp(min=floor)
    return dt + torch.log(-torch.expm1(-dt))


def _init_mamba_ssm(model: SequenceModel) -> None:
    """Paper B's SSMs and hybrids, as mamba-ssm builds them (MambaLMHeadModel, and the
    authors' hybrid_seq / hybrid_par, which apply the same `_init_weights`):
    - every Linear keeps PyTorch's default weight (uniform, std 1/sqrt(3 fan_in)), bias
      zero; the attention layers of the hybrids (GPT-NeoX modules inside mamba-ssm's
      backbone) too;
    - the embedding (tied to the head) N(0, 0.02);
    - each mixer's residual output projection (`out_proj`) re-drawn with PyTorch's default
      and divided by sqrt(number of blocks) (one residual per block: no MLP);
    - Mamba: dt_proj weight uniform in +-dt_rank^-0.5, its bias the inverse softplus of a
      log-uniform dt in [1e-3, 0.1]; A_log = log(1..N); D = 1.
    - Mamba-2: dt_bias likewise; A uniform in [1, 16]; D = 1; the gated norm at one.
    Convolutions keep PyTorch's default; norms one (RMSNorm) and zero (biases); the
    two-stream gates beta zero."""
    n_blocks = len(model.layers)
    for m in model.modules():
        if isinstance(m, nn.Linear) and m.bias is not None:
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Embedding):
            nn.init.normal_(m.weight, std=0.02)
    for m in model.modules():
        if not isinstance(m, (Mamba, Mamba2)):
            continue
        with torch.no_grad():
            if isinstance(m, Mamba):
                nn.init.uniform_(m.dt_proj.weight, -m.dt_rank ** -0.5, m.dt_rank ** -0.5)
                m.dt_proj.bias.copy_(_inv_softplus_dt(m.dt_proj.out_features))
                m.A_log.copy_(torch.log(torch.arange(1, m.d_state + 1, dtype=torch.float32)).repeat(m.d_inner, 1))
            else:
                m.dt_bias.copy_(_inv_softplus_dt(m.nheads))
                m.A_log.copy_(torch.log(torch.empty(m.nheads).uniform_(1, 16)))
            m.D.fill_(1.0)
            nn.init.kaiming_uniform_(m.out_proj.weight, a=math.sqrt(5))
            m.out_proj.weight.div_(math.sqrt(n_blocks))


INITS = {"micro": _init_micro, "gpt_neox": _init_gpt_neox, "mamba_ssm": _init_mamba_ssm}


def build_model(cfg: ModelConfig | dict, vocab_size: int, seq_len: int | None = None,
                seed: int | None = None) -> SequenceModel:
    """Validate, then build. `seed` fixes the initialisation."""
    if isinstance(cfg, dict):
        names = {f.name for f in dataclasses.fields(ModelConfig)}
        unknown = set(cfg) - names
        if unknown:
            raise ModelError(f"unknown model setting {', '.join(sorted(unknown))}; "
                             f"settings are {', '.join(sorted(names))}")
        cfg = ModelConfig(**cfg)
    cfg.validate(seq_len)
    if seed is not None:
        torch.manual_seed(seed)
    return SequenceModel(cfg, vocab_size)
