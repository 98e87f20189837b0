"""An append-only float16 file of page vectors beside the store, read through a memory map.

Reading multi-vectors back through a vector database's Python binding means one Python float
object per number (seconds for a few hundred pages); a memory map hands MaxSim the stored bytes
directly. The store's payload records where each page's rows are, so the payload stays the
single source of truth: rows written before a crash and never referenced are only garbage.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

DTYPE = np.float16


class VectorFile:
    """Rows of `dim` float16 values; `append` returns the first row's index."""

    def __init__(self, path: Path, dim: int) -> None:
        self.path = path
        self.dim = dim
        self._row_bytes = dim * np.dtype(DTYPE).itemsize
        self._fh = open(path, "a+b")
        size = os.fstat(self._fh.fileno()).st_size
        if size % self._row_bytes:  # a row cut short by a crash: nothing points at it
            self._fh.truncate(size - size % self._row_bytes)
        self._rows = os.fstat(self._fh.fileno()).st_size // self._row_bytes
        self._map: np.memmap | None = None

    @property
    def rows(self) -> int:
        return self._rows

    def append(self, vectors: np.ndarray) -> int:
        """Write `vectors` (n, dim) and make them durable before the store may point at them."""
        if vectors.ndim != 2 or vectors.shape[1] != self.dim:
            raise ValueError(f"expected (n, {self.dim}) vectors, got {vectors.shape}")
        first = self._rows
        self._fh.seek(0, os.SEEK_END)
        self._fh.write(np.ascontiguousarray(vectors, dtype=DTYPE).tobytes())
        self._fh.flush()
        self._rows += len(vectors)
        return first

    def sync(self) -> None:
        os.fsync(self._fh.fileno())

    def read(self, first: int, count: int) -> np.ndarray:
        """Rows [first, first + count) as a read-only view of the file, no copy."""
        if self._map is None or len(self._map) < first + count:
            self._map = np.memmap(self.path, dtype=DTYPE, mode="r", shape=(self._rows, self.dim))
        return self._map[first : first + count]

    def close(self) -> None:
        self._map = None
        self._fh.close()
