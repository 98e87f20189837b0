"""Keeping encoders inside accelerator memory: a batch that does not fit is split, not fatal."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

import torch

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
