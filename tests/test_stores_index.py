"""An index on either store, and compressed: real engines, real MiniLM. Moving an index between
stores is tests/test_migrate.py."""

from pathlib import Path

import pytest

from colretrieve import Index
from tests.helpers import QUESTIONS


def test_local_mode_index_takes_ingest_delete_and_reopen(tmp_path: Path, samples: Path, edge_top,
                                                         text_encoder) -> None:
    target = tmp_path / "index"
    with Index.create(target, store="qdrant", model=text_encoder) as index:
        report = index.ingest([samples / "tabula__census_table_12s0324.pdf", samples / "hsaur3__pca.pdf"])
        assert report.failed == [] and index.stats()["documents"] == 2
        assert index.delete(str(samples / "tabula__census_table_12s0324.pdf")) == 1
    with Index.open(target, model=text_encoder) as index:
        hits = index.search(QUESTIONS[1][0], k=1)
        assert (Path(hits[0].path).name, hits[0].page) == ("hsaur3__pca.pdf", 8)
        assert index.stats()["documents"] == 1


@pytest.mark.parametrize("options", [{"pool_factor": 2}, {"vectors": "int8"}, {"vectors": "binary"}])
def test_compressed_index_finds_the_answers(tmp_path: Path, samples: Path, built_index: Path, options,
                                            text_encoder) -> None:
    with Index.create(tmp_path / "index", model=text_encoder, **options) as index:
        assert index.ingest([samples]).pages == 23
        for question, file, page in QUESTIONS:
            hit = index.search(question, k=1)[0]
            assert (Path(hit.path).name, hit.page) == (file, page)
        stats = index.stats()
    with Index.open(built_index) as full:
        vectors = full.stats()["vectors"]
    if "pool_factor" in options:
        assert stats["vectors"] == pytest.approx(vectors / 2, abs=23)  # ceil(n / 2) per page
    else:
        assert stats["vectors"] == vectors and stats["vector_format"] == options["vectors"]


def test_vector_files_of_other_stores_are_refused(tmp_path: Path) -> None:
    with pytest.raises(Exception, match="embedded store"):
        Index.create(tmp_path / "index", store="qdrant", vectors="int8")
