"""Corpus word statistics for hybrid scoring: BM25 over page texts, and term IDF that
weights each query token's MaxSim contribution; MaxSim's length trend, and the fusion.

An index keeps them in its store as two sparse vectors per page, which the store weighs by
IDF itself (Qdrant's IDF modifier, over the complete pages): "bm25", the page's words with
BM25's term-frequency weights, and "terms", the encoder's vocabulary ids the page holds. The
statistics change as pages are stored and deleted, and no process rebuilds them. `Lexicon`
builds them in memory instead, for indexes made before the store kept them.
"""

from __future__ import annotations

import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Sequence

import numpy as np

from ..vectors.sparse import Sparse
from .bm25 import Bm25, words

#: BM25's term-frequency saturation and length normalisation (bm25s' defaults, which the
#: hybrid weights were chosen with).
K1, B = 1.5, 0.75
#: The page length (words, stopwords left out) BM25 normalises by. Fixed, as in Qdrant's own
#: BM25 (avg_len 256), so a stored page's weights never change as the corpus grows; the true
#: mean of the dev pages is 194 (benchmarks/RESULTS.md: what that costs).
AVG_LEN = 256.0


def term_id(word: str) -> int:
    """A word's id in the "bm25" sparse vector: crc32, stable across processes and machines."""
    return zlib.crc32(word.encode())


def bm25_document(text: str) -> Sparse:
    """A page's "bm25" vector: each word's BM25 term-frequency weight; the store supplies IDF."""
    counts = Counter(words(text))
    length = sum(counts.values())
    norm = K1 * (1 - B + B * length / AVG_LEN)
    return [term_id(w) for w in counts], [tf * (K1 + 1) / (tf + norm) for tf in counts.values()]


def bm25_query(text: str) -> Sparse:
    """A query's "bm25" vector: each word counted as often as it occurs, as BM25 sums."""
    counts = Counter(words(text))
    return [term_id(w) for w in counts], [float(n) for n in counts.values()]


def term_set(terms: Iterable[int]) -> Sparse:
    """The "terms" vector of a page: each vocabulary id it holds, weight 1, so a one-term query
    scores exactly that term's IDF."""
    unique = sorted(set(terms))
    return unique, [1.0] * len(unique)


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


#: Fewer candidates than this give no trend worth taking out.
MIN_TREND_PAGES = 8


def length_slope(scores: np.ndarray, lengths: np.ndarray) -> float:
    """The least-squares slope of MaxSim on log(page vectors) across the candidates; 0 where
    it falls or cannot be measured.

    MaxSim sums each query token's best match over a page's vectors, and the best of more
    vectors is higher by chance alone: a long page outscores a short one that holds the answer,
    as the page that discusses a plot outscores the page with the plot. Most candidates are not
    relevant, so the trend across them measures that chance part (BM25 normalises length for
    the same reason). Pages of one vector (blank pages, stored as one zero vector) are left out.
    """
    fitted = lengths > 1
    if fitted.sum() < MIN_TREND_PAGES or np.ptp(lengths[fitted]) == 0:
        return 0.0
    x = np.log(lengths[fitted].astype(np.float64))
    centred = x - x.mean()
    slope = float(centred @ (scores[fitted].astype(np.float64) - scores[fitted].mean())) / float(centred @ centred)
    return slope if slope > 0 else 0.0


def without_length_trend(scores: np.ndarray, lengths: np.ndarray, share: float, slope: float) -> np.ndarray:
    """`scores` less `share` of the length trend `slope` (`length_slope`), around the mean log
    length of the pages it was fitted on; pages of one vector do not move.

    >>> scores, lengths = np.array([1.0, 2.0, 3.0] * 3), np.array([2, 4, 8] * 3)
    >>> without_length_trend(scores, lengths, 0.5, length_slope(scores, lengths))
    array([1.5, 2. , 2.5, 1.5, 2. , 2.5, 1.5, 2. , 2.5], dtype=float32)
    """
    fitted = lengths > 1
    if slope == 0 or not fitted.any():
        return scores.astype(np.float32)
    x = np.log(np.maximum(lengths, 1).astype(np.float64))
    centred = np.where(fitted, x - x[fitted].mean(), 0.0)
    return (scores.astype(np.float64) - share * slope * centred).astype(np.float32)


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
