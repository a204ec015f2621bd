"""The Triton kernels for big ensembles of Mambas (lib.models.ensemble_kernels) against
their oracles: selective_scan_ref per member, F.conv1d, and the ensemble's folded path.
On a GPU they run compiled; on a CPU with Triton installed, in Triton's interpreter;
without Triton (CI's CPU machine) they are skipped."""
import os

import pytest
import torch
import torch.nn.functional as F

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")  # read when the kernels are defined
pytest.importorskip("triton")

from lib.models import build_model, micro  # noqa: E402
from lib.models import ensemble_kernels as ek  # noqa: E402
from lib.models.ensemble import Ensemble  # noqa: E402
from lib.models.mamba import selective_scan_ref  # noqa: E402

DEV = torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _scan_ref(u, dt, A, B, C, D, z, bias):
    """The kernel's contract, member by member, through the reference recurrence."""
    return torch.stack([selective_scan_ref(u[m].transpose(1, 2), dt[m].transpose(1, 2), A[m], B[m].transpose(1, 2),
                                           C[m].transpose(1, 2), D[m], z=z[m].transpose(1, 2), delta_bias=bias[m],
                                           delta_softplus=True).transpose(1, 2) for m in range(u.shape[0])])


@pytest.mark.parametrize("L", [37, 2 * ek.CHUNK])  # a partial last chunk; whole chunks
def test_scan_matches_reference(L):
    """Outputs and every gradient equal the float64 reference, with B, C and z passed as
    strided slices of wider tensors (as the ensemble does) and E, N not powers of two."""
    g = torch.Generator().manual_seed(0)
    M, Bt, E, N, R = 3, 2, 6, 5, 2
    rnd = lambda *s: torch.randn(*s, generator=g, dtype=torch.float64)  # noqa: E731
    xz, dbc = rnd(M, Bt, L, 2 * E), rnd(M, Bt, L, R + 2 * N)
    u, dt = rnd(M, Bt, L, E), rnd(M, Bt, L, E) - 1
    A = -torch.rand(M, E, N, generator=g, dtype=torch.float64)
    D, bias = rnd(M, E), rnd(M, E)
    ref_in = [t.clone().requires_grad_() for t in (u, dt, A, dbc, xz, D, bias)]
    ker_in = [t.float().to(DEV).requires_grad_() for t in (u, dt, A, dbc, xz, D, bias)]

    def run(f, u, dt, A, dbc, xz, D, bias):
        return f(u, dt, A, dbc[..., R:R + N], dbc[..., R + N:], D, xz[..., E:], bias)

    y_ref, y = run(_scan_ref, *ref_in), run(ek.scan, *ker_in)
    assert y.is_contiguous() and y.shape == (M, Bt, L, E)
    torch.testing.assert_close(y.double().cpu(), y_ref, rtol=1e-4, atol=1e-4)
    with torch.no_grad():  # evaluation: no checkpoints saved, same output
        torch.testing.assert_close(run(ek.scan, *ker_in), y.detach(), rtol=0, atol=0)
    grad = torch.randn(y_ref.shape, generator=g, dtype=torch.float64)
    y_ref.backward(grad)
    y.backward(grad.float().to(DEV))
    for name, a, b in zip(["u", "delta", "A", "B/C", "z", "D", "delta_bias"], ker_in, ref_in):
        torch.testing.assert_close(a.grad.double().cpu(), b.grad, rtol=1e-4, atol=1e-4, msg=name)


def test_kernels_only_for_small_states():
    assert ek.fits(24, 16) and ek.fits(32, 16) and ek.fits(8, 4)
    assert not ek.fits(48, 16) and not ek.fits(24, 64)


@pytest.mark.parametrize("bias", [True, False])
def test_conv_silu_matches_conv1d(bias):
    g = torch.Generator().manual_seed(1)
    M, Bt, L, E, K = 3, 2, 45, 5, 4  # L spans two tiles and a part
    xz = torch.randn(M, Bt, L, 2 * E, generator=g, dtype=torch.float64)
    w, b = torch.randn(M, E, K, generator=g, dtype=torch.float64), torch.randn(M, E, generator=g, dtype=torch.float64)
    ref_in = [t.clone().requires_grad_() for t in (xz, w, b)]
    ker_in = [t.float().to(DEV).requires_grad_() for t in (xz, w, b)]
    x, wr, br = ref_in
    folded = x[..., :E].permute(1, 0, 3, 2).reshape(Bt, M * E, L)
    y_ref = F.conv1d(folded, wr.reshape(M * E, 1, K), br.reshape(-1) if bias else None, padding=K - 1, groups=M * E)
    y_ref = F.silu(y_ref[..., :L]).view(Bt, M, E, L).permute(1, 0, 3, 2)
    y = ek.conv_silu(ker_in[0][..., :E], ker_in[1], ker_in[2] if bias else None)
    torch.testing.assert_close(y.double().cpu(), y_ref, rtol=1e-5, atol=1e-5)
    grad = torch.randn(y_ref.shape, generator=g, dtype=torch.float64)
    y_ref.backward(grad)
    y.backward(grad.float().to(DEV))
    for name, a, r in zip(["x", "w", "b"], ker_in if bias else ker_in[:2], ref_in if bias else ref_in[:2]):
        torch.testing.assert_close(a.grad.double().cpu(), r.grad, rtol=1e-5, atol=1e-5, msg=name)


def test_ensemble_mamba_block_same_through_kernels(monkeypatch):
    """The ensemble's Mamba block through these kernels equals its folded path (mamba-ssm's
    scan on a GPU, the PyTorch scan on a CPU): outputs and all parameter gradients."""
    import lib.models.ensemble as ensemble

    models = [build_model(micro("SSM-TF", 12), 34, seed=s) for s in range(3)]
    h = torch.randn(3, 2, 30, 12, generator=torch.Generator().manual_seed(2)).to(DEV)
    outs, grads = [], []
    for kernels in (True, False):
        monkeypatch.setattr(ensemble, "_use_ensemble_kernels", lambda *args, on=kernels: on)
        ens = Ensemble(models, device=DEV).train()
        out = ens._mamba("layers.0.", h)
        ens.flat_grad.zero_()
        out.square().sum().backward()
        outs.append(out.detach())
        grads.append(ens.flat_grad.clone())
    torch.testing.assert_close(outs[0], outs[1], rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(grads[0], grads[1], rtol=1e-4, atol=1e-5)
