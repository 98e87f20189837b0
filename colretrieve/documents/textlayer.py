"""Words with boxes from a PDF's text layer, in the coordinates of the rendered image."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import pypdfium2.raw as pdfium_c

from ..page import Box, Word

if TYPE_CHECKING:
    import pypdfium2


def _to_image_space(u: float, v: float, rotation: int) -> tuple[float, float]:
    """Map a point of the unrotated page to the rendered (rotated) image, both in [0, 1].

    pdfium reports character boxes in unrotated page space, but renders /Rotate applied.
    """
    if rotation == 90:
        return 1.0 - v, u
    if rotation == 180:
        return 1.0 - u, 1.0 - v
    if rotation == 270:
        return v, 1.0 - u
    return u, v


def text_layer_words(page: pypdfium2.PdfPage) -> list[Word]:
    """Group the page's characters into whitespace-separated words, each with its union box."""
    textpage = page.get_textpage()
    try:
        to_image = _image_box(page)
        words: list[Word] = []
        chars: list[str] = []
        box = [0.0, 0.0, 0.0, 0.0]  # running union in page space: l, b, r, t

        def flush() -> None:
            if chars:
                words.append(Word("".join(chars), *to_image(*box)))
                chars.clear()

        for i in range(textpage.count_chars()):
            char = chr(pdfium_c.FPDFText_GetUnicode(textpage.raw, i))
            if char.isspace() or not char.isprintable():
                flush()
                continue
            l, b, r, t = textpage.get_charbox(i)
            if not chars:
                box[:] = [l, b, r, t]
            else:
                box[:] = [min(box[0], l), min(box[1], b), max(box[2], r), max(box[3], t)]
            chars.append(char)
        flush()
        return words
    finally:
        textpage.close()


def picture_boxes(page: pypdfium2.PdfPage, min_share: float) -> list[Box]:
    """Boxes (x0, y0, x1, y1 in the rendered image, [0, 1]) of the raster images drawn on the
    page over at least `min_share` of it, largest first; form XObjects are looked into."""
    to_image = _image_box(page)
    boxes = []
    for picture in page.get_objects(filter=[pdfium_c.FPDF_PAGEOBJ_IMAGE], max_depth=4):
        box = to_image(*picture.get_bounds())
        if (box[2] - box[0]) * (box[3] - box[1]) >= min_share:
            boxes.append(box)
    return sorted(boxes, key=lambda box: (box[2] - box[0]) * (box[3] - box[1]), reverse=True)


def _image_box(page: pypdfium2.PdfPage) -> Callable[[float, float, float, float], Box]:
    """Maps a box of `page` in pdfium's unrotated page space (left, bottom, right, top, in
    points) to (x0, y0, x1, y1) in the rendered image, [0, 1], origin top-left."""
    left, bottom, right, top = page.get_cropbox()
    width, height = max(right - left, 1e-6), max(top - bottom, 1e-6)
    rotation = page.get_rotation() % 360

    def to_image(l: float, b: float, r: float, t: float) -> Box:
        u0, v0 = _to_image_space(_clip((l - left) / width), _clip((top - t) / height), rotation)
        u1, v1 = _to_image_space(_clip((r - left) / width), _clip((top - b) / height), rotation)
        return min(u0, u1), min(v0, v1), max(u0, u1), max(v0, v1)

    return to_image


def _clip(x: float) -> float:
    return min(max(x, 0.0), 1.0)
