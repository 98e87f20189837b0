"""Grounded hits: the regions of a page that earned its score (regions.py), from the arithmetic
to a real index and the CLI's --crops."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from colretrieve import Index
from colretrieve.page import Word
from colretrieve.regions import Region, credits, find_regions, pack_boxes, unpack_words
from tests.helpers import CENSUS, cli

WORDS = [Word("total", 0.10, 0.10, 0.18, 0.12), Word("arrests", 0.20, 0.10, 0.30, 0.12),
         Word("2009", 0.70, 0.80, 0.76, 0.82)]


def test_word_boxes_round_trip_and_refuse_a_mismatch() -> None:
    packed = pack_boxes(WORDS)
    assert len(packed) < 12 * len(WORDS)  # 8 bytes a word, in base64
    back = unpack_words("total arrests 2009", packed)
    assert [w.text for w in back] == ["total", "arrests", "2009"]
    assert all(abs(a - b) < 1e-4 for w, v in zip(back, WORDS) for a, b in zip((w.x0, w.y0, w.x1, w.y1),
                                                                              (v.x0, v.y0, v.x1, v.y1)))
    assert unpack_words("total arrests", packed) == []  # the text no longer matches the boxes
    assert unpack_words("total arrests 2009", None) == [] and unpack_words("a", "not base64!") == []


def test_credits_follow_each_token_to_its_best_vector() -> None:
    vectors = np.eye(4, dtype=np.float32)
    cells = np.array([0, 5, 5, -1])  # the last vector has no cell (a VLM's prompt token)
    query = np.array([[1, 0, 0, 0], [0, 0.6, 0.8, 0], [0, 0, 0, 1], [-1, 0, 0, 0]], dtype=np.float32)
    heat, total = credits(query, vectors, cells, 9)
    assert heat[0] == pytest.approx(1.0) and heat[5] == pytest.approx(0.8) and heat.sum() == pytest.approx(1.8)
    assert total == pytest.approx(2.8)  # the cell-less match counts in the total, a negative one earns nothing
    weighted, _ = credits(query, vectors, cells, 9, weights=np.array([2.0, 1.0, 1.0, 1.0]))
    assert weighted[0] == pytest.approx(2.0)


def test_cells_merge_into_regions_snapped_to_their_words() -> None:
    grid = (10, 10)
    heat = np.zeros(100)
    heat[[11, 12]] = [0.5, 0.3]  # row 1, cols 1-2: the words "total" and "arrests"
    heat[87] = 0.2  # row 8, col 7: "2009", far from the others
    heat[50] = 0.1  # row 5, col 0: no word there, three empty rows below the first
    regions = find_regions(heat, 1.25, grid, WORDS, (600.0, 800.0))
    assert [r.text for r in regions] == ["total arrests", "2009", ""]
    assert [r.share for r in regions] == [0.64, 0.16, 0.08]
    assert regions[0].box == (0.10, 0.10, 0.30, 0.12)  # the words' union, not the cells'
    assert regions[0].points == (60.0, 80.0, 180.0, 96.0)
    assert regions[2].box == (0.0, 0.5, 0.1, 0.6)  # a cell without words keeps its own box
    assert find_regions(heat, 1.25, grid, [], (600.0, 800.0))[0].box == (0.1, 0.1, 0.3, 0.2)  # no words: cells
    assert find_regions(np.zeros(100), 0.0, grid, WORDS, (1.0, 1.0)) == []
    gap = np.zeros(100)
    gap[[11, 14]] = 1.0  # two empty cells between: one region
    assert len(find_regions(gap, 2.0, grid, [], (1.0, 1.0))) == 1
    gap[14], gap[15] = 0.0, 1.0  # three: two
    assert len(find_regions(gap, 2.0, grid, [], (1.0, 1.0))) == 2


def test_hits_carry_regions_with_their_words(built_index: Path, text_encoder) -> None:
    with Index.open(built_index, model=text_encoder, read_only=True) as index:
        (hit,) = index.search("arrests by offense", k=1, filter={"file": CENSUS})
        bare = index.search("arrests by offense", k=1, filter={"file": CENSUS}, regions=False)[0]
    assert bare.regions == [] and bare.score == pytest.approx(hit.score)
    assert 1 <= len(hit.regions) <= 5 and sum(r.share for r in hit.regions) <= 1 + 1e-6
    assert [r.share for r in hit.regions] == sorted((r.share for r in hit.regions), reverse=True)
    top = hit.regions[0]
    assert "arrests" in top.text.lower().split() or "offense" in top.text.lower().split()
    x0, y0, x1, y1 = top.box
    assert 0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1 and (x1 - x0) * (y1 - y0) < 0.25
    page = hit.image()
    crop = hit.crop(top, margin=0.0, page=page)
    assert abs(crop.width - (x1 - x0) * page.width) <= 2 and abs(crop.height - (y1 - y0) * page.height) <= 2
    assert Region(**json.loads(json.dumps(hit.to_dict()["regions"][0]))) == top  # as a service sends it


def test_the_cli_prints_the_match_and_writes_crops(built_index: Path, tmp_path: Path) -> None:
    crops = tmp_path / "crops"
    run = cli("query", "arrests by offense", "--index", str(built_index), "-k", "2", "--json", "--crops", str(crops))
    assert run.returncode == 0, run.stderr
    hits = [json.loads(line) for line in run.stdout.splitlines()]
    written = sorted(crops.glob("*.png"))
    assert len(written) == sum(len(h["regions"]) for h in hits) > 0
    assert written[0].name.startswith(f"01-{Path(hits[0]['path']).stem}-p{hits[0]['page']}-r1")
    assert all(min(Image.open(path).size) > 0 for path in written)
    shown = cli("query", "arrests by offense", "--index", str(built_index), "-k", "1")
    assert "match (" in shown.stdout and "of the score):" in shown.stdout
