"""Unit-length vectors: encoders normalise their output, pooling and the pooled prefilter their means."""

from __future__ import annotations

import numpy as np


def l2_normalize(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length; zero rows stay zero instead of becoming NaN."""
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    return (x / np.where(norms == 0, 1.0, norms)).astype(np.float32, copy=False)


def mean_vector(vectors: np.ndarray) -> np.ndarray:
    """The normalised mean of a page's (or a query's) vectors: a single vector any encoder has.

    >>> mean_vector(np.array([[1.0, 0.0], [0.0, 1.0]]))
    array([0.70710677, 0.70710677], dtype=float32)
    """
    mean = vectors.astype(np.float32).mean(axis=0)
    norm = np.linalg.norm(mean)
    return mean / norm if norm else mean
