"""Triton kernels for big ensembles of tiny Mambas, in the ensemble's own [M, B, L, C] layout.

mamba-ssm's selective scan gives every (row, channel) its own 32-thread block and sums
the gradients of a member's B and C over its channels with atomic adds: for 2,048
width-12 members (batch 8) that is 393k blocks, and by our count 1.3 billion atomic adds
a backward; the members must also be folded into its [B, M*E, L] channel layout and back.
Here one program owns one (member, row): it keeps the member's [E, N] state in registers,
walks the sequence, and sums over channels in registers. It needs no layout copies and
no atomics, but each program walks L steps in turn, so with few programs it is the slower
of the two: the ensemble uses these kernels from `MIN_PROGRAMS` (member, row) pairs up
and for members of width 16 or less (`fits`), and mamba-ssm otherwise, one model included.

`scan(u, delta, A, B, C, D, z, delta_bias)` is mamba-ssm's selective_scan_fn (softplus
on delta, output gated by silu(z)) with u, delta, z [M, B, L, E], B, C [M, B, L, N], A
[M, E, N], D and delta_bias [M, E]. `conv_silu(x, w, b)` is silu of the depthwise causal
convolution along L of x [M, B, L, E] with w [M, E, K], b [M, E]. Both run on CUDA
tensors (and on the CPU under TRITON_INTERPRET=1, for tests); the last dimension of
each input must be contiguous, the others may be strided (slices of a wider tensor).
Their test oracles are selective_scan_ref and F.conv1d (tests/test_ensemble_kernels.py).
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

# (member, row) pairs from which these kernels beat the folded mamba-ssm path. Measured on an H100
# (Mamba block of width-12 models, forward and backward as CUDA-graph replays, B = 8, L = 100):
# 32 members 0.48 ms folded vs 0.54 ms here; 64 members 0.75 vs 0.66; 2,048 members 17.4 vs 10.7.
MIN_PROGRAMS = 512
# A program holds its member's [E, N] state in one warp's registers: measured at width 12
# (E = 24, N = 16, padded to 32 x 16); wider members keep the folded path.
MAX_TILE = 32 * 16
CHUNK = 8  # the backward recomputes the state chunk by chunk from checkpoints saved every CHUNK steps


def _block(n: int) -> int:
    return max(triton.next_power_of_2(n), 2)


def fits(d_inner: int, d_state: int) -> bool:
    """Whether a member's [d_inner, d_state] state is a tile these kernels were measured on."""
    return _block(d_inner) * _block(d_state) <= MAX_TILE


# ----------------------------------------------------------------------------- selective scan

@triton.jit
def _softplus(x):
    return tl.where(x <= 20.0, tl.log(1.0 + tl.exp(x)), x)


@triton.jit
def _member_params(A_ptr, D_ptr, bias_ptr, m, e, n, E, N):
    """Member m's A [E, N] (padded with zeros), D and delta_bias [E]."""
    me, mn = e < E, n < N
    A = tl.load(A_ptr + m * E * N + e[:, None] * N + n[None, :], mask=me[:, None] & mn[None, :], other=0.0)
    return A, tl.load(D_ptr + m * E + e, mask=me, other=0.0), tl.load(bias_ptr + m * E + e, mask=me, other=0.0)


@triton.jit
def _advance(h, A, u, dt, Bt):
    """h_t = exp(delta A) h_{t-1} + delta u B_t, delta = softplus(dt) (dt includes delta_bias)."""
    delta = _softplus(dt)
    return tl.exp(delta[:, None] * A) * h + (delta * u)[:, None] * Bt[None, :]


