"""What only the embedded store does (the shared contract is in test_contract.py): the
qdrant-edge engine's own MAX_SIM, its process lock, its schema file and its vector file."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import qdrant_edge as qe

from colretrieve.catalog import point_id
from colretrieve.errors import IndexConfigError, IndexLockedError
from colretrieve.scoring import maxsim, pack
from colretrieve.storage import PagePoint, StoreSchema
from colretrieve.storage.base import MULTI, SINGLE
from colretrieve.storage.edge import (
    ENGINE_CONFIG,
    PANEL_FILE,
    SCHEMA_FILE,
    SHARD_DIR,
    VECTOR_FILE,
    EdgeStore,
)
from colretrieve.storage.vectorfile import VectorFile
from colretrieve.vectors.forms import VectorFormat
from colretrieve.vectors.layout import PanelPage


@pytest.fixture
def store(tmp_path: Path, schema: StoreSchema):
    s = EdgeStore.create(tmp_path / "store", schema)
    yield s
    s.close()


def test_our_maxsim_equals_qdrant_edges_max_sim(store: EdgeStore, tmp_path: Path, make_pages, make_unit) -> None:
    """Congruence: the engine's own MAX_SIM (on a bare shard holding the same multi-vectors)
    ranks and scores as scoring/maxsim.py does on what the store reads back."""
    rng = np.random.default_rng(3)
    pages = make_pages(rng, "d", 20)
    store.upsert(pages)
    engine = qe.EdgeShard.create(str(tmp_path / "engine"), qe.EdgeConfig(vectors={MULTI: qe.EdgeVectorParams(
        size=8, distance=qe.Distance.Dot, multivector_config=qe.MultiVectorConfig(qe.MultiVectorComparator.MaxSim),
        datatype=qe.VectorStorageDatatype.Float16)}))
    engine.update(qe.UpdateOperation.upsert_points([qe.Point(p.id, {MULTI: p.vectors.tolist()}, {}) for p in pages]))
    query = make_unit(rng.standard_normal((5, 8)))
    theirs = engine.query(qe.QueryRequest(limit=20, query=qe.Query.Nearest(query.tolist(), using=MULTI)))
    engine.close()
    ids = [str(h.id) for h in theirs]
    ours = maxsim([query], *pack([p.rows() for p in store.pages(ids)]))[0].numpy()
    np.testing.assert_allclose(ours, [h.score for h in theirs], atol=2e-3)


def test_the_shard_keeps_no_copy_of_the_multi_vectors(store: EdgeStore, make_pages) -> None:
    """The vector file holds them; a second copy in the shard would double the disk and every
    write-ahead log entry, which the engine replays at each open."""
    pages = make_pages(np.random.default_rng(4), "d", 3)
    store.upsert(pages)
    records = store._shard.retrieve([p.id for p in pages], with_payload=False, with_vector=True)
    assert len(records) == 3
    assert all(MULTI not in r.vector and SINGLE in r.vector for r in records)
    np.testing.assert_array_equal(store.pages([pages[0].id])[0].rows(), pages[0].vectors.astype(np.float16))


def test_second_open_is_refused(store: EdgeStore, tmp_path: Path, schema: StoreSchema) -> None:
    with pytest.raises(IndexLockedError, match="another process"):
        EdgeStore.open(tmp_path / "store", schema)


def test_a_store_made_before_schemas_were_saved_opens(store: EdgeStore, tmp_path: Path) -> None:
    store.close()
    (tmp_path / "store" / SCHEMA_FILE).unlink()
    EdgeStore.open(tmp_path / "store", StoreSchema(8, 4, "whatever it was")).close()
    store.close = lambda: None  # already closed


def test_opening_a_directory_without_a_store_is_refused(tmp_path: Path, schema: StoreSchema) -> None:
    with pytest.raises(IndexConfigError, match="no store here"):
        EdgeStore.open(tmp_path / "nothing", schema)


def test_vector_file_drops_a_row_cut_short_by_a_crash(tmp_path: Path) -> None:
    vf = VectorFile(tmp_path / VECTOR_FILE, 4)
    assert vf.append(np.ones((3, 4), np.float32))[0] == 0
    assert vf.append(np.full((2, 4), 2.0, np.float32))[0] == 3
    vf.close()
    with open(tmp_path / VECTOR_FILE, "ab") as fh:
        fh.write(b"\x01\x02\x03")  # half a row
    vf = VectorFile(tmp_path / VECTOR_FILE, 4)
    assert vf.rows == 5
    np.testing.assert_array_equal(vf.read(3, 2), np.full((2, 4), 2.0))
    assert vf.append(np.zeros((1, 4), np.float32))[0] == 5
    vf.close()


def test_panel_file_keeps_whole_panels_through_a_crash(tmp_path: Path) -> None:
    """In the panel layout a page takes whole panels of 32 rows, and a torn append goes whole."""
    rng = np.random.default_rng(1)
    pages = [rng.standard_normal((n, 4)).astype(np.float16) for n in (3, 32, 33)]
    vf = VectorFile(tmp_path / PANEL_FILE, 4, panels=True)
    assert [vf.append(p)[0] for p in pages] == [0, 32, 64]
    vf.close()
    with open(tmp_path / PANEL_FILE, "ab") as fh:
        fh.write(np.zeros((5, 4), np.float16).tobytes())  # five rows of a panel never finished
    vf = VectorFile(tmp_path / PANEL_FILE, 4, panels=True)
    assert vf.rows == 128
    for first, p in zip((0, 32, 64), pages):
        got = vf.read(first, len(p))
        assert isinstance(got, PanelPage) and len(got) == len(p)
        np.testing.assert_array_equal(got.rows(), p)
    assert vf.append(pages[0])[0] == 128
    vf.close()


def test_a_store_made_before_the_panel_layout_keeps_its_rows(tmp_path: Path, schema: StoreSchema,
                                                             make_pages, make_unit) -> None:
    """An index written row by row opens and grows as it was; queries score it the same way."""
    rng = np.random.default_rng(2)
    (tmp_path / "store").mkdir()
    (tmp_path / "store" / VECTOR_FILE).touch()  # what a store made before panels holds
    store = EdgeStore.create(tmp_path / "store", schema)
    store.upsert(make_pages(rng, "old", 3))
    store.close()
    store = EdgeStore.open(tmp_path / "store", schema)
    more = make_pages(rng, "new", 2)
    store.upsert(more)
    got = [page.vectors for page in store.pages([p.id for p in more])]
    assert all(isinstance(g, np.ndarray) for g in got) and not (tmp_path / "store" / PANEL_FILE).exists()
    for g, p in zip(got, more):
        np.testing.assert_allclose(g, p.vectors, atol=1e-3)
    store.close()


@pytest.mark.parametrize("form", ["int8", "binary"])
def test_quantized_copy_is_row_aligned_and_survives_a_torn_append(tmp_path: Path, form: str, schema: StoreSchema,
                                                                   make_pages) -> None:
    rng = np.random.default_rng(5)
    points = make_pages(rng, "q", 6)
    store = EdgeStore.create(tmp_path / "store", schema, form)
    store.upsert(points)
    ids = [p.id for p in points]
    fmt = VectorFormat(form, schema.multi_dim)
    assert store.capabilities.quantized == form
    for got, p in zip(store.pages(ids, quantized=True), points):
        np.testing.assert_allclose(got.vectors, fmt.decode(fmt.encode(p.vectors)), atol=1e-6)
    store.close()
    with open(tmp_path / "store" / PANEL_FILE, "ab") as torn:  # a crash after the float16 append only
        torn.write(np.zeros((3, schema.multi_dim), dtype=np.float16).tobytes())
    store = EdgeStore.open(tmp_path / "store", schema, form)
    more = make_pages(rng, "r", 2)
    store.upsert(more)
    for got, p in zip(store.pages([q.id for q in more], quantized=True), more):
        np.testing.assert_allclose(got.vectors, fmt.decode(fmt.encode(p.vectors)), atol=1e-6)
    for got, p in zip(store.pages([q.id for q in more]), more):
        np.testing.assert_allclose(got.rows(), p.vectors, atol=1e-3)
    store.close()


def test_candidates_carry_their_rows_and_ids_follow_upserts_and_deletes(store: EdgeStore, make_pages,
                                                                          make_unit) -> None:
    """A candidate carries its row location, so `pages` reads it without a lookup; a page
    named by id after it is written again is read from its new rows, a deleted one not at all."""
    rng = np.random.default_rng(9)
    first = make_pages(rng, "d", 3)
    store.upsert(first)
    found = store.candidates(make_unit(rng.standard_normal(4)), 3)
    assert sorted(c.id for c in found) == sorted(p.id for p in first) and all(c.location for c in found)
    by_id = {p.id: p for p in first}
    for page in store.pages(found):
        np.testing.assert_array_equal(page.rows(), by_id[page.id].vectors.astype(np.float16))
    again = make_pages(rng, "d", 1)[0]  # same id, new vectors
    store.upsert([again])
    np.testing.assert_array_equal(store.pages([again.id])[0].rows(), again.vectors.astype(np.float16))
    store.delete({"doc_id": "d"})
    with pytest.raises(KeyError):
        store.pages([first[1].id])


#: 4 KiB page vectors: a few hundred pages fill more than the appendable segment may hold.
WIDE = StoreSchema(multi_dim=8, single_dim=1024, encoder="wide")


def wide_pages(rng: np.random.Generator, doc: str, n: int, first: int = 1) -> list[PagePoint]:
    return [PagePoint(point_id(doc, p), np.full((3, 8), 8 ** -0.5, np.float32),
                      (v := rng.standard_normal(1024).astype(np.float32)) / np.linalg.norm(v),
                      {"doc_id": doc, "page": p}) for p in range(first, first + n)]


def segments(path: Path) -> set[str]:
    return set(os.listdir(path / SHARD_DIR / "segments"))


def exact_top(pages: list[PagePoint], query: np.ndarray, k: int) -> list[str]:
    scores = np.stack([p.summary for p in pages]) @ query
    return [pages[i].id for i in np.argsort(-scores, kind="stable")[:k]]


def test_optimize_replaces_the_filled_segment_and_the_store_works_on(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    store = EdgeStore.create(tmp_path / "s", WIDE)
    kept = wide_pages(rng, "a", 400)
    store.upsert(kept)
    before = segments(tmp_path / "s")
    store.optimize()
    more = wide_pages(rng, "b", 10)
    store.upsert(more)
    store.delete({"doc_id": "a", "page": [1, 2]})
    store.close()
    assert not before & segments(tmp_path / "s")  # the filled segment was rewritten (and removed at close)
    store = EdgeStore.open(tmp_path / "s", WIDE)
    try:
        living = kept[2:] + more
        assert store.count() == len(living)
        query = living[7].summary
        assert [c.id for c in store.candidates(query, 20)] == exact_top(living, query, 20)  # no graph: exact
        np.testing.assert_array_equal(store.pages([more[3].id])[0].rows(), more[3].vectors.astype(np.float16))
    finally:
        store.close()


#: Writes `argv[2]` wide pages into a new store at argv[1], says so, optimises it, leaves a mark,
#: then waits to be killed.
OPTIMIZER = """
import sys, time
import numpy as np
from pathlib import Path
from colretrieve.storage.edge import EdgeStore
from tests.storage.test_edge import WIDE, wide_pages
store = EdgeStore.create(Path(sys.argv[1]), WIDE)
rng = np.random.default_rng(6)
for first in range(1, int(sys.argv[2]) + 1, 500):
    store.upsert(wide_pages(rng, "d", 500, first))
