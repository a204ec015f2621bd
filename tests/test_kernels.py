"""The CUDA kernel path (mamba-ssm) vs the pure-PyTorch path of the same modules.

Runs only on a machine with CUDA *and* mamba-ssm (skipped cleanly elsewhere).
For Mamba (mamba-ssm's CUDA `selective_scan_fn`) and Mamba2 (its Triton
`mamba_chunk_scan_combined`) one module is built, deep-copied, and the copy
switched to `kernels='cuda'` (`.kernels` attribute; same weights), then
outputs and the gradients of the input and of every parameter are compared in
float32 at paper A's tiny shapes (d = 4, 8, 12; d_state 16; expand 2; L = 100;
batch 8) and at larger ones (d = 256, L = 512, batch 4). Whole models are
compared too.

Every case prints its max absolute and relative differences (`pytest -s`). The
relative difference is max|a-b| / max|ref|, i.e. normalised by the tensor's own
scale (elementwise ratios blow up on entries near zero). With env var
KERNEL_REPORT=path the measurements are also written there as JSON.

Tolerances (on max|a-b| <= atol + rtol * max|ref|):
- Mamba: outputs rtol 1e-3, atol 1e-4; gradients rtol 5e-3, atol 1e-4. The CUDA
  scan works in float32 throughout, so agreement is usually ~1e-6 relative.
- Mamba2: outputs rtol 1e-2, gradients rtol 3e-2. mamba-ssm's Triton SSD kernels
  call `tl.dot` on float32 operands without an explicit precision, which Triton
  runs as TF32 (10-bit mantissa) on Ampere/Hopper; mamba-ssm's own tests use
  rtol 1e-2 for the same reason. A wrong wiring gives O(1) differences.
"""
from __future__ import annotations

import copy
import json
import os

import pytest
import torch

if not torch.cuda.is_available():
    pytest.skip("needs a CUDA GPU", allow_module_level=True)
pytest.importorskip("mamba_ssm", exc_type=ImportError)

from lib.models import Mamba, Mamba2, build_model, cuda_kernels_available, micro, paper_b  # noqa: E402
from lib.models import mamba as lib_mamba  # noqa: E402

if not cuda_kernels_available():
    pytest.skip("mamba-ssm is installed but its kernels cannot be imported", allow_module_level=True)

DEV = torch.device("cuda")
RESULTS: list[dict] = []

TOL = {  # (rtol, atol) for outputs, then for gradients
    "mamba": ((1e-3, 1e-4), (5e-3, 1e-4)),
    "mamba2": ((1e-2, 1e-4), (3e-2, 1e-4)),
}


@pytest.fixture(scope="module", autouse=True)
def kernel_report():
    """Write every measured difference to $KERNEL_REPORT (JSON) after the module."""
    yield
    path = os.environ.get("KERNEL_REPORT")
    if path:
        import mamba_ssm
        meta = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__,
                "cuda": torch.version.cuda, "mamba_ssm": getattr(mamba_ssm, "__version__", "?")}
        try:
            import triton
            meta["triton"] = triton.__version__
        except ImportError:
            pass
        with open(path, "w") as f:
            json.dump({"meta": meta, "cases": RESULTS}, f, indent=1)


@pytest.fixture
def kernel_calls(monkeypatch):
    """Count calls of the mamba-ssm entry points that lib.models.mamba imports in
    forward(), to prove that kernels='cuda' really took the kernel path."""
    import mamba_ssm.ops.selective_scan_interface as ssi
    import mamba_ssm.ops.triton.ssd_combined as ssd
    calls = {"selective_scan_fn": 0, "mamba_chunk_scan_combined": 0}

    def counting(mod, name):
        real = getattr(mod, name)

        def wrapper(*a, **k):
            calls[name] += 1
            return real(*a, **k)
        monkeypatch.setattr(mod, name, wrapper)
    counting(ssi, "selective_scan_fn")
    counting(ssd, "mamba_chunk_scan_combined")
    return calls


def _diff(a: torch.Tensor, b: torch.Tensor) -> dict:
    a, b = a.detach().float(), b.detach().float()
    abs_ = (a - b).abs().max().item()
    scale = b.abs().max().item()
    return {"max_abs": abs_, "max_rel": abs_ / scale if scale > 0 else (0.0 if abs_ == 0 else float("inf")),
            "ref_scale": scale}


