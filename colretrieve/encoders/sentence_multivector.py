"""Multi-vector page models packaged for sentence-transformers (>= 6), run through its own API.

A checkpoint saved as a sentence-transformers `MultiVectorEncoder` carries its pipeline with it:
the backbone (a ColPali-family `*ForRetrieval` model or another multimodal model), its
prompts, and a `MultiVectorMask` that decides which token vectors count in MaxSim (often the
image patches alone: `keep_only_token_ids`). Pages go through `encode_document` and queries
through `encode_query`, so the vectors kept are exactly the ones the library's `similarity`
scores. Image-patch vectors get their grid cell from the input ids, as `ColVisionEncoder`
places them, for the ColPali families; other backbones' vectors, and vectors a pooling module
merged, get cell -1 (no similarity map, the same scores).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ColretrieveError
from .base import PageVectors
from .loading import complete_weights, pick_device, resolve_model
from .memory import ImagePageEncoder
from .patch_layout import PatchLayout

#: `model_type` in config_sentence_transformers.json that sentence-transformers loads as a
#: MultiVectorEncoder without converting it: its own, and PyLate 3's older name for it.
MODEL_TYPES = ("MultiVectorEncoder", "ColBERT")


def is_sentence_multivector(path: Path) -> bool:
    """Whether the model folder `path` is a saved sentence-transformers multi-vector model, by
    the files sentence-transformers itself decides on: a modules.json (else it builds default
    modules around a bare checkpoint) and a config_sentence_transformers.json whose model type is
    one it loads as a MultiVectorEncoder (else it converts another family's save)."""
    config = path / "config_sentence_transformers.json"
    if not (path / "modules.json").is_file() or not config.is_file():
        return False
    try:
        return json.loads(config.read_text(encoding="utf-8")).get("model_type") in MODEL_TYPES
    except (ValueError, AttributeError):
        return False


class SentenceMultiVectorEncoder(ImagePageEncoder):
    """A sentence-transformers multi-vector page model (hub id or folder) as a page encoder.

    Parameters
    ----------
    model
        Hub id or local folder of a saved sentence-transformers `MultiVectorEncoder` that reads
        images.
    device
        "auto" (CUDA, then MPS, then CPU) or an explicit device.
    batch_size
        Pages per forward pass; halved for the rest of the run on a CUDA out-of-memory error.
    max_pixels
        ColQwen2 backbones: the largest page image, in pixels, before it is scaled down.
    """

    def __init__(self, model: str, *, device: str = "auto", batch_size: int = 4,
                 max_pixels: int | None = None) -> None:
        import torch
        from sentence_transformers import MultiVectorEncoder as STMultiVectorEncoder

        from .colvision import FAMILIES

        path = resolve_model(model)
        if not is_sentence_multivector(path):
            raise ColretrieveError(f"model {model} is not a sentence-transformers multi-vector model (no modules.json "
                                   f"with a config_sentence_transformers.json of model type {MODEL_TYPES[0]})")
        self.device = pick_device(device)
        dtype = torch.bfloat16 if self.device.startswith("cuda") else torch.float32  # as ColVisionEncoder loads
        with complete_weights(path):
            self.model = STMultiVectorEncoder(str(path), device=self.device, local_files_only=True,
                                              model_kwargs={"dtype": dtype})
        if not self.model.supports("image"):
            raise ColretrieveError(f"model {model} reads {', '.join(map(str, self.model.modalities))}, not page "
                                   f"images: a ColBERT-family text model is passed as --encoder text:{model}")
        backbone = self.model.transformers_model
        self.kind = str(getattr(getattr(backbone, "config", None), "model_type", "") or "")
        self.processor = self.model.processor
        if max_pixels is not None:
            if self.kind != "colqwen2":
                raise ColretrieveError(f"max_pixels applies to ColQwen2 models, not {self.kind or 'this model'}")
            self.processor.image_processor.size["longest_edge"] = max_pixels  # Qwen2-VL counts pixels here
        self.layout = PatchLayout(self.kind, self.processor) if self.kind in FAMILIES else None
        self.dim = int(self.model.get_embedding_dimension() or 0)
        self.grid = self.layout.grid if self.layout is not None else (0, 0)
        self.batch_size = batch_size
        self.name = f"st:{model}"

    # ---- pages -----------------------------------------------------------------------
    def _encode_images(self, images: list[Any]) -> list[PageVectors]:
        """Each page's vectors under the model's scoring mask (what `similarity` scores), with
        the cells of its image tokens."""
        features = self.model.encode_document(images, output_value=None, batch_size=len(images),
                                              show_progress_bar=False)
        out = []
        for item in features:
            vectors = item["token_embeddings"].float().cpu().numpy()
            keep = item["attention_mask"].bool().cpu().numpy()
            if not keep.any():
                raise ColretrieveError(f"model {self.name} scores no vector of a page (its MultiVectorMask keeps "
                                       "none of the page's tokens)")
            ids = item["input_ids"].cpu().numpy() if "input_ids" in item else None
            cells, grid = np.full(len(vectors), -1, dtype=np.int32), None
            if self.layout is not None and ids is not None and len(ids) == len(vectors):  # else pooled: no places
                cells, grid = self.layout.cells(ids, {key: [value] for key, value in item.items()}, 0)
            out.append(PageVectors(vectors=vectors[keep], cells=cells[keep], grid=grid))
        return out

    # ---- queries ---------------------------------------------------------------------
    def _encode_query_batch(self, texts: Sequence[str]) -> list[np.ndarray]:
        """The model's own query side: its prompt, its processor's query form, its mask."""
        embeddings = self.model.encode_query(list(texts), batch_size=len(texts), show_progress_bar=False)
        return [e.float().cpu().numpy() for e in embeddings]
