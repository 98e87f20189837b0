"""Page rasterisers. pypdfium2 is the default (no system dependency, thread-safe per
document, fast); pdf2image drives poppler's pdftoppm for users who want poppler's output."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import ColretrieveError

if TYPE_CHECKING:
    import pypdfium2
    from PIL import Image

RENDERERS = ("pdfium", "pdf2image")
#: Render resolutions an index may be made with: below, words are unreadable; above, no encoder gains.
MIN_DPI, MAX_DPI = 36, 600
#: Most pixels a page is rendered with (about A0 at 150 dpi). A page's size is the file's word,
#: not a fact: a 14400 pt page at 144 dpi would take gigabytes, so the dpi comes down to fit.
MAX_PIXELS = 40_000_000


def fit_scale(width: float, height: float, max_pixels: int = MAX_PIXELS) -> float:
    """The factor (at most 1) that brings a `width` x `height` image within `max_pixels`."""
    return min(1.0, math.sqrt(max_pixels / (max(width, 1.0) * max(height, 1.0))))


def fitted_size(width: int, height: int, max_pixels: int = MAX_PIXELS) -> tuple[int, int]:
    """A `width` x `height` image's size brought within `max_pixels`, proportions kept."""
    scale = fit_scale(width, height, max_pixels)
    return max(int(width * scale), 1), max(int(height * scale), 1)


def fitted_dpi(width_pt: float, height_pt: float, dpi: float, max_pixels: int = MAX_PIXELS) -> float:
    """`dpi`, lowered as far as a `width_pt` x `height_pt` page needs to stay within `max_pixels`.

    >>> fitted_dpi(612, 792, 144)
    144
    >>> round(fitted_dpi(14400, 14400, 144), 1)
    31.6
    """
    scale = fit_scale(width_pt * dpi / 72, height_pt * dpi / 72, max_pixels)
    return dpi if scale == 1.0 else dpi * scale


def render_pdfium(page: pypdfium2.PdfPage, dpi: float) -> Image.Image:
    width, height = page.get_size()
    return page.render(scale=fitted_dpi(width, height, dpi) / 72).to_pil().convert("RGB")


def render_pdf2image(path: Path, page_no: int, dpi: float, size_pt: tuple[float, float]) -> Image.Image:
    try:
        from pdf2image import convert_from_path
        from pdf2image.exceptions import PDFInfoNotInstalledError
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ColretrieveError("renderer pdf2image needs: pip install pdf2image") from exc
    try:
        # The size in pixels, not only a dpi: poppler scales by /UserUnit, which pdfium ignores.
        scale = fitted_dpi(*size_pt, dpi) / 72
        # pdf2image annotates dpi as int, but hands it to pdftoppm -r as text: a fitted dpi is fractional
        images = convert_from_path(str(path), dpi=scale * 72, first_page=page_no, last_page=page_no,  # type: ignore[arg-type]
                                   size=(max(round(size_pt[0] * scale), 1), max(round(size_pt[1] * scale), 1)))
    except PDFInfoNotInstalledError as exc:
        raise ColretrieveError(
            "renderer pdf2image needs poppler: apt-get install poppler-utils"
        ) from exc
    return images[0].convert("RGB")


def renderer_for(name: str, path: Path, page: pypdfium2.PdfPage, page_no: int) -> Callable[[int], Image.Image]:
    """A function dpi -> image for one page, so pages render only when an encoder asks; every
    image stays within MAX_PIXELS."""
    if name == "pdfium":
        return lambda dpi: render_pdfium(page, dpi)
    if name == "pdf2image":
        size = page.get_size()
        return lambda dpi: render_pdf2image(path, page_no, dpi, size)
    raise ColretrieveError(f"unknown renderer {name!r}: expected one of {', '.join(RENDERERS)}")
