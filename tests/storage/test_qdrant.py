"""What only the qdrant-client store does: connecting, retrying, collection options and metadata,
and MAX_SIM congruence with qdrant-client's own scoring."""

from __future__ import annotations

import os
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
from qdrant_client import QdrantClient, models
from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse

from colretrieve.errors import (
    ColretrieveError,
    IndexConfigError,
    IndexLockedError,
    StoreUnreachableError,
)
from colretrieve.scoring import maxsim, pack
from colretrieve.storage.base import MULTI
from colretrieve.storage.collection import QdrantOptions
from colretrieve.storage.qdrant import QdrantStore, connect, with_retries


@pytest.mark.parametrize("grpc", [False, True])
def test_unreachable_server_is_one_clear_error_at_connect(grpc: bool) -> None:
    start = time.monotonic()
    with pytest.raises(StoreUnreachableError, match=r"^cannot reach Qdrant at http://127\.0\.0\.1:9: ") as err:
        connect("http://127.0.0.1:9", grpc=grpc, timeout=1)
    assert time.monotonic() - start < 5
    assert "\n" not in str(err.value) and "refused" in str(err.value).lower()


class Flaky:
    """Calls `then` after raising each of `errors` once, counting calls."""

    def __init__(self, errors: list[Exception], then=lambda: "done") -> None:
        self.errors, self.then, self.calls = list(errors), then, 0

    def __call__(self):
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return self.then()


def _http_error(status: int, message: str) -> UnexpectedResponse:
    return UnexpectedResponse.for_response(httpx.Response(status, json={"status": {"error": message}}))


def test_transient_errors_are_retried(tmp_path: Path) -> None:
    client = connect(str(tmp_path / "qdrant"))
    refused = ResponseHandlingException(httpx.ConnectError("[Errno 111] Connection refused"))
    call = Flaky([refused, _http_error(503, "Service Unavailable"), _http_error(429, "slow down")],
                 then=lambda: client.get_collections().collections)
    assert with_retries(call, retries=3, where="here", wait=0) == [] and call.calls == 4
    client.close()


def test_a_rejected_request_is_not_retried() -> None:
    call = Flaky([_http_error(400, "Wrong input: Vector dimension error: expected dim: 8, got 4")])
    with pytest.raises(UnexpectedResponse):
        with_retries(call, retries=5, where="here", wait=0)
    assert call.calls == 1


def test_a_local_mode_error_is_not_retried(tmp_path: Path) -> None:
    client = connect(str(tmp_path / "qdrant"))
    call = Flaky([], then=lambda: client.count("missing"))
    with pytest.raises(ValueError, match="not found"):
        with_retries(call, retries=5, where="here", wait=0)
    assert call.calls == 1
    client.close()


def test_retries_give_up_with_one_error_naming_the_server() -> None:
    client = QdrantClient(url="http://127.0.0.1:9", prefer_grpc=True, grpc_port=9, timeout=1,
                          check_compatibility=False)
    call = Flaky([], then=client.get_collections)  # a real gRPC UNAVAILABLE, every time
    with pytest.raises(StoreUnreachableError, match=r"^Qdrant at http://127\.0\.0\.1:9 failed 3 times: UNAVAILABLE"):
        with_retries(call, retries=2, where="http://127.0.0.1:9", wait=0)
    assert call.calls == 3
    client.close()


def test_options_reach_the_collection(qdrant_backend) -> None:
    options = QdrantOptions(on_disk=True, quantization="int8", shard_number=2, replication_factor=1,
                            write_consistency_factor=1)
    store = qdrant_backend.create_with(options=options)
    config = store.client.get_collection(store.collection).config
    patches = config.params.vectors[MULTI]
    assert patches.on_disk is True and patches.datatype == models.Datatype.FLOAT16
    assert patches.multivector_config.comparator == models.MultiVectorComparator.MAX_SIM
    assert patches.quantization_config.scalar.type == models.ScalarType.INT8
    assert patches.quantization_config.scalar.always_ram is True
    assert patches.hnsw_config.m == 0
    if qdrant_backend.location.startswith("http"):  # local mode keeps no cluster layout
        assert (config.params.shard_number, config.params.replication_factor,
                config.params.write_consistency_factor) == (2, 1, 1)


def test_binary_quantization(qdrant_backend) -> None:
    store = qdrant_backend.create_with(options=QdrantOptions(quantization="binary", on_disk=False))
    patches = store.client.get_collection(store.collection).config.params.vectors[MULTI]
    assert patches.quantization_config.binary.always_ram is True and not patches.on_disk


def test_unknown_quantization_is_refused() -> None:
    with pytest.raises(ColretrieveError, match="expected None, 'int8' or 'binary', got 'int4'"):
        QdrantOptions(quantization="int4")


