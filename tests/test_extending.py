"""Adding a mixer (issue 24 §1), the README's "Extending" walk-through as a test:

- a small mixer defined here, registered by name, builds a hybrid with attention, its
  own settings read from the config and checked before any weight is built;
- unknown layer names and unknown settings fail in one line;
- with no hand-written batched form, an ensemble runs it on stacked parameters (vmap
  over members, or a loop for layers vmap cannot batch) and equals each model's forward;
- trained as an ensemble of three, each member's losses equal training it alone;
- the sweep runner packs its runs together and books a measured memory for it.
"""
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lib.config import expand_runs
from lib.models import ModelError, build_model, micro, paper_b, register_mixer
from lib.models.ensemble import Ensemble
from lib.models.lm import SSMBlock
from lib.sweeps.runner import Member, pack
from lib.tasks import make_task
from lib.training import TrainConfig, train, train_ensemble


class CausalConvMixer(nn.Module):
    """A gated causal depthwise convolution: y = W_out (conv(u) * silu(g)), [u, g] = W_in x."""

    def __init__(self, d_model: int, kernel: int = 4):
        super().__init__()
        self.kernel = kernel
        self.in_proj = nn.Linear(d_model, 2 * d_model)
        self.conv = nn.Conv1d(d_model, d_model, kernel, groups=d_model, padding=kernel - 1)
        self.out_proj = nn.Linear(d_model, d_model)

    def forward(self, x):  # [B, L, d]
        u, gate = self.in_proj(x).chunk(2, dim=-1)
        u = self.conv(u.transpose(1, 2))[..., : x.shape[1]].transpose(1, 2)  # causal: drop the look-ahead
        return self.out_proj(u * F.silu(gate))


register_mixer("test_conv", CausalConvMixer, replace=True)  # replace: a rerun in one session
TASK = make_task("selective_copy", length=24)
EVAL = make_task("selective_copy", length=24).build(seed=1, n=32)


def conv_tf(**overrides):
    return micro("test_conv-TF", 8, window=None, mixer_settings={"test_conv": {"kernel": 3}}, **overrides)


def test_a_registered_mixer_builds_a_hybrid_with_its_own_settings():
    model = build_model(conv_tf(), TASK.vocab_size, seed=0)
    assert [type(layer).__name__ for layer in model.layers] == ["SSMBlock", "AttentionLayer"]
    assert isinstance(model.layers[0], SSMBlock) and model.layers[0].mixer.kernel == 3
    assert build_model(micro("test_conv-TF", 8), TASK.vocab_size).layers[0].mixer.kernel == 4  # its default
    ids = torch.randint(0, TASK.vocab_size, (2, 10))
    out = model.eval()(ids)
    out2 = model(torch.cat([ids, torch.zeros(2, 5, dtype=torch.long)], 1))
    torch.testing.assert_close(out, out2[:, :10])  # causal: later tokens change nothing before them


def test_unknown_names_and_settings_fail_in_one_line():
    with pytest.raises(ModelError, match="unknown layer 'gla'") as e:
        build_model({"layers": ["test_conv", "gla"], "d_model": 8}, 10)
    assert "\n" not in str(e.value) and "test_conv" in str(e.value) and "mamba2" in str(e.value)
    with pytest.raises(ModelError, match="unknown layer 'gla'"):
        micro("gla-TF", 8)
    with pytest.raises(ModelError, match="kernal"):
        build_model(micro("test_conv-TF", 8, mixer_settings={"test_conv": {"kernal": 3}}), 10)
    for name in ("gla", "mamba"):  # Mamba reads the config's own fields (d_state, ...)
        with pytest.raises(ModelError, match=f"names '{name}', which is not a registered mixer that reads them"):
            build_model(micro("SSM-TF", 8, mixer_settings={name: {}}), 10)
    with pytest.raises(ModelError, match="already registered"):
        register_mixer("mamba", CausalConvMixer)


