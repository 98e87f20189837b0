"""OCR for pages without a text layer: words with boxes from Tesseract or RapidOCR.

Scans arrive in any of four orientations, so each engine finds the upright turn of the
page, reads that, and maps the boxes back onto the image it was given: the words must
line up with the page image the encoders see, whatever way up it was scanned.

Orientation is checked only when the first, as-given reading looks wrong (few confident
words, or text lines running vertically): nearly all scans are upright, and an
orientation pass costs as much as a reading.
"""

from __future__ import annotations

import os
import shutil
from collections import ChainMap
from functools import cache
from typing import Protocol

from PIL import Image

from ..errors import ColretrieveError
from ..page import Word, uncovered

OCR_DPI = 200
"""Render dpi to hand the engines, measured on the dev scans with benchmarks/bench_ocr.py.

Tesseract reads the 72-dpi dev scan as well at 100-200 dpi as it can, and worse at 300.
RapidOCR reads all the brochure's small print (digits like "80186", "8 MHz") only from
200 dpi, and above that its text detector slows sharply. Neither engine gains enough from
a larger image to pay for upscaling, so both read the image as given.
"""

CONFIDENT = 0.8
"""A word (Tesseract) or line (RapidOCR) read with at least this confidence is trusted."""

UPRIGHT_SHARE = 0.5
"""Share of confident readings above which a page counts as read the right way up.

Upright dev pages score 0.6-1.0 with both engines, pages turned the wrong way 0.0-0.16.
"""

_MIN_TESSERACT_CONF = 10
"""Tesseract words below this confidence (0-100) are mostly dot leaders and ornaments.

Real words in italics or with apostrophes often score 10-30, so the cut stays low.
"""

SPARSE_TEXT = "--psm 11"
"""Tesseract's sparse-text mode: as much text as it can find, in no particular order."""

_MIN_RAPIDOCR_SCORE = 0.5
"""RapidOCR lines below this score are mostly noise (RapidOCR's own default cut)."""

_QUARTER_TURNS = {
    1: Image.Transpose.ROTATE_90,
    2: Image.Transpose.ROTATE_180,
    3: Image.Transpose.ROTATE_270,
}


class OcrUnavailableError(ColretrieveError):
    """The requested OCR engine is not installed; the message says how to install it."""


class OcrFunction(Protocol):
    """Reads words from a rendered page image (`scattered`: a picture, whose words may stand
    alone: a chart's labels, a map's names); raises ColretrieveError if it cannot run at all."""

    def __call__(self, image: Image.Image, /, scattered: bool = False) -> list[Word]: ...


class OcrEngine(Protocol):
    """What the ingest pipeline needs from an OCR engine."""

    name: str

    def words(self, image: Image.Image, scattered: bool = False) -> list[Word]:
        """Words read from `image`, boxes normalised to `image` as given; `scattered`: a
        picture, whose words may stand alone (a chart's labels, a map's names)."""
        ...


def ocr_function(name: str) -> OcrFunction | None:
    """What reads a scanned page image with engine `name` ("none": nothing). The engine loads
    on the first scan, so a missing engine fails only the files that need it."""
    if name == "none":
        return None

    def read(image: Image.Image, scattered: bool = False) -> list[Word]:
        return get_ocr(name).words(image, scattered)

    return read


@cache
def get_ocr(name: str) -> OcrEngine:
    """Return the OCR engine called `name` ("tesseract" or "rapidocr").

    Engines are cached because building one loads models (RapidOCR) or checks the
    installation (Tesseract); the engines themselves keep no per-page state.

    Raises
    ------
    OcrUnavailableError
        If the engine or its language data is not installed.
    ValueError
        If `name` is not a known engine.
    """
    engines = {"tesseract": TesseractOcr, "rapidocr": RapidOcr}
    if name not in engines:
        raise ValueError(f"unknown OCR engine {name!r}; choose one of {sorted(engines)}")
    return engines[name]()


