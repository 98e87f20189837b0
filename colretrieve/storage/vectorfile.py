"""An append-only file of page vectors beside the store, read through a memory map.

Reading multi-vectors back through a vector database's Python binding means one Python float
object per number (seconds for a few hundred pages); a memory map hands MaxSim the stored bytes
directly. The store's payload records where each page's rows are, so the payload stays the
single source of truth: rows written before a crash and never referenced are only garbage.

float16 pages can be kept in the kernel's panel layout (vectors/layout.py): each page then
starts on a panel and takes whole panels. A copy in another format beside such a file pads its
pages the same way (`align`), so one row number locates a page in both.

Writes go straight to the file descriptor at an explicit offset (no buffer that could carry
half a failed page into the next write); a write that fails is cut back, so the file always
ends on a whole page. Reads are checked against the file's length before any kernel sees them.
"""

from __future__ import annotations

import os
import zlib
from pathlib import Path

import numpy as np

from ..errors import DiskFullError, IndexCorruptError
from ..vectors.forms import VectorFormat
from ..vectors.layout import PANEL, PanelPage, padded, panel_rows, to_panels


class VectorFile:
    """Rows of `dim` values stored in `format` (vectors/forms.py), or float16 `panels`;
    every page starts on a multiple of `align` rows (PANEL with panels). `append` returns the
    first row's index and the page's checksum. `repair` is the command named in errors."""

    def __init__(self, path: Path, dim: int, format: str = "float16", panels: bool = False, align: int = 1,
                 writable: bool = True, repair: str = "colretrieve check --repair") -> None:
        if panels and format != "float16":
            raise ValueError(f"the panel layout is float16, not {format}")
        self.path = path
        self.dim = dim
        self.format = VectorFormat(format, dim)
        self.panels = panels
        self.writable = writable
        self._repair = repair
        self._align = PANEL if panels else align
        self._row_bytes = self.format.row_bytes
        try:
            self._fd = os.open(path, os.O_RDWR | os.O_CREAT if writable else os.O_RDONLY, 0o644)
        except FileNotFoundError:
            raise IndexCorruptError(f"{path} is missing; run {repair}") from None
        self._rows = os.fstat(self._fd).st_size // (self._row_bytes * self._align) * self._align
        self._map: np.memmap | None = None

    @property
    def rows(self) -> int:
        """Whole pages' rows in the file (a page cut short by a crash is not counted)."""
        return self._rows

    def span(self, count: int) -> int:
        """Rows a page of `count` vectors takes in this file."""
        return panel_rows(count) if self.panels else -(-count // self._align) * self._align

    def append(self, vectors: np.ndarray) -> tuple[int, int]:
        """Write `vectors` (n, dim) after the last whole page: (first row, crc32 of the bytes).

        Not durable until `sync`; a failed write is cut back and raised as DiskFullError.
        """
        if vectors.ndim != 2 or vectors.shape[1] != self.dim:
            raise ValueError(f"expected (n, {self.dim}) vectors, got {vectors.shape}")
        first = self._rows
        # A page's rows past its vectors repeat its last one and are never read.
        data = (to_panels(vectors.astype(np.float16, copy=False)) if self.panels
                else self.format.encode(padded(vectors, self._align))).tobytes()
        start = first * self._row_bytes
        try:
            done = 0
            while done < len(data):
                done += os.pwrite(self._fd, memoryview(data)[done:], start + done)
        except OSError as exc:
            self._cut(start)
            raise DiskFullError(f"cannot write {self.path}: {exc.strerror or exc}; the pages stored before "
                                "are kept: free space and run the same command again") from exc
        self._rows += len(data) // self._row_bytes
        return first, zlib.crc32(data)

    def truncate(self, rows: int) -> None:
        """Drop rows from `rows` on (rows no payload points at, e.g. written before a crash);
        a page cut by `rows` goes whole."""
        rows -= rows % self._align
        if rows < self._rows:
            self._cut(rows * self._row_bytes)
            self._rows = rows
            self._map = None

    def _cut(self, size: int) -> None:
        try:
            os.ftruncate(self._fd, size)
        except OSError:  # the file keeps bytes past its last page; nothing points at them
            pass

    def sync(self) -> None:
        os.fsync(self._fd)

    def _check(self, first: int, rows: int) -> None:
        if first < 0 or first + rows > self._rows:
            raise IndexCorruptError(f"{self.path} is shorter than the pages stored in it (a page needs rows "
                                    f"{first}-{first + rows}, the file holds {self._rows}); run {self._repair}")

    def _rows_at(self, first: int, rows: int) -> np.ndarray:
        self._check(first, rows)
        if self._map is None or len(self._map) < first + rows:
            self._map = np.memmap(self.path, dtype=np.uint8, mode="r", shape=(self._rows, self._row_bytes))
        return self._map[first : first + rows]

    def read(self, first: int, count: int) -> np.ndarray | PanelPage:
        """The page of `count` vectors at row `first`: float16 is a read-only view of the file,
        no copy (a `PanelPage` in the panel layout); other formats are decoded to float32.
        A page past the end of the file is an IndexCorruptError, never a read out of bounds."""
        rows = panel_rows(count) if self.panels else count
        data = self.format.decode(self._rows_at(first, rows))
        return PanelPage(data.reshape(-1, self.dim, PANEL), count) if self.panels else data

    def checksum(self, first: int, count: int) -> int:
        """crc32 of the page's bytes as `append` wrote them."""
        return zlib.crc32(self._rows_at(first, self.span(count)).tobytes())

    def close(self) -> None:
        self._map = None
        os.close(self._fd)
