"""Mamba-1 and Mamba-2 mixers with mamba-ssm's parameter layout.

Each has one forward pass and two interchangeable scans: an exact pure-PyTorch
recurrence (any device; the test oracle) and mamba-ssm's CUDA / Triton kernels,
used on a GPU when mamba-ssm is installed. The parameters are the same, so one
state_dict loads on both paths.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def cuda_kernels_available() -> bool:
    try:
        import mamba_ssm.ops.selective_scan_interface  # noqa: F401
        return torch.cuda.is_available()
    except Exception:  # mamba-ssm absent or built without kernels (CPU machines)
        return False


def _use_kernels(mode: str, x: torch.Tensor) -> bool:
    if mode == "torch":
        return False
    if mode == "cuda":
        if not (x.is_cuda and cuda_kernels_available()):
            raise RuntimeError("kernels='cuda' needs a CUDA tensor and mamba-ssm installed")
        return True
    return x.is_cuda and cuda_kernels_available()  # "auto"


def causal_conv(conv: nn.Conv1d, x: torch.Tensor, shifted: bool = False) -> torch.Tensor:
    """The mixers' depthwise causal convolution of x [b, C, L]. `shifted` spells it out as
    k shifted multiply-adds (in float32, cast back), which torch.compile fuses into one
    kernel; eagerly, nn.Conv1d is the faster of the two."""
    L = x.shape[-1]
    if not shifted:
        return conv(x)[..., :L]
    k = conv.kernel_size[0]
    w = conv.weight[:, 0].float()  # [C, k]
    xp = F.pad(x, (k - 1, 0)).float()
    y = sum(xp[..., j:j + L] * w[:, j, None] for j in range(k))
    return (y if conv.bias is None else y + conv.bias.float()[:, None]).to(x.dtype)


# --------------------------------------------------------------------------- Mamba-1

def _f32(*ts):
    """Upcast to float32 for the scan (float64 stays float64, for tests)."""
    return [t if t is None or t.dtype == torch.float64 else t.float() for t in ts]


def selective_scan_ref(u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False):
    """Reference S6 scan, same signature as mamba_ssm's selective_scan_fn.
    u, delta, z: [b, E, L]; A: [E, N]; B, C: [b, N, L], or [b, G, N, L] where group g
    serves channels g*E/G .. (g+1)*E/G - 1 (an ensemble of G models folded into the
    channels); D, delta_bias: [E]."""
    dtype = u.dtype
    u, delta, A, B, C, D, z, delta_bias = _f32(u, delta, A, B, C, D, z, delta_bias)
    if delta_bias is not None:
        delta = delta + delta_bias[None, :, None]
    if delta_softplus:
        delta = F.softplus(delta)
    dA = torch.exp(delta.unsqueeze(-1) * A[None, :, None, :])  # [b, E, L, N]
    B, C = _per_channel(B, u.shape[1]), _per_channel(C, u.shape[1])  # [b, E or 1, L, N]
    dBu = (delta * u).unsqueeze(-1) * B  # [b, E, L, N]
    h = u.new_zeros(u.shape[0], u.shape[1], A.shape[1])
    ys = []
    for t in range(u.shape[2]):
        h = dA[:, :, t] * h + dBu[:, :, t]
        ys.append((h * C[:, :, t]).sum(-1))
    y = torch.stack(ys, dim=2)
    if D is not None:
        y = y + u * D[None, :, None]
    if z is not None:
        y = y * F.silu(z)
    return y.to(dtype)


def _per_channel(B: torch.Tensor, E: int) -> torch.Tensor:
    """B or C as [b, E or 1, L, N]: shared [b, N, L] or grouped [b, G, N, L]."""
    if B.dim() == 3:
        return B.transpose(1, 2).unsqueeze(1)
    return B.transpose(2, 3).repeat_interleave(E // B.shape[1], dim=1)


class _LinearScan(torch.autograd.Function):
    """h_t = a_t * h_{t-1} + x_t over the leading (time) dim, with its reverse-time
    scan as the backward: g_t = dL/dh_t + a_{t+1} g_{t+1}, dx_t = g_t, da_t = g_t h_{t-1}.
    A loop of fused in-place steps, no autograd graph per step: on the CPU this beats
    a log-depth scan, which moves the whole [L, ...] tensor log2(L) times."""

    @staticmethod
    def forward(ctx, a, x):
        h = torch.empty_like(x)
        h[0] = x[0]
        for t in range(1, x.shape[0]):
            torch.addcmul(x[t], a[t], h[t - 1], out=h[t])
        ctx.save_for_backward(a, h)
        return h

    @staticmethod
    def backward(ctx, grad_h):
        a, h = ctx.saved_tensors
        g = grad_h.contiguous().clone()  # becomes dL/dx
        for t in range(g.shape[0] - 2, -1, -1):
            g[t].addcmul_(a[t + 1], g[t + 1])
        da = torch.zeros_like(a)
        torch.mul(g[1:], h[:-1], out=da[1:])
        return da, g


def linear_scan(a: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """h_t = a_t * h_{t-1} + x_t along dim 2 (h_{-1} = 0), exact up to float rounding."""
    a_t, x_t = (v.movedim(2, 0).contiguous() for v in (a, x))
    return _LinearScan.apply(a_t, x_t).movedim(0, 2)


def selective_scan_parallel(u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False):
    """selective_scan_ref computed with linear_scan: the pure-PyTorch training path."""
    dtype = u.dtype
    u, delta, A, B, C, D, z, delta_bias = _f32(u, delta, A, B, C, D, z, delta_bias)
    if delta_bias is not None:
        delta = delta + delta_bias[None, :, None]
    if delta_softplus:
        delta = F.softplus(delta)
    dA = torch.exp(delta.unsqueeze(-1) * A[None, :, None, :])  # [b, E, L, N]
    dBu = (delta * u).unsqueeze(-1) * _per_channel(B, u.shape[1])
    y = (linear_scan(dA, dBu) * _per_channel(C, u.shape[1])).sum(-1)
    if D is not None:
        y = y + u * D[None, :, None]
    if z is not None:
        y = y * F.silu(z)
    return y.to(dtype)


RESET_DT = 1e4  # a boundary's step size: exp(-1e4 |A|) underflows to 0 for any |A| > 0.01


class Mamba(nn.Module):
    """Mamba-1 mixer. Several sequences may share a row (packing): set `resets` [b, L], True
    at the d_conv - 1 positions that separate them; there the convolution reads zeros, as at
    a row's start, and the scan's state goes to 0 (step RESET_DT, B = 0), so each sequence
    sees only itself. Outputs at the separators are meaningless."""
    shifted_conv = False  # see causal_conv; set on compiled paths

    def __init__(self, d: int, d_state: int = 16, expand: int = 2, d_conv: int = 4,
                 dt_rank: int | str = "auto", conv_bias: bool = True, bias: bool = False,
                 kernels: str = "auto"):
        super().__init__()
        E = expand * d
        self.d_inner, self.d_state = E, d_state
        self.dt_rank = math.ceil(d / 16) if dt_rank == "auto" else int(dt_rank)
        self.kernels = kernels
        self.in_proj = nn.Linear(d, 2 * E, bias=bias)
        self.conv1d = nn.Conv1d(E, E, d_conv, groups=E, padding=d_conv - 1, bias=conv_bias)
        self.x_proj = nn.Linear(E, self.dt_rank + 2 * d_state, bias=False)
        self.dt_proj = nn.Linear(self.dt_rank, E, bias=True)
        self.A_log = nn.Parameter(torch.log(torch.arange(1, d_state + 1, dtype=torch.float32)).repeat(E, 1))
        self.D = nn.Parameter(torch.ones(E))
        self.out_proj = nn.Linear(E, d, bias=bias)
        self.register_buffer("resets", None, persistent=False)  # packing (see the class); a buffer, so
        # that torch.compile takes a new mask as an input, not as a reason to recompile

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        b, L, _ = h.shape
        x, z = self.in_proj(h).transpose(1, 2).chunk(2, dim=1)  # [b, E, L] each
        keep = None if self.resets is None else (~self.resets)[:, None, :].to(x.dtype)  # [b, 1, L]
        if keep is not None:
            x = x * keep
        x = F.silu(causal_conv(self.conv1d, x, self.shifted_conv))
        dt, B, C = self.x_proj(x.transpose(1, 2)).split([self.dt_rank, self.d_state, self.d_state], dim=-1)
        dt = (dt @ self.dt_proj.weight.T).transpose(1, 2)  # bias enters the scan as delta_bias
        B, C = B.transpose(1, 2), C.transpose(1, 2)
        if keep is not None:
            dt, B = dt + RESET_DT * (1 - keep), B * keep
        A = -torch.exp(self.A_log)
        if _use_kernels(self.kernels, h):
            from mamba_ssm.ops.selective_scan_interface import selective_scan_fn as scan
        else:
            scan = selective_scan_parallel
        y = scan(x.contiguous(), dt.contiguous(), A, B.contiguous(), C.contiguous(), self.D, z=z.contiguous(),
                 delta_bias=self.dt_proj.bias, delta_softplus=True)
        return self.out_proj(y.transpose(1, 2))


def set_resets(model: nn.Module, resets: torch.Tensor | None) -> None:
    """Mark packed rows' separators [b, L] in every Mamba-1 mixer of `model` (None: no packing)."""
    for m in model.modules():
        if isinstance(m, Mamba):
            m.resets = resets


