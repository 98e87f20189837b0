"""ColPali-family page encoders through transformers' native retrieval classes.

`ColPaliForRetrieval` (PaliGemma), `ColQwen2ForRetrieval` (Qwen2-VL / 2.5-VL),
`ColModernVBertForRetrieval` (Idefics3-style tiles) and `NeoMMEForRetrieval` (one encoder over
raw patches, rows closed by `<row>` markers), picked by the checkpoint's model type.
Every vector the model returns for a page is kept (image patches and the prompt's text
tokens alike, as the processor's own `score_retrieval` scores them); padding is dropped.
Image-patch vectors keep their grid cell for similarity maps; prompt tokens get cell -1.

NeoMME's processor has no `process_images`/`process_queries`: its checkpoint's chat template,
with task "document" or "query", adds the markers (and the query's `<mask>` expansion). It is
trained for MeanMaxSim, MaxSim divided by the query's token count: the same ranking per query.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from ..errors import ColretrieveError
from .base import PageVectors
from .loading import load_checkpoint, model_type, resolve_model
from .memory import ImagePageEncoder
from .patch_layout import PatchLayout

#: model_type in config.json -> (model class, processor class) in transformers.
FAMILIES = {
    "colpali": ("ColPaliForRetrieval", "ColPaliProcessor"),
    "colqwen2": ("ColQwen2ForRetrieval", "ColQwen2Processor"),
    "colmodernvbert": ("ColModernVBertForRetrieval", "ColModernVBertProcessor"),
    "neomme": ("NeoMMEForRetrieval", "NeoMMEProcessor"),
}


class ColVisionEncoder(ImagePageEncoder):
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

        if model_type(resolve_model(model)) == "neomme" and not transformers.utils.is_torchvision_available():
            raise ColretrieveError("NeoMME's image processor needs torchvision (it has no PIL version); "
                                   "install the torchvision release that matches your torch")  # before the weights load
        self.kind, self.model, path, self.device = load_checkpoint(
            model, {kind: classes[0] for kind, classes in FAMILIES.items()},
            f"page encoders are {', '.join(FAMILIES)} (ColPali, ColQwen2, ColModernVBert, NeoMME)", device)
        processor_class = getattr(transformers, FAMILIES[self.kind][1])
        self.processor = processor_class.from_pretrained(str(path), local_files_only=True)
        if max_pixels is not None:
            if self.kind != "colqwen2":
                raise ColretrieveError(f"max_pixels applies to ColQwen2 models, not {self.kind}")
            self.processor.image_processor.size["longest_edge"] = max_pixels  # Qwen2-VL counts pixels here
        self.dim = int(self.model.config.embedding_dim)
        self.batch_size = batch_size
        self.layout = PatchLayout(self.kind, self.processor)
        self.grid = self.layout.grid
        self.name = f"{self.kind}:{model}"

    # ---- inputs ----------------------------------------------------------------------
    def _page_inputs(self, images: list[Any]) -> Any:
        if self.kind == "neomme":
            return self._chat([[{"role": "user", "content": [{"type": "image", "image": image}]}]
                               for image in images], "document")
        return self.processor.process_images(images=images)

    def _query_inputs(self, texts: list[str]) -> Any:
        if self.kind == "neomme":
            return self._chat([[{"role": "user", "content": text}] for text in texts], "query")
        return self.processor.process_queries(text=texts)

    def _chat(self, conversations: list[list[dict[str, Any]]], task: str) -> Any:
        """NeoMME's inputs, as its model card makes them; padded, since a batch needs one length."""
        return self.processor.apply_chat_template(conversations, task=task, tokenize=True, return_dict=True,
                                                  return_tensors="pt", processor_kwargs={"padding": True})

    # ---- pages -----------------------------------------------------------------------
    def _encode_images(self, images: list[Any]) -> list[PageVectors]:
        inputs = self._page_inputs(images).to(self.device)
        with torch.inference_mode():
            embeddings = self.model(**inputs).embeddings.float().cpu().numpy()
        mask = inputs["attention_mask"].bool().cpu().numpy()
        ids = inputs["input_ids"].cpu().numpy()
        out = []
        for i in range(len(images)):
            keep = mask[i]
            cells, grid = self.layout.cells(ids[i], inputs, i)
            out.append(PageVectors(vectors=embeddings[i][keep], cells=cells[keep], grid=grid))
        return out

    # ---- queries ---------------------------------------------------------------------
    def _encode_query_batch(self, texts: Sequence[str]) -> list[np.ndarray]:
        inputs = self._query_inputs(list(texts)).to(self.device)
        with torch.inference_mode():
            embeddings = self.model(**inputs).embeddings.float().cpu().numpy()
        mask = inputs["attention_mask"].bool().cpu().numpy()
        return [embeddings[i][mask[i]] for i in range(len(texts))]

