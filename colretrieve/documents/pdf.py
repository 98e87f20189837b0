"""Open a PDF, say clearly why when it cannot be read, and hand out its pages lazily."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pypdfium2 as pdfium

from ..errors import BadDocumentError
from ..page import Box, Page, Word
from .ocr import OCR_DPI, OcrFunction
from .reader import DocumentReader, describe_start
from .render import MAX_PIXELS, fitted_dpi, renderer_for
from .textlayer import picture_boxes, text_layer_words

if TYPE_CHECKING:
    from PIL import Image

#: A text layer with fewer letters and digits than this is treated as absent (a scan, or
#: a scan with a stray page number), and the page goes to OCR instead.
MIN_TEXT_LAYER_CHARS = 20
#: A picture (raster image) over at least this share of a page with a text layer is read by
#: OCR too: raster charts, screenshots and scanned figures hold words the layer lacks.
MIN_PICTURE_SHARE = 0.02
#: At most this many pictures are read per page, the largest: a page tiled with image
#: fragments (a slide's background, a map's tiles) costs a bounded OCR time.
MAX_PICTURES = 6
#: A picture with this many text-layer words over it has been read already: an OCR layer over
#: a scan (ocrmypdf's output), text drawn over an image. Reading it again costs seconds a page.
READ_PICTURE_WORDS = 10


def _check_header(path: Path) -> None:
    """Catch the cheap cases before pdfium, so the reason names what the file really is."""
    size = path.stat().st_size
    if size == 0:
        raise BadDocumentError(path, "empty file")
    with path.open("rb") as fh:
        head = fh.read(1024)
    if b"%PDF-" not in head:
        raise BadDocumentError(path, f"not a PDF (starts with '{describe_start(head)}')")


def _open(path: Path) -> pdfium.PdfDocument:
    _check_header(path)
    try:
        return pdfium.PdfDocument(str(path))
    except pdfium.PdfiumError as exc:
        message = str(exc)
        if "password" in message.lower():
            raise BadDocumentError(path, "password-protected") from exc
        if "(PDFium: Success)" in message:  # pdfium refuses a page tree with no pages without an error code
            raise BadDocumentError(path, "PDF has no pages") from exc
        raise BadDocumentError(path, f"damaged or truncated PDF ({message.rstrip('.')})") from exc


class PdfReader(DocumentReader):
    """One opened PDF; `renderer` is "pdfium" or "pdf2image" (the rest: DocumentReader)."""

    def __init__(self, path: Path, doc_id: str, *, dpi: int, renderer: str = "pdfium",
                 ocr: OcrFunction | None = None, ocr_dpi: int = OCR_DPI) -> None:
        super().__init__(path, doc_id, dpi=dpi, ocr=ocr, ocr_dpi=ocr_dpi)
        self.renderer = renderer
        self._pages_out: dict[int, pdfium.PdfPage] = {}  # pages handed out and not yet released
        self._pdf = _open(path)
        self.page_count = len(self._pdf)
        if self.page_count == 0:
            self.close()
            raise BadDocumentError(path, "PDF has no pages")

    def close(self) -> None:
        for page_no in list(self._pages_out):
            self._release(page_no)
        self._pdf.close()

    def _release(self, page_no: int) -> None:
        raw = self._pages_out.pop(page_no, None)
        if raw is not None:
            raw.close()

    def page(self, page_no: int) -> Page:
        try:
            raw = self._pages_out.get(page_no) or self._pdf[page_no - 1]
            self._pages_out[page_no] = raw
            width, height = raw.get_size()
        except pdfium.PdfiumError as exc:
            raise BadDocumentError(self.path, f"page {page_no} cannot be read ({exc})") from exc
        render = renderer_for(self.renderer, self.path, raw, page_no)
        fitted = fitted_dpi(width, height, self.dpi)
        return Page(
            doc_id=self.doc_id, path=self.path, page_no=page_no, page_count=self.page_count,
            width_pt=width, height_pt=height, dpi=self.dpi,
            render_at=render, _read_words=self._words, _close=lambda: self._release(page_no),
            note=None if fitted == self.dpi else (
                f"page {page_no} is {width:,.0f} x {height:,.0f} pt: rendered at {fitted:.0f} dpi, not "
                f"{self.dpi}, to stay within {MAX_PIXELS // 10**6} megapixels"),
        )

    def _text_or_image(self, page: Page) -> tuple[list[Word], Image.Image | None]:
        words = text_layer_words(self._pages_out[page.page_no])
        if sum(ch.isalnum() for w in words for ch in w.text) >= MIN_TEXT_LAYER_CHARS:
            page.words_source = "text-layer"
            return words, None
        if self._ocr is None:
            page.words_source = "none"
            return words, None
        page.words_source = "ocr"
        return [], page.render_at(self._ocr_dpi)

    def _figures(self, page: Page, words: list[Word]) -> list[tuple[Box, Image.Image]]:
        if self._ocr is None or page.words_source != "text-layer":
            return []
        centres = [w.center for w in words]
        boxes = [box for box in picture_boxes(self._pages_out[page.page_no], MIN_PICTURE_SHARE)
                 if sum(box[0] <= x <= box[2] and box[1] <= y <= box[3] for x, y in centres) < READ_PICTURE_WORDS]
        boxes = boxes[:MAX_PICTURES]
        if not boxes:
            return []
        image = page.render_at(self._ocr_dpi)
        width, height = image.size
        return [(box, image.crop((round(box[0] * width), round(box[1] * height),
                                  round(box[2] * width), round(box[3] * height)))) for box in boxes]
