"""Ensembled training: many models stepped as one must compute what each would alone.

- the batched forward equals each member's own forward (per-member windows, heads);
- the elementwise norms used for narrow rows on a GPU equal torch's LayerNorm / RMSNorm;
- the grouped selective scan (one B/C group per member) equals separate scans;
- training K models as one ensemble gives each the losses and accuracies it gets
  trained alone with the same seed (dropout on), within float rounding;
- the per-member AdamW and clipping equal torch's on a single model;
- the dropout masks depend on (member seed, step) only, not on the packing;
- the sweep runner packs runs of one shape together across experiments and windows, and
  starts ensembles only while their memory fits (one alone always starts).
"""
import copy

import pytest
import torch

from lib.config import expand_runs
from lib.models import build_model, micro, paper_b, selective_scan_ref
from lib.models.ensemble import Ensemble, _norm, keyed_keep, keyed_uniform
from lib.models.lm import ModelError
from lib.models.mamba import selective_scan_parallel
from lib.sweeps.runner import Member, admits, pack
from lib.tasks import make_task
from lib.training import MemberAdamW, TrainConfig, train, train_ensemble
from lib.training.loop import clip_members_

TASK = make_task("selective_copy", length=40)
EVAL = make_task("selective_copy", length=40).build(seed=1, n=64)