store.flush()
print("optimising", flush=True)
store.optimize()
(Path(sys.argv[1]) / "optimised").touch()
time.sleep(60)
"""


def kill_while_optimising(path: Path, count: int) -> bool:
    """Run OPTIMIZER on a new store at `path`; kill it as soon as the optimiser has a segment
    half built beside the old ones. False if the optimiser finished first."""
    child = subprocess.Popen([sys.executable, "-c", OPTIMIZER, str(path), str(count)], stdout=subprocess.PIPE,
                             text=True, cwd=Path(__file__).parents[2])
    try:
        assert child.stdout is not None and child.stdout.readline() == "optimising\n"
        building, done = path / SHARD_DIR / "temp_segments", path / "optimised"
        while not (building.is_dir() and any(building.iterdir())):
            if done.exists() or child.poll() is not None:
                return False
            time.sleep(0.0002)
        return True
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()


def test_a_kill_during_optimize_loses_no_page(tmp_path: Path) -> None:
    count = 8000
    attempts = [tmp_path / f"s{n}" for n in range(5)]
    path = next((p for p in attempts if kill_while_optimising(p, count)), None)
    assert path is not None, "the optimiser finished before a kill could land, five times"
    store = EdgeStore.open(path, WIDE)  # writable: reads every page's location first
    try:
        pages = wide_pages(np.random.default_rng(6), "d", count)
        assert store.count() == count
        assert [c.id for c in store.candidates(pages[42].summary, 10)] == exact_top(pages, pages[42].summary, 10)
        np.testing.assert_array_equal(store.pages([pages[-1].id])[0].rows(), pages[-1].vectors.astype(np.float16))
    finally:
        store.close()


def test_a_store_made_with_a_graph_is_not_optimised(tmp_path: Path) -> None:
    """Stores made before kept the multi-vectors in the shard under a graph: optimising would
    build it (hours), so they stay as they are."""
    EdgeStore.create(tmp_path / "s", WIDE).close()
    config = tmp_path / "s" / SHARD_DIR / ENGINE_CONFIG
    settings = json.loads(config.read_text())
    settings["hnsw_config"]["m"] = 16
    config.write_text(json.dumps(settings))
    store = EdgeStore.open(tmp_path / "s", WIDE)
    store.upsert(wide_pages(np.random.default_rng(7), "a", 400))
    before = segments(tmp_path / "s")
    store.optimize()
    store.close()
    assert segments(tmp_path / "s") == before
