"""What every document reader shares: pages handed out lazily, words read with OCR side by side."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Iterator, Sequence
from collections.abc import Set as AbstractSet
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import BadDocumentError, ColretrieveError
from ..page import Box, Page, Word, uncovered
from .ocr import OCR_DPI, OcrFunction

if TYPE_CHECKING:
    from PIL import Image


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
        words, crops = _crops(self, page)
        return _merged(words, [(box, self._recognize(page, crop, box, picture)) for box, crop, picture in crops])

    def _figures(self, page: Page, words: list[Word]) -> list[tuple[Box, Image.Image]]:
        """Pictures on a page with a text layer (`words`) whose words that layer lacks (a raster
        chart, a screenshot), each with its box on the page, cut from a render at OCR resolution;
        none by default, or without OCR. Called from one thread at a time."""
        return []

    def _recognize(self, page: Page, image: Image.Image, box: Box, picture: bool) -> list[Word]:
        """Words OCR reads in `image`, the part `box` of `page`: the page, or a `picture` on it."""
        assert self._ocr is not None, "pages get images to read only where OCR is set"
        try:
            return self._ocr(image, scattered=picture)
        except ColretrieveError as exc:
            what = "holds a picture to read" if picture else "has no text layer"
            raise BadDocumentError(self.path, f"page {page.page_no} {what} and {exc}") from exc


WHOLE_PAGE: Box = (0.0, 0.0, 1.0, 1.0)


def _crops(reader: DocumentReader, page: Page) -> tuple[list[Word], list[tuple[Box, Image.Image, bool]]]:
    """The page's own words, and what OCR must read: (box, image, whether it is a picture on the
    page rather than the page itself)."""
    words, image = reader._text_or_image(page)
    if image is not None:
        return words, [(WHOLE_PAGE, image, False)]
    return words, [(box, crop, True) for box, crop in reader._figures(page, words)]


def _merged(words: list[Word], reads: Sequence[tuple[Box, list[Word]]]) -> list[Word]:
    """`words`, then each read's words placed from its box onto the page, leaving out those
    whose centre lies in a word `words` has already (text drawn over a picture)."""
    out = list(words)
    for (x0, y0, x1, y1), read in reads:
        w, h = x1 - x0, y1 - y0
        out += uncovered(words, [Word(word.text, x0 + word.x0 * w, y0 + word.y0 * h, x0 + word.x1 * w,
                                      y0 + word.y1 * h) for word in read])
    return out


def read_words(pages: Sequence[tuple[DocumentReader, Page]], pool: ThreadPoolExecutor) -> None:
    """Read the words of `pages` (each with its reader) now, OCR running in `pool`'s threads.

    Files are read here, in turn (pdfium is not thread-safe); the OCR engines (a Tesseract
    process, onnxruntime) then run side by side, one core each, whichever documents the
    pages come from: a scanned page whole, the pictures of a page with a text layer.
    """
    pending: deque[tuple[Page, list[Word], list[tuple[Box, Future[list[Word]]]]]] = deque()

    def finish(page: Page, words: list[Word], reads: list[tuple[Box, Future[list[Word]]]]) -> None:
        page._words = _merged(words, [(box, future.result()) for box, future in reads])

    for reader, page in pages:
        if page._words is None:
            words, crops = _crops(reader, page)
            if not crops:
                page._words = words
                continue
            if len(pending) >= pool._max_workers:  # a rendered scan is ~10 MB: keep only the busy ones
                finish(*pending.popleft())
            pending.append((page, words, [(box, pool.submit(reader._recognize, page, crop, box, picture))
                                          for box, crop, picture in crops]))
    for item in pending:
        finish(*item)


def describe_start(head: bytes) -> str:
    """The first bytes of a file as printable text, for 'not a PDF (starts with …)' reasons."""
    return head[:16].decode("latin-1").encode("unicode_escape").decode("ascii")
