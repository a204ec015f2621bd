"""The training loop: seeded determinism, resume, schedules, the masked loss,
early stopping, the learning-rate choice and the evaluation metrics."""
import dataclasses
import math

import pytest
import torch

from lib.models import build_model, micro
from lib.tasks import Batch, make_task
from lib.training import (TrainConfig, choose_lr, evaluate, greedy_decode, greedy_exact_match, lr_factor,
                          masked_loss, train, trial_loss)
from lib.training.loop import LR_TIE_RTOL, pick_lr, trial_config

TASK = make_task("selective_copy", length=30)
EVAL = make_task("selective_copy", length=30).build(seed=1, n=64)


def tiny(arch="SSM-TF", seed=0, d=8):
    return build_model(micro(arch, d, window=10), TASK.vocab_size, seq_len=30, seed=seed)


def run(seed=0, steps=30, **kw):
    cfg = TrainConfig(steps=steps, batch_size=4, lr=1e-2, warmup=5, **kw)
    return train(tiny(seed=seed), TASK, cfg, seed=seed, eval_batch=EVAL, progress=False)


def test_same_seed_same_curves_on_cpu():
    a, b = run(seed=3), run(seed=3)
    assert a["history"]["train_loss"] == b["history"]["train_loss"]
    assert a["final"] == b["final"]


def test_different_seed_different_curves():
    assert run(seed=3)["history"]["train_loss"] != run(seed=4)["history"]["train_loss"]


class Interrupted(Exception):
    pass


class DiesAfter:
    """The task, but the process 'dies' when batch number `n + 1` is drawn."""

    def __init__(self, task, n):
        self.task, self.n = task, n

    def key(self):
        return self.task.key()

    def sample(self, rng, n):
        self.n -= 1
        if self.n < 0:
            raise Interrupted
        return self.task.sample(rng, n)


def test_resume_from_checkpoint_matches_uninterrupted(tmp_path):
    """Kill a run after 25 of 40 steps (data drawn 5 steps at a time), restart it: it continues from the step-20
    checkpoint and gives the same curve and metrics as an uninterrupted run."""
    cfg = TrainConfig(steps=40, batch_size=4, lr=1e-2, warmup=5, checkpoint_every=10, data_block=5)
    full = train(tiny(seed=1), TASK, cfg, seed=1, eval_batch=EVAL, progress=False)
    ckpt = tmp_path / "run.pt"
    with pytest.raises(Interrupted):
        train(tiny(seed=1), DiesAfter(TASK, 5), cfg, seed=1, progress=False, checkpoint=ckpt)
    saved = torch.load(ckpt, weights_only=False)
    assert saved["step"] == 20
    saved["wall_s"] = 1000.0  # as if the first 20 steps had taken 1,000 s
    torch.save(saved, ckpt)
    # a fresh process would rebuild the model from scratch and find the checkpoint
    resumed = train(tiny(seed=99), TASK, cfg, seed=1, eval_batch=EVAL, progress=False, checkpoint=ckpt)
    assert 1000 <= resumed["wall_s"] < 1000 + 60  # the wall time counts the checkpoint's steps too
    assert resumed["history"]["train_loss"] == pytest.approx(full["history"]["train_loss"], rel=1e-6)
    assert resumed["final"]["token_acc"] == pytest.approx(full["final"]["token_acc"])


@pytest.mark.parametrize("schedule", ["linear", "cosine", "constant"])
def test_schedule_warms_up_then_decays(schedule):
    cfg = TrainConfig(steps=100, warmup=10, schedule=schedule)
    f = [lr_factor(s, cfg) for s in range(101)]
    assert f[0] == 0 and f[5] == pytest.approx(0.5) and f[10] == pytest.approx(1.0)
    assert all(x >= y - 1e-12 for x, y in zip(f[10:], f[11:]))  # non-increasing after warm-up
    assert f[100] == pytest.approx({"linear": 0.0, "cosine": 0.0, "constant": 1.0}[schedule])
    if schedule == "cosine":
        assert f[55] == pytest.approx(0.5)


def test_warmup_fraction():
    assert TrainConfig(steps=1000, warmup=0.1).warmup_steps == 100
    assert TrainConfig(steps=1000, warmup=100).warmup_steps == 100