@triton.jit
def _scan_fwd(u_ptr, dt_ptr, z_ptr, A_ptr, B_ptr, C_ptr, D_ptr, bias_ptr, y_ptr, ck_ptr,
              L, E, N, su_m, su_b, su_l, sd_m, sd_b, sd_l, sz_m, sz_b, sz_l, sB_m, sB_b, sB_l,
              sC_m, sC_b, sC_l,
              BLOCK_E: tl.constexpr, BLOCK_N: tl.constexpr, CHUNK: tl.constexpr, SAVE: tl.constexpr):
    b = tl.program_id(0).to(tl.int64)
    m = tl.program_id(1).to(tl.int64)
    row = m * tl.num_programs(0).to(tl.int64) + b  # this program's (member, row), in [M, B] order
    e = tl.arange(0, BLOCK_E)
    n = tl.arange(0, BLOCK_N)
    me, mn = e < E, n < N
    tile, mt = e[:, None] * BLOCK_N + n[None, :], me[:, None] & mn[None, :]
    A, D, bias = _member_params(A_ptr, D_ptr, bias_ptr, m, e, n, E, N)
    u_ptr += m * su_m + b * su_b
    dt_ptr += m * sd_m + b * sd_b
    z_ptr += m * sz_m + b * sz_b
    B_ptr += m * sB_m + b * sB_b
    C_ptr += m * sC_m + b * sC_b
    y_ptr += row * L * E
    ck_ptr += row * tl.cdiv(L, CHUNK) * BLOCK_E * BLOCK_N
    h = tl.zeros([BLOCK_E, BLOCK_N], dtype=tl.float32)
    # each step's inputs are loaded one step ahead: a program walks L steps in turn, and
    # this hides a load's latency behind the previous step's arithmetic
    u = tl.load(u_ptr + e, mask=me, other=0.0)
    dt = tl.load(dt_ptr + e, mask=me, other=0.0)
    Bt = tl.load(B_ptr + n, mask=mn, other=0.0)
    Ct = tl.load(C_ptr + n, mask=mn, other=0.0)
    z = tl.load(z_ptr + e, mask=me, other=0.0)
    for t in range(L):
        if SAVE:  # the state before each chunk, for the backward
            if t % CHUNK == 0:
                tl.store(ck_ptr + (t // CHUNK) * BLOCK_E * BLOCK_N + tile, h, mask=mt)
        tn = tl.minimum(t + 1, L - 1)
        u_n = tl.load(u_ptr + tn * su_l + e, mask=me, other=0.0)
        dt_n = tl.load(dt_ptr + tn * sd_l + e, mask=me, other=0.0)
        B_n = tl.load(B_ptr + tn * sB_l + n, mask=mn, other=0.0)
        C_n = tl.load(C_ptr + tn * sC_l + n, mask=mn, other=0.0)
        z_n = tl.load(z_ptr + tn * sz_l + e, mask=me, other=0.0)
        h = _advance(h, A, u, dt + bias, Bt)
        y = tl.sum(h * Ct[None, :], 1) + D * u
        tl.store(y_ptr + t * E + e, y * z * tl.sigmoid(z), mask=me)
        u, dt, Bt, Ct, z = u_n, dt_n, B_n, C_n, z_n


@triton.jit
def _scan_bwd(u_ptr, dt_ptr, z_ptr, A_ptr, B_ptr, C_ptr, D_ptr, bias_ptr, dy_ptr, ck_ptr, hs_ptr,
              du_ptr, ddt_ptr, dz_ptr, dB_ptr, dC_ptr, dA_ptr, dD_ptr, dbias_ptr,
              L, E, N, su_m, su_b, su_l, sd_m, sd_b, sd_l, sz_m, sz_b, sz_l, sB_m, sB_b, sB_l,
              sC_m, sC_b, sC_l,
              BLOCK_E: tl.constexpr, BLOCK_N: tl.constexpr, CHUNK: tl.constexpr):
    """Chunk by chunk from the end: recompute the chunk's states from its checkpoint into
    scratch slots 1..CHUNK (slot 0 holds the checkpoint), then walk the chunk backwards."""
    b = tl.program_id(0).to(tl.int64)
    m = tl.program_id(1).to(tl.int64)
    row = m * tl.num_programs(0).to(tl.int64) + b
    e = tl.arange(0, BLOCK_E)
    n = tl.arange(0, BLOCK_N)
    me, mn = e < E, n < N
    tile, mt = e[:, None] * BLOCK_N + n[None, :], me[:, None] & mn[None, :]
    A, D, bias = _member_params(A_ptr, D_ptr, bias_ptr, m, e, n, E, N)
    u_ptr += m * su_m + b * su_b
    dt_ptr += m * sd_m + b * sd_b
    z_ptr += m * sz_m + b * sz_b
    B_ptr += m * sB_m + b * sB_b
    C_ptr += m * sC_m + b * sC_b
    dy_ptr += row * L * E
    du_ptr += row * L * E
    ddt_ptr += row * L * E
    dz_ptr += row * L * E
    dB_ptr += row * L * N
    dC_ptr += row * L * N
    n_chunks = tl.cdiv(L, CHUNK)
    ck_ptr += row * n_chunks * BLOCK_E * BLOCK_N
    hs_ptr += row * (CHUNK + 1) * BLOCK_E * BLOCK_N
    S = BLOCK_E * BLOCK_N
    dA = tl.zeros([BLOCK_E, BLOCK_N], dtype=tl.float32)
    dD = tl.zeros([BLOCK_E], dtype=tl.float32)
    dbias = tl.zeros([BLOCK_E], dtype=tl.float32)
    G = tl.zeros([BLOCK_E, BLOCK_N], dtype=tl.float32)  # a_{t+1} * dL/dh_{t+1}
    for ci in range(n_chunks):
        c = n_chunks - 1 - ci
        t0 = c * CHUNK
        steps = tl.minimum(CHUNK, L - t0)
        h = tl.load(ck_ptr + c * S + tile, mask=mt, other=0.0)
        tl.store(hs_ptr + tile, h, mask=mt)
        u = tl.load(u_ptr + t0 * su_l + e, mask=me, other=0.0)
        dt = tl.load(dt_ptr + t0 * sd_l + e, mask=me, other=0.0)
        Bt = tl.load(B_ptr + t0 * sB_l + n, mask=mn, other=0.0)
        for k in range(steps):  # states h_t0 .. into slots 1 ..
            tn = t0 + tl.minimum(k + 1, steps - 1)
            u_n = tl.load(u_ptr + tn * su_l + e, mask=me, other=0.0)
            dt_n = tl.load(dt_ptr + tn * sd_l + e, mask=me, other=0.0)
            B_n = tl.load(B_ptr + tn * sB_l + n, mask=mn, other=0.0)
            h = _advance(h, A, u, dt + bias, Bt)
            tl.store(hs_ptr + (k + 1) * S + tile, h, mask=mt)
            u, dt, Bt = u_n, dt_n, B_n
        tl.debug_barrier()
        t = t0 + steps - 1
        u = tl.load(u_ptr + t * su_l + e, mask=me, other=0.0)
        dt = tl.load(dt_ptr + t * sd_l + e, mask=me, other=0.0) + bias
        Bt = tl.load(B_ptr + t * sB_l + n, mask=mn, other=0.0)
        Ct = tl.load(C_ptr + t * sC_l + n, mask=mn, other=0.0)
        z = tl.load(z_ptr + t * sz_l + e, mask=me, other=0.0)
        dy = tl.load(dy_ptr + t * E + e, mask=me, other=0.0)
        h_prev = tl.load(hs_ptr + (steps - 1) * S + tile, mask=mt, other=0.0)
        for kk in range(steps):  # then walk the chunk backwards; h holds h_t
            k = steps - 1 - kk
            t = t0 + k
            tn = t0 + tl.maximum(k - 1, 0)
            u_n = tl.load(u_ptr + tn * su_l + e, mask=me, other=0.0)
            dt_n = tl.load(dt_ptr + tn * sd_l + e, mask=me, other=0.0) + bias
            B_n = tl.load(B_ptr + tn * sB_l + n, mask=mn, other=0.0)
            C_n = tl.load(C_ptr + tn * sC_l + n, mask=mn, other=0.0)
            z_n = tl.load(z_ptr + tn * sz_l + e, mask=me, other=0.0)
            dy_n = tl.load(dy_ptr + tn * E + e, mask=me, other=0.0)
            hp_n = tl.load(hs_ptr + tl.maximum(k - 1, 0) * S + tile, mask=mt, other=0.0)
            delta = _softplus(dt)
            a = tl.exp(delta[:, None] * A)
            ys = tl.sum(h * Ct[None, :], 1) + D * u  # before the gate
            sz = tl.sigmoid(z)
            tl.store(dz_ptr + t * E + e, dy * ys * sz * (1.0 + z * (1.0 - sz)), mask=me)
            dys = dy * z * sz
            dD += dys * u
            tl.store(dC_ptr + t * N + n, tl.sum(dys[:, None] * h, 0), mask=mn)
            g = dys[:, None] * Ct[None, :] + G  # dL/dh_t
            tl.store(dB_ptr + t * N + n, tl.sum(g * (delta * u)[:, None], 0), mask=mn)
            gB = tl.sum(g * Bt[None, :], 1)
            tl.store(du_ptr + t * E + e, gB * delta + D * dys, mask=me)
            gha = g * h_prev * a
            ddelta = gB * u + tl.sum(gha * A, 1)
            dA += gha * delta[:, None]
            ddt = tl.where(dt <= 20.0, ddelta * tl.sigmoid(dt), ddelta)
            dbias += ddt
            tl.store(ddt_ptr + t * E + e, ddt, mask=me)
            G = a * g
            h = h_prev
            u, dt, Bt, Ct, z, dy, h_prev = u_n, dt_n, B_n, C_n, z_n, dy_n, hp_n
        tl.debug_barrier()  # the scratch slots are overwritten by the next chunk
    tl.store(dA_ptr + row * E * N + e[:, None] * N + n[None, :], dA, mask=mt)
    tl.store(dD_ptr + row * E + e, dD, mask=me)
    tl.store(dbias_ptr + row * E + e, dbias, mask=me)


def _strides(t: torch.Tensor) -> tuple[int, int, int]:
    if t.stride(-1) != 1:
        raise ValueError("ensemble kernels need a contiguous last dimension")
    return t.stride(0), t.stride(1), t.stride(2)


# warps per program: one (member, row) is a small [E, N] tile, and more programs at once
# hide more latency than more threads per program (measured on an H100 at E = 24, N = 16)
FWD_WARPS, BWD_WARPS = 1, 1


class _Scan(torch.autograd.Function):
    @staticmethod
    def forward(ctx, u, delta, A, B, C, D, z, delta_bias):
        M, Bt, L, E = u.shape
        N = A.shape[-1]
        A, D, delta_bias = A.float().contiguous(), D.float().contiguous(), delta_bias.float().contiguous()
        BE, BN = _block(E), _block(N)
        n_chunks = triton.cdiv(L, CHUNK)
        save = any(ctx.needs_input_grad)
        y = torch.empty(M, Bt, L, E, device=u.device, dtype=torch.float32)
        ck = torch.empty(M * Bt * n_chunks * BE * BN if save else 1, device=u.device, dtype=torch.float32)
        _scan_fwd[(Bt, M)](u, delta, z, A, B, C, D, delta_bias, y, ck, L, E, N, *_strides(u), *_strides(delta),
                           *_strides(z), *_strides(B), *_strides(C),
                           BLOCK_E=BE, BLOCK_N=BN, CHUNK=CHUNK, SAVE=save, num_warps=FWD_WARPS)
        if save:
            ctx.save_for_backward(u, delta, A, B, C, D, z, delta_bias, ck)
        return y.to(u.dtype)

    @staticmethod
    def backward(ctx, dy):
        u, delta, A, B, C, D, z, delta_bias, ck = ctx.saved_tensors
        M, Bt, L, E = u.shape
        N = A.shape[-1]
        BE, BN = _block(E), _block(N)
        n_chunks = triton.cdiv(L, CHUNK)
        dy = dy.float().contiguous()
        f32 = dict(device=u.device, dtype=torch.float32)
        du, ddt, dz = (torch.empty(M, Bt, L, E, **f32) for _ in range(3))
        dB, dC = torch.empty(M, Bt, L, N, **f32), torch.empty(M, Bt, L, N, **f32)
        dA, dD, dbias = torch.empty(M, Bt, E, N, **f32), torch.empty(M, Bt, E, **f32), torch.empty(M, Bt, E, **f32)
        scratch = torch.empty(M * Bt * (CHUNK + 1) * BE * BN, **f32)
        _scan_bwd[(Bt, M)](u, delta, z, A, B, C, D, delta_bias, dy, ck, scratch, du, ddt, dz, dB, dC, dA, dD, dbias,
                           L, E, N, *_strides(u), *_strides(delta), *_strides(z), *_strides(B), *_strides(C),
                           BLOCK_E=BE, BLOCK_N=BN, CHUNK=CHUNK, num_warps=BWD_WARPS)
        return (du.to(u.dtype), ddt.to(delta.dtype), dA.sum(1), dB.to(B.dtype), dC.to(C.dtype), dD.sum(1),
                dz.to(z.dtype), dbias.sum(1))


def scan(u, delta, A, B, C, D, z, delta_bias) -> torch.Tensor:
    """y [M, B, L, E] = (sum_n h C + D u) * silu(z), h_t = exp(delta_t A) h_{t-1} + delta_t u_t B_t,
    delta = softplus(delta + delta_bias): mamba-ssm's selective scan per member (see the module doc)."""
    return _Scan.apply(u, delta, A, B, C, D, z, delta_bias)


# ----------------------------------------------------------------------------- causal conv + silu

@triton.jit
def _tap(x_ptr, src, e, me, L, sx_l):
    """x at positions src [BLOCK_L] (zeros outside 0..L-1) for channels e: [BLOCK_L, BLOCK_E]."""
    return tl.load(x_ptr + src[:, None] * sx_l + e[None, :], mask=((src >= 0) & (src < L))[:, None] & me[None, :],
                   other=0.0)


@triton.jit
def _conv_pre(x_ptr, w_ptr, bias, t, m, e, me, L, E, sx_l,
              K: tl.constexpr, BLOCK_L: tl.constexpr, BLOCK_E: tl.constexpr):
    """The convolution before silu at positions t: bias + sum_j w_j x[t - K + 1 + j]."""
    acc = tl.zeros([BLOCK_L, BLOCK_E], dtype=tl.float32) + bias[None, :]
    for j in tl.static_range(K):
        acc += _tap(x_ptr, t - (K - 1) + j, e, me, L, sx_l) * tl.load(w_ptr + (m * E + e) * K + j, mask=me,
                                                                         other=0.0)[None, :]
    return acc


@triton.jit
def _conv_fwd(x_ptr, w_ptr, b_ptr, y_ptr, L, E, sx_m, sx_b, sx_l,
              K: tl.constexpr, HAS_BIAS: tl.constexpr, BLOCK_L: tl.constexpr, BLOCK_E: tl.constexpr):
    lb = tl.program_id(0)
    b = tl.program_id(1).to(tl.int64)
    m = tl.program_id(2).to(tl.int64)
    nb = tl.num_programs(1).to(tl.int64)
    t = lb * BLOCK_L + tl.arange(0, BLOCK_L)
    e = tl.arange(0, BLOCK_E)
    me = e < E
    x_ptr += m * sx_m + b * sx_b
    bias = tl.zeros([BLOCK_E], dtype=tl.float32)
    if HAS_BIAS:
        bias = tl.load(b_ptr + m * E + e, mask=me, other=0.0)
    acc = _conv_pre(x_ptr, w_ptr, bias, t, m, e, me, L, E, sx_l, K, BLOCK_L, BLOCK_E)
    out = acc * tl.sigmoid(acc)
    tl.store(y_ptr + ((m * nb + b) * L + t[:, None]) * E + e[None, :], out, mask=(t < L)[:, None] & me[None, :])


@triton.jit
def _conv_bwd(x_ptr, w_ptr, b_ptr, dy_ptr, dx_ptr, dw_ptr, db_ptr, L, E, sx_m, sx_b, sx_l,
              K: tl.constexpr, HAS_BIAS: tl.constexpr, BLOCK_L: tl.constexpr, BLOCK_E: tl.constexpr):
    lb = tl.program_id(0)
    b = tl.program_id(1).to(tl.int64)
    m = tl.program_id(2).to(tl.int64)
    nb = tl.num_programs(1).to(tl.int64)
    t = lb * BLOCK_L + tl.arange(0, BLOCK_L)
    e = tl.arange(0, BLOCK_E)
    me = e < E
    x_ptr += m * sx_m + b * sx_b
    dy_ptr += (m * nb + b) * L * E
    part = (m * nb + b) * tl.num_programs(0) + lb  # this program's slot in the weight-gradient partials
    bias = tl.zeros([BLOCK_E], dtype=tl.float32)
    if HAS_BIAS:
        bias = tl.load(b_ptr + m * E + e, mask=me, other=0.0)
    dx = tl.zeros([BLOCK_L, BLOCK_E], dtype=tl.float32)
    for s in tl.static_range(K):  # y[t + s] reads x[t] through tap K - 1 - s
        ts = t + s
        pre = _conv_pre(x_ptr, w_ptr, bias, ts, m, e, me, L, E, sx_l, K, BLOCK_L, BLOCK_E)
        sig = tl.sigmoid(pre)
        valid = (ts < L)[:, None] & me[None, :]
        g = tl.load(dy_ptr + ts[:, None] * E + e[None, :], mask=valid, other=0.0) * sig * (1.0 + pre * (1.0 - sig))
        dx += g * tl.load(w_ptr + (m * E + e) * K + (K - 1 - s), mask=me, other=0.0)[None, :]
        if s == 0:  # this tile's own outputs: their weight and bias gradients
            for j in tl.static_range(K):
                xv = _tap(x_ptr, t - (K - 1) + j, e, me, L, sx_l)
                tl.store(dw_ptr + (part * E + e) * K + j, tl.sum(g * xv, 0), mask=me)
            tl.store(db_ptr + part * E + e, tl.sum(g, 0), mask=me)
    tl.store(dx_ptr + ((m * nb + b) * L + t[:, None]) * E + e[None, :], dx, mask=(t < L)[:, None] & me[None, :])


CONV_BLOCK_L = 32


class _ConvSilu(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, w, bias):
        M, Bt, L, E = x.shape
        K = w.shape[-1]
        w = w.float().contiguous()
        bias_c = bias.float().contiguous() if bias is not None else w  # a placeholder pointer without bias
        y = torch.empty(M, Bt, L, E, device=x.device, dtype=torch.float32)
        grid = (triton.cdiv(L, CONV_BLOCK_L), Bt, M)
        _conv_fwd[grid](x, w, bias_c, y, L, E, *_strides(x), K=K, HAS_BIAS=bias is not None,
                        BLOCK_L=CONV_BLOCK_L, BLOCK_E=_block(E))
        ctx.save_for_backward(x, w, bias_c)
        ctx.has_bias = bias is not None
        return y.to(x.dtype)

    @staticmethod
    def backward(ctx, dy):
        x, w, bias_c = ctx.saved_tensors
        M, Bt, L, E = x.shape
        K = w.shape[-1]
        nlb = triton.cdiv(L, CONV_BLOCK_L)
        f32 = dict(device=x.device, dtype=torch.float32)
        dx = torch.empty(M, Bt, L, E, **f32)
        dw, db = torch.empty(M, Bt * nlb, E, K, **f32), torch.empty(M, Bt * nlb, E, **f32)
        _conv_bwd[(nlb, Bt, M)](x, w, bias_c, dy.float().contiguous(), dx, dw, db, L, E, *_strides(x), K=K,
                                HAS_BIAS=ctx.has_bias, BLOCK_L=CONV_BLOCK_L, BLOCK_E=_block(E))
        return dx.to(x.dtype), dw.sum(1), db.sum(1) if ctx.has_bias else None


def conv_silu(x: torch.Tensor, w: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """silu(causal depthwise conv along L): x [M, B, L, E], w [M, E, K], bias [M, E] or None
    -> [M, B, L, E]; output t reads x[t - K + 1 .. t] (zeros before the start)."""
    return _ConvSilu.apply(x, w, bias)
