"""What every task shares: a vocabulary, a batch, seeding and the eval-set cache.

A task is a frozen dataclass of its settings. `sample(rng, n)` draws `n`
examples from a numpy Generator; `build(seed, n)` is the seeded, zoology-style
entry point. Every example is laid out so that one loss serves all tasks:
the model reads `inputs[t]` and is scored on `targets[t]` wherever `mask[t]`.
Paper A's seq-to-seq tasks put the answer under the same position; paper B's
next-token tasks shift it by one inside the generator, never in the trainer.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import threading
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch


@dataclass
class Batch:
    inputs: torch.Tensor  # [B, T] token ids
    targets: torch.Tensor  # [B, T] token ids the model must output at each position
    mask: torch.Tensor  # [B, T] bool, where the loss is counted
    meta: dict[str, np.ndarray] = field(default_factory=dict)  # per-example metadata
    score: torch.Tensor | None = None  # [B, T] bool, where accuracy is counted (default: mask)

    def __post_init__(self):
        if self.score is None:
            self.score = self.mask

    def __len__(self) -> int:
        return self.inputs.shape[0]

    def to(self, device) -> "Batch":
        return Batch(self.inputs.to(device), self.targets.to(device), self.mask.to(device), self.meta,
                     self.score.to(device))

    def __getitem__(self, idx) -> "Batch":
        meta = {k: v[idx] for k, v in self.meta.items()}
        return Batch(self.inputs[idx], self.targets[idx], self.mask[idx], meta, self.score[idx])


class TaskError(ValueError):
    """Bad task settings, raised before any data is drawn."""


def rng_for(seed: int, stream: str) -> np.random.Generator:
    """Independent generators per (seed, purpose): training data never overlaps eval data."""
    key = int.from_bytes(hashlib.sha256(stream.encode()).digest()[:4], "little")
    return np.random.default_rng(np.random.SeedSequence([int(seed), key]))


@dataclass(frozen=True)
class Task:
    """Base class. Subclasses define `tokens()` and `_sample(rng, n)`."""

    name = "task"

    def __post_init__(self):
        self.validate()

    def validate(self) -> None:  # overridden where a setting can be wrong
        pass

    # -- vocabulary -------------------------------------------------------
    def tokens(self) -> list[str]:
        raise NotImplementedError

    @property
    def vocab_size(self) -> int:
        return len(self.tokens())

    def token_id(self, tok: str) -> int:
        return self._index()[tok]

    def _index(self) -> dict[str, int]:
        cache = self.__dict__.get("_idx")
        if cache is None:
            cache = {t: i for i, t in enumerate(self.tokens())}
            object.__setattr__(self, "_idx", cache)
        return cache

    def snapshot_tokens(self) -> list[int]:
        """Tokens whose embeddings a run may record during training (paper B's position tokens)."""
        return []

    def decode(self, ids) -> list[str]:
        toks = self.tokens()
        return [toks[int(i)] for i in ids]

    # -- data -------------------------------------------------------------
    @property
    def seq_len(self) -> int:
        """Longest input this task produces (attention windows are checked against it)."""
        raise NotImplementedError

    def sample(self, rng: np.random.Generator, n: int) -> Batch:
        """`_sample` returns (inputs, targets, mask, meta) or with a 5th item, the score mask."""
        inputs, targets, mask, meta, *score = self._sample(rng, n)
        as_bool = lambda a: torch.as_tensor(np.asarray(a), dtype=torch.bool)  # noqa: E731
        return Batch(
            torch.as_tensor(np.asarray(inputs), dtype=torch.long),
            torch.as_tensor(np.asarray(targets), dtype=torch.long),
            as_bool(mask),
            {k: np.asarray(v) for k, v in meta.items()},
            as_bool(score[0]) if score else None,
        )

    def build(self, seed: int, n: int, stream: str = "eval") -> Batch:
        return self.sample(rng_for(seed, f"{self.key()}/{stream}"), n)

    def _sample(self, rng, n):
        raise NotImplementedError

    # -- identity -----------------------------------------------------------
    def config(self) -> dict:
        return {"task": self.name, **dataclasses.asdict(self)}

    def key(self) -> str:
        blob = json.dumps(self.config(), sort_keys=True)
        return f"{self.name}-{hashlib.sha256(blob.encode()).hexdigest()[:10]}"


def save_npz(path: Path, **arrays) -> None:
    """np.savez_compressed without the write time that zip stamps on every member: the same
    arrays give the same bytes, so data/eval hashes the same on every machine and run."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, value in arrays.items():
            member = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            member.compress_type = zipfile.ZIP_DEFLATED
            with zf.open(member, "w", force_zip64=True) as f:
                np.lib.format.write_array(f, np.asanyarray(value), allow_pickle=False)


def eval_set(task: Task, n: int, seed: int, data_dir: Path) -> Batch:
    """The fixed evaluation set of a task, cached under data/ by a hash of its config."""
    data_dir = Path(data_dir)
    path = data_dir / f"{task.key()}-n{n}-s{seed}.npz"
    if not path.exists():
        batch = task.build(seed, n, stream="eval")
        data_dir.mkdir(parents=True, exist_ok=True)
        arrays = {"inputs": batch.inputs.numpy(), "targets": batch.targets.numpy(),
                  "mask": batch.mask.numpy(), "score": batch.score.numpy()}
        arrays.update({f"meta.{k}": v for k, v in batch.meta.items()})
        # several processes, and threads within one, may write it at once
        tmp = path.with_suffix(f".{os.getpid()}-{threading.get_ident()}.tmp.npz")
        save_npz(tmp, config=np.asarray(json.dumps(task.config())), **arrays)
        tmp.replace(path)
    z = np.load(path, allow_pickle=False)
    meta = {k[5:]: z[k] for k in z.files if k.startswith("meta.")}
    return Batch(torch.from_numpy(z["inputs"]).long(), torch.from_numpy(z["targets"]).long(),
                 torch.from_numpy(z["mask"]).bool(), meta, torch.from_numpy(z["score"]).bool())


def pad_right(rows: list[list[int]], pad: int, length: int | None = None) -> np.ndarray:
    """Right-pad variable-length rows; causal models never see the padding."""
    length = length or max(len(r) for r in rows)
    out = np.full((len(rows), length), pad, dtype=np.int64)
    for i, r in enumerate(rows):
        out[i, : len(r)] = r
    return out