def test_masked_loss_ignores_unmasked_positions():
    logits = torch.randn(2, 5, 7)
    targets = torch.randint(0, 7, (2, 5))
    mask = torch.zeros(2, 5, dtype=torch.bool)
    mask[0, 1] = mask[1, 4] = True
    b = Batch(torch.zeros(2, 5, dtype=torch.long), targets, mask)
    expected = (torch.nn.functional.cross_entropy(logits[0, 1], targets[0, 1])
                + torch.nn.functional.cross_entropy(logits[1, 4], targets[1, 4])) / 2
    assert masked_loss(logits, b).item() == pytest.approx(expected.item(), rel=1e-6)
    changed = targets.clone()
    changed[~mask] = (changed[~mask] + 1) % 7  # targets outside the mask do not matter
    assert masked_loss(logits, Batch(b.inputs, changed, mask)).item() == pytest.approx(expected.item(), rel=1e-6)


class Oracle(torch.nn.Module):
    """Predicts each batch's targets perfectly (or shifted by one token id)."""

    def __init__(self, batch, vocab, wrong=False):
        super().__init__()
        self.batch, self.vocab, self.wrong = batch, vocab, wrong
        self.p = torch.nn.Parameter(torch.zeros(()))

    def forward(self, ids):
        T = ids.shape[1]  # greedy decoding feeds prefixes of the inputs
        match = (self.batch.inputs[:, None, :T] == ids[None]).all(-1).float().argmax(0)
        t = self.batch.targets[match][:, :T]
        if self.wrong:
            t = (t + 1) % self.vocab
        return torch.nn.functional.one_hot(t, self.vocab).float() * 30


def test_evaluate_perfect_and_wrong():
    b = make_task("selective_copy", length=20).build(seed=0, n=32)
    V = make_task("selective_copy").vocab_size
    assert evaluate(Oracle(b, V), b) == pytest.approx({"token_acc": 1.0, "exact_match": 1.0, "loss": 0.0}, abs=1e-3)
    m = evaluate(Oracle(b, V, wrong=True), b)
    empty = (b.score.sum(1) == 0).float().mean().item()  # no scored token counts as right
    assert m["token_acc"] == pytest.approx(empty) and m["exact_match"] == pytest.approx(empty)


def test_position_accuracy_counts_the_position_token_only():
    task = make_task("position", num_symbols=12)
    b = task.build(seed=0, n=16)
    wrong_eos = Batch(b.inputs, b.targets.clone(), b.mask, b.meta, b.score)
    wrong_eos.targets[:, -1] = 0  # break the <bos> after <p_i>: accuracy must not care
    assert evaluate(Oracle(wrong_eos, task.vocab_size), b)["token_acc"] == pytest.approx(1.0)


class Successor(torch.nn.Module):
    """Next token = last token + 1 (mod V)."""

    def __init__(self, V):
        super().__init__()
        self.V, self.p = V, torch.nn.Parameter(torch.zeros(()))

    def forward(self, ids):
        return torch.nn.functional.one_hot((ids + 1) % self.V, self.V).float()


def test_greedy_decode_appends_k_tokens():
    prompts = torch.tensor([[1, 2, 3], [5, 6, 7]])
    assert greedy_decode(Successor(10), prompts, 3).tolist() == [[4, 5, 6], [8, 9, 0]]


def test_greedy_exact_match_on_ngram():
    task = make_task("ngram", num_symbols=30, min_len=40, max_len=40)
    b = task.build(seed=0, n=8)
    assert greedy_exact_match(Oracle(b, task.vocab_size), b, k=3) == 1.0
    assert greedy_exact_match(Successor(task.vocab_size), b, k=3) < 1.0


def test_early_stopping_stops_at_threshold():
    cfg = TrainConfig(steps=400, batch_size=8, lr=1e-2, warmup=10, eval_every=20, early_stop=0.0, data_block=10)
    out = train(tiny(), TASK, cfg, seed=0, eval_batch=EVAL, progress=False)
    assert out["early_stopped"] and out["steps"] == 20


def test_choose_lr_picks_lowest_trial_loss():
    """A learning rate of 1e-6 cannot lower the loss in 30 steps; 1e-2 does."""
    cfg = TrainConfig(steps=60, batch_size=8, warmup=3)
    lr, losses = choose_lr(lambda s: tiny(seed=s), TASK, cfg, [1e-6, 1e-2], trial_steps=30)
    assert lr == 1e-2 and losses[1e-2] < losses[1e-6]
    assert all(math.isfinite(v) for v in losses.values())


