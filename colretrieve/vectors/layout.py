"""The panel layout: how float16 page vectors are stored for the CPU kernel.

Scored row by row, the AVX-512 kernel spends about a quarter of its time transposing each
32-vector panel into registers that hold one dimension of 32 vectors (README, "MaxSim
kernel"). Stored that way, 32 vectors at a time and dimension-major inside, a panel goes
straight from float16 into the multiply-adds. A page of n vectors takes ceil(n / 32) panels;
the rows past n repeat the page's last vector, which cannot change a maximum.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

PANEL = 32  # vectors in a panel: the kernel's two zmm registers of 16


def panel_rows(n: int) -> int:
    """Rows a page of `n` vectors takes in the panel layout."""
    return -(-n // PANEL) * PANEL


def padded(vectors: np.ndarray, multiple: int = PANEL) -> np.ndarray:
    """`vectors` with the last one repeated up to a multiple of `multiple` rows."""
    pad = -len(vectors) % multiple
    return np.concatenate([vectors, np.repeat(vectors[-1:], pad, axis=0)]) if pad else vectors


def to_panels(vectors: np.ndarray) -> np.ndarray:
    """(n, dim) vectors as (panels, dim, 32): panel k's dimension d holds vectors 32k.. of it."""
    return np.ascontiguousarray(padded(vectors).reshape(-1, PANEL, vectors.shape[1]).transpose(0, 2, 1))


@dataclass(frozen=True)
class PanelPage:
    """One page in the panel layout: `panels` (ceil(length / 32), dim, 32), `length` vectors."""

    panels: np.ndarray
    length: int

    def __len__(self) -> int:
        return self.length

    def rows(self) -> np.ndarray:
        """The page's (length, dim) vectors, a copy: for readers other than the kernel."""
        return self.panels.transpose(0, 2, 1).reshape(-1, self.panels.shape[1])[: self.length]


#: A page's vectors as a store hands them to MaxSim: (n, dim) rows, or panels.
PageArray = np.ndarray | PanelPage


def as_rows(page: PageArray) -> np.ndarray:
    """A page's (n, dim) vectors, whichever layout it was read in."""
    return page.rows() if isinstance(page, PanelPage) else page