def test_stacked_forward_equals_each_model():
    """vmap over members for the new mixer (beside the hand-written attention); a loop over
    members for paper B's two-stream block, whose kernels vmap cannot batch."""
    for cfg, vocab in ((conv_tf(), TASK.vocab_size), (paper_b("hybrid2s", d_model=16, heads=2, repeats=1), 40)):
        models = [build_model(cfg, vocab, seed=s) for s in range(3)]
        ens = Ensemble(models).eval()
        assert not ens.batched and not ens.own_forward
        ids = torch.randint(0, vocab, (3, 2, 12), generator=torch.Generator().manual_seed(0))
        with torch.no_grad():
            torch.testing.assert_close(ens(ids), torch.stack([m.eval()(ids[i]) for i, m in enumerate(models)]),
                                       rtol=1e-5, atol=1e-6)


@pytest.mark.filterwarnings("ignore:There is a performance drop")  # vmap loops over CPU flash attention
def test_generic_path_equals_the_hand_written_attention_and_mamba():
    """The papers' layers through the generic path (attention vmapped, Mamba looped) give
    what their hand-written batched forms give: the latter stay only for speed."""
    models = [build_model(micro("SSM-TF", 8, heads=2, window=5), TASK.vocab_size, seed=s) for s in range(3)]
    ids = torch.randint(0, TASK.vocab_size, (3, 2, 12), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        generic, hand = (Ensemble(models, hand_written=h).eval()(ids) for h in (False, True))
    torch.testing.assert_close(generic, hand, rtol=1e-5, atol=1e-6)


def test_registered_mixer_trains_as_an_ensemble_like_alone():
    """Three members (seeds and learning rates differ; dropout on, keyed by seed and step)
    trained as one ensemble and each alone: the same loss curves and final metrics."""
    cfg = TrainConfig(steps=20, batch_size=4, warmup=3, data_block=10)
    setups = [(0, 1e-2), (1, 3e-3), (2, 1e-2)]

    def models():
        return [build_model(conv_tf(), TASK.vocab_size, seq_len=TASK.seq_len, seed=s) for s, _ in setups]

    together = train_ensemble(models(), [TASK] * 3, cfg, seeds=[s for s, _ in setups],
                              lrs=[lr for _, lr in setups], eval_batches=[EVAL] * 3, progress=False)
    for (s, lr), m, res in zip(setups, models(), together):
        alone = train(m, TASK, TrainConfig(**{**vars(cfg), "lr": lr}), seed=s, eval_batch=EVAL, progress=False)
        assert alone["history"]["train_loss"] == pytest.approx(res["history"]["train_loss"], rel=1e-4, abs=1e-5)
        assert alone["final"]["token_acc"] == pytest.approx(res["final"]["token_acc"], abs=2e-3)
        assert alone["final"]["loss"] == pytest.approx(res["final"]["loss"], rel=1e-3)
    assert together[0]["history"]["train_loss"] != together[2]["history"]["train_loss"]


def test_runner_packs_a_registered_mixer_and_measures_its_memory(tmp_path):
    spec = {"profile": "quick", "name": "conv", "task": {"name": "selective_copy", "length": 24},
            "eval": {"n": 8, "seed": 1}, "seeds": 3, "train": {"steps": 4, "batch_size": 2}, "lr": {"grid": [1e-2]},
            "model": {"family": "micro", "arch": "test_conv-TF", "d_model": 8, "window": None}}
    members = [Member(r, 1e-2, r.seed, r.train, tmp_path) for r in expand_runs(spec)]
    assert [len(g) for g in pack(members, budget=1e12, max_members=100)] == [3]
    ssm = Member(expand_runs({**spec, "model": {**spec["model"], "arch": "SSM-TF"}})[0], 1e-2, 0, spec["train"],
                 tmp_path)
    assert 0 < members[0].cost() < float("inf") and members[0].cost() != ssm.cost()  # measured, not a Mamba's
