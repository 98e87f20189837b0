"""An index on either store, moved between them, and compressed: real engines, real MiniLM."""

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from colretrieve import Index
from colretrieve.cli import main
from colretrieve.errors import IndexConfigError
from colretrieve.migrate import migrate

QUESTIONS = [
    ("How many people were arrested in 2009, broken down by sex and age?", "tabula__census_table_12s0324.pdf", 1),
    ("barplot showing the variances of the principal components", "hsaur3__pca.pdf", 8),
    ("why should the review board grant the requested change of discharge", "pikepdf__dd_form_293.pdf", 2),
]


def _top(index: Index, k: int = 5) -> list[list[tuple[str, int]]]:
    return [[(Path(h.path).name, h.page) for h in index.search(q, k=k)] for q, _, _ in QUESTIONS]


@pytest.fixture(scope="module")
def edge_top(built_index: Path) -> list[list[tuple[str, int]]]:
    with Index.open(built_index) as index:
        return _top(index)


def test_migrate_to_local_mode_and_back_keeps_every_top5(index_copy: Path, tmp_path: Path, edge_top) -> None:
    local, back = tmp_path / "local", tmp_path / "back"
    report = migrate(index_copy, local, store="qdrant")
    assert (report.pages, report.skipped, report.documents) == (23, 0, 5)
    with Index.open(local) as index:
        assert index.config.store == "qdrant" and index.stats()["pages"] == 23
        assert _top(index) == edge_top
    migrate(local, back)
    with Index.open(back) as index:
        assert index.config.store == "edge" and _top(index) == edge_top


def test_interrupted_migrate_resumes_and_hides_partial_documents(index_copy: Path, tmp_path: Path, edge_top) -> None:
    local = tmp_path / "local"
    migrate(index_copy, local, store="qdrant")
    with Index.open(local) as index:  # as if the copy had stopped part way through the PCA chapter
        pca = next(d["doc_id"] for d in index.documents() if d["path"].endswith("hsaur3__pca.pdf"))
        index.store.delete({"doc_id": pca, "page": [1, 2, 3]})
        index.store.set_payload({"doc_id": pca}, {"state": "partial"})
        assert all(Path(h.path).name != "hsaur3__pca.pdf" for h in index.search(QUESTIONS[1][0], k=23))
    report = migrate(index_copy, local)
    assert (report.pages, report.skipped) == (3, 20)
    with Index.open(local) as index:
        assert _top(index) == edge_top


def test_migrate_into_another_encoders_index_is_refused(index_copy: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    migrate(index_copy, other)
    config = json.loads((other / "index.json").read_text())
    (other / "index.json").write_text(json.dumps({**config, "pool_factor": 3}))
    with pytest.raises(IndexConfigError, match="pool_factor 3"):
        migrate(index_copy, other)


def test_local_mode_index_takes_ingest_delete_and_reopen(tmp_path: Path, samples: Path, edge_top) -> None:
    target = tmp_path / "index"
    with Index.create(target, store="qdrant") as index:
        report = index.ingest([samples / "tabula__census_table_12s0324.pdf", samples / "hsaur3__pca.pdf"])
        assert report.failed == [] and index.stats()["documents"] == 2
        assert index.delete(str(samples / "tabula__census_table_12s0324.pdf")) == 1
    with Index.open(target) as index:
        hits = index.search(QUESTIONS[1][0], k=1)
        assert (Path(hits[0].path).name, hits[0].page) == ("hsaur3__pca.pdf", 8)
        assert index.stats()["documents"] == 1


@pytest.mark.parametrize("options", [{"pool_factor": 2}, {"vectors": "int8"}, {"vectors": "binary"}])
def test_compressed_index_finds_the_answers(tmp_path: Path, samples: Path, built_index: Path, options) -> None:
    with Index.create(tmp_path / "index", **options) as index:
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


def test_cli_migrate_json_and_unreachable_server(index_copy: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    done = runner.invoke(main, ["migrate", str(index_copy), str(tmp_path / "local"), "--store", "qdrant", "--json"])
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout.strip().splitlines()[-1])["pages"] == 23
    down = runner.invoke(main, ["query", "anything", "--index", "http://127.0.0.1:9/pages"])
    assert down.exit_code == 2
    assert down.stderr.strip().startswith("error: cannot reach Qdrant at http://127.0.0.1:9")
    assert len(down.stderr.strip().splitlines()) == 1
    nameless = runner.invoke(main, ["stats", "--index", "http://127.0.0.1:9"])
    assert nameless.exit_code == 2 and "name one collection" in nameless.stderr


def test_migrate_compresses_without_encoding_again(index_copy: Path, tmp_path: Path, built_index: Path) -> None:
    pooled = tmp_path / "pooled"
    migrate(index_copy, pooled, pool_factor=2, vectors="int8")
    with Index.open(built_index) as full:
        vectors = full.stats()["vectors"]
    with Index.open(pooled) as index:
        assert (index.config.pool_factor, index.config.vectors) == (2, "int8")
        assert index.stats()["vectors"] == pytest.approx(vectors / 2, abs=23)
        for question, file, page in QUESTIONS:
            hit = index.search(question, k=1)[0]
            assert (Path(hit.path).name, hit.page) == (file, page)
        payload = index.store.payloads([next(iter(index.pages()))[0]], ["cells", "n_vectors"])[0]
        assert len(payload["cells"]) == payload["n_vectors"]  # maps still have a cell per vector
        written = index.similarity_maps(QUESTIONS[0][0], index.search(QUESTIONS[0][0], k=1), tmp_path / "maps")
        assert len(written) == 1 and written[0].stat().st_size > 0
    with pytest.raises(Exception, match="pooled by 2 already"):
        migrate(pooled, tmp_path / "again", pool_factor=3)
