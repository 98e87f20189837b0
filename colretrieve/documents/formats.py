"""Pick the reader for a file: image extensions open as images, everything else as a PDF."""

from __future__ import annotations

from pathlib import Path

from .image import IMAGE_SUFFIXES, ImageReader
from .ocr import OCR_DPI, OcrFunction
from .pdf import PdfReader
from .reader import DocumentReader


def is_image(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES


def open_document(path: Path, doc_id: str, *, dpi: int, renderer: str = "pdfium",
                  ocr: OcrFunction | None = None, ocr_dpi: int = OCR_DPI) -> DocumentReader:
    """The file's reader; anything not named as an image is read as a PDF, so a stray file
    gets the PDF reader's precise reason ("not a PDF (starts with …)")."""
    if is_image(path):
        return ImageReader(path, doc_id, dpi=dpi, ocr=ocr, ocr_dpi=ocr_dpi)
    return PdfReader(path, doc_id, dpi=dpi, renderer=renderer, ocr=ocr, ocr_dpi=ocr_dpi)