def _check(case: str, kind: str, d_out: dict, d_grads: dict[str, dict]) -> None:
    """Print, record, then assert the tolerances of `kind`."""
    (rt_o, at_o), (rt_g, at_g) = TOL[kind]
    print(f"\n[{case}] output: max abs {d_out['max_abs']:.3g}, max rel {d_out['max_rel']:.3g}")
    for name, d in d_grads.items():
        print(f"[{case}]   grad {name:<16} max abs {d['max_abs']:.3g}, max rel {d['max_rel']:.3g}")
    RESULTS.append({"case": case, "kind": kind, "output": d_out, "grads": d_grads})
    assert d_out["max_abs"] <= at_o + rt_o * d_out["ref_scale"], (case, "output", d_out)
    bad = {n: d for n, d in d_grads.items() if not d["max_abs"] <= at_g + rt_g * d["ref_scale"]}
    assert not bad, (case, bad)


def _mamba_ssm_like_init_(m: torch.nn.Module, seed: int) -> None:
    """Realistic non-trivial weights: PyTorch's Linear/Conv defaults (already there),
    dt biases = softplus^-1 of a log-uniform step in [1e-3, 1e-1] (mamba-ssm's init),
    D around 1."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in m.named_parameters():
            if name.endswith("dt_proj.bias") or name == "dt_bias":
                dt = torch.exp(torch.rand(p.shape, generator=g) * (torch.log(torch.tensor(0.1)) -
                                                                  torch.log(torch.tensor(1e-3)))
                               + torch.log(torch.tensor(1e-3)))
                p.copy_(dt + torch.log(-torch.expm1(-dt)))
            elif name == "D":
                p.copy_(1 + 0.5 * torch.randn(p.shape, generator=g))


def _compare_module(torch_mod: torch.nn.Module, x: torch.Tensor, case: str, kind: str) -> None:
    torch_mod = torch_mod.to(DEV).train()
    torch_mod.kernels = "torch"
    cuda_mod = copy.deepcopy(torch_mod)
    cuda_mod.kernels = "cuda"
    assert lib_mamba._use_kernels(cuda_mod.kernels, x) and not lib_mamba._use_kernels(torch_mod.kernels, x)
    x_t = x.clone().requires_grad_(True)
    x_c = x.clone().requires_grad_(True)
    y_t, y_c = torch_mod(x_t), cuda_mod(x_c)
    assert y_c.shape == y_t.shape and y_c.dtype == y_t.dtype == torch.float32
    g = torch.randn_like(y_t)
    y_t.backward(g)
    y_c.backward(g)
    grads = {"input": _diff(x_c.grad, x_t.grad)}
    p_c = dict(cuda_mod.named_parameters())
    for name, p in torch_mod.named_parameters():
        assert p.grad is not None and p_c[name].grad is not None, name
        grads[name] = _diff(p_c[name].grad, p.grad)
    _check(case, kind, _diff(y_c, y_t), grads)


# (d, d_state, L, batch)
MAMBA_SHAPES = [(4, 16, 100, 8), (8, 16, 100, 8), (12, 16, 100, 8), (64, 16, 257, 2), (256, 16, 512, 4)]


@pytest.mark.parametrize("d, N, L, batch", MAMBA_SHAPES)
def test_mamba_cuda_matches_torch(d, N, L, batch, kernel_calls):
    """Mamba: mamba-ssm's selective_scan_fn path == the pure-torch parallel scan,
    outputs and all gradients (input, in/x/dt/out projections, conv, A_log, D)."""
    torch.manual_seed(d * 7 + L)
    m = Mamba(d, d_state=N, expand=2, d_conv=4)
    _mamba_ssm_like_init_(m, seed=d)
    x = torch.randn(batch, L, d, device=DEV)
    _compare_module(m, x, f"Mamba d={d} N={N} L={L} b={batch}", "mamba")
    assert kernel_calls["selective_scan_fn"] == 1


def test_mamba_cuda_packed_rows_equal_separate_sequences(kernel_calls):
    """Packing (Mamba.resets) on the kernel path: two sequences in a row, apart by d_conv - 1
    separators, get the outputs each gets alone (RESET_DT empties mamba-ssm's scan state)."""
    torch.manual_seed(0)
    m = Mamba(64, d_state=16, expand=2, d_conv=4, kernels="cuda").to(DEV)
    _mamba_ssm_like_init_(m, seed=0)
    a, b = torch.randn(2, 60, 64, device=DEV), torch.randn(2, 50, 64, device=DEV)
    row = torch.cat([a, torch.zeros(2, 3, 64, device=DEV), b], 1)
    resets = torch.zeros(2, row.shape[1], dtype=torch.bool, device=DEV)
    resets[:, 60:63] = True
    alone = m(a), m(b)
    m.resets = resets
    packed = m(row)
    torch.testing.assert_close(packed[:, :60], alone[0], rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(packed[:, 63:], alone[1], rtol=1e-4, atol=1e-5)
    assert kernel_calls["selective_scan_fn"] == 3


# (d, d_state, headdim, ngroups, chunk, L, batch); headdim must divide expand*d
MAMBA2_SHAPES = [
    (4, 16, 8, 1, 256, 100, 8),  # E = 8: one head
    (8, 16, 16, 1, 256, 100, 8),  # E = 16: one head
    (12, 16, 8, 1, 256, 100, 8),  # E = 24: three heads
    (16, 16, 8, 2, 32, 100, 8),  # 4 heads in 2 groups, 4 chunks (last one partial)
    (64, 64, 16, 2, 64, 300, 2),
    (256, 16, 64, 1, 256, 512, 4),  # paper B's headdim, 2 chunks
]


@pytest.mark.parametrize("d, N, P, G, chunk, L, batch", MAMBA2_SHAPES)
def test_mamba2_cuda_matches_torch(d, N, P, G, chunk, L, batch, kernel_calls):
    """Mamba2: mamba-ssm's Triton mamba_chunk_scan_combined path == the pure-torch
    chunked SSD, outputs and all gradients (input, in_proj, conv, dt_bias, A_log,
    D, gated-norm weight, out_proj)."""
    torch.manual_seed(d * 5 + L + G)
    m = Mamba2(d, d_state=N, expand=2, d_conv=4, headdim=P, ngroups=G, chunk_size=chunk)
    _mamba_ssm_like_init_(m, seed=d + G)
    with torch.no_grad():  # A uniform in [1, 16] as mamba-ssm initialises it
        m.A_log.copy_(torch.log(torch.empty(m.nheads).uniform_(1, 16)))
    x = torch.randn(batch, L, d, device=DEV)
    _compare_module(m, x, f"Mamba2 d={d} N={N} P={P} G={G} chunk={chunk} L={L} b={batch}", "mamba2")
    assert kernel_calls["mamba_chunk_scan_combined"] == 1


def _set_kernels(model: torch.nn.Module, mode: str) -> int:
    n = 0
    for mod in model.modules():
        if isinstance(mod, (Mamba, Mamba2)):
            mod.kernels = mode
            n += 1
    return n


def _compare_model(model: torch.nn.Module, V: int, L: int, batch: int, case: str, kind: str) -> None:
    model = model.to(DEV).eval()  # eval: no embedding dropout
    ids = torch.randint(0, V, (batch, L), device=DEV, generator=torch.Generator(DEV).manual_seed(0))
    cuda_model = copy.deepcopy(model)
    assert _set_kernels(model, "torch") > 0 and _set_kernels(cuda_model, "cuda") > 0
    out_t, out_c = model(ids), cuda_model(ids)
    assert out_t.shape == (batch, L, V)
    tgt = torch.randint(0, V, (batch, L), device=DEV, generator=torch.Generator(DEV).manual_seed(1))
    for mdl, out in ((model, out_t), (cuda_model, out_c)):
        torch.nn.functional.cross_entropy(out.reshape(-1, V), tgt.reshape(-1)).backward()
    p_c = dict(cuda_model.named_parameters())
    grads = {n: _diff(p_c[n].grad, p.grad) for n, p in model.named_parameters() if p.grad is not None}
    _check(case, kind, _diff(out_c, out_t), grads)


def test_micro_ssm_tf_model_cuda_matches_torch(kernel_calls):
    """Paper A's SSM-TF micro model (d=12, V=34, L=100, batch 8): same logits (and
    loss gradients) on both paths."""
    model = build_model(micro("SSM-TF", 12), 34, seed=0)
    _compare_model(model, 34, 100, 8, "model micro SSM-TF d=12", "mamba")
    assert kernel_calls["selective_scan_fn"] == 1


def test_auto_mode_uses_kernels_on_cuda(kernel_calls):
    """kernels='auto' (the default) takes the kernel path for CUDA tensors."""
    model = build_model(micro("SSM-SSM", 8), 34, seed=0).to(DEV).eval()
    assert model.cfg.kernels == "auto"
    with torch.no_grad():
        model(torch.randint(0, 34, (2, 50), device=DEV))
    assert kernel_calls["selective_scan_fn"] == 2


@pytest.mark.parametrize("family", ["hybridI_1m2", "hybrid2s"])
def test_paper_b_small_hybrid_cuda_matches_torch(family, kernel_calls):
    """A narrow one-block paper-B hybrid (Mamba2 / two-stream Mamba, RMSNorm, tied and
    padded vocabulary): same logits and gradients on both paths."""
    cfg = paper_b(family, d_model=64, heads=4, headdim=16, repeats=2)
    model = build_model(cfg, 203, seed=0)
    if family.startswith("hybrid2s"):
        with torch.no_grad():
            for blk in model.layers:
                blk.beta.fill_(0.5)  # open the gate: the attention stream then matters
    kind = "mamba2" if family.endswith("m2") else "mamba"
    _compare_model(model, 203, 128, 4, f"model paper_b {family} d=64", kind)
    assert kernel_calls["mamba_chunk_scan_combined" if kind == "mamba2" else "selective_scan_fn"] == 2


def test_ensemble_kernel_path_matches_torch_path(kernel_calls):
    """An ensemble of 5 micro models (members folded into the scan's channels, one B/C
    group per member): same logits and gradients through mamba-ssm's kernel and our scan."""
    from lib.models.ensemble import Ensemble
    from lib.training import member_losses

    for arch in ("SSM-TF", "SSM-SSM"):
        models = [build_model(micro(arch, 12, window=w), 34, seed=s) for s, w in enumerate([5, 20, 20, 50, 100])]
        ids = torch.randint(0, 34, (5, 8, 100), generator=torch.Generator().manual_seed(0)).to(DEV)
        tgt = torch.randint(0, 34, (5, 8, 100), generator=torch.Generator().manual_seed(1)).to(DEV)
        mask = torch.ones_like(tgt, dtype=torch.bool)
        outs, grads = {}, {}
        for mode in ("torch", "cuda"):
            ens = Ensemble([copy.deepcopy(m) for m in models], device=DEV).eval()
            ens.cfg.kernels = mode
            logits = ens(ids)
            member_losses(logits, tgt, mask).sum().backward()
            outs[mode], grads[mode] = logits, {n: p.grad for n, p in zip(ens.names, ens.params)}
            ens.cfg.kernels = "auto"
        _check(f"ensemble x5 {arch} d=12", "mamba", _diff(outs["cuda"], outs["torch"]),
               {n: _diff(grads["cuda"][n], grads["torch"][n]) for n in grads["torch"]})
    assert kernel_calls["selective_scan_fn"] >= 3


def test_dropout_masks_on_gpu_equal_cpu():
    """The dropout masks (int32 hashing, wrapping multiplies) are the CPU's bit for bit."""
    from lib.models.ensemble import keyed_keep

    seeds, step = torch.tensor([3, 2 ** 33 + 1, 7]), torch.tensor(41)
    assert torch.equal(keyed_keep(seeds.to(DEV), step.to(DEV), (8, 100, 12), 0.1).cpu(),
                       keyed_keep(seeds, step, (8, 100, 12), 0.1))


def test_cuda_graph_training_matches_eager():
    """The captured training step (CUDA graph) replays the eager step: same loss curve."""
    from lib.tasks import make_task
    from lib.training import TrainConfig, train_ensemble

    task = make_task("selective_copy")
    curves = {}
    for graph in (False, True):
        models = [build_model(micro(a, 8), task.vocab_size, seed=s) for s, a in enumerate(["SSM-TF"] * 3)]
        cfg = TrainConfig(steps=60, warmup=10, lr=1e-2, data_block=20, cuda_graph=graph)
        res = train_ensemble(models, [task] * 3, cfg, seeds=[0, 1, 2], device=DEV, progress=False)
        curves[graph] = torch.tensor([r["history"]["train_loss"] for r in res])
    print(f"\n[cuda graph vs eager] max loss diff {(curves[True] - curves[False]).abs().max():.3g}")
    assert torch.allclose(curves[True], curves[False], rtol=1e-4, atol=1e-5)
