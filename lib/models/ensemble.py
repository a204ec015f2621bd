"""Many models trained as one: an ensemble whose parameters carry a leading member
dimension M, so one step of M tiny models is a few batched kernels instead of M
rounds of tiny ones.

`Ensemble(models)` stacks the parameters of M SequenceModels of one shape (their
attention windows may differ when every layer is hand-written). Paper A's layers
(`attn`, `mamba`) have hand-written batched forms, measured faster on a GPU
(data/checks/ensemble-*): linear maps are batched matrix products, attention one
SDPA call with a mask per member; the depthwise convolution and the selective scan
fold the members into their channels (the scan's B and C become per-member groups,
which mamba-ssm's kernel and our PyTorch scan both accept), or, for big ensembles on
a GPU, run our Triton kernels in the [M, B, L, C] layout (lib.models.ensemble_kernels).
Any other registered layer runs its own forward on its stacked parameters
(torch.func.functional_call), batched over members by torch.func.vmap, or one member
at a time where its registration says vmap cannot batch it. An ensemble of one
without dropout runs the model's own forward. `unstack_into(models)` writes the
trained weights back. All parameters are views of one [M, P] tensor (`flat`), their
gradients views of `flat_grad`.

Embedding dropout is keyed by (member seed, step) through a counter-based hash,
so a member draws the same masks however it is packed: a run trained alone and
the same run trained among others see the same data, masks and initialisation.
"""
from __future__ import annotations

import copy
import functools
import math
import warnings

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, vmap

from .attention import ACTIVATIONS, apply_rope, rotary_dims
from .lm import ModelError, SequenceModel
from .mamba import _use_kernels, selective_scan_parallel
from .registry import layer_spec

BATCHED_LAYERS = {"attn", "mamba"}  # the layers with a hand-written batched forward (Ensemble._attn, _mamba)


def batches_members(layers) -> bool:
    """Whether an ensemble of models with these layers runs its members together: every layer
    has a hand-written batched form or a vmap-able one. Otherwise an ensemble would only loop
    over its members, so lib.sweeps trains such runs alone (several at once from threads)."""
    return all(n in BATCHED_LAYERS or layer_spec(n).vmap for n in layers)

_QUIET = False


def _quiet_gradient_layout_warning() -> None:
    """An ensemble's gradients are views of one [M, P] tensor on purpose; autograd notes
    that such views are not dense and accumulates into them all the same. Silenced once an
    ensemble exists (not at import: importing the library changes no global state)."""
    global _QUIET
    if not _QUIET:
        warnings.filterwarnings("ignore", message="grad and param do not obey the gradient layout contract")
        _QUIET = True


def _use_ensemble_kernels(mode: str, h: torch.Tensor, d_inner: int, d_state: int) -> bool:
    """Our Triton Mamba kernels on a GPU (kernels 'auto' or 'cuda'; 'torch' keeps the PyTorch
    scan) for ensembles of at least MIN_PROGRAMS (member, row) pairs of small enough models."""
    if mode == "torch" or not h.is_cuda:
        return False
    try:
        from .ensemble_kernels import MIN_PROGRAMS, fits
    except ImportError:  # no Triton
        return False
    return h.shape[0] * h.shape[1] >= MIN_PROGRAMS and fits(d_inner, d_state)


def stack_key(model: SequenceModel) -> tuple:
    """Models with equal keys can share an ensemble: same layers, settings and parameter
    shapes. The attention window may differ per member where every layer is hand-written
    (a layer run on stacked parameters has its first member's settings)."""
    per_member = ("window",) if set(model.cfg.layers) <= BATCHED_LAYERS else ()
    cfg = {k: v for k, v in vars(model.cfg).items() if k not in per_member}
    shapes = tuple((n, tuple(p.shape)) for n, p in model.named_parameters())
    return (repr(sorted(cfg.items(), key=str)), model.vocab_size, shapes)


