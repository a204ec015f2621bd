"""Training data: each member's seeded stream, drawn once however many members read it.

A member's training data is a pure function of (task, seed, batch size, data_block,
steps): blocks of `data_block` steps drawn in order from rng_for(seed, "<task key>/train").
Members with the same stream therefore see the same data whatever they are trained
with, and the stream is drawn once for all of them: within an ensemble (the eighteen
learning-rate trials of a configuration read two streams) and, through one shared
`StreamCache`, across the ensembles of a sweep (every architecture and width of paper
A's Figure 4 reads the same eleven streams). A block is dropped once every reader of
its stream has gone past it.

Drawing runs in the calling thread, or with COMPANION_DATA_PROCESSES=N in a pool of N
worker processes (numpy generators hold the GIL, so threads alone cannot keep a GPU
fed when thousands of members each draw their own stream).
"""
from __future__ import annotations

import multiprocessing
import os
import threading
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

import numpy as np
import torch

from ..tasks import Task, rng_for


def stream_key(task: Task, seed: int, batch_size: int, block: int, steps: int) -> tuple:
    return (task.key(), int(seed), batch_size, block, steps)


def _compact(a: torch.Tensor) -> np.ndarray:
    """Token ids in the smallest integer type that holds them (halves the memory of shared streams)."""
    a = a.numpy()
    return a.astype(np.int16) if a.size == 0 or (a.min() >= -2 ** 15 and a.max() < 2 ** 15) else a.astype(np.int32)


def _draw(task: Task, rng: np.random.Generator, batch_size: int, steps: int):
    """`steps` steps of data: [steps, B, L] inputs, targets and mask, and the advanced generator."""
    b = task.sample(rng, batch_size * steps)
    shape = (steps, batch_size, -1)
    return (_compact(b.inputs).reshape(shape), _compact(b.targets).reshape(shape), b.mask.numpy().reshape(shape),
            rng)


_POOL: ProcessPoolExecutor | None = None
_POOL_LOCK = threading.Lock()


def _processes() -> ProcessPoolExecutor | None:
    global _POOL
    n = int(os.environ.get("COMPANION_DATA_PROCESSES", 0))
    with _POOL_LOCK:
        if n > 0 and _POOL is None:  # spawned, not forked: the parent may hold CUDA and threads
            _POOL = ProcessPoolExecutor(n, mp_context=multiprocessing.get_context("spawn"))
    return _POOL


class Stream:
    """One seeded stream, drawn block by block in order. Readers are announced with
    `expect()` before they start, so the blocks they will need are kept until they read them."""

    def __init__(self, task: Task, seed: int, batch_size: int, block: int, steps: int):
        self.task, self.B = task, batch_size
        self.rng = rng_for(seed, f"{task.key()}/train")
        self.sizes = [min(block, steps - s) for s in range(0, steps, block)]
        self.blocks: dict[int, tuple] = {}
        self.drawn = 0
        self.waiting = 0  # announced readers that have not started
        self.pos: dict[int, int] = {}  # open reader -> next block it reads
        self.readers = 0  # ever opened: the next reader's id
        self.lock = threading.Lock()

    def expect(self) -> None:
        with self.lock:
            self.waiting += 1

    def open(self, start: int = 0) -> int:
        """An announced reader starts (at block `start` when resuming); returns its id."""
        with self.lock:
            self.waiting = max(0, self.waiting - 1)
            reader, self.readers = self.readers, self.readers + 1
            self.pos[reader] = start
            return reader

    def read(self, reader: int, j: int) -> tuple:
        with self.lock:
            while self.drawn <= j:
                pool = _processes()
                args = (self.task, self.rng, self.B, self.sizes[self.drawn])
                *block, self.rng = pool.submit(_draw, *args).result() if pool else _draw(*args)
                if self.drawn >= self._keep():  # a resumed reader skips what no one needs
                    self.blocks[self.drawn] = tuple(map(torch.from_numpy, block))
                self.drawn += 1
            if j not in self.blocks:
                raise RuntimeError(f"block {j} of a {self.task.name} stream was already dropped: announce "
                                   "every ensemble with StreamCache.announce() before any starts")
            out = self.blocks[j]
            self.pos[reader] = j + 1
            self._drop()
            return out

    def close(self, reader: int) -> None:
        with self.lock:
            del self.pos[reader]
            self._drop()

    def finished(self) -> bool:
        return not self.waiting and not self.pos

    def _keep(self) -> int:
        """Blocks from this one on may still be read."""
        return 0 if self.waiting else min(self.pos.values(), default=self.drawn)

    def _drop(self) -> None:
        keep = self._keep()
        for j in [j for j in self.blocks if j < keep]:
            del self.blocks[j]


