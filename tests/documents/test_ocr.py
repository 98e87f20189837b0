"""OCR engines on a real 72-dpi scan: the words, where they are, and the same when the scan is turned."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pypdfium2 as pdfium
import pytest
from PIL import Image, ImageDraw, ImageFont

from colretrieve.documents.ocr import (
    OCR_DPI,
    OcrUnavailableError,
    RapidOcr,
    TesseractOcr,
    _turn,
    _unturn,
    get_ocr,
    ocr_function,
)
from colretrieve.page import Word

# Page 4 of the Lure manual: "MINIMUM SYSTEM REQUIREMENTS", one entry per platform.
KNOWN = {"amiga", "atari", "640k", "memory", "required", "keyboard", "speaker"}
# Words printed once on the page, with where they stand (x0, y0, x1, y1), read off the image.
PLACED = {"amiga": (0.06, 0.62, 0.20, 0.67), "atari": (0.06, 0.50, 0.16, 0.55)}


def _key(text: str) -> str:
    return re.sub(r"\W", "", text).lower()


@pytest.fixture(scope="module")
def page(dev_pdfs: Path) -> Image.Image:
    pdf = pdfium.PdfDocument(dev_pdfs / "lure__manual_scanned.pdf")
    image = pdf[3].render(scale=OCR_DPI / 72).to_pil()
    pdf.close()
    return image


@pytest.fixture(scope="module", params=["tesseract", "rapidocr"])
def engine(request: pytest.FixtureRequest):
    try:
        return get_ocr(request.param)
    except OcrUnavailableError as error:
        pytest.skip(str(error))


@pytest.fixture(scope="module")
def upright(engine, page: Image.Image) -> dict[str, Word]:
    """The engine's words on the upright page, by key (the first of repeated words)."""
    words = {}
    for word in engine.words(page):
        words.setdefault(_key(word.text), word)
    return words


def test_reads_known_words_where_they_are(upright: dict[str, Word]) -> None:
    assert KNOWN <= upright.keys()
    assert all(0 <= w.x0 < w.x1 <= 1 and 0 <= w.y0 < w.y1 <= 1 for w in upright.values())
    for key, (x0, y0, x1, y1) in PLACED.items():
        cx, cy = upright[key].center
        assert x0 < cx < x1 and y0 < cy < y1, (key, upright[key])


def test_turned_page_reads_the_same_words_in_the_same_places(
    engine, page: Image.Image, upright: dict[str, Word]
) -> None:
    turned = page.rotate(90, expand=True)  # counter-clockwise, the way a scanner may lay it
    words = {}
    for word in engine.words(turned):
        words.setdefault(_key(word.text), word)
    assert KNOWN <= words.keys()
    for key in PLACED:
        w, u = words[key], upright[key]
        # A point (x, y) of the upright page lies at (y, 1 - x) once turned counter-clockwise.
        expected = (u.y0, 1 - u.x1, u.y1, 1 - u.x0)
        assert (w.x0, w.y0, w.x1, w.y1) == pytest.approx(expected, abs=0.01), key


@pytest.mark.parametrize("turns", [1, 2, 3])
def test_unturn_maps_boxes_back_exactly(turns: int) -> None:
    image = Image.new("L", (400, 300), 255)
    ImageDraw.Draw(image).rectangle((40, 30, 119, 59), fill=0)  # x 40..119, y 30..59 inclusive
    left, top, right, bottom = _turn(image, turns).point(lambda v: 255 - v).getbbox()
    w, h = _turn(image, turns).size
    back = _unturn(Word("x", left / w, top / h, right / w, bottom / h), turns)
    assert (back.x0, back.y0, back.x1, back.y1) == pytest.approx((40 / 400, 30 / 300, 120 / 400, 60 / 300))


def test_missing_engines_say_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "rapidocr_onnxruntime", None)  # import fails
    with pytest.raises(OcrUnavailableError, match="pip install rapidocr-onnxruntime"):
        RapidOcr()
    pytesseract = pytest.importorskip("pytesseract")
    monkeypatch.setattr(pytesseract.pytesseract, "tesseract_cmd", "/nonexistent/tesseract")
    with pytest.raises(OcrUnavailableError, match="apt-get install tesseract-ocr"):
        TesseractOcr()
    with pytest.raises(ValueError, match="unknown OCR engine"):
        get_ocr("abbyy")


def _chart() -> Image.Image:
    """A chart as a picture holds it: axes, tick labels, a curve, and labels standing alone."""
    image = Image.new("L", (1000, 700), 255)
    draw, font = ImageDraw.Draw(image), ImageFont.load_default(size=22)
    draw.line((120, 600, 950, 600), fill=0, width=3)
    draw.line((120, 50, 120, 600), fill=0, width=3)
    for i, x in enumerate(range(150, 950, 160)):
        draw.text((x, 615), str(1990 + 5 * i), font=font, fill=0)
    for i, y in enumerate(range(560, 60, -100)):
        draw.text((40, y), str(20 * i), font=font, fill=0)
    draw.line([(130 + 8 * i, 550 - 4 * i * i // 100 + (17 * i) % 40 - 20) for i in range(100)], fill=0, width=2)
    for word, x, y in (("glacier", 300, 200), ("Ushuaia", 700, 420), ("basin", 500, 120)):
        draw.text((x, y), word, font=font, fill=0)
    return image


def test_a_picture_is_read_again_for_the_words_that_stand_alone() -> None:
    """Tesseract's layout analysis drops lone labels ("basin" here); its sparse-text reading
    of a picture adds them where they stand, and keeps every word of the first reading."""
    try:
        engine = get_ocr("tesseract")
    except OcrUnavailableError as error:
        pytest.skip(str(error))
    chart = _chart()
    page = engine.words(chart)
    picture = engine.words(chart, scattered=True)
    assert "basin" not in {_key(w.text) for w in page}
    assert [(w.text, w.x0, w.y0) for w in picture[: len(page)]] == [(w.text, w.x0, w.y0) for w in page]
    basin = [w for w in picture if _key(w.text) == "basin"]
    assert len(basin) == 1 and basin[0].center == pytest.approx((0.53, 0.19), abs=0.03)
    added = picture[len(page):]
    assert not any(p.x0 <= a.center[0] <= p.x1 and p.y0 <= a.center[1] <= p.y1 for a in added for p in page)


def test_an_engine_is_built_once_per_process() -> None:
    """Building one checks the installation (Tesseract) or loads models (RapidOCR): never per page."""
    assert get_ocr("tesseract") is get_ocr("tesseract")
    assert ocr_function("none") is None
