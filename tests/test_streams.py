"""Training data streams: a member's data depends only on its task and seed, and a stream
read by several members (in one ensemble or across a sweep's ensembles) is drawn once."""
import torch

from lib.models import build_model, micro
from lib.tasks import make_task, rng_for
from lib.training import TrainConfig, train, train_ensemble
from lib.training import streams as S

TASK = make_task("selective_copy")


def _stream_direct(task, seed, B, block, steps):
    """The stream drawn by hand, block by block, from the member's generator."""
    rng = rng_for(seed, f"{task.key()}/train")
    out = []
    for s in range(0, steps, block):
        b = task.sample(rng, B * min(block, steps - s))
        out.append(b.inputs.view(-1, B, b.inputs.shape[-1]))
    return torch.cat(out)


def _read_all(data: S.MemberStreams, steps: int):
    parts, n = [], 0
    while n < steps:
        x, _, _ = data.next_block("cpu")
        parts.append(x)
        n += len(x)
    data.close()
    return torch.cat(parts)


def test_members_with_one_stream_get_the_same_data_drawn_by_hand():
    seeds = [5, 7, 5, 5]
    x = _read_all(S.MemberStreams([TASK] * 4, seeds, 3, 4, 10), 10)  # [steps, M, B, L]
    assert x.dtype == torch.long and x.shape[:3] == (10, 4, 3)
    for i, s in enumerate(seeds):
        assert torch.equal(x[:, i], _stream_direct(TASK, s, 3, 4, 10))
    assert not torch.equal(x[:, 0], x[:, 1])


def test_shared_cache_serves_later_ensembles_and_drops_blocks_once_read():
    cache = S.StreamCache()
    for _ in range(2):  # two ensembles announce the same stream
        cache.announce([TASK], [1], 2, 5, 20)
    first = S.MemberStreams([TASK], [1], 2, 5, 20, cache)
    a = _read_all(first, 20)
    (stream,) = cache.streams.values()
    assert stream.drawn == 4 and len(stream.blocks) == 4  # kept for the ensemble still to come
    second = S.MemberStreams([TASK], [1], 2, 5, 20, cache)
    second.next_block("cpu")
    second.next_block("cpu")  # its last reader has read blocks 0 and 1: they go
    assert sorted(stream.blocks) == [2, 3]
    rest = _read_all(second, 10)
    assert torch.equal(rest, a[10:, :])
    assert len(cache) == 0  # the stream goes with its last reader


def test_readers_opening_after_others_closed_keep_their_own_place():
    cache = S.StreamCache()
    for _ in range(3):
        cache.announce([TASK], [1], 2, 5, 20)
    a, b = S.MemberStreams([TASK], [1], 2, 5, 20, cache), S.MemberStreams([TASK], [1], 2, 5, 20, cache)
    full = _read_all(a, 20)
    c = S.MemberStreams([TASK], [1], 2, 5, 20, cache)  # opens while b is still open
    assert torch.equal(_read_all(b, 20), full) and torch.equal(_read_all(c, 20), full)
    assert len(cache) == 0


def test_resumed_reader_starts_mid_stream():
    full = _read_all(S.MemberStreams([TASK], [2], 2, 5, 20), 20)
    resumed = _read_all(S.MemberStreams([TASK], [2], 2, 5, 20, start_step=10), 10)
    assert torch.equal(resumed, full[10:])


def test_worker_processes_draw_the_same_stream(monkeypatch):
    monkeypatch.setenv("COMPANION_DATA_PROCESSES", "2")
    monkeypatch.setattr(S, "_POOL", None)
    try:
        x = _read_all(S.MemberStreams([TASK] * 2, [3, 4], 2, 5, 15), 15)
    finally:
        if S._POOL is not None:
            S._POOL.shutdown()
        monkeypatch.setattr(S, "_POOL", None)
    assert torch.equal(x[:, 0], _stream_direct(TASK, 3, 2, 5, 15))
    assert torch.equal(x[:, 1], _stream_direct(TASK, 4, 2, 5, 15))


def test_members_sharing_a_stream_train_as_they_would_alone():
    """Learning-rate trials read one stream per seed; each still trains as it would alone."""
    cfg = TrainConfig(steps=30, batch_size=4, lr=1e-2, warmup=3, data_block=10)
    lrs, seeds = [1e-2, 3e-3, 1e-2], [11, 11, 12]
    models = [build_model(micro("SSM-TF", 8), TASK.vocab_size, seed=s) for s in seeds]
    together = train_ensemble(models, [TASK] * 3, cfg, seeds=seeds, lrs=lrs, device="cpu", progress=False)
    for lr, s, res in zip(lrs, seeds, together):
        alone = train(build_model(micro("SSM-TF", 8), TASK.vocab_size, seed=s), TASK,
                      TrainConfig(**{**vars(cfg), "lr": lr}), seed=s, device="cpu", progress=False)
        torch.testing.assert_close(torch.tensor(res["history"]["train_loss"]),
                                   torch.tensor(alone["history"]["train_loss"]), rtol=1e-4, atol=1e-5)
