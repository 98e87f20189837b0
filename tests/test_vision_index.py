"""An index on a ColPali-family encoder with a CLIP prefilter, end to end, and similarity maps from
the CLI (the maps themselves are tests/test_grounding.py)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image

from colretrieve import Index
from colretrieve.errors import IndexConfigError


@pytest.fixture(scope="module")
def vision_index(tmp_path_factory: pytest.TempPathFactory, tiny_models: dict[str, Path], samples: Path) -> Path:
    directory = tmp_path_factory.mktemp("vision") / "index"
    run = subprocess.run([sys.executable, "-m", "colretrieve", "ingest", str(samples), "--index", str(directory),
                          "--encoder", str(tiny_models["colpali"]), "--prefilter", str(tiny_models["clip"]),
                          "--device", "cpu", "--ocr", "none", "--json"], capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["pages"] == 23
    return directory


def test_query_and_maps_from_the_cli(vision_index: Path, tmp_path: Path, tiny_colpali) -> None:
    maps, crops = tmp_path / "maps", tmp_path / "crops"
    run = subprocess.run([sys.executable, "-m", "colretrieve", "query", "principal components", "--index",
                          str(vision_index), "-k", "3", "--maps", str(maps), "--maps-per-token", "--json",
                          "--crops", str(crops)], capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    hits = [json.loads(line) for line in run.stdout.splitlines()]
    assert [h["rank"] for h in hits] == [1, 2, 3]
    # a VLM's patches ground hits as the text default's words do: boxes on the page, snapped to its words
    regions = [r for h in hits for r in h["regions"]]
    assert all(h["regions"] for h in hits) and len(list(crops.glob("*.png"))) == len(regions)
    assert all(0 <= r["box"][0] < r["box"][2] <= 1 and 0 <= r["box"][1] < r["box"][3] <= 1 for r in regions)
    assert any(r["text"] for r in regions)
    summed = sorted(p for p in maps.glob("*.png") if "-t" not in p.stem.rsplit("-p", 1)[1])
    assert len(summed) == 3 and len(list(maps.glob("01-*-t*.png"))) > 1
    first = hits[0]
    with Index.open(vision_index, model=tiny_colpali) as index:
        page = next(h for h in index.search("principal components", k=3) if h.rank == 1).image()
        config = index.config
    assert Image.open(summed[0]).size == page.size and summed[0].name.startswith(f"01-{Path(first['path']).stem}")
    assert (config.prefilter_id.startswith("clip:"), config.single_dim, config.scoring) == (True, 24, "maxsim")


def test_two_stage_with_the_clip_prefilter_and_exact(vision_index: Path, tiny_colpali) -> None:
    with Index.open(vision_index, device="cpu", model=tiny_colpali) as index:  # both stages on the CPU kernel
        exact = index.search("census table of arrests", k=23, exact=True)
        narrow = index.search("census table of arrests", k=5, candidates=5)
    assert len(exact) == 23 and len(narrow) == 5
    by_page = {(h.path, h.page): h.score for h in exact}  # the same MaxSim on the pages both scored
    assert all(abs(by_page[(h.path, h.page)] - h.score) < 1e-4 for h in narrow)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_exact_search_on_the_gpu_matches_the_memory_map(vision_index: Path) -> None:
    """The GPU path end to end (encoder, every page resident, the Triton kernel) against the same
    query's scores from the memory-mapped vectors on the CPU."""
    with Index.open(vision_index, device="cuda") as index:
        exact = index.search("census table of arrests", k=23, exact=True)
        assert index._searcher._resident is not None and index._searcher._resident.flat.is_cuda
        narrow = {(h.path, h.page): h.score for h in index.search("census table of arrests", k=23, candidates=23)}
    assert len(exact) == 23 and {(h.path, h.page) for h in exact} == set(narrow)
    assert all(h.score == pytest.approx(narrow[(h.path, h.page)], rel=2e-3, abs=1e-3) for h in exact)


def test_colqwen2_with_pooled_prefilter_and_saved_options(tmp_path: Path, tiny_models: dict[str, Path],
                                                          samples: Path) -> None:
    with Index.create(tmp_path / "q", str(tiny_models["colqwen2"]), device="cpu", ocr="none",
                      max_pixels=28 * 28 * 9) as index:
        index.ingest([samples / "hsaur3__pca.pdf"])
        hits = index.search("barplot", k=2)
        config = index.config
    assert config.prefilter == "pooled" and config.encoder_options == {"max_pixels": 28 * 28 * 9}
    assert len(hits) == 2
    with pytest.raises(IndexConfigError, match="already holds an index"):
        Index.create(tmp_path / "q", str(tiny_models["colqwen2"]))


def test_an_image_query_finds_its_own_page(vision_index: Path, tiny_colpali) -> None:
    """A page's image as the query: the tiny ColPali compares it page against page and the tiny
    CLIP prefilter embeds it as an image; random weights or not, a page matches itself best."""
    with Index.open(vision_index, device="cpu", model=tiny_colpali) as index:
        pages = index.search("census table", k=6)
        notes: list[str] = []
        for target in pages[2:5]:
            (hit,) = index.search(image=target.image(), k=1, explain=notes.append)
            assert (hit.path, hit.page) == (target.path, target.page)
            assert hit.regions  # grounded as text queries are
        mixed = index.search("census table", k=3, image=pages[3].image(), image_weight=0.9)
    assert "embedded as a page" in notes[0] and "embeds it as an image" in notes[0]
    assert (mixed[0].path, mixed[0].page) == (pages[3].path, pages[3].page)
