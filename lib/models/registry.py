"""Layers by name. A model's config lists layer names; this registry says what each
name builds, what it checks of a config before any weight exists, how an ensemble
batches it and what memory the sweep runner books for it.

Two kinds of entry:
- a mixer (`register_mixer`): a class mapping [B, L, d] -> [B, L, d], built as
  `cls(d_model, **settings)`; its layer is the pre-norm residual block
  h + mixer(RMSNorm h) (lib.models.lm.SSMBlock), as mamba-ssm's
  `create_block(mixer_cls=...)` wraps its mixers. Its settings are its constructor's
  keyword arguments, given per layer name in `ModelConfig.mixer_settings`;
- a layer (`register_layer`): a whole residual block built from the config (paper
  A's GPT-NeoX attention layer, paper B's two-stream block).

An unknown name fails in one line that lists the registered ones.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any, Callable

import torch
from torch import nn


class ModelError(ValueError):
    """Bad model settings, raised before any weights are built."""


@dataclass(frozen=True)
class LayerSpec:
    name: str
    build: Callable[[Any], nn.Module] | None = None  # ModelConfig -> block (a layer entry)
    mixer: type | None = None  # a mixer entry: its class
    settings: Callable[[Any], dict] | None = None  # ModelConfig -> the mixer's keyword arguments
    reads_mixer_settings: bool = False  # its settings come from cfg.mixer_settings[name]
    vmap: bool = True  # torch.func.vmap batches its forward over ensemble members (else: a loop)
    uses_heads: bool = False  # attention inside: d_model must split into cfg.heads heads
    check: Callable[[Any], str | None] | None = None  # ModelConfig -> an error message, or None
    memory: Callable[[Any, int], float] | None = None  # (ModelConfig, L) -> activation floats per token


LAYERS: dict[str, LayerSpec] = {}  # name -> entry, in registration order


def _add(spec: LayerSpec, replace: bool) -> LayerSpec:
    if spec.name in LAYERS and not replace:
        raise ModelError(f"layer {spec.name!r} is already registered (pass replace=True to redefine it)")
    LAYERS[spec.name] = spec
    return spec


def register_layer(name: str, build: Callable[[Any], nn.Module], *, vmap: bool = True, uses_heads: bool = False,
                   check=None, memory=None, replace: bool = False) -> LayerSpec:
    """A whole residual block: `build(cfg)` returns a module mapping h [B, L, d] to the next h."""
    return _add(LayerSpec(name, build=build, vmap=vmap, uses_heads=uses_heads, check=check, memory=memory),
                replace)


def register_mixer(name: str, cls: type, *, settings: Callable[[Any], dict] | None = None, vmap: bool = True,
                   uses_heads: bool = False, check=None, memory=None, replace: bool = False) -> LayerSpec:
    """A mixer class, built as `cls(cfg.d_model, **settings(cfg))` inside a pre-norm residual
    block. `settings` defaults to the layer's entry in `cfg.mixer_settings` (the class's
    own keyword arguments); the built-in SSMs read the config's flat fields instead, which
    the committed experiments name. `vmap=False` for a forward that torch.func.vmap cannot
    batch (custom autograd functions such as mamba-ssm's kernels, data-dependent control
    flow, random ops): ensembles then run it one member at a time."""
    reads = settings is None
    if reads:
        settings = lambda cfg: dict(cfg.mixer_settings.get(name, {}))  # noqa: E731
    return _add(LayerSpec(name, mixer=cls, settings=settings, reads_mixer_settings=reads, vmap=vmap,
                          uses_heads=uses_heads, check=check, memory=memory), replace)


def layer_spec(name: str) -> LayerSpec:
    if name not in LAYERS:
        raise ModelError(f"unknown layer {name!r}; known layers: {', '.join(sorted(LAYERS))}")
    return LAYERS[name]


def check_layers(cfg) -> None:
    """Every layer known, every mixer's settings accepted by its class, every layer's own
    check passed: all before a single module is built."""
    for name in cfg.layers:
        layer_spec(name)
    for name in cfg.mixer_settings:
        if name not in LAYERS or not LAYERS[name].reads_mixer_settings:
            raise ModelError(f"mixer_settings names {name!r}, which is not a registered mixer that reads them "
                             f"(the papers' layers read the config's own fields); mixers that do: "
                             f"{', '.join(sorted(n for n, s in LAYERS.items() if s.reads_mixer_settings)) or 'none'}")
    for name in dict.fromkeys(cfg.layers):
        spec = LAYERS[name]
        if spec.mixer is not None:
            kwargs = spec.settings(cfg)
            try:
                inspect.signature(spec.mixer).bind(cfg.d_model, **kwargs)
            except TypeError as e:
                raise ModelError(f"mixer {name!r} ({spec.mixer.__name__}) does not take settings {kwargs}: {e}") \
                    from None
        message = spec.check(cfg) if spec.check else None
        if message:
            raise ModelError(message)


def build_mixer(name: str, cfg) -> nn.Module:
    spec = layer_spec(name)
    if spec.mixer is None:
        raise ModelError(f"layer {name!r} is a whole block, not a mixer")
    return spec.mixer(cfg.d_model, **spec.settings(cfg))


def floats_per_token(name: str, cfg, seq_len: int, block: nn.Module) -> float:
    """Activation memory of one layer per token, in floats, for the runner's packing: the
    entry's own estimate, else measured on `block` (a built instance of the layer)."""
    spec = layer_spec(name)
    if spec.memory is not None:
        return spec.memory(cfg, seq_len)
    return measured_floats_per_token(block, cfg.d_model, seq_len)


def measured_floats_per_token(block: nn.Module, d_model: int, seq_len: int) -> float:
    """What autograd keeps of one example for the backward pass, plus the output, per token,
    doubled for the gradients of the same size that the backward holds (conservative). Two
    batch sizes are measured so that tensors kept once per batch (weights) cancel."""
    def saved(batch: int) -> int:
        total = 0

        def keep(t):
            nonlocal total
            total += t.numel()
            return t

        x = torch.randn(batch, seq_len, d_model, generator=torch.Generator().manual_seed(0))
        x = x.to(next(block.parameters(), x).device).requires_grad_()
        with torch.enable_grad(), torch.autograd.graph.saved_tensors_hooks(keep, lambda t: t):
            out = block(x)
        return total + out.numel()

    return 2.0 * max(saved(2) - saved(1), 0) / seq_len
