"""Paper B's retrieval tasks (spec B.2), trained as next-token prediction on the
response only. Each example is a prompt followed by its response; `inputs` is the
whole sequence but its last token and `targets` the whole sequence shifted by one,
so the loss mask covers exactly the positions that predict response tokens.
Batches of varying length are right-padded with <pad> (never scored).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .base import Task, TaskError, pad_right

PAD, BOS, QUERY = 0, 1, 2  # ids shared by both tasks' vocabularies


def _next_token_layout(rows: list[list[int]], prompt_lens: list[int], width: int | None = None):
    """inputs = seq[:-1], targets = seq[1:], mask on the positions predicting the response;
    right-padded to `width` (the task's seq_len: every training batch has one shape, which
    a CUDA graph needs) or to the longest row."""
    inputs = pad_right([r[:-1] for r in rows], PAD, width)
    targets = pad_right([r[1:] for r in rows], PAD, inputs.shape[1])
    t = np.arange(inputs.shape[1])[None, :]
    plen = np.asarray(prompt_lens)[:, None]
    lens = np.asarray([len(r) - 1 for r in rows])[:, None]
    mask = (t >= plen - 1) & (t < lens)
    return inputs, targets, mask


@dataclass(frozen=True)
class NGramRetrieval(Task):
    """Given a sequence of symbols and a query n-gram that occurs exactly once in it,
    output the k symbols that follow it. Suffix format puts the query after the
    sequence, prefix format before it."""

    name = "ngram"
    num_symbols: int = 30
    n: int = 2
    k: int = 3
    min_len: int = 50
    max_len: int = 100
    prefix: bool = False

    def tokens(self) -> list[str]:
        return ["<pad>", "<bos>", "<query>"] + [f"<s{i}>" for i in range(self.num_symbols)]

    @property
    def seq_len(self) -> int:
        return self.max_len + self.n + 4 + self.k - 1

    def validate(self):
        if not 1 <= self.min_len <= self.max_len:
            raise TaskError(f"ngram: need 1 <= min_len <= max_len, got {self.min_len}, {self.max_len}")
        if self.min_len < self.n + self.k:
            raise TaskError(f"ngram: sequences of {self.min_len} symbols cannot hold an {self.n}-gram "
                            f"query and its {self.k} following symbols")
        # at fewer distinct n-grams than positions, a unique query becomes rare: the
        # rejection sampler would spin (the paper's 30 symbols at 400 give 900 vs 399)
        if self.num_symbols ** self.n < self.max_len:
            raise TaskError(f"ngram: vocabulary too small for the task: {self.num_symbols} symbols give "
                            f"{self.num_symbols ** self.n} distinct {self.n}-grams, too few for a unique "
                            f"query in {self.max_len} symbols")

    def sym(self, s) -> np.ndarray:
        return np.asarray(s) + 3

    def format(self, seq, query, response) -> tuple[list[int], int]:
        seq, query = list(self.sym(seq)), list(self.sym(query))
        if self.prefix:
            prompt = [QUERY, *query, BOS, *seq, BOS, QUERY]
        else:
            prompt = [BOS, *seq, BOS, QUERY, *query, QUERY]
        return prompt + list(self.sym(response)), len(prompt)

    def _draw(self, rng, L):
        n, k = self.n, self.k
        while True:
            seq = rng.integers(0, self.num_symbols, L)
            pos = int(rng.integers(0, L - n - k + 1))
            grams = np.lib.stride_tricks.sliding_window_view(seq, n)
            if (grams == seq[pos:pos + n]).all(1).sum() == 1:
                return seq, pos

    def _sample(self, rng, n):
        rows, plens, pos, lens = [], [], [], []
        for _ in range(n):
            L = int(rng.integers(self.min_len, self.max_len + 1))
            seq, p = self._draw(rng, L)
            row, plen = self.format(seq, seq[p:p + self.n], seq[p + self.n:p + self.n + self.k])
            rows.append(row), plens.append(plen), pos.append(p), lens.append(L)
        x, y, mask = _next_token_layout(rows, plens, self.seq_len)
        return x, y, mask, {"target_pos": np.array(pos), "length": np.array(lens), "prompt_len": np.array(plens)}


@dataclass(frozen=True)
class NGramDuplicates(NGramRetrieval):
    """Evaluation only: the query n-gram occurs in each of `segments` equal segments,
    each time followed by a different k-gram. Which segment's continuation a model
    returns (greedy) measures its positional preference. The loss mask and score
    cover segment 0's continuation only for bookkeeping; use `meta['segment_targets']`."""

    name = "ngram_duplicates"
    segments: int = 2
    length: int = 100

    def validate(self):
        super().validate()
        seg = self.length // max(self.segments, 1) - self.n
        if self.segments < 1 or seg - self.k - 1 < 0:
            raise TaskError(f"ngram_duplicates: {self.segments} segments of {self.length} symbols leave no "
                            f"room for a {self.n}-gram query and {self.k} following symbols")
        if self.num_symbols ** self.k < self.segments:
            raise TaskError(f"ngram_duplicates: vocabulary too small for the task: {self.num_symbols} symbols "
                            f"give fewer than {self.segments} distinct {self.k}-symbol continuations")

    @property
    def seq_len(self) -> int:
        return self.length + self.n + 4 + self.k - 1

    def _segment(self, rng, query, m, taken):
        while True:
            body = list(rng.integers(0, self.num_symbols, m))
            pos = int(rng.integers(0, m - self.k))  # U{0, ..., m-k-1} [CODE]
            seg = body[:pos] + list(query) + body[pos:]
            cont = tuple(seg[pos + self.n: pos + self.n + self.k])
            gram = tuple(query) + cont
            w = len(gram)
            count = sum(tuple(seg[i:i + w]) == gram for i in range(len(seg) - w + 1))
            if count == 1 and cont not in taken:
                return seg, cont

    def _sample(self, rng, n):
        m = self.length // self.segments - self.n
        rows, plens, conts = [], [], []
        for _ in range(n):
            query = rng.permutation(self.num_symbols)[:self.n]
            seq, taken = [], []
            for _s in range(self.segments):
                seg, cont = self._segment(rng, query, m, taken)
                seq += seg
                taken.append(cont)
            row, plen = self.format(seq, query, taken[0])
            rows.append(row), plens.append(plen), conts.append(taken)
        x, y, mask = _next_token_layout(rows, plens)
        return x, y, mask, {"segment_targets": self.sym(np.array(conts)), "prompt_len": np.array(plens)}


