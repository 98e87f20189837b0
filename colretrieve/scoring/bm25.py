"""BM25 over the same words the encoders read (text layer + OCR): the text-search baseline,
and the lexical half of hybrid scoring."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def words(text: str) -> list[str]:
    """The words BM25 counts in `text`: bm25s' tokens (lowercase, two or more letters or digits),
    English stopwords left out."""
    import bm25s

    return bm25s.tokenize([text], stopwords="en", show_progress=False, return_ids=False)[0]


class Bm25:
    """A bm25s index over page texts, searched by id.

    bm25s keeps the index as sparse matrices: building 10k pages takes about a second and
    scoring is a sparse product, so it is rebuilt from the store's payload when needed.
    """

    def __init__(self, ids: Sequence[str], texts: Sequence[str]) -> None:
        try:
            import bm25s
        except ImportError as exc:  # pragma: no cover - depends on the environment
            from ..errors import ColretrieveError

            raise ColretrieveError("BM25 needs bm25s: pip install bm25s") from exc
        self._bm25s = bm25s
        self.ids = list(ids)
        tokens = self._tokenize(texts)
        self._model = None  # no page has a word to index (e.g. scans stored without OCR): nothing matches
        if tokens.vocab:
            self._model = bm25s.BM25()
            self._model.index(tokens, show_progress=False)

    def _tokenize(self, texts: Sequence[str]):
        return self._bm25s.tokenize(list(texts), stopwords="en", show_progress=False)

    def scores(self, query: str) -> np.ndarray:
        """BM25 score of every indexed page for `query`, in the order of `ids`."""
        tokens = words(query)
        if self._model is None or not tokens:  # nothing but stopwords: no page matches
            return np.zeros(len(self.ids), dtype=np.float32)
        return np.asarray(self._model.get_scores(tokens), dtype=np.float32)

    def search(self, query: str, k: int) -> list[tuple[str, float]]:
        """The `k` best (id, score) pairs, ties broken by id."""
        scores = self.scores(query)
        order = sorted(range(len(self.ids)), key=lambda j: (-scores[j], self.ids[j]))[:k]
        return [(self.ids[j], float(scores[j])) for j in order]
