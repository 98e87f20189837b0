"""The unit every encoder consumes: one document page, rendered and read lazily."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from PIL import Image


@dataclass(frozen=True)
class Word:
    """A word with its box, normalised to [0, 1] of the page (origin top-left, as the image).

    Normalised boxes make grid placement independent of dpi and renderer.
    """

    text: str
    x0: float
    y0: float
    x1: float
    y1: float

    @property
    def center(self) -> tuple[float, float]:
        return (self.x0 + self.x1) / 2, (self.y0 + self.y1) / 2


#: (x0, y0, x1, y1) normalised to the page image (origin top-left), as a Word's box is.
Box = tuple[float, float, float, float]


def uncovered(words: Sequence[Word], others: Sequence[Word]) -> list[Word]:
    """The words of `others` whose centre lies in no word of `words`: what a second reading of
    the same place adds to the first (OCR over a text layer, a second OCR pass)."""
    return [o for o, (x, y) in ((o, o.center) for o in others)
            if not any(w.x0 <= x <= w.x1 and w.y0 <= y <= w.y1 for w in words)]


def word_cells(words: Sequence[Word], grid: tuple[int, int]) -> np.ndarray:
    """The (rows, cols) grid cell under each word's centre, row-major: where a word's vectors
    are placed, and which words a region of cells holds."""
    rows, cols = grid
    centers = np.array([w.center for w in words], dtype=np.float32).reshape(-1, 2)  # x, y
    return (np.minimum((centers[:, 1] * rows).astype(np.int32), rows - 1) * cols
            + np.minimum((centers[:, 0] * cols).astype(np.int32), cols - 1))


@dataclass
class Page:
    """One page of one document; `image` and `words` are produced on first use and cached.

    Rendering is the expensive part of ingest, so it happens only when an encoder asks.
    """

    doc_id: str
    path: Path
    page_no: int  # 1-based, as users and the benchmark's corpus ids count pages
    page_count: int
    width_pt: float
    height_pt: float
    dpi: int
    render_at: Callable[[int], Image.Image] = field(repr=False)  # any dpi, e.g. OCR's own
    _read_words: Callable[[Page], list[Word]] = field(repr=False)
    _close: Callable[[], object] = field(default=lambda: None, repr=False)  # what it returns is ignored
    _image: Image.Image | None = field(default=None, repr=False)
    _words: list[Word] | None = field(default=None, repr=False)
    words_source: str = "none"  # "text-layer", "ocr" or "none": set when words are read
    note: str | None = None  # what the user should know of this page (e.g. rendered at a lower dpi)

    @property
    def image(self) -> Image.Image:
        if self._image is None:
            self._image = self.render_at(self.dpi)
        return self._image

    @property
    def words(self) -> list[Word]:
        if self._words is None:
            self._words = self._read_words(self)
        return self._words

    @property
    def text(self) -> str:
        """The page's words in reading order, one space between words."""
        return " ".join(w.text for w in self.words)

    def release(self) -> None:
        """Free the image and the PDF page once encoded: memory stays flat over long documents."""
        self._image = None
        self._close()
