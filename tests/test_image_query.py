"""Query by image with the text default: it reads the image's words (OCR) and searches with
them, alone or mixed with text, and says so (image_query.py; the VLM side is in
tests/test_vision_index.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from colretrieve import Index
from colretrieve.errors import ColretrieveError
from tests.helpers import CENSUS, cli


@pytest.fixture(scope="module")
def census_crop(built_index: Path, text_encoder, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The top half of the census table page, as a screenshot of it would be."""
    with Index.open(built_index, model=text_encoder, read_only=True) as index:
        (hit,) = index.search("arrests", k=1, filter={"file": CENSUS})
        page = hit.image()
    path = tmp_path_factory.mktemp("crops") / "census-top.png"
    page.crop((0, 0, page.width, page.height // 2)).save(path)
    return path


def test_an_image_is_searched_by_its_words(built_index: Path, text_encoder, census_crop: Path) -> None:
    notes: list[str] = []
    with Index.open(built_index, model=text_encoder, read_only=True) as index:
        hits = index.search(image=census_crop, k=3, explain=notes.append)
        assert Path(hits[0].path).name == CENSUS
        from_pil = index.search(image=Image.open(census_crop), k=3)
        assert [(h.path, h.page) for h in from_pil] == [(h.path, h.page) for h in hits]
        text_only = index.search("principal components", k=1)
        mixed = index.search("principal components", k=1, image=census_crop, image_weight=0.9)
        assert Path(text_only[0].path).name != CENSUS and Path(mixed[0].path).name == CENSUS
        blank = Image.new("RGB", (400, 300), "white")
        with pytest.raises(ColretrieveError, match="holds no words"):
            index.search(image=blank, k=1)
        with pytest.raises(ColretrieveError, match="image weight"):
            index.search("census", image=census_crop, image_weight=1.0)
    assert notes and "words from the image (ocr)" in notes[0] and "reads words, not pictures" in notes[0]


def test_the_cli_takes_an_image(built_index: Path, census_crop: Path) -> None:
    run = cli("query", "--image", str(census_crop), "--index", str(built_index), "-k", "1")
    assert run.returncode == 0, run.stderr
    assert CENSUS in run.stdout and "image query: read" in run.stderr
    assert cli("query", "--index", str(built_index)).returncode == 2
    missing = cli("query", "--image", str(census_crop.with_name("none.png")), "--index", str(built_index))
    assert missing.returncode == 2 and "none.png" in missing.stderr