# Paper A's learning-rate trials as the authors ran them (micro_hf main.py --auto_lr and
# train_utils.train(one_epoch=True)): the first trial_steps steps of the run's own schedule,
# scored by the mean training loss over those steps, the single best trial deciding.

def test_a_trial_follows_the_runs_schedule_truncated():
    """The trial's learning rate at every step is the full run's, warm-up and decay not
    squeezed into the trial (spec: 1,000 of 4,000 steps, warm-up 100, linear decay)."""
    for run_cfg in (TrainConfig(steps=4000, warmup=100, schedule="linear"),
                    TrainConfig(steps=4000, warmup=0.1, schedule="cosine"),
                    TrainConfig(steps=400, warmup=100)):  # the quick profile: a trial inside the warm-up
        trial = trial_config(run_cfg, 1000 if run_cfg.steps == 4000 else 100)
        trial.validate()
        assert trial.steps == (1000 if run_cfg.steps == 4000 else 100) and trial.horizon == run_cfg.steps
        assert trial.warmup_steps == run_cfg.warmup_steps
        assert trial.eval_every == 0 and trial.early_stop is None and trial.checkpoint_every == 0
        assert [lr_factor(s, trial) for s in range(trial.steps)] == [lr_factor(s, run_cfg) for s in range(trial.steps)]
    cfg = trial_config(TrainConfig(steps=4000), 1000)
    assert lr_factor(999, cfg) == pytest.approx(1 - 899 / 3900)  # still near the peak, not decayed to 0
    assert trial_config(TrainConfig(steps=50), 1000).steps == 50  # never longer than the run
    with pytest.raises(ValueError, match="schedule_steps"):
        TrainConfig(steps=100, schedule_steps=50).validate()


def test_a_trial_trains_as_the_first_steps_of_the_run():
    """On the CPU a trial's losses are the real run's first trial_steps losses (same seed, lr)."""
    cfg = TrainConfig(steps=60, batch_size=4, lr=1e-2, warmup=10, data_block=10)
    full = train(tiny(seed=5), TASK, cfg, seed=5, progress=False)
    part = train(tiny(seed=5), TASK, trial_config(cfg, 30), seed=5, progress=False)
    assert part["steps"] == 30
    torch.testing.assert_close(torch.tensor(part["history"]["train_loss"]),
                               torch.tensor(full["history"]["train_loss"][:30]), rtol=0, atol=0)
    assert trial_loss(part) == pytest.approx(sum(full["history"]["train_loss"][:30]) / 30)


def test_trial_loss_is_the_mean_over_all_steps():
    assert trial_loss({"history": {"train_loss": [4.0, 2.0, 1.0, 1.0]}}) == 2.0
    assert trial_loss({"history": {"train_loss": [4.0, float("nan"), 1.0]}}) == math.inf
    assert trial_loss({"history": {"train_loss": [4.0, float("inf")]}}) == math.inf


def test_pick_lr_takes_the_single_best_trial_with_a_stated_tie_rule():
    # the single best trial, not the mean over repeats (the mean would pick 1e-2)
    lr, best = pick_lr({1e-3: [1.0, 0.5], 1e-2: [0.6, 0.6]})
    assert lr == 1e-3 and best == {1e-3: 0.5, 1e-2: 0.6}
    # ties within LR_TIE_RTOL (relative) go to the smaller lr; beyond it the lower loss wins
    assert pick_lr({1e-3: [1.0 + 0.5 * LR_TIE_RTOL], 1e-2: [1.0]})[0] == 1e-3
    assert pick_lr({1e-3: [1.0 + 2 * LR_TIE_RTOL], 1e-2: [1.0]})[0] == 1e-2
    assert pick_lr({1e-3: [1.0], 1e-2: [1.0]})[0] == 1e-3  # an exact tie, as the authors' sort
    assert pick_lr({1e-3: [1.0 + 0.5 * LR_TIE_RTOL], 1e-2: [1.0]}, rtol=0)[0] == 1e-2
    # the smallest lr within the tolerance, even past a worse one in between
    assert pick_lr({1e-4: [1.0005], 1e-3: [1.2], 1e-2: [1.0]})[0] == 1e-4
    # deterministic: the order of candidates and repeats does not matter
    losses = {3.16e-3: [2.0, 1.7], 1e-2: [1.69, 1.9], 3.16e-2: [math.inf, 1.8]}
    picks = {pick_lr(dict(reversed(list(losses.items()))))[0], pick_lr(losses)[0],
             pick_lr({k: v[::-1] for k, v in losses.items()})[0]}
    assert picks == {1e-2}  # its best trial 1.69; 1.7 is 0.6% worse, beyond the tolerance
    # diverged trials never win; if all diverged, the smallest lr
    assert pick_lr({1e-3: [math.inf], 1e-2: [5.0]})[0] == 1e-2
    assert pick_lr({1e-3: [math.inf], 1e-2: [math.inf]})[0] == 1e-3


