"""The order every search returns pages in: best score first, ties broken by page id."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def best_first(scores: np.ndarray, ids: Sequence[str], k: int) -> list[int]:
    """Positions of the `k` best `scores`, best first, ties by id. Only the scores at or above
    the k-th best are sorted, so ranking every page of an index stays cheap, and a tie at the
    cut is still settled by id."""
    if k <= 0:
        return []
    if len(scores) > k:
        kth = np.partition(scores, len(scores) - k)[len(scores) - k]
        chosen = np.flatnonzero(scores >= kth)
    else:
        chosen = np.arange(len(scores))
    return sorted(chosen.tolist(), key=lambda j: (-scores[j], ids[j]))[:k]
