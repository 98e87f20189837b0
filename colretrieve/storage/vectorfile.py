"""An append-only file of page vectors beside the store, read through a memory map.

Reading multi-vectors back through a vector database's Python binding means one Python float
object per number (seconds for a few hundred pages); a memory map hands MaxSim the stored bytes
directly. The store's payload records where each page's rows are, so the payload stays the
single source of truth: rows written before a crash and never referenced are only garbage.

float16 pages can be kept in the kernel's panel layout (scoring/layout.py): each page then
starts on a panel and takes whole panels. A copy in another format beside such a file pads its
pages the same way (`align`), so one row number locates a page in both.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..scoring.layout import PANEL, PanelPage, padded, panel_rows, to_panels
from ..scoring.quantization import VectorFormat


class VectorFile:
    """Rows of `dim` values stored in `format` (scoring/quantization.py), or float16 `panels`;
    every page starts on a multiple of `align` rows (PANEL with panels). `append` returns the
    first row's index."""

    def __init__(self, path: Path, dim: int, format: str = "float16", panels: bool = False, align: int = 1) -> None:
        if panels and format != "float16":
            raise ValueError(f"the panel layout is float16, not {format}")
        self.path = path
        self.dim = dim
        self.format = VectorFormat(format, dim)
        self.panels = panels
        self._align = PANEL if panels else align
        self._row_bytes = self.format.row_bytes
        self._fh = open(path, "a+b")
        size = os.fstat(self._fh.fileno()).st_size
        unit = self._row_bytes * self._align
        if size % unit:  # a page cut short by a crash: nothing points at it
            self._fh.truncate(size - size % unit)
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
        # A page's rows past its vectors repeat its last one and are never read.
        data = (to_panels(vectors.astype(np.float16, copy=False)) if self.panels
                else self.format.encode(padded(vectors, self._align)))
        self._fh.seek(0, os.SEEK_END)
        self._fh.write(data.tobytes())
        self._fh.flush()
        self._rows += data.size * data.itemsize // self._row_bytes
        return first

    def truncate(self, rows: int) -> None:
        """Drop rows from `rows` on (rows no payload points at, e.g. written before a crash);
        a page cut by `rows` goes whole."""
        rows -= rows % self._align
        if rows < self._rows:
            self._fh.truncate(rows * self._row_bytes)
            self._rows = rows
            self._map = None

    def sync(self) -> None:
        os.fsync(self._fh.fileno())

    def read(self, first: int, count: int) -> np.ndarray | PanelPage:
        """The page of `count` vectors at row `first`: float16 is a read-only view of the file,
        no copy (a `PanelPage` in the panel layout); other formats are decoded to float32."""
        rows = panel_rows(count) if self.panels else count
        if self._map is None or len(self._map) < first + rows:
            self._map = np.memmap(self.path, dtype=np.uint8, mode="r", shape=(self._rows, self._row_bytes))
        data = self.format.decode(self._map[first : first + rows])
        return PanelPage(data.reshape(-1, self.dim, PANEL), count) if self.panels else data

    def close(self) -> None:
        self._map = None
        self._fh.close()
