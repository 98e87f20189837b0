"""ingest.py: pages are held until they are stored, so a batch that fails is tried again in parts."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from colretrieve import ColretrieveError, Index
from colretrieve.catalog import COMPLETE


def test_a_failed_upsert_is_retried_on_pages_still_held(tmp_path: Path, samples: Path, tiny_models: dict[str, Path],
                                                        tiny_colpali, monkeypatch: pytest.MonkeyPatch) -> None:
    """The first upsert of a two-document batch fails: each document is tried again alone, and
    the encoder, which reads the page images, still finds them (they are released only once
    stored). Nothing is reported failed and every page is stored once."""
    docs = tmp_path / "docs"
    docs.mkdir()
    for name in ("tabula__census_table_12s0324.pdf", "pikepdf__dd_form_293.pdf"):  # 1 + 4 pages
        shutil.copy(samples / name, docs / name)
    with Index.create(tmp_path / "index", str(tiny_models["colpali"]), device="cpu", ocr="none", dpi=36,
                      model=tiny_colpali) as index:
        real, calls = index.store.upsert, []

        def fails_once(points):
            calls.append(len(points))
            if len(calls) == 1:
                raise RuntimeError("the store hiccuped")
            return real(points)

        monkeypatch.setattr(index.store, "upsert", fails_once)
        report = index.ingest([docs], batch_size=8)
        assert report.failed == [] and (report.documents, report.pages) == (2, 5)
        assert calls == [5, 1, 4] or calls == [5, 4, 1]
        assert index.store.count({"state": COMPLETE}) == 5


def test_nothing_to_encode_loads_no_model(index_copy: Path, samples: Path) -> None:
    """A re-run over unchanged files answers from the catalog alone: no model is loaded."""
    with Index.open(index_copy) as index:
        report = index.ingest([samples])
        assert (report.documents, report.unchanged) == (0, 5)
        assert index._models._encoder is None and index._models._prefilter is None


def test_a_shared_model_keeps_its_batch_size_and_its_name(tmp_path: Path, samples: Path, tiny_colpali) -> None:
    """`batch_size` holds for one ingest only; a model loaded as one encoder is refused as another."""
    before = tiny_colpali.batch_size
    with Index.create(tmp_path / "index", tiny_colpali.source, model=tiny_colpali, ocr="none", dpi=36) as index:
        assert index.ingest([samples / "tabula__census_table_12s0324.pdf"], batch_size=before + 3).documents == 1
    assert tiny_colpali.batch_size == before
    with pytest.raises(ColretrieveError, match="was loaded as .*not as encoder 'text'"):
        Index.create(tmp_path / "other", "text", model=tiny_colpali)