class TesseractOcr:
    """Tesseract through pytesseract: a light apt package, strong on clean printed text.

    Orientation comes from Tesseract's OSD, asked only when the as-given reading has too
    few confident words. OSD fails on pages with little text and errs on some italic
    ones; the turned reading is kept only if it is more confident than the first.
    """

    name = "tesseract"

    def __init__(self, lang: str = "eng", config: str = "") -> None:
        """`config`: Tesseract's own options (`--psm 6`, `--oem 1`), as benchmarks/bench_ocr.py
        sweeps them; the default reads with Tesseract's defaults."""
        try:
            import pytesseract
        except ImportError:
            raise OcrUnavailableError(
                "Tesseract OCR needs pytesseract: pip install pytesseract"
            ) from None
        if shutil.which(pytesseract.pytesseract.tesseract_cmd) is None:
            raise OcrUnavailableError(
                "Tesseract OCR needs the tesseract program: apt-get install tesseract-ocr"
            )
        missing = {lang, "osd"} - set(pytesseract.get_languages())
        if missing:
            packages = " ".join(f"tesseract-ocr-{m}" for m in sorted(missing))
            raise OcrUnavailableError(
                f"Tesseract lacks language data {sorted(missing)}: apt-get install {packages}"
            )
        # Tesseract's OpenMP threads busy-wait: on a small or shared CPU a page takes
        # several times longer with two threads than with one. The limit goes to the
        # tesseract processes alone (pytesseract hands them its module's `environ`): in this
        # process it would cap torch's OpenMP at one thread, where torch still plans for all
        # cores, and its bfloat16 kernels then leave rows unwritten. An explicit setting wins.
        pytesseract.pytesseract.environ = ChainMap(os.environ, {"OMP_THREAD_LIMIT": "1"})
        self._tesseract = pytesseract
        self.lang = lang
        self.config = config

    def words(self, image: Image.Image, scattered: bool = False) -> list[Word]:
        """Words of `image`, read the right way up, boxes normalised to `image` as given.

        Tesseract's page layout analysis keeps words that form lines and blocks and drops
        lone ones: a `scattered` image (a picture) is read again in its sparse-text mode, and
        the words that reading adds are kept too (on the validation set, chart nDCG@5 78.0 to
        79.5, for 0.2 s more a picture; README)."""
        gray = image.convert("L")
        turns, read = self._upright(gray)
        if scattered:
            read += uncovered(read, [word for word, _ in self._read(_turn(gray, turns), SPARSE_TEXT)])
        return [_unturn(word, turns) for word in read]

    def _upright(self, gray: Image.Image) -> tuple[int, list[Word]]:
        """(Quarter turns that made `gray` upright, the words read at that turn, in its frame)."""
        read = self._read(gray)
        share = _upright_share([conf for _, conf in read])
        if not read or share >= UPRIGHT_SHARE:
            return 0, [word for word, _ in read]
        # Where OSD cannot tell, try half a turn: scanners most often feed pages upside
        # down, and Tesseract itself reads lines turned clockwise, so half a turn also
        # fixes a page turned counter-clockwise.
        turns = self._osd_turns(gray) or 2
        turned = self._read(_turn(gray, turns))
        if _upright_share([conf for _, conf in turned]) > share:
            return turns, [word for word, _ in turned]
        return 0, [word for word, _ in read]

    def _read(self, image: Image.Image, mode: str = "") -> list[tuple[Word, float]]:
        """Words with their confidence in [0, 1]; `mode`: Tesseract options after the user's."""
        data = self._tesseract.image_to_data(
            image, lang=self.lang, config=f"{self.config} {mode}".strip(),
            output_type=self._tesseract.Output.DICT
        )
        width, height = image.size
        read = []
        for text, conf, left, top, w, h in zip(
            data["text"], data["conf"], data["left"], data["top"], data["width"], data["height"]
        ):
            text = text.strip()
            if float(conf) < _MIN_TESSERACT_CONF or not _has_alnum(text):
                continue
            word = Word(text, left / width, top / height, (left + w) / width, (top + h) / height)
            read.append((word, float(conf) / 100))
        return read

    def _osd_turns(self, image: Image.Image) -> int:
        """Counter-clockwise quarter turns that make `image` upright; 0 when OSD cannot tell."""
        try:
            osd = self._tesseract.image_to_osd(image, output_type=self._tesseract.Output.DICT)
        except self._tesseract.TesseractError:  # "Too few characters" on sparse pages
            return 0
        # OSD's "rotate" is the clockwise angle that makes the page upright.
        return (-int(osd["rotate"]) // 90) % 4


class RapidOcr:
    """RapidOCR (PaddleOCR models on onnxruntime): a pip install, no system packages.

    Orientation needs no extra model run: the first reading is done without RapidOCR's
    180-degree line classifier, so the direction of its text lines (horizontal or
    vertical) and whether it could read them (high scores or not) tell how the page lies.
    """

    name = "rapidocr"

    def __init__(self) -> None:
        try:
            from rapidocr_onnxruntime import RapidOCR
        except ImportError:
            raise OcrUnavailableError(
                "RapidOCR is not installed: pip install rapidocr-onnxruntime"
            ) from None
        self._engine = RapidOCR()

    def words(self, image: Image.Image, scattered: bool = False) -> list[Word]:
        """Words of `image`, read the right way up, boxes normalised to `image` as given. Its
        detector finds text wherever it stands, so a `scattered` picture is read as a page is."""
        rgb = image.convert("RGB")
        lines = self._lines(rgb)
        if not lines:
            return []
        vertical = _mostly_vertical(lines)
        share = _upright_share([score for *_, score in lines])
        readable = share >= UPRIGHT_SHARE
        # RapidOCR reads tall line crops after a quarter turn counter-clockwise, so vertical
        # lines it reads well run top to bottom: the page lies a quarter turn clockwise.
        if vertical:
            turns = 1 if readable else 3
        else:
            turns = 0 if readable else 2
        if turns:
            turned = _turn(rgb, turns)
            turned_lines = self._lines(turned)
            # Sideways lines cannot be split into words, so a sideways page takes the turned reading.
            if vertical or _upright_share([score for *_, score in turned_lines]) > share:
                return [_unturn(word, turns) for word in _split_lines(turned_lines, turned.size)]
        return _split_lines(lines, rgb.size)

    def _lines(self, image: Image.Image) -> list[tuple[list[list[float]], str, float]]:
        """Text lines (quadrilateral, text, score), read without the 180-degree classifier."""
        # text_score=0 keeps unreadable lines: their low scores are the orientation signal.
        lines, _ = self._engine(image, use_cls=False, text_score=0.0)
        return [(quad, text, float(score)) for quad, text, score in lines or []]


def _split_lines(
    lines: list[tuple[list[list[float]], str, float]], size: tuple[int, int]
) -> list[Word]:
    """Split lines into words, each with the part of the line its characters span.

    RapidOCR boxes whole lines; giving a word the share of the line that its characters
    take is close enough for placing words on a patch grid.
    """
    width, height = size
    words = []
    for quad, text, score in lines:
        if score < _MIN_RAPIDOCR_SCORE:
            continue
        top_left, top_right, bottom_right, bottom_left = quad
        start = 0
        for token in text.split():
            start = text.index(token, start)
            end = start + len(token)
            if _has_alnum(token):
                a, b = start / len(text), end / len(text)
                xs, ys = zip(
                    _lerp(top_left, top_right, a),
                    _lerp(top_left, top_right, b),
                    _lerp(bottom_left, bottom_right, a),
                    _lerp(bottom_left, bottom_right, b),
                )
                words.append(
                    Word(
                        token,
                        max(0.0, min(xs) / width),
                        max(0.0, min(ys) / height),
                        min(1.0, max(xs) / width),
                        min(1.0, max(ys) / height),
                    )
                )
            start = end
    return words


def _mostly_vertical(lines: list[tuple[list[list[float]], str, float]]) -> bool:
    """Whether most of the text, weighted by line length, runs vertically."""
    across = down = 0.0
    for quad, _, _ in lines:
        xs, ys = [p[0] for p in quad], [p[1] for p in quad]
        dx, dy = max(xs) - min(xs), max(ys) - min(ys)
        if dy > dx:
            down += dy
        else:
            across += dx
    return down > across


def _upright_share(confidences: list[float]) -> float:
    """Share of confident readings; text read upside down or sideways has few."""
    return sum(c >= CONFIDENT for c in confidences) / len(confidences) if confidences else 0.0


def _lerp(p: list[float], q: list[float], t: float) -> tuple[float, float]:
    return p[0] + t * (q[0] - p[0]), p[1] + t * (q[1] - p[1])


def _has_alnum(text: str) -> bool:
    return any(ch.isalnum() for ch in text)


def _turn(image: Image.Image, turns: int) -> Image.Image:
    """`image` turned `turns` quarter turns counter-clockwise (exact, no resampling)."""
    return image.transpose(_QUARTER_TURNS[turns % 4]) if turns % 4 else image


def _unturn(word: Word, turns: int) -> Word:
    """Map `word` from an image turned `turns` quarter turns counter-clockwise back to the original."""
    x0, y0, x1, y1 = word.x0, word.y0, word.x1, word.y1
    for _ in range(turns % 4):
        # Point (u, v) of a once-turned image was (1 - v, u) before the turn.
        x0, y0, x1, y1 = 1 - y1, x0, 1 - y0, x1
    return Word(word.text, x0, y0, x1, y1)
