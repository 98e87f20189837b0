"""Image files as documents: a scan, a screenshot, a page photo is one page (a multi-page
TIFF, one page per frame). They have no text layer, so their words come from OCR."""

from __future__ import annotations

import warnings
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError

from ..errors import BadDocumentError
from ..page import Page, Word
from .ocr import OCR_DPI, OcrFunction
from .reader import DocumentReader, describe_start
from .render import MAX_PIXELS, fitted_size

#: Extensions taken as images when a folder is searched with images on.
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp", ".bmp", ".gif"})

#: Assumed when the file records no resolution; it only sets the page size in points.
_DEFAULT_IMAGE_DPI = 72
#: Most pixels an image file may decode to before it is reduced to MAX_PIXELS (JPEGs are reduced
#: while they decode, so any size of JPEG will do); larger ones are refused.
MAX_DECODED_PIXELS = 100_000_000


def _flatten(frame: Image.Image) -> Image.Image:
    """RGB, upright as the camera meant it, transparency over white (as a page would show)."""
    frame = ImageOps.exif_transpose(frame)
    if frame.mode in ("RGBA", "LA", "PA") or "transparency" in frame.info:
        rgba = frame.convert("RGBA")
        canvas = Image.new("RGB", rgba.size, "white")
        canvas.paste(rgba, mask=rgba.getchannel("A"))
        return canvas
    return frame.convert("RGB")


class ImageReader(DocumentReader):
    """One opened image file.

    An image is used at its own resolution whatever dpi is asked for: resampling adds no
    detail for the encoders or for OCR, so `render_at` hands back the pixels as stored.
    """

    def __init__(self, path: Path, doc_id: str, *, dpi: int, ocr: OcrFunction | None = None,
                 ocr_dpi: int = OCR_DPI) -> None:
        super().__init__(path, doc_id, dpi=dpi, ocr=ocr, ocr_dpi=ocr_dpi)
        if path.stat().st_size == 0:
            raise BadDocumentError(path, "empty file")
        try:
            with warnings.catch_warnings():  # the size is judged below, against our own limits
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                self._image = Image.open(path)
        except UnidentifiedImageError as exc:
            with path.open("rb") as fh:
                head = fh.read(16)
            raise BadDocumentError(path, f"not an image (starts with '{describe_start(head)}')") from exc
        except Image.DecompressionBombError as exc:
            raise BadDocumentError(path, f"image too large to read ({exc.args[0].split(' pixels')[0]} pixels)") from exc
        width, height = self._image.size
        if width * height > MAX_DECODED_PIXELS and self._image.format != "JPEG":
            self._image.close()
            raise BadDocumentError(path, f"image too large to read ({width} x {height} pixels; the limit is "
                                         f"{MAX_DECODED_PIXELS // 10**6} megapixels)")
        self.page_count = getattr(self._image, "n_frames", 1)
        self._frames: dict[int, Image.Image] = {}  # decoded pages handed out and not yet released

    def close(self) -> None:
        self._frames.clear()
        self._image.close()

    def page(self, page_no: int) -> Page:
        if not 1 <= page_no <= self.page_count:
            raise BadDocumentError(self.path, f"page {page_no} cannot be read (the image has {self.page_count})")
        self._image.seek(page_no - 1)
        width, height = self._image.size
        xdpi, ydpi = (float(v) for v in self._image.info.get("dpi", (_DEFAULT_IMAGE_DPI,) * 2))
        return Page(
            doc_id=self.doc_id, path=self.path, page_no=page_no, page_count=self.page_count,
            width_pt=width * 72 / (xdpi if xdpi > 1 else _DEFAULT_IMAGE_DPI),
            height_pt=height * 72 / (ydpi if ydpi > 1 else _DEFAULT_IMAGE_DPI), dpi=self.dpi,
            render_at=lambda _dpi: self._frame(page_no), _read_words=self._words,
            _close=lambda: self._frames.pop(page_no, None),
            note=None if width * height <= MAX_PIXELS else (
                f"{width} x {height} pixels: read reduced to {MAX_PIXELS // 10**6} megapixels"),
        )

    def _frame(self, page_no: int) -> Image.Image:
        if page_no not in self._frames:
            try:
                self._image.seek(page_no - 1)
                fitted = fitted_size(*self._image.size)
                self._image.draft("RGB", fitted)  # a JPEG decodes at 1/2, 1/4 or 1/8 of its size at once
                frame = _flatten(self._image)
                if frame.width * frame.height > MAX_PIXELS:
                    frame.thumbnail(fitted)
                self._frames[page_no] = frame
            except (OSError, ValueError, Image.DecompressionBombError) as exc:
                raise BadDocumentError(self.path, f"damaged image ({exc})") from exc
        return self._frames[page_no]

    def _text_or_image(self, page: Page) -> tuple[list[Word], Image.Image | None]:
        if self._ocr is None:
            page.words_source = "none"
            return [], None
        page.words_source = "ocr"
        return [], page.render_at(self._ocr_dpi)
