"""Page rasterisers. pypdfium2 is the default (no system dependency, thread-safe per
document, fast); pdf2image drives poppler's pdftoppm for users who want poppler's output."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Callable

from ..errors import ColretrieveError

if TYPE_CHECKING:
    import pypdfium2
    from PIL import Image

RENDERERS = ("pdfium", "pdf2image")


def render_pdfium(page: "pypdfium2.PdfPage", dpi: int) -> "Image.Image":
    return page.render(scale=dpi / 72).to_pil().convert("RGB")


def render_pdf2image(path: Path, page_no: int, dpi: int) -> "Image.Image":
    try:
        from pdf2image import convert_from_path
        from pdf2image.exceptions import PDFInfoNotInstalledError
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ColretrieveError("renderer pdf2image needs: pip install pdf2image") from exc
    try:
        images = convert_from_path(str(path), dpi=dpi, first_page=page_no, last_page=page_no)
    except PDFInfoNotInstalledError as exc:
        raise ColretrieveError(
            "renderer pdf2image needs poppler: apt-get install poppler-utils"
        ) from exc
    return images[0].convert("RGB")


def renderer_for(name: str, path: Path, page: "pypdfium2.PdfPage", page_no: int) -> Callable[[int], "Image.Image"]:
    """A function dpi -> image for one page, so pages render only when an encoder asks."""
    if name == "pdfium":
        return lambda dpi: render_pdfium(page, dpi)
    if name == "pdf2image":
        return lambda dpi: render_pdf2image(path, page_no, dpi)
    raise ColretrieveError(f"unknown renderer {name!r}: expected one of {', '.join(RENDERERS)}")
