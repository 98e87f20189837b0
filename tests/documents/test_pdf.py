from pathlib import Path

import numpy as np
import pytest

from colretrieve.documents import PdfReader, Word, content_hash, read_words
from colretrieve.documents.pdf import MIN_TEXT_LAYER_CHARS
from colretrieve.errors import BadDocumentError, ColretrieveError


@pytest.mark.parametrize(("name", "reason"), [
    ("x.pdf", "empty file"),
    ("y.pdf", "not a PDF (starts with 'hello, I am a te')"),
    ("locked.pdf", "password-protected"),
    ("truncated.pdf", "damaged or truncated PDF"),
])
def test_bad_files_say_why(bad_pdfs: Path, name: str, reason: str) -> None:
    with pytest.raises(BadDocumentError) as info:
        PdfReader(bad_pdfs / name, "id", dpi=72)
    assert info.value.reason.startswith(reason)
    assert info.value.path == bad_pdfs / name


def test_pages_are_lazy_and_words_come_from_the_text_layer(samples: Path) -> None:
    path = samples / "revtex__apssamp.pdf"
    with PdfReader(path, content_hash(path), dpi=50) as reader:
        assert reader.page_count == 7
        pages = list(reader.pages(skip={2, 3}))
        assert [p.page_no for p in pages] == [1, 4, 5, 6, 7]
        first = pages[0]
        assert first._image is None and first._words is None  # nothing done until asked
        words = first.words
        assert first.words_source == "text-layer"
        assert "Manuscript" in first.text and "REVTEX" in first.text.upper()
        assert all(0 <= w.x0 <= w.x1 <= 1 and 0 <= w.y0 <= w.y1 <= 1 for w in words)
        image = first.image
        assert image.size == (round(first.width_pt * 50 / 72), round(first.height_pt * 50 / 72))


def _ink(image, box) -> float:
    """Share of dark pixels inside a normalised box of a rendered page."""
    gray = np.asarray(image.convert("L"), dtype=np.float32)
    h, w = gray.shape
    x0, y0, x1, y1 = box
    patch = gray[int(y0 * h): max(int(y1 * h), int(y0 * h) + 1), int(x0 * w): max(int(x1 * w), int(x0 * w) + 1)]
    return float((patch < 128).mean())


@pytest.mark.parametrize("rotate", [0, 90, 180, 270])
def test_word_boxes_sit_on_their_ink_in_rotated_pages(samples: Path, tmp_path: Path, rotate: int) -> None:
    import pikepdf

    source = samples / "revtex__apssamp.pdf"
    rotated = tmp_path / "rotated.pdf"
    with pikepdf.open(source) as pdf:
        pdf.pages[0].Rotate = rotate
        pdf.save(rotated)
    with PdfReader(rotated, "id", dpi=100) as reader:
        page = reader.page(1)
        words = [w for w in page.words if len(w.text) >= 6]
        image = page.image
    if rotate in (90, 270):
        assert image.size[0] > image.size[1]  # the page image is landscape now
    inked = [_ink(image, (w.x0, w.y0, w.x1, w.y1)) for w in words]
    assert np.median(inked) > 0.1  # boxes cover glyphs, not white space
    moved = [_ink(image, (1 - w.x1, 1 - w.y1, 1 - w.x0, 1 - w.y0)) for w in words]  # wrong orientation
    assert np.median(moved) < np.median(inked) / 2


