"""MaxSim: for each query token, its best-matching page vector; summed over the query.

Pages are ragged (a text page has hundreds of vectors, a blank one has one), so pages travel
as one flat (total_vectors, dim) array plus an offsets array, never padded.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

#: Similarity entries per block (query tokens x page vectors): ~64 MiB in float32.
BLOCK_ENTRIES = 1 << 24


def pack(pages: Sequence[np.ndarray | torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Ragged pages to (flat vectors, offsets): page j is flat[offsets[j]:offsets[j+1]]."""
    lengths = torch.tensor([len(p) for p in pages], dtype=torch.long)
    offsets = torch.zeros(len(pages) + 1, dtype=torch.long)
    torch.cumsum(lengths, 0, out=offsets[1:])
    if not len(pages):
        return torch.zeros(0, 0), offsets
    if all(isinstance(p, np.ndarray) for p in pages):  # e.g. read-only memory-mapped rows
        return torch.from_numpy(np.concatenate(pages)), offsets
    return torch.cat([torch.as_tensor(p) for p in pages]), offsets


def maxsim(queries: Sequence[np.ndarray | torch.Tensor], flat: torch.Tensor, offsets: torch.Tensor,
           weights: Sequence[np.ndarray] | None = None) -> torch.Tensor:
    """Scores (n_queries, n_pages) of every query against every page, float32.

    Page vectors may be stored in float16; products accumulate in float32. Work goes in
    blocks of pages so memory stays bounded whatever the number of candidates. `weights`,
    one array per query, scales each query token's best similarity before the sum.

    >>> flat, offsets = pack([np.array([[1.0], [0.5]]), np.array([[-1.0]])])
    >>> maxsim([np.array([[1.0], [2.0]])], flat, offsets)
    tensor([[ 3., -3.]])
    """
    query_lengths = torch.tensor([len(q) for q in queries], dtype=torch.long)
    q = torch.cat([torch.as_tensor(x, dtype=torch.float32) for x in queries])  # (Qt, d)
    query_of_token = torch.repeat_interleave(torch.arange(len(queries)), query_lengths)  # (Qt,)
    token_weight = (torch.cat([torch.as_tensor(w, dtype=torch.float32) for w in weights])
                    if weights is not None else None)  # (Qt,)
    n_pages = len(offsets) - 1
    lengths = offsets[1:] - offsets[:-1]  # (P,)
    page_of_vector = torch.repeat_interleave(torch.arange(n_pages), lengths)  # (Nt,)
    scores = torch.zeros(len(queries), n_pages, dtype=torch.float32)  # (Q, P)
    per_block = max(1, BLOCK_ENTRIES // max(1, len(q)))
    start_page = 0
    while start_page < n_pages:
        # take whole pages up to `per_block` vectors (at least one page)
        lo = int(offsets[start_page])
        end_page = int(torch.searchsorted(offsets, lo + per_block, right=True)) - 1
        end_page = min(max(end_page, start_page + 1), n_pages)
        hi = int(offsets[end_page])
        block = flat[lo:hi].to(torch.float32)  # (Nb, d)
        sim = q @ block.T  # (Qt, Nb)
        local = (page_of_vector[lo:hi] - start_page).expand(len(q), -1)  # (Qt, Nb)
        best = torch.full((len(q), end_page - start_page), -torch.inf)  # (Qt, Pb)
        best.scatter_reduce_(1, local, sim, reduce="amax", include_self=True)
        if token_weight is not None:
            best *= token_weight[:, None]
        scores[:, start_page:end_page] = torch.zeros(len(queries), end_page - start_page).index_add_(
            0, query_of_token, best)  # (Q, Pb): sum of each query's token maxima
        start_page = end_page
    return scores


def maxsim_reference(queries: Sequence[np.ndarray], pages: Sequence[np.ndarray],
                     weights: Sequence[np.ndarray] | None = None) -> np.ndarray:
    """Plain float64 MaxSim, one pair at a time: the yardstick every fast path is tested against.

    >>> maxsim_reference([np.array([[1.0], [2.0]])], [np.array([[1.0], [0.5]]), np.array([[-1.0]])])
    array([[ 3., -3.]])
    """
    out = np.zeros((len(queries), len(pages)))
    for i, q in enumerate(queries):
        w = np.ones(len(q)) if weights is None else np.asarray(weights[i], dtype=np.float64)
        for j, p in enumerate(pages):
            out[i, j] = ((q.astype(np.float64) @ p.astype(np.float64).T).max(axis=1) * w).sum()
    return out
