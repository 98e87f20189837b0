"""Where each image token of a ColPali-family page lies on the page's patch grid.

Each family lays a page's patches out in its own token order (a fixed square, merged patches
row by row, tiles and a thumbnail, rows closed by markers); the cells are what similarity maps
and regions read. Shared by the transformers path and the sentence-transformers one.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np


class PatchLayout:
    """The token layout of family `kind` ("colpali", "colqwen2", "colmodernvbert", "neomme"),
    read with its `processor`; `grid` is the fixed grid, (0, 0) where it varies by page."""

    def __init__(self, kind: str, processor: Any) -> None:
        self.kind = kind
        self.processor = processor
        self.grid = self._fixed_grid()

    def _fixed_grid(self) -> tuple[int, int]:
        """The patch grid for ColPali (square, fixed); others vary by page and report their own."""
        if self.kind == "colpali":
            side = math.isqrt(self.processor.image_seq_length)
            return side, side
        return 0, 0

    def cells(self, ids: np.ndarray, inputs: Any, i: int) -> tuple[np.ndarray, tuple[int, int]]:
        """Grid cell of every position of page `i` (-1 where it is not an image patch) and its grid;
        `inputs` are the processor's outputs for the batch (`image_grid_thw`, ...)."""
        cells = np.full(len(ids), -1, dtype=np.int32)
        image = np.flatnonzero(ids == self.processor.image_token_id)
        if self.kind == "colpali":
            rows, cols = self.grid
            cells[image] = np.arange(len(image)) % (rows * cols)
        elif self.kind == "colqwen2":
            _, h, w = (int(v) for v in inputs["image_grid_thw"][i])
            merge = self.processor.image_processor.merge_size
            rows, cols = h // merge, w // merge
            cells[image] = np.arange(len(image)) % (rows * cols)  # merged patches run row by row
        elif self.kind == "neomme":
            rows, cols = self._row_cells(cells, image, ids)
        else:
            rows, cols = self._tile_cells(cells, image, ids)
        return cells, (rows, cols)

    def _row_cells(self, cells: np.ndarray, image: np.ndarray, ids: np.ndarray) -> tuple[int, int]:
        """NeoMME: `<doc> <img>`, then the patches row by row, each row closed by `<row>`.

        The `<img>` right after `<doc>` opens the page and holds no patch (the model skips it
        too), so it keeps -1 with the markers; the rows are the `<row>` markers.
        """
        patches = image[ids[image - 1] != self.processor.tokenizer.document_token_id]
        rows = int((ids == self.processor.tokenizer.row_token_id).sum())
        cols = len(patches) // rows if rows else 0
        cells[patches] = np.arange(len(patches))
        return rows, cols

    def _tile_cells(self, cells: np.ndarray, image: np.ndarray, ids: np.ndarray) -> tuple[int, int]:
        """ColModernVBert: tiles of side x side tokens, row by row, then a global thumbnail.

        The tile layout is read from the `<row_R_col_C>` markers before each tile (the
        processor drops its own rows/cols). Tile tokens land on their place in a
        (rows * side, cols * side) grid, the thumbnail's on the cell under their centre.
        """
        side = math.isqrt(self.processor.image_seq_len)
        markers = [k for k, token in enumerate(self.processor.row_col_ids) if token in set(ids.tolist())]
        tile_rows = max((k // 6 for k in markers), default=0) + 1  # the processor numbers a 6 x 6 layout
        tile_cols = max((k % 6 for k in markers), default=0) + 1
        rows, cols = tile_rows * side, tile_cols * side
        per_tile = side * side
        n_tiles = tile_rows * tile_cols if markers else 0
        k = np.arange(per_tile)
        for tile in range(n_tiles):
            r, c = divmod(tile, tile_cols)
            cells[image[tile * per_tile:(tile + 1) * per_tile]] = (r * side + k // side) * cols + c * side + k % side
        thumb = image[n_tiles * per_tile:]
        k = np.arange(len(thumb))
        cells[thumb] = ((k // side + 0.5) * tile_rows).astype(int) * cols + ((k % side + 0.5) * tile_cols).astype(int)
        return rows, cols
