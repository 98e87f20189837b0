"""Token pooling: fewer vectors per page, chosen so MaxSim hardly notices.

Neighbouring patches of a page are often near-duplicates (white margins, one paragraph's
words); hierarchical clustering merges the most similar ones, and each cluster's mean stands
in for its members. Storage and MaxSim work shrink by the pooling factor. Ward linkage on
unit vectors, as in colpali-engine's and pylate's poolers.
"""

from __future__ import annotations

import math

import numpy as np

from ..vectors.norms import l2_normalize


def pool_tokens(vectors: np.ndarray, cells: np.ndarray, factor: int) -> tuple[np.ndarray, np.ndarray]:
    """About `len(vectors) / factor` normalised cluster means and a cell for each.

    A cluster's cell is that of its member nearest the mean, so similarity maps still point
    at a real patch. `factor` 1 returns the input unchanged.
    """
    if factor < 1:
        raise ValueError(f"pooling factor must be 1 or more, got {factor}")
    clusters = math.ceil(len(vectors) / factor)
    if factor == 1 or clusters >= len(vectors):
        return vectors, cells
    from scipy.cluster.hierarchy import fcluster, linkage  # 0.3 s to import: only where pages are pooled

    labels = fcluster(linkage(vectors.astype(np.float64), method="ward"), t=clusters, criterion="maxclust")
    pooled = np.zeros((labels.max(), vectors.shape[1]), dtype=np.float32)
    np.add.at(pooled, labels - 1, vectors)
    pooled = l2_normalize(pooled)
    affinity = np.einsum("nd,nd->n", vectors, pooled[labels - 1])
    order = np.lexsort((-affinity, labels))  # by cluster, best member first
    nearest = order[np.r_[True, np.diff(labels[order]) != 0]]
    return pooled, cells[nearest]