def test_metadata_rebuilds_the_caller_s_config(qdrant_backend, schema) -> None:
    config = {"encoder": "vidore/colpali-v1.3", "dpi": 144, "encoder_options": {"max_pixels": 1000}}
    store = qdrant_backend.create_with(metadata=config)
    reopened = QdrantStore.open(store.client, store.collection)  # no schema: take the saved one
    assert reopened.metadata == config and reopened.schema == schema


def test_missing_collection_names_it_and_the_location(tmp_path: Path) -> None:
    client = connect(str(tmp_path / "qdrant"))
    with pytest.raises(IndexConfigError, match=f"no collection 'pages' at {tmp_path / 'qdrant'}$"):
        QdrantStore.open(client, "pages")
    client.close()


def test_a_collection_colretrieve_did_not_make_is_refused() -> None:
    client = connect(":memory:")
    client.create_collection("theirs", vectors_config=models.VectorParams(size=4, distance=models.Distance.DOT))
    with pytest.raises(IndexConfigError, match="'theirs' at :memory: is not a colretrieve store"):
        QdrantStore.open(client, "theirs")
    client.close()


def test_a_second_client_on_a_folder_is_refused(tmp_path: Path) -> None:
    client = connect(str(tmp_path / "qdrant"))
    with pytest.raises(IndexLockedError, match="open in another client"):
        connect(str(tmp_path / "qdrant"))
    client.close()


@pytest.mark.skipif(not os.environ.get("QDRANT_URL"), reason="set QDRANT_URL to run against a Qdrant server")
def test_grpc_connection() -> None:
    client = connect(os.environ["QDRANT_URL"], grpc=True)
    assert client.init_options["prefer_grpc"] and isinstance(client.get_collections(), models.CollectionsResponse)
    client.close()


def test_our_maxsim_equals_qdrants_max_sim(qdrant_backend, make_pages, make_unit) -> None:
    """Congruence: qdrant-client's own MAX_SIM ranking and scores match scoring/maxsim.py."""
    rng = np.random.default_rng(3)
    store = qdrant_backend.create()
    store.upsert(make_pages(rng, "d", 20))
    query = make_unit(rng.standard_normal((5, 8)))
    theirs = store.client.query_points(store.collection, query=query.tolist(), using=MULTI, limit=20).points
    ids = [str(h.id) for h in theirs]
    ours = maxsim([query], *pack([page.rows() for page in store.pages(ids)]))[0].numpy()
    np.testing.assert_allclose(ours, [h.score for h in theirs], atol=2e-3)


def test_the_server_scores_candidates_and_sends_back_scores_only(qdrant_backend, make_pages) -> None:
    """score_in_store: one batch request whose answers are the prefilter's candidates with their
    single-vector scores, MaxSim of the (weighted) query tokens and BM25; the same numbers
    colretrieve computes from the vectors, which stay in the server."""
    from colretrieve.scoring import maxsim_reference
    from colretrieve.scoring.lexical import bm25_document, bm25_query, term_set
    from colretrieve.storage.base import BM25, TERMS, StoreSchema

    rng = np.random.default_rng(5)
    points = make_pages(rng, "doc", 12)
    texts = ["hydrogen lines", "the table", "hydrogen table", "", "income", "state tables"] * 2
    for point, text in zip(points, texts):
        point.sparse = {BM25: bm25_document(text), TERMS: term_set([len(text)])}
    store = qdrant_backend.create(StoreSchema(multi_dim=8, single_dim=4, encoder="test-encoder", lexical=True))
    store.upsert(points)
    assert store.capabilities.scores_in_store
    single = points[3].summary
    tokens = rng.standard_normal((5, 8)).astype(np.float32)
    weights = np.array([0.5, 1.0, 2.0, 3.0, 0.1], dtype=np.float32)
    got = store.score_in_store(tokens * weights[:, None], single, 7, {"doc_id": "doc"},
                               bm25=bm25_query("hydrogen table"))
    found = store.candidates(single, 7, {"doc_id": "doc"})
    assert got.ids == [c.id for c in found]
    np.testing.assert_allclose(got.dense, [c.score for c in found], atol=1e-5)
    by_id = {p.id: p for p in points}
    expected = maxsim_reference([tokens], [by_id[i].vectors for i in got.ids], [weights])[0]
    np.testing.assert_allclose(got.maxsim, expected, rtol=1e-2, atol=1e-2)  # float16 in a server
    np.testing.assert_allclose(got.bm25, store.sparse_scores(BM25, bm25_query("hydrogen table"), got.ids), rtol=1e-5)
    assert got.rows.tolist() == [len(by_id[i].vectors) for i in got.ids]
    assert store.score_in_store(tokens, single, 3).bm25 is None
