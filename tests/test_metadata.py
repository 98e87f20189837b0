"""A document's metadata: given at ingest (`--meta`, a `<file>.json` beside it), stored with
every page, returned in hits, and taken by filters, on a real index."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from colretrieve import Index
from tests.helpers import CENSUS, cli

FORM = "pikepdf__dd_form_293.pdf"


@pytest.fixture
def folder(samples: Path, tmp_path: Path) -> Path:
    """Two sample PDFs; the form has a sidecar saying it is a 2019 draft."""
    docs = tmp_path / "docs"
    docs.mkdir()
    for name in (CENSUS, FORM):
        shutil.copy(samples / name, docs / name)
    (docs / f"{FORM}.json").write_text(json.dumps({"year": 2019, "draft": True, "tags": ["form", "navy"]}))
    return docs


def files(hits) -> set[str]:
    return {Path(h.path).name for h in hits}


def test_metadata_is_stored_returned_and_filtered(folder: Path, tmp_path: Path, text_encoder) -> None:
    with Index.create(tmp_path / "index", model=text_encoder) as index:
        report = index.ingest([folder], metadata={"year": 2021, "lang": "en"})
        assert report.failed == [] and report.documents == 2
        hits = index.search("form", k=10)
        by_file = {Path(h.path).name: h.metadata for h in hits}
        assert by_file[CENSUS] == {"year": 2021, "lang": "en"}
        assert by_file[FORM] == {"year": 2019, "lang": "en", "draft": True, "tags": ["form", "navy"]}  # sidecar wins
        assert files(index.search("form", k=10, filter={"year": {"gte": 2020}})) == {CENSUS}
        assert files(index.search("form", k=10, filter={"draft": {"exists": False}})) == {CENSUS}
        assert files(index.search("form", k=10, filter={"tags": "navy", "lang": ["en", "fr"]})) == {FORM}
        assert index.search("form", k=10, filter={"lang": {"not": "en"}}) == []
        assert files(index.search("form", k=10, filter={"draft": True})) == {FORM}
        # the names documents brought are indexed by the kind of their values
        indexed = {name: str(info.data_type) for name, info in index.store._shard.info().payload_schema.items()}
        assert {name: kind.rsplit(".", 1)[-1] for name, kind in indexed.items() if name.startswith("meta.")} == {
            "meta.year": "Float", "meta.lang": "Keyword", "meta.draft": "Bool", "meta.tags": "Keyword"}

        again = index.ingest([folder / CENSUS], metadata={"year": 2024})  # unchanged: its metadata is set again
        assert again.unchanged == 1 and again.pages == 0
        (hit,) = index.search("arrests", k=1, filter={"file": CENSUS})
        assert hit.metadata == {"year": 2024}


def test_a_bad_sidecar_skips_its_document_with_the_reason(folder: Path, tmp_path: Path, text_encoder) -> None:
    (folder / f"{FORM}.json").write_text('{"page": 3}')
    with Index.create(tmp_path / "index", model=text_encoder) as index:
        report = index.ingest([folder])
    assert report.documents == 1
    ((path, reason),) = report.failed
    assert path.name == FORM and "'page' cannot name metadata" in reason


def test_the_cli_takes_meta_and_filters_on_it(folder: Path, tmp_path: Path) -> None:
    index = str(tmp_path / "index")
    assert cli("ingest", str(folder / CENSUS), "--index", index, "--meta", "year=2021", "--meta", "team=ops",
               "--quiet").returncode == 0
    run = cli("query", "arrests", "--index", index, "--json", "--filter", "year>=2020", "--filter", "team=ops")
    assert run.returncode == 0, run.stderr
    (hit,) = [json.loads(line) for line in run.stdout.splitlines()]
    assert hit["metadata"] == {"year": 2021, "team": "ops"}
    none = cli("query", "arrests", "--index", index, "--json", "--filter", "year<2020")
    assert none.returncode == 0 and none.stdout == ""
    bad = cli("ingest", str(folder / CENSUS), "--index", index, "--meta", "page=2")
    assert bad.returncode == 2 and "'page' cannot name metadata" in bad.stderr
