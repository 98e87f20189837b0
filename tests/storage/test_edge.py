"""The embedded store against the real qdrant-edge engine."""

from pathlib import Path

import numpy as np
import pytest
import qdrant_edge as qe

from colretrieve.errors import IndexLockedError
from colretrieve.scoring import maxsim, pack
from colretrieve.storage import PagePoint, StoreSchema, point_id
from colretrieve.storage.edge import MULTI, VECTOR_FILE, EdgeStore
from colretrieve.storage.vectorfile import VectorFile

SCHEMA = StoreSchema(multi_dim=8, single_dim=4)


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def _points(rng: np.random.Generator, doc: str, pages: int) -> list[PagePoint]:
    return [PagePoint(point_id(doc, n), _unit(rng.standard_normal((int(rng.integers(1, 30)), 8))),
                      _unit(rng.standard_normal(4)), {"doc_id": doc, "page": n, "file": f"{doc}.pdf", "state": "complete"})
            for n in range(1, pages + 1)]


@pytest.fixture
def store(tmp_path: Path):
    s = EdgeStore.create(tmp_path / "store", SCHEMA)
    yield s
    s.close()


def test_round_trip_filters_and_delete(store: EdgeStore, tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    a, b = _points(rng, "a", 5), _points(rng, "b", 3)
    store.upsert(a + b)
    store.upsert(a[:2])  # the same ids again: overwritten, not duplicated
    assert store.count() == 8 and store.count({"doc_id": "a"}) == 5
    assert store.count({"doc_id": ["a", "b"], "page": 2}) == 2

    ids = [p.id for p in a]
    for got, want in zip(store.multivectors(ids), a):
        np.testing.assert_allclose(got, want.vectors, atol=1e-3)  # float16 on disk
    assert store.payloads(ids[:1], ["page", "n_vectors"]) == [{"page": 1, "n_vectors": len(a[0].vectors)}]

    best, scores = store.prefilter(b[1].summary, k=3)
    assert best[0] == b[1].id and len(best) == 3
    assert scores[0] == pytest.approx(1.0, abs=1e-5) and scores[0] >= scores[1] >= scores[2]
    assert set(store.prefilter(b[1].summary, k=10, filter={"doc_id": "a"})[0]) == set(ids)

    store.delete({"doc_id": "a"})
    assert store.count() == 3
    scanned = [pid for batch in store.scan(vectors=True, batch=2) for pid, _, v in batch if v is not None]
    assert sorted(scanned) == sorted(p.id for p in b)

    store.close()
    reopened = EdgeStore.open(tmp_path / "store", SCHEMA)
    assert reopened.count() == 3
    np.testing.assert_allclose(reopened.multivectors([b[0].id])[0], b[0].vectors, atol=1e-3)
    reopened.close()
    store.close = lambda: None  # already closed


def test_our_maxsim_equals_qdrants_max_sim(store: EdgeStore) -> None:
    """Congruence: the engine's own MAX_SIM ranking and scores match scoring/maxsim.py."""
    rng = np.random.default_rng(3)
    points = _points(rng, "d", 20)
    store.upsert(points)
    query = _unit(rng.standard_normal((5, 8)))
    theirs = store._shard.query(qe.QueryRequest(limit=20, query=qe.Query.Nearest(query.tolist(), using=MULTI)))
    ids = [str(h.id) for h in theirs]
    ours = maxsim([query], *pack(store.multivectors(ids)))[0].numpy()
    np.testing.assert_allclose(ours, [h.score for h in theirs], atol=2e-3)


def test_second_open_is_refused(store: EdgeStore, tmp_path: Path) -> None:
    with pytest.raises(IndexLockedError, match="another process"):
        EdgeStore.open(tmp_path / "store", SCHEMA)


def test_vector_file_drops_a_row_cut_short_by_a_crash(tmp_path: Path) -> None:
    vf = VectorFile(tmp_path / VECTOR_FILE, 4)
    assert vf.append(np.ones((3, 4), np.float32)) == 0
    assert vf.append(np.full((2, 4), 2.0, np.float32)) == 3
    vf.close()
    with open(tmp_path / VECTOR_FILE, "ab") as fh:
        fh.write(b"\x01\x02\x03")  # half a row
    vf = VectorFile(tmp_path / VECTOR_FILE, 4)
    assert vf.rows == 5
    np.testing.assert_array_equal(vf.read(3, 2), np.full((2, 4), 2.0))
    assert vf.append(np.zeros((1, 4), np.float32)) == 5
    vf.close()
