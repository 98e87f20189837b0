"""What every document reader shares: pages handed out lazily, words read with OCR side by side."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from collections.abc import Set as AbstractSet
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import BadDocumentError, ColretrieveError
from ..page import Page, Word
from .ocr import OCR_DPI

if TYPE_CHECKING:
    from PIL import Image

#: Reads words from a rendered page image; raises ColretrieveError if it cannot run at all.
OcrFunction = Callable[["Image.Image"], list[Word]]


class DocumentReader(ABC):
    """One opened document (a PDF, an image file). Pages hold no image until asked.

    Parameters
    ----------
    path, doc_id
        The file and its content hash.
    dpi
        Resolution of `Page.image`.
    ocr, ocr_dpi
        Reads words from a page image rendered at `ocr_dpi` when the page has no usable text
        layer; None leaves such pages wordless.
    """

    def __init__(self, path: Path, doc_id: str, *, dpi: int, ocr: OcrFunction | None = None,
                 ocr_dpi: int = OCR_DPI) -> None:
        self.path = path
        self.doc_id = doc_id
        self.dpi = dpi
        self._ocr = ocr
        self._ocr_dpi = ocr_dpi
        self.page_count = 0

    def __enter__(self) -> DocumentReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @abstractmethod
    def close(self) -> None:
        """Release the file and every page handed out."""

    @abstractmethod
    def page(self, page_no: int) -> Page:
        """Page `page_no` (1-based); a page that cannot be loaded is a BadDocumentError."""

    @abstractmethod
    def _text_or_image(self, page: Page) -> tuple[list[Word], Image.Image | None]:
        """The page's own words if usable, else the image OCR must read (None without OCR).

        Sets `page.words_source`. Called from one thread at a time.
        """

    def pages(self, skip: AbstractSet[int] = frozenset()) -> Iterator[Page]:
        """Pages in order, leaving out the page numbers in `skip` (already stored)."""
        for page_no in range(1, self.page_count + 1):
            if page_no not in skip:
                yield self.page(page_no)

    def _words(self, page: Page) -> list[Word]:
        words, image = self._text_or_image(page)
        return words if image is None else self._recognize(page, image)

    def _recognize(self, page: Page, image: Image.Image) -> list[Word]:
        assert self._ocr is not None, "_text_or_image hands out an image to read only where OCR is set"
        try:
            return self._ocr(image)
        except ColretrieveError as exc:
            raise BadDocumentError(self.path, f"page {page.page_no} has no text layer and {exc}") from exc


def read_words(pages: Sequence[tuple[DocumentReader, Page]], pool: ThreadPoolExecutor) -> None:
    """Read the words of `pages` (each with its reader) now, OCR running in `pool`'s threads.

    Files are read here, in turn (pdfium is not thread-safe); the OCR engines (a Tesseract
    process, onnxruntime) then run side by side, one core each, whichever documents the
    pages come from.
    """
    pending: deque[tuple[Page, Future[list[Word]]]] = deque()
    for reader, page in pages:
        if page._words is None:
            words, image = reader._text_or_image(page)
            if image is None:
                page._words = words
                continue
            if len(pending) >= pool._max_workers:  # a rendered scan is ~10 MB: keep only the busy ones
                done, future = pending.popleft()
                done._words = future.result()
            pending.append((page, pool.submit(reader._recognize, page, image)))
    for page, future in pending:
        page._words = future.result()


def describe_start(head: bytes) -> str:
    """The first bytes of a file as printable text, for 'not a PDF (starts with …)' reasons."""
    return head[:16].decode("latin-1").encode("unicode_escape").decode("ascii")
