"""ColPali-family page encoders through transformers' native retrieval classes.

`ColPaliForRetrieval` (PaliGemma), `ColQwen2ForRetrieval` (Qwen2-VL / 2.5-VL) and
`ColModernVBertForRetrieval` (Idefics3-style tiles), picked by the checkpoint's model type.
Every vector the model returns for a page is kept (image patches and the prompt's text
tokens alike, as the processor's own `score_retrieval` scores them); padding is dropped.
Image-patch vectors keep their grid cell for similarity maps; prompt tokens get cell -1.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from ..errors import ColretrieveError
from ..page import Page
from .base import MultiVectorEncoder, PageVectors
from .loading import load_checkpoint
from .memory import halve_on_oom

#: model_type in config.json -> (model class, processor class) in transformers.
FAMILIES = {
    "colpali": ("ColPaliForRetrieval", "ColPaliProcessor"),
    "colqwen2": ("ColQwen2ForRetrieval", "ColQwen2Processor"),
    "colmodernvbert": ("ColModernVBertForRetrieval", "ColModernVBertProcessor"),
}


class ColVisionEncoder(MultiVectorEncoder):
    """A ColPali-family checkpoint (hub id or folder) as a page encoder.

    Parameters
    ----------
    model
        Hub id (`vidore/colpali-v1.3-hf`) or local folder.
    device
        "auto" (CUDA, then MPS, then CPU) or an explicit device.
    batch_size
        Pages per forward pass; halved for the rest of the run on a CUDA out-of-memory error.
    max_pixels
        ColQwen2: the largest page image, in pixels, before it is scaled down (the model
        card's default is about 12.8 M); fewer pixels mean fewer vectors and less memory.
    """

    def __init__(self, model: str, *, device: str = "auto", batch_size: int = 4,
                 max_pixels: int | None = None) -> None:
        import transformers

        self.kind, self.model, path, self.device = load_checkpoint(
            model, {kind: classes[0] for kind, classes in FAMILIES.items()},
            f"page encoders are {', '.join(FAMILIES)} (ColPali, ColQwen2, ColModernVBert)", device)
        processor_class = getattr(transformers, FAMILIES[self.kind][1])
        self.processor = processor_class.from_pretrained(str(path), local_files_only=True)
        if max_pixels is not None:
            if self.kind != "colqwen2":
                raise ColretrieveError(f"max_pixels applies to ColQwen2 models, not {self.kind}")
            self.processor.image_processor.size["longest_edge"] = max_pixels  # Qwen2-VL counts pixels here
        self.dim = int(self.model.config.embedding_dim)
        self.batch_size = batch_size
        self.grid = self._fixed_grid()
        self.name = f"{self.kind}:{model}"

    def _fixed_grid(self) -> tuple[int, int]:
        """The patch grid for ColPali (square, fixed); others vary by page and report their own."""
        if self.kind == "colpali":
            side = math.isqrt(self.processor.image_seq_length)
            return side, side
        return 0, 0

    # ---- pages -----------------------------------------------------------------------
    def _encode_page_batch(self, pages: Sequence[Page]) -> list[PageVectors]:
        images = [page.image for page in pages]

        def shrink(size: int) -> None:
            self.batch_size = size

        return halve_on_oom(self._encode_images, images, shrink)

    def _encode_images(self, images: list[Any]) -> list[PageVectors]:
        inputs = self.processor.process_images(images=images).to(self.device)
        with torch.inference_mode():
            embeddings = self.model(**inputs).embeddings.float().cpu().numpy()
        mask = inputs["attention_mask"].bool().cpu().numpy()
        ids = inputs["input_ids"].cpu().numpy()
        out = []
        for i in range(len(images)):
            keep = mask[i]
            cells, grid = self._cells(ids[i], inputs, i)
            out.append(PageVectors(vectors=embeddings[i][keep], cells=cells[keep], grid=grid))
        return out

    def _cells(self, ids: np.ndarray, inputs: Any, i: int) -> tuple[np.ndarray, tuple[int, int]]:
        """Grid cell of every position (-1 where it is not an image patch) and the grid."""
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
        else:
            rows, cols = self._tile_cells(cells, image, ids)
        return cells, (rows, cols)

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

    # ---- queries ---------------------------------------------------------------------
    def _encode_query_batch(self, texts: Sequence[str]) -> list[np.ndarray]:
        inputs = self.processor.process_queries(text=list(texts)).to(self.device)
        with torch.inference_mode():
            embeddings = self.model(**inputs).embeddings.float().cpu().numpy()
        mask = inputs["attention_mask"].bool().cpu().numpy()
        return [embeddings[i][mask[i]] for i in range(len(texts))]