def test_bad_train_config_fails_early():
    with pytest.raises(ValueError, match="schedule"):
        train(tiny(), TASK, TrainConfig(schedule="exp"), seed=0, progress=False)
    with pytest.raises(ValueError, match="steps"):
        train(tiny(), TASK, TrainConfig(steps=0), seed=0, progress=False)


# ---------------------------------------------------------------- paper A's plateau stopping rule

def test_plateau_step_finds_the_first_flat_window_below_the_level():
    from lib.training.loop import plateau_step
    falling_then_flat = [10 - k / 100 for k in range(600)] + [4.0] * 600
    assert plateau_step(falling_then_flat, 200, 0.01) == 1000  # windows 800-1000 vs 600-800: flat
    chance_then_learn = [3.47] * 1000 + [3.47 - k / 100 for k in range(300)] + [0.5] * 600
    assert plateau_step(chance_then_learn, 200, 0.01) == 400  # the chance plateau, taken for convergence...
    assert plateau_step(chance_then_learn, 200, 0.01, below=3.0) == 1800  # ...unless it must lie below 3
    assert plateau_step([5 - k / 100 for k in range(400)], 100, 0.01) is None


def test_a_member_stops_at_plateau_factor_times_its_plateau_and_others_train_on():
    from lib.models import build_model, micro
    from lib.tasks import make_task
    from lib.training import TrainConfig, train_ensemble
    task = make_task("selective_copy", length=24)
    models = [build_model(micro("TF-TF", d_model=8, window=8), task.vocab_size, seed=s) for s in (0, 1)]
    off = TrainConfig(steps=60, batch_size=4, warmup=5, data_block=10)
    base = train_ensemble([build_model(micro("TF-TF", d_model=8, window=8), task.vocab_size, seed=s) for s in (0, 1)],
                          [task, task], off, seeds=[0, 1], lrs=[1e-2, 1e-9], eval_batches=[None, None], device="cpu",
                          progress=False)
    assert all(r["plateau_at"] is None and r["steps"] == 60 for r in base)  # off by default
    cfg = TrainConfig(steps=60, batch_size=4, warmup=5, data_block=10, plateau_window=10, plateau_tol=0.5,
                      plateau_factor=1.0)
    out = train_ensemble(models, [task, task], cfg, seeds=[0, 1], lrs=[1e-2, 1e-9], eval_batches=[None, None],
                         device="cpu", progress=False)
    for r in out:  # a 50% tolerance: the very first comparison counts as a plateau
        assert r["plateau_at"] == 20 and r["steps"] == 40 and r["early_stopped"]
    assert out[0]["history"]["train_loss"] == base[0]["history"]["train_loss"][:40]  # same run until it stops


def test_a_member_stopped_by_the_plateau_rule_is_scored_at_its_stop():
    """With evaluation only at the end (eval_every 0), the final evaluation covers the members
    still running: one stopped earlier by the plateau rule must have been scored when it stopped."""
    from lib.models import build_model, micro
    from lib.tasks import make_task
    from lib.training import TrainConfig, train_ensemble
    task = make_task("selective_copy", length=24)
    batch = task.build(seed=123, n=16)
    cfg = TrainConfig(steps=60, batch_size=4, warmup=5, data_block=10, plateau_window=10, plateau_tol=0.5,
                      plateau_factor=1.0)
    models = [build_model(micro("TF-TF", d_model=8, window=8), task.vocab_size, seed=s) for s in (0, 1)]
    out = train_ensemble(models, [task, task], cfg, seeds=[0, 1], lrs=[1e-2, 1e-9], eval_batches=[batch, batch],
                         device="cpu", progress=False)
    for r in out:
        assert r["steps"] == 40 and [e["step"] for e in r["history"]["eval"]] == [40]
        assert r["final"]["step"] == 40 and 0 <= r["final"]["token_acc"] <= 1