@dataclass(frozen=True)
class PositionRetrieval(Task):
    """A random permutation of all symbols, then a query symbol: output the dedicated
    position token <p_i> of its index i, then <bos> as end of sequence. The loss
    covers both response tokens; accuracy counts <p_i> only [CODE]."""

    name = "position"
    num_symbols: int = 200
    prefix: bool = False

    def tokens(self) -> list[str]:
        return (["<pad>", "<bos>", "<query>"] + [f"<s{i}>" for i in range(self.num_symbols)]
                + [f"<p{i}>" for i in range(self.num_symbols)])

    @property
    def seq_len(self) -> int:
        return self.num_symbols + 4

    def validate(self):
        if self.num_symbols < 2:
            raise TaskError("position: need at least 2 symbols")

    def position_token(self, i) -> np.ndarray:
        return 3 + self.num_symbols + np.asarray(i)

    def snapshot_tokens(self) -> list[int]:
        """<p_0> ... <p_{S-1}>: their embeddings show how a model lays out positions (Figs 9-11)."""
        return self.position_token(np.arange(self.num_symbols)).tolist()

    def _sample(self, rng, n):
        S = self.num_symbols
        seq = np.argsort(rng.random((n, S)), axis=1)  # a permutation per row
        idx = rng.integers(0, S, n)
        q = 3 + seq[np.arange(n), idx]
        body = 3 + seq
        col = lambda v: np.asarray(v).reshape(n, 1)  # noqa: E731
        if self.prefix:
            prompt = np.hstack([col([QUERY] * n), col(q), col([BOS] * n), body])
        else:
            prompt = np.hstack([col([BOS] * n), body, col([QUERY] * n), col(q)])
        full = np.hstack([prompt, col(self.position_token(idx)), col([BOS] * n)])
        x, y = full[:, :-1], full[:, 1:]
        P = prompt.shape[1]
        mask = np.zeros_like(x, dtype=bool)
        mask[:, P - 1:] = True
        score = np.zeros_like(mask)
        score[:, P - 1] = True
        return x, y, mask, {"target_index": idx, "prompt_len": np.full(n, P)}, score
