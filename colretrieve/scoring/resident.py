"""Every page's vectors packed once on an accelerator, for exact search.

Exact search reads every page. From the memory map that is a host-to-device copy of the whole
index per query; packed once in GPU memory it is one pass of the fused kernel over HBM.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import torch

from ..vectors.tensors import read_only_tensor
from .maxsim import maxsim
from .ranking import best_first


class ResidentPages:
    """The multi-vectors of the pages matching a filter, as one flat float16 tensor on `device`."""

    def __init__(self, ids: list[str], flat: torch.Tensor, offsets: torch.Tensor) -> None:
        self.ids = ids
        self.slot = {pid: j for j, pid in enumerate(ids)}
        self.flat = flat
        self.offsets = offsets

    @classmethod
    def load(cls, sizes: Sequence[tuple[str, int]], pages: Iterable[tuple[str, np.ndarray]], dim: int,
             device: str | torch.device) -> ResidentPages:
        """The pages of `sizes` ((id, vectors) of each), filled from `pages` ((id, rows) in any
        order; ids not in `sizes`, written since, are left out): sizes first, so the device
        tensor is allocated once and filled in place (no host copy of the whole index, no
        concatenation on the device)."""
        offsets = torch.zeros(len(sizes) + 1, dtype=torch.long)
        torch.cumsum(torch.tensor([n for _, n in sizes], dtype=torch.long), 0, out=offsets[1:])
        flat = torch.empty(int(offsets[-1]), dim, dtype=torch.float16, device=device)
        slot = {pid: j for j, (pid, _) in enumerate(sizes)}
        for pid, vectors in pages:
            if pid in slot:
                j = slot[pid]
                flat[offsets[j]:offsets[j + 1]].copy_(read_only_tensor(vectors))
        return cls([pid for pid, _ in sizes], flat, offsets.to(device))

    def scores(self, query: np.ndarray, ids: Sequence[str], weights: np.ndarray | None = None) -> np.ndarray:
        """MaxSim of `query` on the pages `ids` (all of them must be resident)."""
        return self._every(query, weights)[[self.slot[pid] for pid in ids]]

    def best(self, query: np.ndarray, k: int) -> tuple[list[str], np.ndarray]:
        """The `k` best resident pages and their scores, in search order (`best_first`): exact
        search without asking the store for every page."""
        every = self._every(query, None)
        order = best_first(every, self.ids, k)
        return [self.ids[j] for j in order], every[order]

    def _every(self, query: np.ndarray, weights: np.ndarray | None) -> np.ndarray:
        return maxsim([query], self.flat, self.offsets, weights=None if weights is None else [weights])[0].numpy()