def keyed_uniform(seeds: torch.Tensor, step: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    """Uniform [0, 1) numbers of shape [M, *shape], a pure function of (member seed,
    step, index): 32-bit integer hashing (lowbias32) in int64 arithmetic. The definition of
    the dropout masks; training draws them through keyed_keep, its exact int32 twin."""
    n = math.prod(shape)
    idx = torch.arange(n, device=seeds.device, dtype=torch.int64)
    u = _mix64(_mix64(_member_keys(seeds, step)[:, None] ^ idx[None, :]))
    return (u.float() * 2.0 ** -32).view(-1, *shape)


def _mix64(x):
    x = x ^ (x >> 16)
    x = (x * 0x7FEB352D) & 0xFFFFFFFF
    x = x ^ (x >> 15)
    x = (x * 0x846CA68B) & 0xFFFFFFFF
    return x ^ (x >> 16)


def _member_keys(seeds: torch.Tensor, step: torch.Tensor) -> torch.Tensor:
    """[M] 32-bit keys (held in int64) of (member seed, step)."""
    return _mix64(_mix64(seeds.long() & 0xFFFFFFFF) ^ (step.long() & 0xFFFFFFFF))


def _mix32(x):
    """lowbias32 on int32 bit patterns: multiplies wrap, and shifts are made logical by masking."""
    x = x ^ ((x >> 16) & 0xFFFF)
    x = x * 0x7FEB352D
    x = x ^ ((x >> 15) & 0x1FFFF)
    x = x * (0x846CA68B - 2 ** 32)  # the same low 32 bits
    return x ^ ((x >> 16) & 0xFFFF)


@functools.lru_cache(maxsize=None)
def _keep_threshold(p: float) -> int:
    """The smallest 32-bit hash v with float32(v) * 2**-32 >= float32(p), i.e. the v from which
    keyed_uniform's number is >= p (float32 rounding is monotone, so a bisection finds it)."""
    lo, hi, pf = 0, 2 ** 32, np.float32(p)
    while lo < hi:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if np.float32(mid) * np.float32(2.0 ** -32) >= pf else (mid + 1, hi)
    return lo


def keyed_keep(seeds: torch.Tensor, step: torch.Tensor, shape: tuple[int, ...], p: float) -> torch.Tensor:
    """Bool [M, *shape]: exactly keyed_uniform(seeds, step, shape) >= p, computed on int32 bit
    patterns (half the memory traffic of int64, which matters for thousands of members)."""
    n = math.prod(shape)
    if n >= 2 ** 31:
        raise ValueError(f"keyed_keep: {n} positions do not fit int32 indices")
    idx = torch.arange(n, device=seeds.device, dtype=torch.int32)
    u = _mix32(_mix32(_member_keys(seeds, step).to(torch.int32)[:, None] ^ idx[None, :]))
    t = _keep_threshold(float(p))
    if t >= 2 ** 32:
        return torch.zeros(u.shape, dtype=torch.bool, device=u.device).view(-1, *shape)
    # unsigned u >= t  <=>  signed (u with its top bit flipped) >= t - 2**31
    return ((u ^ -2 ** 31) >= t - 2 ** 31).view(-1, *shape)


def _linear(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None = None) -> torch.Tensor:
    """Per-member nn.Linear: x [M, ..., in], w [M, out, in], b [M, out]."""
    M, shape = x.shape[0], x.shape[1:-1]
    x2 = x.reshape(M, -1, x.shape[-1])
    y = torch.bmm(x2, w.transpose(1, 2)) if b is None else torch.baddbmm(b.unsqueeze(1), x2, w.transpose(1, 2))
    return y.view(M, *shape, w.shape[1])


# PyTorch's LayerNorm / RMSNorm kernels give each row its own thread block: for the rows
# of a dozen floats of paper A's width-12 models (millions per ensemble step) that is
# several times slower than a few elementwise and reduction kernels over the whole tensor.
SMALL_ROWS = 16  # measured on an H100: 2.3x faster at d = 12, slower from d = 64


def _norm(kind: str, x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None, eps: float,
          small: bool | None = None) -> torch.Tensor:
    """Per-member LayerNorm / RMSNorm: x [M, B, L, d], w and b [M, d]. `small` (default:
    on CUDA for d <= SMALL_ROWS) spells the norm out in elementwise ops."""
    d = x.shape[-1]
    w = w[:, None, None, :]
    if small is None:
        small = x.is_cuda and d <= SMALL_ROWS
    if small:
        if kind == "layernorm":
            x = x - x.mean(-1, keepdim=True)
        y = x * torch.rsqrt(x.square().mean(-1, keepdim=True) + eps)
        return torch.addcmul(b[:, None, None, :], y, w) if kind == "layernorm" else y * w
    if kind == "layernorm":
        return torch.addcmul(b[:, None, None, :], F.layer_norm(x, (d,), eps=eps), w)
    return F.rms_norm(x, (d,), eps=eps) * w


class Ensemble(nn.Module):
    def __init__(self, models: list[SequenceModel], device: torch.device | str | None = None,
                 hand_written: bool = True):
        """`hand_written=False` runs attention and Mamba through the generic path too (to
        measure the hand-written forms against it)."""
        super().__init__()
        if not models:
            raise ModelError("an ensemble needs at least one model")
        first = models[0]
        if any(stack_key(m) != stack_key(first) for m in models[1:]):
            raise ModelError("ensemble members must share their architecture, settings and parameter shapes")
        if not hand_written and len({m.cfg.window for m in models}) > 1:
            raise ModelError("members with different attention windows need the hand-written attention")
        self.cfg, self.vocab_size, self.M = first.cfg, first.vocab_size, len(models)
        self.hand_written = BATCHED_LAYERS if hand_written else set()
        self.batched = set(first.cfg.layers) <= self.hand_written
        # Without dropout nothing needs keying per member, so an ensemble of one runs the
        # model's own forward (as paper B's runs, trained one at a time, always did).
        self.own_forward = not self.batched and self.M == 1 and not first.cfg.emb_dropout
        # All members' parameters live in one [M, P] tensor, and every named parameter is a
        # view of it (its gradient a view of one [M, P] gradient): the optimizer and the
        # clipping are then a handful of kernels on two tensors.
        named = list(first.named_parameters())
        self.names = [n for n, _ in named]
        sizes = [p.numel() for _, p in named]
        self.offsets = [sum(sizes[:i]) for i in range(len(sizes))]
        device = device or first.embed.weight.device
        self.flat = torch.cat([torch.stack([m.get_parameter(n).detach().reshape(-1) for m in models])
                               for n in self.names], dim=1).to(device)
        self.flat_grad = torch.zeros_like(self.flat)
        views = [(o, z, p.shape) for o, z, (_, p) in zip(self.offsets, sizes, named)]
        self.params = nn.ParameterList(nn.Parameter(self.flat[:, o:o + z].view(self.M, *shape))
                                       for o, z, shape in views)
        _quiet_gradient_layout_warning()
        for prm, (o, z, shape) in zip(self.params, views):
            prm.grad = self.flat_grad[:, o:o + z].view(self.M, *shape)
        self._index = {n: i for i, n in enumerate(self.names)}
        self.windows = [m.cfg.window for m in models]
        # The model whose modules run on the stacked parameters (kept out of the module tree
        # so its parameters are not counted twice), on the ensemble's device for its buffers.
        template = None
        if not self.batched:
            template = first if first.embed.weight.device == self.flat.device else copy.deepcopy(first).to(device)
        self.__dict__["_template"] = template
        # per layer run on stacked parameters: its parameters' names inside the layer, and their index
        self._layer_params = {i: [(n[len(f"layers.{i}."):], j) for j, n in enumerate(self.names)
                                  if n.startswith(f"layers.{i}.")]
                              for i, name in enumerate(first.cfg.layers) if name not in self.hand_written}
        self._masks: dict = {}

    # -- parameters ----------------------------------------------------------
    def p(self, name: str) -> torch.Tensor:
        return self.params[self._index[name]]

    def _apply(self, fn, recurse=True):
        raise RuntimeError("an Ensemble is built on its device (Ensemble(models, device=...)); moving it "
                           "would break the views that share its parameter storage")

    @torch.no_grad()
    def unstack_into(self, models: list[SequenceModel]) -> None:
        flat = self.flat.to(models[0].embed.weight.device)  # one copy, not one per member and tensor
        for i, m in enumerate(models):
            for n, o in zip(self.names, self.offsets):
                dst = m.get_parameter(n)
                dst.copy_(flat[i, o:o + dst.numel()].view_as(dst))

    # -- forward -------------------------------------------------------------
    def forward(self, ids: torch.Tensor, seeds: torch.Tensor | None = None,
                step: torch.Tensor | None = None) -> torch.Tensor:
        """ids [M, B, L] -> logits [M, B, L, V]. In training mode, `seeds` [M] and `step`
        key the embedding dropout (without them it draws from torch's generator)."""
        if self._template is not None:
            self._template.train(self.training)
        if self.own_forward:
            params = {n: p[0] for n, p in zip(self.names, self.params)}
            return functional_call(self._template, params, (ids[0],)).unsqueeze(0)
        cfg, M = self.cfg, self.M
        emb = self.p("embed.weight")  # [M, V', d]
        offsets = (torch.arange(M, device=ids.device) * emb.shape[1]).view(M, 1, 1)
        h = F.embedding(ids + offsets, emb.reshape(-1, emb.shape[-1]))  # [M, B, L, d]
        if self.training and cfg.emb_dropout > 0:
            if seeds is None:
                h = F.dropout(h, cfg.emb_dropout, True)
            else:
                keep = keyed_keep(seeds, step, h.shape[1:], cfg.emb_dropout)
                h = h * keep / (1 - cfg.emb_dropout)
        for i, name in enumerate(cfg.layers):
            if name not in self.hand_written:
                h = self._stacked(i, h)
            elif name == "attn":
                h = self._attn(f"layers.{i}.", h)
            else:
                h = self._mamba(f"layers.{i}.", h)
        h = _norm(cfg.final_norm, h, self.p("norm.weight"), self._opt("norm.bias"), cfg.norm_eps)
        head = self.p("head.weight") if not cfg.tie_embeddings else emb
        return _linear(h, head)[..., : self.vocab_size]

    def _opt(self, name):
        return self.p(name) if name in self._index else None

    def _stacked(self, i: int, h: torch.Tensor) -> torch.Tensor:
        """Layer i without a hand-written batched form: its own forward on each member's
        parameters (slices of the stacked ones), batched by vmap where it can be."""
        layer = self._template.layers[i]
        params = {n: self.params[j] for n, j in self._layer_params[i]}

        def run(member_params, x):
            return functional_call(layer, member_params, (x,))

        if layer_spec(self.cfg.layers[i]).vmap:
            return vmap(run)(params, h)
        return torch.stack([run({n: p[m] for n, p in params.items()}, h[m]) for m in range(self.M)])

    def _window_mask(self, L: int, device) -> torch.Tensor:
        """Bool [M, 1, 1, L, L]: member m's query i sees key j iff 0 <= i - j < window_m."""
        key = (L, str(device))
        if key not in self._masks:
            i = torch.arange(L, device=device)
            rel = (i[:, None] - i[None, :])[None]
            w = torch.tensor([L if w is None else w for w in self.windows], device=device).view(-1, 1, 1)
            self._masks[key] = ((rel >= 0) & (rel < w))[:, None, None]
        return self._masks[key]

    def _attn(self, pre: str, h: torch.Tensor) -> torch.Tensor:
        cfg, p = self.cfg, self.p
        M, B, L, d = h.shape
        H = cfg.heads
        hs = d // H
        x = _norm(cfg.attn_norm, h, p(pre + "input_layernorm.weight"), self._opt(pre + "input_layernorm.bias"),
                  cfg.norm_eps)
        qkv = _linear(x, p(pre + "attention.query_key_value.weight"), p(pre + "attention.query_key_value.bias"))
        q, k, v = qkv.view(M, B, L, H, 3 * hs).permute(0, 1, 3, 2, 4).chunk(3, dim=-1)  # [M, B, H, L, hs]
        n_rot = rotary_dims(hs, cfg.rotary_pct)
        q, k = apply_rope(q, n_rot, cfg.rotary_base), apply_rope(k, n_rot, cfg.rotary_base)
        # (one 4-d SDPA batch with a shared [L, L] mask, which takes the memory-efficient kernel,
        # was slower on an H100 for one model and for 4,096 members: ensemble-attn-probe-H100.json
        # in data/checks)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=self._window_mask(L, h.device))
        y = _linear(y.permute(0, 1, 3, 2, 4).reshape(M, B, L, d), p(pre + "attention.dense.weight"),
                    p(pre + "attention.dense.bias"))
        x2 = _norm(cfg.attn_norm, h, p(pre + "post_attention_layernorm.weight"),
                   self._opt(pre + "post_attention_layernorm.bias"), cfg.norm_eps)
        act = ACTIVATIONS[cfg.mlp_act]()
        mlp = _linear(act(_linear(x2, p(pre + "mlp.dense_h_to_4h.weight"), p(pre + "mlp.dense_h_to_4h.bias"))),
                      p(pre + "mlp.dense_4h_to_h.weight"), p(pre + "mlp.dense_4h_to_h.bias"))
        return h + y + mlp

    def _mamba(self, pre: str, h: torch.Tensor) -> torch.Tensor:
        """The Mamba block. Its convolution and scan run in one of two ways: big ensembles on a
        GPU through our Triton kernels in the [M, B, L, C] layout; otherwise with the members
        folded into channels, [B, M*E, L], for mamba-ssm's scan or our PyTorch one
        (lib.models.ensemble_kernels says why and when)."""
        cfg, p = self.cfg, self.p
        M, B, L, _ = h.shape
        pre_m = pre + "mixer."
        x = _norm("rmsnorm", h, p(pre + "norm.weight"), None, cfg.norm_eps)
        xz = _linear(x, p(pre_m + "in_proj.weight"), self._opt(pre_m + "in_proj.bias"))
        E = xz.shape[-1] // 2
        x, z = xz[..., :E], xz[..., E:]
        conv_w = p(pre_m + "conv1d.weight")  # [M, E, 1, k]
        k = conv_w.shape[-1]
        conv_b = self._opt(pre_m + "conv1d.bias")
        R = p(pre_m + "dt_proj.weight").shape[-1]
        N = (p(pre_m + "x_proj.weight").shape[1] - R) // 2
        A = -torch.exp(p(pre_m + "A_log"))  # [M, E, N]
        ours = _use_ensemble_kernels(cfg.kernels, h, E, N)  # the Triton kernels
        fold = lambda t: t.permute(1, 0, 3, 2).reshape(B, M * t.shape[-1], L)  # [M,B,L,C] -> [B, M*C, L]  # noqa: E731
        unfold = lambda t, C: t.view(B, M, C, L).permute(1, 0, 3, 2)  # [B, M*C, L] -> [M,B,L,C]  # noqa: E731
        if ours:
            from . import ensemble_kernels as ek
            xc = ek.conv_silu(x, conv_w.view(M, E, k), conv_b)  # [M, B, L, E]
        else:
            u = F.silu(F.conv1d(fold(x), conv_w.reshape(M * E, 1, k), None if conv_b is None else conv_b.reshape(-1),
                                padding=k - 1, groups=M * E)[..., :L])  # [B, M*E, L], the scan's input
            xc = unfold(u, E)
        dbc = _linear(xc, p(pre_m + "x_proj.weight"))
        dt = _linear(dbc[..., :R], p(pre_m + "dt_proj.weight"))  # bias enters the scan as delta_bias
        Bm, Cm = dbc[..., R:R + N], dbc[..., R + N:]
        if ours:
            y = ek.scan(xc, dt, A, Bm, Cm, p(pre_m + "D"), z, p(pre_m + "dt_proj.bias"))
        else:
            if _use_kernels(cfg.kernels, h):
                from mamba_ssm.ops.selective_scan_interface import selective_scan_fn as scan
            else:
                scan = selective_scan_parallel
            Bm = Bm.permute(1, 0, 3, 2).contiguous()  # [B, M, N, L]: one group per member
            Cm = Cm.permute(1, 0, 3, 2).contiguous()
            y = scan(u.contiguous(), fold(dt).contiguous(), A.reshape(M * E, N), Bm, Cm, p(pre_m + "D").reshape(-1),
                     z=fold(z).contiguous(), delta_bias=p(pre_m + "dt_proj.bias").reshape(-1), delta_softplus=True)
            y = unfold(y, E)
        return h + _linear(y, p(pre_m + "out_proj.weight"), self._opt(pre_m + "out_proj.bias"))
