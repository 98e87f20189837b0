"""CLIP and SigLIP dual encoders as the single-vector prefilter: one vector per page image,
one per query, compared by the store before MaxSim ranks the candidates."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np
import torch

from ..page import Page
from ..vectors.norms import l2_normalize
from .base import PageVectors
from .loading import load_checkpoint
from .memory import halve_on_oom
from .prefilters import SingleVectorEncoder, softmax

#: model_type in config.json -> model class in transformers.
DUAL_ENCODERS = {"clip": "CLIPModel", "siglip": "SiglipModel", "siglip2": "Siglip2Model"}


class DualEncoderPrefilter(SingleVectorEncoder):
    """A CLIP/SigLIP checkpoint (hub id or folder): its image tower embeds the page images, its
    text tower the queries."""

    embeds_images = True
    can_label = True

    def __init__(self, model: str, *, device: str = "auto", batch_size: int = 16) -> None:
        import transformers

        self.kind, self.model, path, self.device = load_checkpoint(
            model, DUAL_ENCODERS, f"prefilter models are {', '.join(DUAL_ENCODERS)} (CLIP, SigLIP)", device)
        self.processor = transformers.AutoProcessor.from_pretrained(str(path), local_files_only=True)
        self.batch_size = batch_size
        self.name = f"{self.kind}:{model}"
        self.dim = int(self.embed_queries(["dimension probe"]).shape[1])

    def embed_pages(self, pages: Sequence[Page], encoded: Sequence[PageVectors] = ()) -> np.ndarray:
        out = []
        for start in range(0, len(pages), self.batch_size):
            images = [page.image for page in pages[start:start + self.batch_size]]
            out.extend(halve_on_oom(self._embed_images, images, self._shrink))
        return l2_normalize(np.stack(out))

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        # SigLIP was trained on text padded to its full length; CLIP on text padded to the batch
        padding = "max_length" if self.kind.startswith("siglip") else True
        inputs = self.processor(text=list(texts), padding=padding, truncation=True, return_tensors="pt")
        with torch.inference_mode():
            features = self.model.get_text_features(**inputs.to(self.device))
        return l2_normalize(_pooled(features))

    def _embed_images(self, images: list) -> list[np.ndarray]:
        inputs = self.processor(images=images, return_tensors="pt").to(self.device)
        with torch.inference_mode():
            features = self.model.get_image_features(**inputs)
        return list(_pooled(features))

    def _shrink(self, size: int) -> None:
        self.batch_size = size

    def label_probabilities(self, pages: np.ndarray, labels: np.ndarray) -> np.ndarray:
        """As the model's `logits_per_image`: cosine times exp(logit_scale) (plus SigLIP's
        logit_bias); softmax over the labels for CLIP, trained on one match among many, and
        a sigmoid per label for SigLIP, trained on each pair alone."""
        scale, bias = (float(value.detach()) if (value := getattr(self.model, name, None)) is not None else 0.0
                       for name in ("logit_scale", "logit_bias"))
        logits = np.exp(scale) * (pages.astype(np.float64) @ labels.astype(np.float64).T)
        if self.kind.startswith("siglip"):
            return 1 / (1 + np.exp(-(logits + bias)))
        return softmax(logits)


@runtime_checkable
class _PooledOutput(Protocol):
    """A model output holding the projected embeddings (transformers 5's get_*_features)."""

    pooler_output: torch.Tensor


def _pooled(features: torch.Tensor | _PooledOutput) -> np.ndarray:
    """The projected embeddings, whichever transformers version returns them (tensor or output)."""
    tensor = features.pooler_output if isinstance(features, _PooledOutput) else features
    return tensor.float().cpu().numpy()
