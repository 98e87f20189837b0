"""Corpus word statistics for hybrid scoring: BM25 over page texts, and term IDF that
weights each query token's MaxSim contribution."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence

import numpy as np

from .bm25 import Bm25


class Lexicon:
    """Built from every stored page's text; `term_ids` maps a text to the encoder's vocabulary ids.

    A rare query token (a name, a number, a code) says more about which page is meant than
    a common one; MiniLM's token vectors, never trained for late interaction, do not know
    that, so each token's best-match similarity is weighted by its IDF in this corpus.
    """

    def __init__(self, ids: Sequence[str], texts: Sequence[str], term_ids: Callable[[str], Iterable[int]]) -> None:
        self.ids = list(ids)
        self._row = {pid: i for i, pid in enumerate(self.ids)}
        self._bm25 = Bm25(self.ids, texts)
        self._df: Counter[int] = Counter()
        for text in texts:
            self._df.update(set(term_ids(text)))

    def idf(self, terms: Sequence[int]) -> np.ndarray:
        """BM25's IDF, log(1 + (N - df + 0.5) / (df + 0.5)), of each term: positive, rare terms high."""
        n = len(self.ids)
        df = np.array([self._df.get(t, 0) for t in terms], dtype=np.float64)
        return np.log1p((n - df + 0.5) / (df + 0.5)).astype(np.float32)

    def bm25(self, query: str, ids: Sequence[str]) -> np.ndarray:
        """BM25 scores of the pages `ids` (0 for a page not in the lexicon)."""
        scores = self._bm25.scores(query)
        return np.array([scores[self._row[i]] if i in self._row else 0.0 for i in ids], dtype=np.float32)


def fuse(components: dict[str, np.ndarray], weights: dict[str, float]) -> np.ndarray:
    """Weighted sum of z-scored components, so scores on different scales can be added.

    >>> fuse({"a": np.array([1.0, 3.0]), "b": np.array([10.0, 10.0])}, {"a": 1.0, "b": 0.5})
    array([-1.,  1.], dtype=float32)
    """
    total = np.zeros_like(next(iter(components.values())), dtype=np.float64)
    for name, scores in components.items():
        values = scores.astype(np.float64)
        spread = values.std()
        total += weights[name] * ((values - values.mean()) / spread if spread > 0 else 0.0)
    return total.astype(np.float32)