def test_scanned_page_goes_to_ocr(samples: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    path = samples / "ocrmypdf__linn_brochure_scan.pdf"
    seen = []

    def recording_ocr(image, scattered=False):  # records what it is given; the engines are tested in test_ocr.py
        seen.append((image.size, scattered))
        return [Word("Linn", 0.1, 0.1, 0.2, 0.12)]

    with PdfReader(path, "id", dpi=72, ocr=recording_ocr, ocr_dpi=100) as reader:
        page = reader.page(1)
        assert page.text == "Linn" and page.words_source == "ocr"
        again = reader.page(1)
        with ThreadPoolExecutor(2) as pool:
            read_words([(reader, again)], pool)
        assert again._words == page.words
    expected = (round(page.width_pt * 100 / 72), round(page.height_pt * 100 / 72))
    assert seen == [(expected, False)] * 2  # rendered at the OCR dpi, not the page dpi; a page, not a picture

    def missing_engine(image, scattered=False):
        raise ColretrieveError("Tesseract OCR needs the tesseract program: apt-get install tesseract-ocr")

    with PdfReader(path, "id", dpi=72, ocr=missing_engine) as reader:
        with pytest.raises(BadDocumentError, match="page 1 has no text layer and Tesseract OCR needs"):
            _ = reader.page(1).words
    with PdfReader(path, "id", dpi=72) as reader:
        page = reader.page(1)
        assert sum(c.isalnum() for w in page.words for c in w.text) < MIN_TEXT_LAYER_CHARS
        assert page.words_source == "none"


def test_pdf2image_renders_the_same_page(samples: Path) -> None:
    import shutil

    if shutil.which("pdftoppm") is None:
        pytest.skip("poppler-utils (pdftoppm) is not installed")
    path = samples / "tabula__census_table_12s0324.pdf"
    with PdfReader(path, "id", dpi=60, renderer="pdf2image") as reader:
        poppler = reader.page(1).image
    with PdfReader(path, "id", dpi=60) as reader:
        pdfium = reader.page(1).image
    assert abs(poppler.size[0] - pdfium.size[0]) <= 1 and abs(poppler.size[1] - pdfium.size[1]) <= 1
    coarse = (pdfium.size[0] // 6, pdfium.size[1] // 6)  # anti-aliasing differs; the layout must not
    a = np.asarray(poppler.convert("L").resize(coarse), dtype=np.float32)
    b = np.asarray(pdfium.convert("L").resize(coarse), dtype=np.float32)
    assert np.corrcoef(a.ravel(), b.ravel())[0, 1] > 0.9


def _with_picture(target: Path, words: str, rotate: int = 0, whole: bool = False, lines: int = 20) -> None:
    """A page of text (`lines` in its text layer) with a raster picture of `words` in its lower
    half, where no text is, as a PDF holds a raster chart or a screenshot (`whole`: under all
    the page and its text, as a scan lies under its OCR layer)."""
    import zlib

    import pikepdf
    from PIL import Image, ImageDraw, ImageFont

    picture = Image.new("L", (900, 300), 255)
    ImageDraw.Draw(picture).text((30, 100), words, fill=0, font=ImageFont.load_default(size=64))
    pdf = pikepdf.new()
    page = pdf.add_blank_page(page_size=(612, 792))
    font = pdf.make_indirect(pikepdf.Dictionary(Type=pikepdf.Name.Font, Subtype=pikepdf.Name.Type1,
                                                BaseFont=pikepdf.Name.Helvetica))
    page.Resources = pikepdf.Dictionary(Font=pikepdf.Dictionary(F1=font))
    lines = " ".join(f"BT /F1 11 Tf 60 {740 - 16 * k} Td (Line {k} of the quarterly report on the animals) Tj ET"
                     for k in range(lines))
    stream = pikepdf.Stream(pdf, zlib.compress(picture.tobytes()))
    stream.update({"/Type": pikepdf.Name.XObject, "/Subtype": pikepdf.Name.Image, "/Width": 900,
                   "/Height": 300, "/ColorSpace": pikepdf.Name.DeviceGray, "/BitsPerComponent": 8,
                   "/Filter": pikepdf.Name.FlateDecode})
    name = page.add_resource(stream, pikepdf.Name.XObject)
    place = "612 0 0 792 0 0" if whole else "450 0 0 150 80 60"
    page.contents_add(pikepdf.Stream(pdf, f"q {place} cm {name} Do Q {lines}".encode()))
    page.Rotate = rotate
    pdf.save(target)


@pytest.mark.parametrize("rotate", [0, 90])
def test_a_picture_on_a_text_page_is_read_by_ocr(tmp_path: Path, rotate: int) -> None:
    """A raster picture on a page with a text layer holds words the layer lacks (a raster
    chart's labels, a screenshot): they are read by OCR, placed on the picture, added once."""
    from colretrieve.documents.ocr import ocr_function

    target = tmp_path / "picture.pdf"
    _with_picture(target, "ZEBRA QUOKKA 1729", rotate)
    with PdfReader(target, "id", dpi=72) as reader:  # no OCR configured: the text layer alone
        layer = reader.page(1).words
    with PdfReader(target, "id", dpi=100, ocr=ocr_function("tesseract")) as reader:
        page = reader.page(1)
        added = page.words[len(layer):]
        assert page.words_source == "text-layer"
        image = page.image
        assert [w.text for w in page.words[:len(layer)]] == [w.text for w in layer]
    assert {"ZEBRA", "QUOKKA", "1729"} <= {w.text for w in added}
    for word in (w for w in added if w.text in ("ZEBRA", "QUOKKA")):
        assert _ink(image, (word.x0, word.y0, word.x1, word.y1)) > 0.1  # placed on its ink


def test_pictures_are_read_as_pictures_and_pages_as_pages(tmp_path: Path, samples: Path) -> None:
    """OCR reads a picture for its lone words too (a chart's labels), a page in reading order:
    a picture filling the whole page, under a one-line caption, is still a picture."""
    seen = []

    def recording_ocr(image, scattered=False):
        seen.append(scattered)
        return []

    for whole in (False, True):
        _with_picture(tmp_path / f"{whole}.pdf", "ZEBRA", whole=whole, lines=1)
        with PdfReader(tmp_path / f"{whole}.pdf", "id", dpi=72, ocr=recording_ocr) as reader:
            page = reader.page(1)
            assert len(page.words) == 9 and page.words_source == "text-layer"
    with PdfReader(samples / "ocrmypdf__linn_brochure_scan.pdf", "id", dpi=72, ocr=recording_ocr) as reader:
        page = reader.page(1)
        assert page.words == [] and page.words_source == "ocr"
    assert seen == [True, True, False]


def test_a_picture_under_a_text_layer_is_not_read_again(tmp_path: Path) -> None:
    """A scan under its OCR layer (ocrmypdf's output) has been read: OCR does not run again."""
    target = tmp_path / "sandwich.pdf"
    _with_picture(target, "ZEBRA QUOKKA 1729", whole=True)
    seen = []

    def recording_ocr(image, scattered=False):
        seen.append(image.size)
        return [Word("ZEBRA", 0.1, 0.1, 0.2, 0.12)]

    with PdfReader(target, "id", dpi=72, ocr=recording_ocr) as reader:
        words = reader.page(1).words
    assert seen == [] and "ZEBRA" not in {w.text for w in words} and len(words) == 20 * 9
