"""Length buckets (TrainConfig.length_buckets, issue 20 section 3): each member's examples
of a data block sorted by length into its batches, each batch cut to its longest. The same
batches padded to the task's full length train to the same losses (positions past the last
response token change nothing in a causal model), for every paper B family."""
import pytest
import torch

from lib.models import build_model, paper_b
from lib.tasks import make_task
from lib.training import TrainConfig, train_ensemble
from lib.training import loop
from lib.training.loop import BUCKET_MULTIPLE, bucket_block, response_ends
from lib.training.streams import MemberStreams

TASK = make_task("ngram", min_len=10, max_len=20)
LONG = make_task("ngram")  # the paper's lengths, 50-100


def block(seeds, steps=6, batch=8):
    data = MemberStreams([LONG] * len(seeds), seeds, batch, steps, steps)
    out = data.next_block("cpu")
    data.close()
    return out


def rows(t):
    """A member's examples as a sorted list of tuples: [n, M, B, L] -> M lists."""
    n, M, B, L = t.shape
    return [sorted(map(tuple, t[:, m].reshape(n * B, L).tolist())) for m in range(M)]


def test_buckets_keep_each_members_examples_and_cut_only_padding():
    x, y, mask = block([0, 1, 2])
    bx, by, bmask, widths = bucket_block(x, y, mask, block=3)
    joined = torch.cat([x, y, mask.long()], -1)
    assert rows(torch.cat([bx, by, bmask.long()], -1)) == rows(joined)  # a permutation per member
    L = x.shape[-1]
    ends = response_ends(bmask)  # [n, M, B]
    for j, w in enumerate(widths):
        assert w % BUCKET_MULTIPLE == 0 or w == L
        assert int(ends[j].max()) <= w < int(ends[j].max()) + BUCKET_MULTIPLE
    # sorted within each member: every batch's lengths lie between the next shorter batch's and the next longer's
    for m in range(3):
        spans = sorted((int(ends[j, m].min()), int(ends[j, m].max())) for j in range(len(widths)))
        assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:]))
    assert sum(widths) < len(widths) * L  # there was padding to cut


def test_a_members_buckets_do_not_depend_on_the_ensemble():
    x, y, mask = block([0, 1, 2])
    alone = bucket_block(x[:, 1:2], y[:, 1:2], mask[:, 1:2], block=5)
    together = bucket_block(x, y, mask, block=5)
    for a, b in zip(alone[:3], together[:3]):
        assert torch.equal(a[:, 0], b[:, 1])
    assert bucket_block(x, y, mask, block=6)[0].tolist() != together[0].tolist()  # the block index shuffles


@pytest.mark.parametrize("family", ["transformer", "mamba", "mamba2", "hybridI_1m", "hybrid2s"])
def test_cut_batches_train_as_the_same_batches_padded(family, monkeypatch):
    """The tolerance: 1e-5 absolute on every step's loss over 12 fp32 steps on the CPU."""
    cfg_model = paper_b(family, d_model=32, heads=2, repeats=1, headdim=16) if "2" in family else \
        paper_b(family, d_model=32, heads=2, repeats=1)

    def trained(full_width):
        if full_width:  # the very same bucketed batches, padded to the task's length
            real = loop.bucket_block
            monkeypatch.setattr(loop, "bucket_block", lambda *a, **k: (*real(*a, **k)[:3], [a[0].shape[-1]] * len(a[0])))
        models = [build_model(cfg_model, TASK.vocab_size, seed=s) for s in (0, 1)]
        cfg = TrainConfig(steps=12, batch_size=8, lr=3e-3, warmup=2, schedule="cosine", data_block=6,
                          length_buckets=True, decay="trainer", weight_decay=0.01)
        out = train_ensemble(models, [TASK, TASK], cfg, seeds=[0, 1], device="cpu", progress=False)
        monkeypatch.undo()
        return [r["history"]["train_loss"] for r in out]

    cut, padded = trained(False), trained(True)
    for a, b in zip(cut, padded):
        assert a == pytest.approx(b, abs=1e-5)


def test_buckets_refuse_a_model_with_embedding_dropout():
    # keyed dropout numbers the batch's positions; a cut width depends on all members
    import dataclasses
    cfg_model = dataclasses.replace(paper_b("transformer", d_model=32, heads=2, repeats=1), emb_dropout=0.1)
    model = build_model(cfg_model, TASK.vocab_size, seed=0)
    cfg = TrainConfig(steps=2, batch_size=4, lr=1e-3, warmup=1, data_block=2, length_buckets=True)
    with pytest.raises(ValueError, match="length_buckets cannot train a model with embedding dropout"):
        train_ensemble([model], [TASK], cfg, seeds=[0], device="cpu", progress=False)


def test_buckets_are_another_batching_than_random_batches():
    """Bucketed and random batches of one stream are different runs (the option is live): the
    first step's loss differs, and so does every later one."""
    cfg_model = paper_b("hybridI_1m", d_model=32, heads=2, repeats=1)
    losses = {}
    for buckets in (False, True):
        model = build_model(cfg_model, TASK.vocab_size, seed=0)
        cfg = TrainConfig(steps=10, batch_size=8, lr=3e-3, warmup=2, data_block=10, length_buckets=buckets)
        losses[buckets] = train_ensemble([model], [TASK], cfg, seeds=[0], device="cpu",
                                         progress=False)[0]["history"]["train_loss"]
    assert all(a != b for a, b in zip(losses[True], losses[False]))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("family", ["transformer", "hybridI_1m"])
def test_one_cuda_graph_per_width_replays_the_eager_steps(family):
    """On the GPU, the captured graphs (one per width, shared pool, captured mid-run as new
    widths come) give the eager loop's losses: fp32, 1e-4 relative."""
    cfg_model = paper_b(family, d_model=64, heads=4, repeats=1)
    out = {}
    for graph in (False, True):
        models = [build_model(cfg_model, LONG.vocab_size, seed=s) for s in (0, 1)]
        cfg = TrainConfig(steps=40, batch_size=16, lr=1e-3, warmup=4, data_block=10, length_buckets=True,
                          cuda_graph=graph)
        out[graph] = [r["history"]["train_loss"] for r in
                      train_ensemble(models, [LONG, LONG], cfg, seeds=[0, 1], device="cuda", progress=False)]
    for a, b in zip(out[True], out[False]):
        assert a == pytest.approx(b, rel=1e-4)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_graphs_of_all_widths_share_one_pool():
    """A run from the default stream captures every width's graph on one side stream, so the
    widths share their pool's memory: training over many widths reserves about what one
    width does, not one width's memory per width (a new stream per capture did, and ran out
    of an H100's memory in benchmark_b on 2026-12-07)."""
    assert loop._side_stream() is loop._side_stream()
    cfg_model = paper_b("hybridI_1m", d_model=256, heads=4, repeats=1)
    reserved = {}
    for buckets in (False, True):
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
        models = [build_model(cfg_model, LONG.vocab_size, seed=s) for s in range(4)]
        cfg = TrainConfig(steps=50, batch_size=64, lr=1e-3, warmup=4, data_block=50, length_buckets=buckets)
        train_ensemble(models, [LONG] * 4, cfg, seeds=list(range(4)), device="cuda", progress=False)
        reserved[buckets] = torch.cuda.max_memory_reserved()
    assert reserved[True] < 2 * reserved[False]  # one block of 50 steps at L 50-100 meets ~7 widths