# --------------------------------------------------------------------------- Mamba-2

def ssd_scan_ref(x, dt, A, B, C, D=None, dt_bias=None, dt_softplus=False):
    """Reference Mamba-2 (SSD) recurrence, same meaning as mamba_chunk_scan_combined.
    x: [b, L, H, P]; dt: [b, L, H]; A: [H]; B, C: [b, L, G, N]; D, dt_bias: [H]."""
    dtype = x.dtype
    x, dt, A, B, C, D, dt_bias = _f32(x, dt, A, B, C, D, dt_bias)
    if dt_bias is not None:
        dt = dt + dt_bias
    if dt_softplus:
        dt = F.softplus(dt)
    H, G = x.shape[2], B.shape[2]
    B = B.repeat_interleave(H // G, dim=2)  # heads share their group's B and C
    C = C.repeat_interleave(H // G, dim=2)
    dA = torch.exp(dt * A)  # [b, L, H]
    h = x.new_zeros(x.shape[0], H, x.shape[3], B.shape[3])  # [b, H, P, N]
    ys = []
    for t in range(x.shape[1]):
        h = dA[:, t, :, None, None] * h + (dt[:, t, :, None] * x[:, t]).unsqueeze(-1) * B[:, t, :, None, :]
        ys.append(torch.einsum("bhpn,bhn->bhp", h, C[:, t]))
    y = torch.stack(ys, dim=1)
    if D is not None:
        y = y + x * D[:, None]
    return y.to(dtype)


def _decay_matrix(log_a: torch.Tensor) -> torch.Tensor:
    """log_a: [..., T] per-step log decays -> [..., T, T] with entry (t, s) equal to
    exp(sum of log_a over s < r <= t) for s <= t and 0 above the diagonal."""
    cum = torch.cumsum(log_a, dim=-1)
    seg = cum[..., :, None] - cum[..., None, :]
    T = log_a.shape[-1]
    causal = torch.ones(T, T, dtype=torch.bool, device=log_a.device).tril()
    return torch.exp(seg.masked_fill(~causal, float("-inf")))


def ssd_scan_chunked(x, dt, A, B, C, D=None, dt_bias=None, dt_softplus=False, chunk: int = 32):
    """ssd_scan_ref evaluated chunk by chunk (the SSD 'quadratic inside, recurrent
    across' form): one scalar decay per head makes the [T, T] matrix cheap."""
    dtype = x.dtype
    x, dt, A, B, C, D, dt_bias = _f32(x, dt, A, B, C, D, dt_bias)
    if dt_bias is not None:
        dt = dt + dt_bias
    if dt_softplus:
        dt = F.softplus(dt)
    b, L, H, P = x.shape
    G = B.shape[2]
    B = B.repeat_interleave(H // G, dim=2)
    C = C.repeat_interleave(H // G, dim=2)
    log_a = (dt * A).transpose(1, 2)  # [b, H, L]
    dtx = dt.unsqueeze(-1) * x  # [b, L, H, P]
    h = x.new_zeros(b, H, P, B.shape[3])
    ys = []
    for s in range(0, L, chunk):
        e = min(s + chunk, L)
        W = _decay_matrix(log_a[..., s:e])  # [b, H, T, T]
        decay_in = torch.exp(torch.cumsum(log_a[..., s:e], -1))  # [b, H, T]
        scores = torch.einsum("bthn,bshn->bhts", C[:, s:e], B[:, s:e]) * W
        y = torch.einsum("bhts,bshp->bthp", scores, dtx[:, s:e])
        y = y + torch.einsum("bhpn,bthn->bthp", h, C[:, s:e]) * decay_in.transpose(1, 2)[..., None]
        ys.append(y)
        h = decay_in[..., -1, None, None] * h + torch.einsum("bhs,bshp,bshn->bhpn", W[:, :, -1], dtx[:, s:e],
                                                               B[:, s:e])
    y = torch.cat(ys, dim=1)
    if D is not None:
        y = y + x * D[:, None]
    return y.to(dtype)


class GatedRMSNorm(nn.Module):
    """RMSNorm(y * silu(z)) over groups of channels, as mamba-ssm's RMSNormGated with
    norm_before_gate=False."""

    def __init__(self, d: int, group_size: int, eps: float = 1e-5):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(d))
        self.group_size, self.eps = group_size, eps

    def forward(self, y, z):
        dtype = y.dtype
        y, z, w = _f32(y, z, self.weight)
        y = y * F.silu(z)
        g = y.view(*y.shape[:-1], -1, self.group_size)
        g = g * torch.rsqrt(g.pow(2).mean(-1, keepdim=True) + self.eps)
        return (g.view_as(y) * w).to(dtype)


class Mamba2(nn.Module):
    shifted_conv = False  # see causal_conv; set on compiled paths

    def __init__(self, d: int, d_state: int = 128, expand: int = 2, d_conv: int = 4,
                 headdim: int = 64, ngroups: int = 1, chunk_size: int = 256,
                 conv_bias: bool = True, bias: bool = False, kernels: str = "auto"):
        super().__init__()
        E = expand * d
        if E % headdim:
            raise ValueError(f"Mamba2: inner width {E} is not divisible by headdim {headdim}")
        self.d_inner, self.d_state, self.ngroups, self.headdim = E, d_state, ngroups, headdim
        self.nheads, self.chunk_size, self.kernels = E // headdim, chunk_size, kernels
        if self.nheads % ngroups:
            raise ValueError(f"Mamba2: {self.nheads} heads do not split into {ngroups} groups")
        conv_dim = E + 2 * ngroups * d_state
        self.in_proj = nn.Linear(d, 2 * E + 2 * ngroups * d_state + self.nheads, bias=bias)
        self.conv1d = nn.Conv1d(conv_dim, conv_dim, d_conv, groups=conv_dim, padding=d_conv - 1, bias=conv_bias)
        self.dt_bias = nn.Parameter(torch.zeros(self.nheads))
        self.A_log = nn.Parameter(torch.log(torch.linspace(1, 16, self.nheads)))
        self.D = nn.Parameter(torch.ones(self.nheads))
        self.norm = GatedRMSNorm(E, E // ngroups)
        self.out_proj = nn.Linear(E, d, bias=bias)

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        b, L, _ = u.shape
        E, GN, H = self.d_inner, self.ngroups * self.d_state, self.nheads
        z, xBC, dt = self.in_proj(u).split([E, E + 2 * GN, H], dim=-1)
        xBC = F.silu(causal_conv(self.conv1d, xBC.transpose(1, 2), self.shifted_conv).transpose(1, 2))
        x, B, C = xBC.split([E, GN, GN], dim=-1)
        args = (x.reshape(b, L, H, self.headdim), dt, -torch.exp(self.A_log),
                B.reshape(b, L, self.ngroups, self.d_state), C.reshape(b, L, self.ngroups, self.d_state))
        if _use_kernels(self.kernels, u):
            from mamba_ssm.ops.triton.ssd_combined import mamba_chunk_scan_combined
            y = mamba_chunk_scan_combined(*args, chunk_size=self.chunk_size, D=self.D, dt_bias=self.dt_bias,
                                          dt_softplus=True)
        else:
            y = ssd_scan_chunked(*args, D=self.D, dt_bias=self.dt_bias, dt_softplus=True)
        return self.out_proj(self.norm(y.reshape(b, L, E), z))