class StreamCache:
    """The streams of a sweep. Announce every ensemble first (`announce`), so that one
    that starts late still finds the blocks an earlier one drew; a stream goes when its
    last reader closes."""

    def __init__(self):
        self.streams: dict[tuple, Stream] = {}
        self.lock = threading.Lock()

    def announce(self, tasks: list[Task], seeds: list[int], batch_size: int, block: int, steps: int) -> None:
        """One ensemble will read these members' streams: one reader per distinct stream."""
        members = {stream_key(t, s, batch_size, block, steps): (t, s) for t, s in zip(tasks, seeds)}
        with self.lock:
            for key, (task, seed) in members.items():
                if key not in self.streams:
                    self.streams[key] = Stream(task, seed, batch_size, block, steps)
                self.streams[key].expect()

    def open(self, key: tuple, start: int = 0) -> tuple[Stream, int]:
        with self.lock:
            stream = self.streams[key]  # KeyError: a reader that was never announced
        return stream, stream.open(start)

    def close(self, key: tuple, reader: int) -> None:
        with self.lock:
            stream = self.streams[key]
            stream.close(reader)
            if stream.finished():
                del self.streams[key]

    def __len__(self) -> int:
        return len(self.streams)


class MemberStreams:
    """An ensemble's training data: each distinct stream of its members read once per
    block and fanned out to the members that share it. The next block is drawn by a
    thread pool while the current one trains."""

    def __init__(self, tasks: list[Task], seeds: list[int], batch_size: int, block: int, steps: int,
                 cache: StreamCache | None = None, start_step: int = 0):
        keys = [stream_key(t, s, batch_size, block, steps) for t, s in zip(tasks, seeds)]
        self.keys = list(dict.fromkeys(keys))  # distinct streams, in member order
        self.index = torch.tensor([self.keys.index(k) for k in keys])  # member -> its stream
        self.identity = len(self.keys) == len(keys)
        if cache is None:  # a stream cache of this ensemble alone
            cache = StreamCache()
            cache.announce(tasks, seeds, batch_size, block, steps)
        self.cache, self.block = cache, start_step // block
        self.readers = [cache.open(k, self.block) for k in self.keys]
        self.pool = ThreadPoolExecutor(max_workers=min(16, len(self.keys))) if len(self.keys) > 1 else None
        self.pending = None

    def _read(self, j: int):
        if self.pool:
            parts = list(self.pool.map(lambda sr: sr[0].read(sr[1], j), self.readers))
        else:
            parts = [self.readers[0][0].read(self.readers[0][1], j)]
        return tuple(torch.stack([p[k] for p in parts], dim=1) for k in range(3))  # [steps, U, B, L]

    def next_block(self, device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The next block, [steps, M, B, L] on `device` (token ids as int64); the block after
        it starts drawing at once."""
        out = self.pending.result() if self.pending is not None else self._read(self.block)
        self.block += 1
        self.pending = (self.pool.submit(self._read, self.block)
                        if self.pool and self.block < len(self.readers[0][0].sizes) else None)
        inputs, targets, mask = (t.to(device) for t in out)
        if not self.identity:
            idx = self.index.to(device)
            inputs, targets, mask = inputs[:, idx], targets[:, idx], mask[:, idx]
        return inputs.long(), targets.long(), mask

    def close(self) -> None:
        if self.pending is not None:
            self.pending.result()
        if self.pool:
            self.pool.shutdown(wait=True)
        for key, (_, reader) in zip(self.keys, self.readers):
            self.cache.close(key, reader)
