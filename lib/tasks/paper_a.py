"""Paper A's synthetic tasks (spec A.2), trained seq-to-seq: the answer sits under
the position that must produce it, with no shift.

Shared vocabulary (spec A.2): words V0..V{num_vocab-1}, then number tokens, then
<bos>, <eos>, <null>. Positions whose target is <null> are left out of the loss.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .base import Task, TaskError


@dataclass(frozen=True)
class PaperATask(Task):
    num_vocab: int = 26
    length: int = 100

    first_number = 0  # selective copy numbers its tokens #5.., the others #0..

    @property
    def num_numbers(self) -> int:
        raise NotImplementedError

    def tokens(self) -> list[str]:
        words = [f"V{i}" for i in range(self.num_vocab)]
        numbers = [f"#{self.first_number + j}" for j in range(self.num_numbers)]
        return words + numbers + ["<bos>", "<eos>", "<null>"]

    @property
    def null(self) -> int:
        return self.num_vocab + self.num_numbers + 2

    @property
    def seq_len(self) -> int:
        return self.length

    def validate(self):
        if self.num_vocab < 1 or self.length < 2:
            raise TaskError(f"{self.name}: need num_vocab >= 1 and length >= 2, got {self.num_vocab}, {self.length}")

    def _iid(self, rng, n, p):
        """Each position iid: a number token with total probability p, else a uniform word."""
        is_num = rng.random((n, self.length)) < p
        words = rng.integers(0, self.num_vocab, (n, self.length))
        nums = self.num_vocab + rng.integers(0, max(self.num_numbers, 1), (n, self.length))
        return np.where(is_num, nums, words)


@dataclass(frozen=True)
class SelectiveCopy(PaperATask):
    """Definition 4.1 / `var-copy`. At every position t after the first number token,
    with v the value of the most recent number token at or before t, output input[t - v].

    `mixed=True` is the adversarial distribution of Fig 13: per example with
    probability 1/2 numbers are sparse (p=0.03, hard for attention), otherwise p=0.2
    and the last token is a number (hard for the SSM)."""

    name = "selective_copy"
    numbers: int = 5  # tokens #5..#(4+numbers): distances 5..9 [CODE]
    p: float = 0.2
    mixed: bool = False

    first_number = 5

    @property
    def num_numbers(self) -> int:
        return self.numbers

    def validate(self):
        super().validate()
        if self.numbers < 1:
            raise TaskError("selective_copy needs at least one number token")
        if self.first_number + self.numbers - 1 >= self.length:
            raise TaskError(f"selective_copy: distance {self.first_number + self.numbers - 1} "
                            f"does not fit in a sequence of length {self.length}")
        if not 0 < self.p <= 1:
            raise TaskError(f"selective_copy: p must be in (0, 1], got {self.p}")

    def distance(self, token_ids: np.ndarray) -> np.ndarray:
        return token_ids - self.num_vocab + self.first_number

    def _sample(self, rng, n):
        kind = np.zeros(n, dtype=np.int64)  # 0: uniform; 1: sparse numbers; 2: number at the end
        if self.mixed:
            kind = np.where(rng.random(n) < 0.5, 1, 2)
            x = np.where((kind == 1)[:, None], self._iid(rng, n, 0.03), self._iid(rng, n, 0.2))
            last = self.num_vocab + rng.integers(0, self.numbers, n)
            x[kind == 2, -1] = last[kind == 2]
        else:
            x = self._iid(rng, n, self.p)
        t = np.arange(self.length)
        is_num = x >= self.num_vocab
        last_num = np.maximum.accumulate(np.where(is_num, t, -1), axis=1)
        v = self.distance(np.take_along_axis(x, np.maximum(last_num, 0), axis=1))
        src = t - v
        valid = (last_num >= 0) & (src >= 0)
        y = np.where(valid, np.take_along_axis(x, np.clip(src, 0, self.length - 1), axis=1), self.null)
        return x, y, valid, {"kind": kind, "has_number": is_num.any(1)}


@dataclass(frozen=True)
class DecodeRecallLast(PaperATask):
    """Definition 4.4 / `decode-recall-last` (Fig 5, INFERRED). Words only, then the
    last n_bits tokens spell a word index in binary (#0/#1, most significant first).
    The last position must output the token after the last occurrence of that word
    in the word context. If the word never occurs the example has no target."""

    name = "decode_recall_last"
    num_vocab: int = 32

    @property
    def num_numbers(self) -> int:
        return 2

    @property
    def n_bits(self) -> int:
        return int(math.log2(self.num_vocab))

    def validate(self):
        super().validate()
        if self.num_vocab < 2 or self.num_vocab & (self.num_vocab - 1):
            raise TaskError(f"{self.name}: num_vocab must be a power of two >= 2 (words are "
                            f"named by bit strings), got {self.num_vocab}")
        if self.length < self.n_bits + 2:
            raise TaskError(f"{self.name}: length {self.length} leaves no room for a context "
                            f"before {self.n_bits} bits")

    def _sample(self, rng, n):
        L, nb = self.length, self.n_bits
        x = rng.integers(0, self.num_vocab, (n, L))
        word = rng.integers(0, self.num_vocab, n)
        bits = (word[:, None] >> np.arange(nb - 1, -1, -1)) & 1
        x[:, L - nb:] = self.num_vocab + bits
        ctx = x[:, : L - nb - 1]  # occurrences whose follower is still a context word
        hit = ctx == word[:, None]
        found = hit.any(1)
        last = L - nb - 2 - np.argmax(hit[:, ::-1], axis=1)
        y = np.full((n, L), self.null)
        y[found, -1] = x[found, last[found] + 1]
        mask = y != self.null
        return x, y, mask, {"word": word, "found": found}


@dataclass(frozen=True)
class DecodeRecall(DecodeRecallLast):
    """Dense associative recall with decoding / `decode-recall` (Table 1 and Fig 8,
    INFERRED). Bits appear iid with probability p among words; the query word is
    named by the last n_bits bits seen (a shift register starting at 0). At every
    position the target is the token that followed the most recent earlier
    occurrence of the query word (INFERRED: the follower may be a bit; positions
    where the word has not occurred yet have no target).

    Packed (paper A's "mini" training, spec A.5): with `pack_min` > 0 each row of
    `length` tokens holds independent examples of lengths U{pack_min..pack_max}, one
    after another, each starting afresh (empty shift register and memory); the rest of
    the row, too short for another example, is <null> with no target (INFERRED)."""

    name = "decode_recall"
    p: float = 0.2
    pack_min: int = 0
    pack_max: int = 0

    def validate(self):
        super().validate()
        if not 0 <= self.p <= 1:
            raise TaskError(f"decode_recall: the bit proportion p must be in [0, 1], got {self.p}")
        if self.pack_min or self.pack_max:
            if not self.n_bits + 2 <= self.pack_min <= self.pack_max <= self.length:
                raise TaskError(f"decode_recall: packed example lengths need {self.n_bits + 2} <= pack_min "
                                f"<= pack_max <= length ({self.length}), got {self.pack_min}..{self.pack_max}")

    def _targets(self, x: np.ndarray) -> np.ndarray:
        """The targets of one example (a 1-D row of token ids)."""
        V = self.num_vocab
        y = np.full(len(x), self.null)
        s, follower = 0, {}
        for t, tok in enumerate(x):
            if t > 0 and x[t - 1] < V:
                follower[x[t - 1]] = tok
            if tok >= V:
                s = (2 * s + (tok - V)) % V
            if s in follower:
                y[t] = follower[s]
        return y

    def _sample(self, rng, n):
        L = self.length
        x = self._iid(rng, n, self.p)
        if not self.pack_min:
            y = np.stack([self._targets(row) for row in x])
            return x, y, y != self.null, {}
        y = np.full((n, L), self.null)
        starts = np.full((n, L // self.pack_min + 1), -1)  # where each example begins; -1 past the last
        for b in range(n):
            start, i = 0, 0
            while True:
                k = int(rng.integers(self.pack_min, self.pack_max + 1))
                if start + k > L:
                    break
                y[b, start:start + k] = self._targets(x[b, start:start + k])
                starts[b, i], start, i = start, start + k, i + 1
            starts[b, i] = start  # the end of the last example (the padding's start)
            x[b, start:] = self.null
        return x, y, y != self.null, {"starts": starts}


@dataclass(frozen=True)
class MultiKeyRecall(PaperATask):
    """Definition 5.1 / `assoc-recall-mk` (MKAR), k-token keys over words only. At
    position i the query is the k-gram ending at i; the target is the token that
    followed its last earlier occurrence. Code quirks kept [CODE]: the store at i
    happens before the lookup, and the very first k-gram is never stored."""

    name = "mkar"
    num_vocab: int = 8
    key_size: int = 2

    @property
    def num_numbers(self) -> int:
        return 0

    def validate(self):
        super().validate()
        if self.key_size < 1 or self.key_size >= self.length:
            raise TaskError(f"mkar: key_size must be in [1, length), got {self.key_size}")

    def _sample(self, rng, n):
        L, k, V = self.length, self.key_size, self.num_vocab
        x = rng.integers(0, V, (n, L))
        # code[:, t] names the k-gram ending at t; last[r, c] is the latest stored
        # follower of k-gram c in row r (-1: none). Position by position, vectorised
        # over rows: the store at i (k-gram ending at i-1 -> x[i], only for i > k)
        # comes before the lookup of the k-gram ending at i.
        code = np.zeros((n, L), dtype=np.int64)
        for j in range(k):
            code[:, k - 1:] = code[:, k - 1:] * V + x[:, j:L - k + 1 + j]
        last = np.full((n, V ** k), -1, dtype=np.int64)
        y = np.full((n, L), self.null)
        rows = np.arange(n)
        for i in range(k, L):
            if i > k:
                last[rows, code[:, i - 1]] = x[:, i]
            found = last[rows, code[:, i]]
            y[:, i] = np.where(found >= 0, found, self.null)
        return x, y, y != self.null, {}


@dataclass(frozen=True)
class NeedleInHaystack(PaperATask):
    """Definition 5.2 / `needle`. A marker #0 sits at a position in the first half, the
    query marker #1 ends the sequence; from the marker on, every position must output
    the needle (the word right after #0). At the marker itself it cannot be known yet,
    so accuracy tops out slightly below 1 [CODE quirk, kept]."""

    name = "needle"
    num_vocab: int = 100

    @property
    def num_numbers(self) -> int:
        return 2

    def validate(self):
        super().validate()
        if self.length < 4:
            raise TaskError("needle: length must be at least 4")

    def _sample(self, rng, n):
        L = self.length
        x = rng.integers(0, self.num_vocab, (n, L))
        pos = rng.integers(0, L // 2, n)
        rows = np.arange(n)
        x[rows, pos] = self.num_vocab  # #0
        x[:, -1] = self.num_vocab + 1  # #1
        needle = x[rows, pos + 1]
        after = np.arange(L)[None, :] >= pos[:, None]
        y = np.where(after, needle[:, None], self.null)
        return x, y, after, {"needle_pos": pos}
