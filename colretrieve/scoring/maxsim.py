"""MaxSim: for each query token, its best-matching page vector; summed over the query.

Pages are ragged (a text page has hundreds of vectors, a blank one has one), so pages travel
as one flat (total_vectors, dim) array plus an offsets array, never padded. `maxsim_pages`,
the path a query takes on the CPU, needs numpy and the fused kernel only: a one-shot query
does not pay torch's import (about 2 s) unless the portable path must run.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from ..vectors.layout import PageArray, PanelPage, as_rows
from . import cpu_kernel

if TYPE_CHECKING:
    import torch

#: Page vectors per CPU block: converted to float32 it is ~8 MiB at dim 128, so a block is
#: read from memory once and then stays in the shared L3 cache while it is multiplied and
#: reduced. Measured with benchmarks/bench_maxsim.py.
BLOCK_VECTORS = 16384


def pack(pages: Sequence[np.ndarray | torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Ragged pages to (flat vectors, offsets): page j is flat[offsets[j]:offsets[j+1]]."""
    import torch

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
    """Scores (n_queries, n_pages) of every query against every packed page, float32.

    Page vectors may be stored in float16; products accumulate in float32. All queries'
    tokens are scored in one pass over the pages, so a batch of queries reads each page
    once. Pages on a CUDA device go to the fused Triton kernel, others to the fused AVX-512
    kernel where the CPU has it, else to the blocked matmul path. `weights`, one array per
    query, scales each query token's best similarity.

    >>> flat, offsets = pack([np.array([[1.0], [0.5]]), np.array([[-1.0]])])
    >>> maxsim([np.array([[1.0], [2.0]])], flat, offsets)
    tensor([[ 3., -3.]])
    """
    import torch

    q = torch.cat([torch.as_tensor(x, dtype=torch.float32) for x in queries])  # (Qt, d)
    if flat.is_cuda:
        from .triton_maxsim import token_maxima

        best = token_maxima(q.to(flat.device), flat, offsets)
    elif cpu_kernel.accepts([flat], q.shape[1]) and bool((offsets.diff() > 0).all()):
        best = torch.from_numpy(cpu_kernel.token_maxima(q.numpy(), *cpu_kernel.packed_addresses(flat, offsets),
                                                        flat.dtype))
    else:
        bounds = offsets.tolist()
        best = token_maxima_cpu(q, [flat[a:b] for a, b in zip(bounds, bounds[1:])], flat, bounds)
    return _sum_per_query(best, queries, weights).cpu()


def maxsim_pages(queries: Sequence[np.ndarray], pages: Sequence[PageArray],
                 weights: Sequence[np.ndarray] | None = None) -> np.ndarray:
    """`maxsim` on CPU pages given one array each, rows or panels (e.g. views of the memory-mapped
    vector file): with the kernel each page is read where it lies, never concatenated first."""
    q = np.concatenate([np.asarray(x, dtype=np.float32) for x in queries])
    if cpu_kernel.accepts(pages, q.shape[1]):
        first = pages[0]
        panels = isinstance(first, PanelPage)
        dtype = np.dtype(np.float16) if isinstance(first, PanelPage) else first.dtype
        best = cpu_kernel.token_maxima(q, *cpu_kernel.page_addresses(pages), dtype, panels=panels)
    else:  # the portable path reads rows; pages in panels are copied back to rows first
        import torch

        from ..vectors.tensors import read_only_tensor

        best = token_maxima_cpu(torch.from_numpy(q), [read_only_tensor(as_rows(p)) for p in pages]).numpy()
    if weights is not None:
        best *= np.concatenate([np.asarray(w, dtype=np.float32) for w in weights])[:, None]
    starts = np.cumsum([0] + [len(x) for x in queries[:-1]])
    return np.add.reduceat(best, starts, axis=0) if best.shape[1] else np.zeros((len(queries), 0), np.float32)


def _sum_per_query(best: torch.Tensor, queries: Sequence[np.ndarray | torch.Tensor],
                   weights: Sequence[np.ndarray] | None) -> torch.Tensor:
    """Per-query sums where `best` lies: on a GPU only (queries, pages) comes back to the host."""
    import torch

    device = best.device
    if weights is not None:
        best *= torch.cat([torch.as_tensor(w, dtype=torch.float32) for w in weights]).to(device)[:, None]
    lengths = torch.tensor([len(q) for q in queries], dtype=torch.long)
    query_of_token = torch.repeat_interleave(torch.arange(len(queries)), lengths).to(device)
    return torch.zeros(len(queries), best.shape[1], device=device).index_add_(0, query_of_token, best)


def token_maxima_cpu(q: torch.Tensor, pages: Sequence[torch.Tensor], flat: torch.Tensor | None = None,
                     bounds: Sequence[int] | None = None) -> torch.Tensor:
    """(n_tokens, n_pages): each query token's best similarity on each page; the portable path.

    Blocks of whole pages are converted to float32 into one reused, cache-sized buffer,
    multiplied by all tokens at once (one matmul on all cores) and reduced with a reshape.
    Ragged pages are made equally long inside a block by repeating each page's last vector,
    which cannot change a maximum: no padding value, no segmented reduction. Tokens are
    padded to a multiple of 16 with zero rows (dropped after) so the reduction runs on whole
    AVX-512 registers. The full (tokens x vectors) matrix never exists. When the pages are
    packed (`flat`, `bounds`), a block of equally long pages is converted in one copy.
    """
    import torch

    n_tokens, n_pages = len(q), len(pages)
    best = torch.empty(n_tokens, n_pages, dtype=torch.float32)
    if n_pages == 0:
        return best
    q = torch.cat([q, q.new_zeros(-n_tokens % 16, q.shape[1])]) if n_tokens % 16 else q
    qt = q.T.contiguous()  # a (dim, tokens) operand: MKL's kernel for it is ~1.5x the transposed view's
    lengths = [len(p) for p in pages]
    longest = max(lengths)
    per_block = max(1, BLOCK_VECTORS // longest)
    buffer = torch.empty(per_block * longest, q.shape[1], dtype=torch.float32)
    sims = torch.empty(per_block * longest, len(q), dtype=torch.float32)
    for start in range(0, n_pages, per_block):
        end = min(start + per_block, n_pages)
        width = max(lengths[start:end])
        rows = (end - start) * width
        block = buffer[:rows].view(end - start, width, -1)
        if flat is not None and bounds is not None and bounds[end] - bounds[start] == rows:
            buffer[:rows].copy_(flat[bounds[start]:bounds[end]])  # ColPali: one run, one copy
        else:
            _fill(block, pages[start:end])
        sim = torch.mm(buffer[:rows], qt, out=sims[:rows])  # (rows, tokens)
        best[:, start:end] = sim.view(end - start, width, len(q)).amax(dim=1).T[:n_tokens]
    return best


def _fill(block: torch.Tensor, pages: Sequence[torch.Tensor]) -> None:
    """Copy pages into the (pages, width, dim) block, each padded with its own last vector."""
    for slot, page in enumerate(pages):
        block[slot, : len(page)].copy_(page)
        if len(page) < block.shape[1]:
            block[slot, len(page):] = block[slot, len(page) - 1]


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
