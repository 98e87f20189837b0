"""An append-only file of page vectors beside the store, read through a memory map.

Reading multi-vectors back through a vector database's Python binding means one Python float
object per number (seconds for a few hundred pages); a memory map hands MaxSim the stored bytes
directly. The store's payload records where each page's rows are, so the payload stays the
single source of truth: rows written before a crash and never referenced are only garbage.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..scoring.quantization import VectorFormat


class VectorFile:
    """Rows of `dim` values stored in `format` (scoring/quantization.py); `append` returns the
    first row's index."""

    def __init__(self, path: Path, dim: int, format: str = "float16") -> None:
        self.path = path
        self.dim = dim
        self.format = VectorFormat(format, dim)
        self._row_bytes = self.format.row_bytes
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
        self._fh.write(self.format.encode(vectors).tobytes())
        self._fh.flush()
        self._rows += len(vectors)
        return first

    def truncate(self, rows: int) -> None:
        """Drop rows from `rows` on (rows no payload points at, e.g. written before a crash)."""
        if rows < self._rows:
            self._fh.truncate(rows * self._row_bytes)
            self._rows = rows
            self._map = None

    def sync(self) -> None:
        os.fsync(self._fh.fileno())

    def read(self, first: int, count: int) -> np.ndarray:
        """Rows [first, first + count) as vectors: float16 is a read-only view of the file, no
        copy; other formats are decoded to float32."""
        if self._map is None or len(self._map) < first + count:
            self._map = np.memmap(self.path, dtype=np.uint8, mode="r", shape=(self._rows, self._row_bytes))
        return self.format.decode(self._map[first : first + count])

    def close(self) -> None:
        self._map = None
        self._fh.close()
