"""Open a PDF, say clearly why when it cannot be read, and hand out its pages lazily."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import pypdfium2 as pdfium

from ..errors import BadDocumentError, ColretrieveError
from .page import Page, Word
from .render import renderer_for
from .textlayer import text_layer_words

if TYPE_CHECKING:
    from PIL import Image

#: A text layer with fewer letters and digits than this is treated as absent (a scan, or
#: a scan with a stray page number), and the page goes to OCR instead.
MIN_TEXT_LAYER_CHARS = 20

#: Reads words from a rendered page image; raises ColretrieveError if it cannot run at all.
OcrFunction = Callable[["Image.Image"], list[Word]]


def _check_header(path: Path) -> None:
    """Catch the cheap cases before pdfium, so the reason names what the file really is."""
    size = path.stat().st_size
    if size == 0:
        raise BadDocumentError(path, "empty file")
    with path.open("rb") as fh:
        head = fh.read(1024)
    if b"%PDF-" not in head:
        shown = head[:16].decode("latin-1").encode("unicode_escape").decode("ascii")
        raise BadDocumentError(path, f"not a PDF (starts with '{shown}')")


def _open(path: Path) -> pdfium.PdfDocument:
    _check_header(path)
    try:
        return pdfium.PdfDocument(str(path))
    except pdfium.PdfiumError as exc:
        message = str(exc)
        if "password" in message.lower():
            raise BadDocumentError(path, "password-protected") from exc
        raise BadDocumentError(path, f"damaged or truncated PDF ({message.rstrip('.')})") from exc


class PdfReader:
    """One opened PDF. Pages are produced one at a time and hold no image until asked.

    Parameters
    ----------
    path, doc_id
        The file and its content hash.
    dpi
        Resolution of `Page.image`.
    renderer
        "pdfium" or "pdf2image".
    ocr, ocr_dpi
        Reads words from a page image rendered at `ocr_dpi` when the page has no usable text
        layer; None leaves such pages wordless.
    """

    def __init__(self, path: Path, doc_id: str, *, dpi: int, renderer: str = "pdfium",
                 ocr: OcrFunction | None = None, ocr_dpi: int = 200) -> None:
        self.path = path
        self.doc_id = doc_id
        self.dpi = dpi
        self.renderer = renderer
        self._ocr = ocr
        self._ocr_dpi = ocr_dpi
        self._pages_out: dict[int, pdfium.PdfPage] = {}  # pages handed out and not yet released
        self._pdf = _open(path)
        self.page_count = len(self._pdf)
        if self.page_count == 0:
            self.close()
            raise BadDocumentError(path, "PDF has no pages")

    def __enter__(self) -> "PdfReader":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        for page_no in list(self._pages_out):
            self._release(page_no)
        self._pdf.close()

    def _release(self, page_no: int) -> None:
        raw = self._pages_out.pop(page_no, None)
        if raw is not None:
            raw.close()

    def page(self, page_no: int) -> Page:
        """Page `page_no` (1-based); a page pdfium cannot load is a BadDocumentError."""
        try:
            raw = self._pages_out.get(page_no) or self._pdf[page_no - 1]
            self._pages_out[page_no] = raw
            width, height = raw.get_size()
        except pdfium.PdfiumError as exc:
            raise BadDocumentError(self.path, f"page {page_no} cannot be read ({exc})") from exc
        render = renderer_for(self.renderer, self.path, raw, page_no)
        return Page(
            doc_id=self.doc_id, path=self.path, page_no=page_no, page_count=self.page_count,
            width_pt=width, height_pt=height, dpi=self.dpi,
            render_at=render, _read_words=self._words, _close=lambda: self._release(page_no),
        )

    def pages(self, skip: set[int] = frozenset()) -> Iterator[Page]:  # type: ignore[assignment]
        """Pages in order, leaving out the page numbers in `skip` (already stored)."""
        for page_no in range(1, self.page_count + 1):
            if page_no not in skip:
                yield self.page(page_no)

    def read_words(self, pages: Sequence[Page], pool: ThreadPoolExecutor) -> None:
        """Read the words of `pages` now, OCR running in `pool`'s threads.

        pdfium is not thread-safe, so text layers and OCR images are read here, in turn; the
        OCR engines (a Tesseract process, onnxruntime) then run side by side, one core each.
        """
        pending = []
        for page in pages:
            if page._words is None:
                words, image = self._text_or_image(page)
                if image is None:
                    page._words = words
                else:
                    pending.append((page, pool.submit(self._recognize, page, image)))
        for page, future in pending:
            page._words = future.result()

    def _words(self, page: Page) -> list[Word]:
        words, image = self._text_or_image(page)
        return words if image is None else self._recognize(page, image)

    def _text_or_image(self, page: Page) -> tuple[list[Word], "Image.Image | None"]:
        """The text layer's words if usable, else the image OCR must read (None without OCR)."""
        words = text_layer_words(self._pages_out[page.page_no])
        if sum(ch.isalnum() for w in words for ch in w.text) >= MIN_TEXT_LAYER_CHARS:
            page.words_source = "text-layer"
            return words, None
        if self._ocr is None:
            page.words_source = "none"
            return words, None
        page.words_source = "ocr"
        return [], page.render_at(self._ocr_dpi)

    def _recognize(self, page: Page, image: "Image.Image") -> list[Word]:
        try:
            return self._ocr(image)  # type: ignore[misc]
        except ColretrieveError as exc:
            raise BadDocumentError(self.path, f"page {page.page_no} has no text layer and {exc}") from exc
