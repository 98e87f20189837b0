"""migrate.py: an index copied between stores, resumed after an interruption, compressed on the
way without encoding again, and refused where the target holds another encoder's index."""

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from colretrieve import Index
from colretrieve.cli import main
from colretrieve.errors import IndexConfigError
from colretrieve.migrate import migrate
from tests.helpers import QUESTIONS, _top


def test_migrate_to_local_mode_and_back_keeps_every_top5(index_copy: Path, tmp_path: Path, edge_top,
                                                         text_encoder) -> None:
    local, back = tmp_path / "local", tmp_path / "back"
    report = migrate(index_copy, local, store="qdrant")
    assert (report.pages, report.skipped, report.documents) == (23, 0, 5)
    with Index.open(local, model=text_encoder) as index:
        assert index.config.store == "qdrant" and index.stats()["pages"] == 23
        assert _top(index) == edge_top
    migrate(local, back)
    with Index.open(back, model=text_encoder) as index:
        assert index.config.store == "edge" and _top(index) == edge_top


def test_interrupted_migrate_resumes_and_hides_partial_documents(index_copy: Path, tmp_path: Path, edge_top,
                                                                 text_encoder) -> None:
    local = tmp_path / "local"
    migrate(index_copy, local, store="qdrant")
    with Index.open(local, model=text_encoder) as index:  # as if the copy had stopped part way through the PCA chapter
        pca = next(d["doc_id"] for d in index.documents() if d["path"].endswith("hsaur3__pca.pdf"))
        index.store.delete({"doc_id": pca, "page": [1, 2, 3]})
        index.store.set_payload({"doc_id": pca}, {"state": "partial"})
        assert all(Path(h.path).name != "hsaur3__pca.pdf" for h in index.search(QUESTIONS[1][0], k=23))
    report = migrate(index_copy, local)
    assert (report.pages, report.skipped) == (3, 20)
    with Index.open(local, model=text_encoder) as index:
        assert _top(index) == edge_top


def test_migrate_into_another_encoders_index_is_refused(index_copy: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    migrate(index_copy, other)
    config = json.loads((other / "index.json").read_text())
    (other / "index.json").write_text(json.dumps({**config, "pool_factor": 3}))
    with pytest.raises(IndexConfigError, match="pool_factor 3"):
        migrate(index_copy, other)


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


def test_migrate_compresses_without_encoding_again(index_copy: Path, tmp_path: Path, built_index: Path,
                                                   text_encoder) -> None:
    pooled = tmp_path / "pooled"
    migrate(index_copy, pooled, pool_factor=2, vectors="int8")
    with Index.open(built_index) as full:
        vectors = full.stats()["vectors"]
    with Index.open(pooled, model=text_encoder) as index:
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
