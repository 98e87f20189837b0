"""Keeping encoders inside accelerator memory: a batch that does not fit is split, not fatal."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import torch

from ..page import Page
from .base import MultiVectorEncoder, PageVectors

T = TypeVar("T")
R = TypeVar("R")


def halve_on_oom(step: Callable[[list[T]], list[R]], items: Sequence[T],
                 shrink: Callable[[int], None] = lambda size: None) -> list[R]:
    """`step(items)`, or, when the device runs out of memory, `step` on each half in turn.

    `shrink` hears the new size, so the caller's later batches start small instead of
    failing again. A single item that does not fit is the error it was.
    """
    try:
        return step(list(items))
    except torch.OutOfMemoryError:
        if len(items) == 1:
            raise
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        half = len(items) // 2
        shrink(half)
        return halve_on_oom(step, items[:half], shrink) + halve_on_oom(step, items[half:], shrink)


class ImagePageEncoder(MultiVectorEncoder):
    """An encoder of page images whose batches halve on an out-of-memory error, for the rest of
    the run (the transformers and sentence-transformers paths alike)."""

    def _encode_page_batch(self, pages: Sequence[Page]) -> list[PageVectors]:
        def shrink(size: int) -> None:
            self.batch_size = size

        return halve_on_oom(self._encode_images, [page.image for page in pages], shrink)

    @abstractmethod
    def _encode_images(self, images: list[Any]) -> list[PageVectors]: ...
