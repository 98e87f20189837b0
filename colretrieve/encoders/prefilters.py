"""The single-vector prefilter (SingleVectorEncoder): one vector per page and per query, which
the store compares to pick the candidates that MaxSim then ranks.

Three kinds: "native" (the multi-vector encoder's own single vector, from the same forward
pass), "pooled" (the normalised mean of the page's or query's multi-vectors: any encoder has
it) and a CLIP/SigLIP dual encoder (clip.py), which reads the page image itself.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

import numpy as np

from ..errors import ColretrieveError
from ..page import Page
from ..vectors.norms import mean_vector
from .base import MultiVectorEncoder, PageVectors

#: Prefilters that need no model of their own. Any other name is a CLIP/SigLIP hub id or folder.
BUILTIN_PREFILTERS = ("native", "pooled")


class SingleVectorEncoder(ABC):
    """Pages and queries to (n, dim) L2-normalised float32 vectors in one space.

    `name` is saved with an index (`prefilter_id`), so a prefilter that now loads as another
    model is caught instead of comparing vectors of two spaces.
    """

    name: str
    dim: int
    #: True where pages are embedded from their images (CLIP, SigLIP), not from their multi-vectors.
    embeds_images: bool = False

    @property
    def can_label(self) -> bool:
        """Whether `label_probabilities` answers: the model was trained to match pages with text."""
        return False

    @abstractmethod
    def embed_pages(self, pages: Sequence[Page], encoded: Sequence[PageVectors]) -> np.ndarray:
        """One vector per page; `encoded` holds the pages' multi-vectors, already computed."""

    @abstractmethod
    def embed_queries(self, texts: Sequence[str]) -> np.ndarray: ...

    def encode_queries(self, encoder: MultiVectorEncoder, texts: Sequence[str]) -> tuple[list[np.ndarray], np.ndarray]:
        """`encoder`'s token vectors and this prefilter's single vectors of `texts`; kinds that
        derive one from the other share the forward pass."""
        return encoder.encode_queries(texts), self.embed_queries(texts)

    def label_probabilities(self, pages: np.ndarray, labels: np.ndarray) -> np.ndarray:
        """(pages, labels) probability of each label for each page single vector, as the model
        was trained to compare them (labels.py); `labels` are embedded label prompts."""
        raise ColretrieveError(f"prefilter {self.name} was not trained to match pages with text: zero-shot labels "
                               "need a CLIP/SigLIP prefilter or the text default")


class NativePrefilter(SingleVectorEncoder):
    """The encoder's own single vector (the text default's pooled sentence embedding)."""

    name = "native"

    def __init__(self, encoder: MultiVectorEncoder) -> None:
        if encoder.summary_dim is None:
            raise ColretrieveError(f"encoder {encoder.name} has no single vector of its own; "
                                   "use prefilter 'pooled' or a CLIP/SigLIP model")
        self.encoder = encoder
        self.dim = encoder.summary_dim

    def embed_pages(self, pages: Sequence[Page], encoded: Sequence[PageVectors]) -> np.ndarray:
        return np.stack([_summary(item, self.encoder.name) for item in encoded])

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self.encoder.embed_queries(texts)

    def encode_queries(self, encoder: MultiVectorEncoder, texts: Sequence[str]) -> tuple[list[np.ndarray], np.ndarray]:
        return encoder.encode_queries_with_summary(texts)

    @property
    def can_label(self) -> bool:
        return self.encoder.similarity_scale is not None

    def label_probabilities(self, pages: np.ndarray, labels: np.ndarray) -> np.ndarray:
        scale = self.encoder.similarity_scale
        if scale is None:
            return super().label_probabilities(pages, labels)
        return softmax(scale * (pages @ labels.T))


class PooledPrefilter(SingleVectorEncoder):
    """The normalised mean of the multi-vectors: a prefilter for any encoder."""

    name = "pooled"

    def __init__(self, encoder: MultiVectorEncoder) -> None:
        self.encoder = encoder
        self.dim = encoder.dim

    def embed_pages(self, pages: Sequence[Page], encoded: Sequence[PageVectors]) -> np.ndarray:
        return np.stack([mean_vector(item.vectors) for item in encoded])

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self.encode_queries(self.encoder, texts)[1]

    def encode_queries(self, encoder: MultiVectorEncoder, texts: Sequence[str]) -> tuple[list[np.ndarray], np.ndarray]:
        tokens = encoder.encode_queries(texts)
        return tokens, np.stack([mean_vector(t) for t in tokens])


def softmax(logits: np.ndarray) -> np.ndarray:
    """Over the last axis, in float64 (probabilities to 1e-5 of the model's own)."""
    shifted = np.exp(logits.astype(np.float64) - logits.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


def _summary(item: PageVectors, encoder: str) -> np.ndarray:
    if item.summary is None:
        raise ColretrieveError(f"encoder {encoder} gave a page no single vector")
    return item.summary
