"""What every encoder promises, and the parts they share: bounded batches, normalisation.

Subclasses write one step (`_encode_page_batch`, `_encode_query_batch`); the base class owns
batching and the checks, so every encoder hands the index the same shapes.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..page import Page
from ..vectors.norms import l2_normalize


@dataclass
class PageVectors:
    """A page's multi-vectors and where on the page each one sits.

    Attributes
    ----------
    vectors
        (n_vectors, dim) float32, rows L2-normalised (an empty page has one zero row).
    cells
        (n_vectors,) int32: row * grid_cols + col of each vector's patch, for similarity maps;
        -1 for a vector that belongs to no patch (a VLM's prompt tokens).
    summary
        (dim_single,) float32 normalised single vector, when the encoder has its own
        (the text default's pooled sentence embedding); None otherwise.
    grid
        (rows, cols) the cells refer to, when it varies by page (ColQwen2 keeps the page's
        aspect ratio); None means the encoder's fixed `grid`.
    """

    vectors: np.ndarray
    cells: np.ndarray
    summary: np.ndarray | None = None
    grid: tuple[int, int] | None = None


def _batches(items: Sequence, size: int):
    for start in range(0, len(items), size):
        yield items[start : start + size]


class MultiVectorEncoder(ABC):
    """Pages to patch multi-vectors, queries to token vectors, in one shared space.

    Attributes
    ----------
    name
        Identifies the model and its settings; saved with an index so a mismatch is caught.
    dim
        Width of every vector.
    grid
        (rows, cols) of the patch grid the vectors' cells refer to.
    batch_size
        Pages per forward step: the bound that keeps memory flat however large the corpus.
    """

    name: str
    dim: int
    grid: tuple[int, int]
    batch_size: int = 8
    #: Width of `PageVectors.summary` when the encoder has its own single vector, else None.
    summary_dim: int | None = None
    #: True when the encoder implements `query_terms` and `page_terms` (a text vocabulary),
    #: which enables IDF-weighted hybrid scoring.
    has_vocabulary: bool = False
    #: The scale its single vectors' cosine was trained at, where it has them (softmax over
    #: scale * cosine is its probability of a match: zero-shot labels), else None.
    similarity_scale: float | None = None
    #: False where pages are read as words only (the text default): an image query is then
    #: searched by its words.
    reads_images: bool = True
    #: The name `load_encoder` loaded it by ("text", a hub id or folder); None if made directly.
    source: str | None = None

    def encode_pages(self, pages: Sequence[Page]) -> list[PageVectors]:
        out: list[PageVectors] = []
        for batch in _batches(pages, self.batch_size):
            for item in self._encode_page_batch(batch):
                self._check(item.vectors)
                item.vectors = l2_normalize(item.vectors)
                if item.summary is not None:
                    item.summary = l2_normalize(item.summary)
                out.append(item)
        return out

    def prepare_pages(self) -> None:
        """Load now what encoding pages needs beyond what queries need (nothing, unless the two
        sides run apart): a service does it before its first ingest job, so the job does not
        import a model library while searches hold the interpreter."""
        return None

    def encode_queries(self, texts: Sequence[str]) -> list[np.ndarray]:
        """One (n_tokens, dim) float32 array per query, rows normalised."""
        out: list[np.ndarray] = []
        for batch in _batches(texts, max(self.batch_size, 32)):
            for vectors in self._encode_query_batch(batch):
                self._check(vectors)
                out.append(l2_normalize(vectors))
        return out

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        """(n, summary_dim) single vectors for the prefilter; only for encoders with a summary."""
        raise NotImplementedError(f"encoder {self.name} has no single vector of its own")

    def encode_queries_with_summary(self, texts: Sequence[str]) -> tuple[list[np.ndarray], np.ndarray]:
        """Token vectors and single vectors together; encoders that get both from one forward
        pass override this so a query costs one pass, not two."""
        return self.encode_queries(texts), self.embed_queries(texts)

    def query_terms(self, texts: Sequence[str]) -> list[list[int]]:
        """Vocabulary id per query token vector (encoders with `has_vocabulary`)."""
        raise NotImplementedError(f"encoder {self.name} has no text vocabulary")

    def page_terms(self, text: str) -> list[int]:
        raise NotImplementedError(f"encoder {self.name} has no text vocabulary")

    def _check(self, vectors: np.ndarray) -> None:
        if vectors.ndim != 2 or vectors.shape[1] != self.dim or len(vectors) == 0:
            raise ValueError(f"encoder {self.name}: expected (n>0, {self.dim}) vectors, got {vectors.shape}")

    @abstractmethod
    def _encode_page_batch(self, pages: Sequence[Page]) -> list[PageVectors]: ...

    @abstractmethod
    def _encode_query_batch(self, texts: Sequence[str]) -> list[np.ndarray]: ...