@pytest.mark.parametrize("arch", ["SSM-TF", "TF-SSM", "TF-TF", "SSM-SSM", "SSM-SSM-TF"])
@pytest.mark.parametrize("heads", [1, 2])
def test_batched_forward_equals_each_model(arch, heads):
    models = [build_model(micro(arch, 8, heads=heads, window=w), 34, seed=s)
              for s, w in enumerate([3, 20, None, 40])]
    ens = Ensemble(models).eval()
    ids = torch.randint(0, 34, (4, 5, 40), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        out = ens(ids)
        ref = torch.stack([m.eval()(ids[i]) for i, m in enumerate(models)])
    assert out.shape == (4, 5, 40, 34)
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("arch", ["TF-TF", "SSM-TF"])
@pytest.mark.parametrize("d, heads", [(4, 1), (12, 1), (20, 1), (12, 2), (12, 3)])
def test_batched_forward_equals_each_model_at_odd_rotary_counts(arch, d, heads):
    """Paper A's widths where int(0.25 * head size) is odd (1, 3, 5, 1, 1 rotated dims)."""
    models = [build_model(micro(arch, d, heads=heads, window=w), 34, seed=s) for s, w in enumerate([3, 20, None])]
    ens = Ensemble(models).eval()
    ids = torch.randint(0, 34, (3, 4, 40), generator=torch.Generator().manual_seed(d))
    with torch.no_grad():
        out = ens(ids)
        ref = torch.stack([m.eval()(ids[i]) for i, m in enumerate(models)])
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kind", ["layernorm", "rmsnorm"])
def test_narrow_row_norms_equal_torch(kind):
    """The spelled-out norms (CUDA, narrow rows) against torch's kernels, values and gradients."""
    g = torch.Generator().manual_seed(0)
    x = (3 * torch.randn(4, 2, 5, 12, generator=g, dtype=torch.float64) + 1).requires_grad_()
    w = torch.randn(4, 12, generator=g, dtype=torch.float64, requires_grad=True)
    b = torch.randn(4, 12, generator=g, dtype=torch.float64, requires_grad=True) if kind == "layernorm" else None
    outs = [_norm(kind, x, w, b, 1e-5, small=s) for s in (True, False)]
    torch.testing.assert_close(outs[0], outs[1])
    grads = [torch.autograd.grad((o * o.detach().cos()).sum(), [x, w] + ([b] if b is not None else []))
             for o in outs]
    for a, r in zip(*grads):
        torch.testing.assert_close(a, r)


def test_grouped_scan_equals_separate_scans():
    """B and C of shape [b, G, N, L]: group g drives channels g*E/G .. (g+1)*E/G - 1."""
    g = torch.Generator().manual_seed(0)
    b, G, E, N, L = 2, 3, 4, 5, 17
    u, delta, z = (torch.randn(b, G * E, L, generator=g, dtype=torch.float64) for _ in range(3))
    A = -torch.rand(G * E, N, generator=g, dtype=torch.float64)
    B, C = (torch.randn(b, G, N, L, generator=g, dtype=torch.float64) for _ in range(2))
    D, bias = torch.randn(G * E, dtype=torch.float64), torch.randn(G * E, dtype=torch.float64)
    for scan in (selective_scan_ref, selective_scan_parallel):
        y = scan(u, delta, A, B, C, D, z=z, delta_bias=bias, delta_softplus=True)
        for i in range(G):
            ch = slice(i * E, (i + 1) * E)
            y_i = selective_scan_ref(u[:, ch], delta[:, ch], A[ch], B[:, i], C[:, i], D[ch], z=z[:, ch],
                                     delta_bias=bias[ch], delta_softplus=True)
            torch.testing.assert_close(y[:, ch], y_i, rtol=1e-10, atol=1e-12)


def test_ensembled_training_equals_training_alone():
    """Three runs (different archs' shapes can't mix, so one shape, different windows,
    seeds and learning rates) trained as one ensemble and each alone: same loss curves
    and final metrics. Dropout is on (keyed by seed and step, so packing-independent)."""
    cfg = TrainConfig(steps=60, batch_size=4, warmup=5, data_block=20)
    setups = [(0, 5, 1e-2), (1, 20, 3e-3), (2, None, 1e-2)]

    def models():
        return [build_model(micro("SSM-TF", 8, window=w), TASK.vocab_size, seq_len=40, seed=s)
                for s, w, _ in setups]

    together = train_ensemble(models(), [TASK] * 3, cfg, seeds=[s for s, _, _ in setups],
                              lrs=[lr for _, _, lr in setups], eval_batches=[EVAL] * 3, progress=False)
    for (s, w, lr), m, res in zip(setups, models(), together):
        alone = train(m, TASK, TrainConfig(**{**vars(cfg), "lr": lr}), seed=s, eval_batch=EVAL, progress=False)
        assert alone["history"]["train_loss"] == pytest.approx(res["history"]["train_loss"], rel=1e-4, abs=1e-5)
        assert alone["final"]["token_acc"] == pytest.approx(res["final"]["token_acc"], abs=2e-3)
        assert alone["final"]["loss"] == pytest.approx(res["final"]["loss"], rel=1e-3)
    assert together[0]["history"]["train_loss"] != together[2]["history"]["train_loss"]


def test_trained_weights_are_written_back():
    m = build_model(micro("SSM-TF", 8), TASK.vocab_size, seed=0)
    before = copy.deepcopy(m.state_dict())
    train(m, TASK, TrainConfig(steps=5, batch_size=2, warmup=1, lr=1e-2, data_block=5), seed=0, progress=False)
    assert any(not torch.equal(before[k], v) for k, v in m.state_dict().items())


def test_member_adamw_and_clipping_equal_torch():
    """MemberAdamW + clip_members_ on [M, P] follow torch.optim.AdamW + clip_grad_norm_ on
    each member's own parameters, fed the same gradients, with per-member learning rates."""
    g = torch.Generator().manual_seed(0)
    refs = [torch.nn.Parameter(torch.randn(2, 50, generator=g)) for _ in range(3)]  # 3 members, 100 params
    flat = torch.stack([r.detach().flatten() for r in refs]).clone()
    grad = torch.zeros_like(flat)
    lrs = [3e-2, 1e-3, 0.3]
    opts = [torch.optim.AdamW([r], lr=lr, weight_decay=0.1) for r, lr in zip(refs, lrs)]
    opt = MemberAdamW(flat, grad, weight_decay=0.1)
    for step in range(20):
        gs = torch.randn(3, 100, generator=g) * (1 + step)
        for r, o, gi in zip(refs, opts, gs):
            o.zero_grad()
            r.grad = gi.view(2, 50).clone()
            torch.nn.utils.clip_grad_norm_([r], 5.0)
            o.step()
        grad.copy_(gs)
        clip_members_(grad, 5.0)
        opt.step(torch.tensor(lrs))
    # float32 rounding only: the lr=0.3 member moves by ~5 in 20 steps, and agrees to ~1e-5
    torch.testing.assert_close(flat, torch.stack([r.detach().flatten() for r in refs]), rtol=1e-5, atol=5e-5)


def test_dropout_masks_depend_on_seed_and_step_only():
    a = keyed_uniform(torch.tensor([7, 8]), torch.tensor(3), (4, 5))
    b = keyed_uniform(torch.tensor([1, 2, 7]), torch.tensor(3), (4, 5))
    assert torch.equal(a[0], b[2])  # member seed 7 at step 3, packed differently
    assert not torch.equal(a[0], keyed_uniform(torch.tensor([7]), torch.tensor(4), (4, 5))[0])
    u = keyed_uniform(torch.arange(50), torch.tensor(0), (2000,))
    assert 0 <= u.min() and u.max() < 1 and abs(u.mean().item() - 0.5) < 0.01


def test_keyed_keep_is_keyed_uniform_thresholded_exactly():
    """Training draws its masks on int32 bit patterns; they are bit for bit the int64
    definition's, for any seed (negative and beyond 32 bits included), step and rate."""
    seeds = torch.cat([torch.arange(20), torch.randint(0, 2 ** 62, (20,), generator=torch.Generator().manual_seed(0)),
                       torch.tensor([2 ** 31 - 1, 2 ** 31, 2 ** 32 - 1, 2 ** 32, -1, -5])])
    for step in (0, 977, 2 ** 31 + 3):
        for p in (0.1, 0.0, 0.5, 1 / 3, 1.0, 1e-9):
            assert torch.equal(keyed_keep(seeds, torch.tensor(step), (8, 100, 3), p),
                               keyed_uniform(seeds, torch.tensor(step), (8, 100, 3)) >= p), (step, p)


def test_models_of_other_layers_run_their_own_forward():
    """Paper B's two-stream hybrid has no batched form: an ensemble of one (no dropout) runs
    the model's own forward, bit for bit as paper B's runs always trained; several members run
    one at a time (tests/test_extending.py). Models of other shapes are refused clearly."""
    cfg = paper_b("hybrid2s", d_model=16, heads=2, repeats=1)
    ids = torch.randint(0, 40, (2, 2, 12))
    ms = [build_model(cfg, 40, seed=s) for s in range(2)]
    with torch.no_grad():
        assert torch.equal(Ensemble(ms[:1]).eval()(ids[:1])[0], ms[0].eval()(ids[0]))
        torch.testing.assert_close(Ensemble(ms).eval()(ids)[1], ms[1].eval()(ids[1]))
    with pytest.raises(ModelError, match="share their architecture"):
        Ensemble([build_model(micro("SSM-TF", 8), 34), build_model(micro("SSM-TF", 12), 34)])


def test_runner_packs_one_shape_across_experiments_and_windows(tmp_path):
    """Runs that differ in experiment, window, task settings, seed and learning rate but
    share the model's shape train as one ensemble; another width is another ensemble."""
    spec = {"profile": "quick", "task": {"name": "selective_copy", "length": 24}, "eval": {"n": 8, "seed": 1},
            "model": {"family": "micro", "d_model": 8}, "seeds": 2, "train": {"steps": 4, "batch_size": 2},
            "lr": {"grid": [1e-2]}}
    a = expand_runs({**spec, "name": "a", "grid": {"arch": ["SSM-TF"], "window": [4, 8]}})
    b = expand_runs({**spec, "name": "b", "task": {**spec["task"], "mixed": True},
                     "grid": {"arch": ["SSM-TF"], "window": [24]}})
    c = expand_runs({**spec, "name": "c", "grid": {"arch": ["SSM-TF"], "d_model": [12]}})
    members = [Member(r, 1e-2, r.seed, r.train, tmp_path) for r in a + b + c]
    groups = pack(members, budget=1e12, max_members=100)
    assert sorted(len(g) for g in groups) == [2, 6]
    assert pack(members, budget=1e12, max_members=4) and max(len(g) for g in pack(members, 1e12, 4)) == 4


def test_memory_admission_lets_large_runs_train_with_fewer_beside_them():
    """Ensembles start while their memory costs fit the total; one alone always starts."""
    assert admits([], 10.0, 1.0)  # a run larger than the whole budget still trains, alone
    assert not admits([10.0], 1.0, 1.0)
    assert admits([0.4, 0.3], 0.3, 1.0) and not admits([0.4, 0.3], 0.31, 1.0)

