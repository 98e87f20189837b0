"""A store in a Qdrant collection over qdrant-client: a server, a cluster, or the client's local mode.

The collection has the embedded store's layout (base.py), so an index can move between them.
Its metadata keeps the store schema and the caller's own settings (e.g. the whole index
config), so the collection alone is enough to reopen an index.

Unlike EdgeStore there is no memory-mapped copy of the multi-vectors beside it: they come back
through the client as Python floats, which costs tens of milliseconds per ColPali page.
"""

from __future__ import annotations

import math
import os
import time
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict
from typing import Any, TypeVar
from urllib.parse import urlsplit

import httpx
import numpy as np
from grpc import RpcError, StatusCode
from qdrant_client import QdrantClient, models
from qdrant_client.common.client_exceptions import (
    QdrantException,
    ResourceExhaustedResponse,
)
from qdrant_client.http.exceptions import (
    ApiException,
    ResponseHandlingException,
    UnexpectedResponse,
)

from ..errors import (
    IndexConfigError,
    IndexLockedError,
    StoreUnreachableError,
)
from ..vectors.sparse import Sparse
from .base import (
    BM25,
    CHECKSUMS,
    LEXICAL,
    MULTI,
    ROWS,
    SINGLE,
    Candidate,
    Capabilities,
    Damage,
    Filter,
    FilterParts,
    Indexes,
    PagePoint,
    StoredPage,
    StoreSchema,
    StoreScores,
    in_order,
    named_vector,
    scores_by_id,
    scroll_pages,
    stored_payload,
    term_idf,
    translate_filter,
)
from .collection import META_KEY, QdrantOptions

T = TypeVar("T")

REST_PORT, GRPC_PORT = 6333, 6334
#: A compressed copy of the multi-vectors kept in RAM by the server (always_ram).
QUANTIZATION: dict[str | None, models.QuantizationConfig | None] = {
    None: None,
    "int8": models.ScalarQuantization(scalar=models.ScalarQuantizationConfig(type=models.ScalarType.INT8,
                                                                           always_ram=True)),
    "binary": models.BinaryQuantization(binary=models.BinaryQuantizationConfig(always_ram=True)),
}
#: Ids per request when reading payloads alone (small); vectors go `batch_size` pages at a time.
PAYLOAD_BATCH = 1024
#: Payload index kinds by the names `create` takes.
INDEX_KINDS: dict[str, models.PayloadSchemaType | models.KeywordIndexParams] = {
    "keyword": models.PayloadSchemaType.KEYWORD, "integer": models.PayloadSchemaType.INTEGER,
    "float": models.PayloadSchemaType.FLOAT, "bool": models.PayloadSchemaType.BOOL,
    "tenant": models.KeywordIndexParams(type=models.KeywordIndexType.KEYWORD, is_tenant=True)}
_GRPC_TRANSIENT = {StatusCode.UNAVAILABLE, StatusCode.DEADLINE_EXCEEDED, StatusCode.RESOURCE_EXHAUSTED}


def connect(location: str, *, grpc: bool = False, api_key: str | None = None, timeout: float = 60.0) -> QdrantClient:
    """A client for `location`: an http(s):// URL of a server or cluster, ":memory:", or a folder
    (qdrant-client's local mode, which one client at a time may hold).

    A server is asked for its collections at once, so a wrong URL, a server that is down or a
    refused API key is one StoreUnreachableError here rather than a traceback on the first
    write. `grpc` sends requests over gRPC (a quarter of JSON's bytes for vectors), on port
    6334 unless the URL names a port other than 6333. `api_key` defaults to $QDRANT_API_KEY.
    `timeout` (seconds) bounds each request; a batch of ColPali pages is tens of MB.
    """
    if location == ":memory:":
        return QdrantClient(location)
    if not location.startswith(("http://", "https://")):
        try:
            return QdrantClient(path=location)
        except RuntimeError as exc:  # qdrant-client's message for a folder another client holds
            if "already accessed" in str(exc):
                raise IndexLockedError(f"{location}: the Qdrant folder is open in another client; "
                                       "use a Qdrant server for concurrent access") from exc
            raise
    port = urlsplit(location).port
    client = QdrantClient(url=location, prefer_grpc=grpc, api_key=api_key or os.environ.get("QDRANT_API_KEY"),
                          grpc_port=port if grpc and port not in (None, REST_PORT) else GRPC_PORT,
                          timeout=math.ceil(timeout), check_compatibility=False)  # we probe it ourselves
    try:
        client.get_collections()
    except (ApiException, QdrantException, RpcError, httpx.HTTPError) as exc:
        client.close()
        hint = " (check QDRANT_API_KEY)" if _refused_key(exc) else ""
        raise StoreUnreachableError(f"cannot reach Qdrant at {location}: {_reason(exc)}{hint}") from exc
    return client


def with_retries(call: Callable[[], T], retries: int, where: str, wait: float = 0.5) -> T:
    """`call()`, tried again after `wait`, 2 x `wait`, 4 x `wait`... while it fails transiently
    (network errors, timeouts, HTTP 5xx and 429, gRPC UNAVAILABLE and DEADLINE_EXCEEDED): a server
    restarting or busy should not end an ingest. A rejected request (HTTP 4xx) fails at once;
    giving up is a StoreUnreachableError naming `where`."""
    attempt = 0
    while True:
        try:
            return call()
        except Exception as exc:
            if not _transient(exc):
                raise
            if attempt == retries:
                raise StoreUnreachableError(f"Qdrant at {where} failed {attempt + 1} times: {_reason(exc)}") from exc
            delay = wait * 2**attempt
            if isinstance(exc, ResourceExhaustedResponse):
                delay = max(delay, exc.retry_after_s)
            time.sleep(delay)
            attempt += 1


def _transient(exc: BaseException) -> bool:
    if isinstance(exc, ResponseHandlingException):  # the REST client's wrapper of transport errors
        exc = exc.source
    if isinstance(exc, UnexpectedResponse):
        return exc.status_code is not None and (exc.status_code >= 500 or exc.status_code == 429)
    if isinstance(exc, RpcError) and hasattr(exc, "code"):
        return exc.code() in _GRPC_TRANSIENT
    return isinstance(exc, (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError,
                            ResourceExhaustedResponse))


def _refused_key(exc: BaseException) -> bool:
    if isinstance(exc, RpcError) and hasattr(exc, "code"):
        return exc.code() in (StatusCode.UNAUTHENTICATED, StatusCode.PERMISSION_DENIED)
    return getattr(exc, "status_code", None) in (401, 403)


def _reason(exc: BaseException) -> str:
    """One line saying why a request failed, whichever layer raised."""
    if isinstance(exc, ResponseHandlingException):
        exc = exc.source
    if isinstance(exc, UnexpectedResponse):
        try:
            detail = ": " + exc.structured()["status"]["error"]
        except (ValueError, KeyError, TypeError):
            detail = ""
        return f"HTTP {exc.status_code} {exc.reason_phrase}{detail}"
    if isinstance(exc, RpcError) and hasattr(exc, "code"):
        return f"{exc.code().name}: {exc.details()}"
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def _where(client: QdrantClient) -> str:
    options = client.init_options
    return str(options.get("url") or options.get("path") or options.get("location"))


def _is_local(client: QdrantClient) -> bool:
    """qdrant-client's local mode: every search is exact, payload indexes do nothing (it warns of both)."""
    options = client.init_options
    return options.get("path") is not None or options.get("location") == ":memory:"


def _match(key: str, value: Any) -> models.Condition:
    return models.FieldCondition(key=key, match=models.MatchValue(value=value))


def _match_any(key: str, values: list[Any]) -> models.Condition:
    return models.FieldCondition(key=key, match=models.MatchAny(any=values))


QDRANT_FILTERS: FilterParts[models.Condition, models.Filter] = FilterParts(
    _match, _match_any, lambda key, bounds: models.FieldCondition(key=key, range=models.Range(**bounds)),
    lambda key: models.IsEmptyCondition(is_empty=models.PayloadField(key=key)),
    lambda conditions: models.Filter(should=conditions),
    lambda must, must_not: models.Filter(must=must or None, must_not=must_not or None))


def to_qdrant_filter(filter: Filter | None) -> models.Filter | None:
    return translate_filter(filter, QDRANT_FILTERS)


def _required_filter(filter: Filter) -> models.Filter:
    """`filter` for a write by filter; an empty one (it would match every page) is a ValueError,
    as the client's validation makes it."""
    translated = to_qdrant_filter(filter)
    if translated is None:
        raise ValueError(f"a write by filter needs a non-empty filter, not {filter!r}")
    return translated


class QdrantStore:
    """Pages in `collection`; make one with `create`, reopen it with `open`.

    The store owns its client: `close` closes it (and frees a local-mode folder).
    """

    def __init__(self, client: QdrantClient, collection: str, schema: StoreSchema, metadata: dict[str, Any],
                 options: QdrantOptions) -> None:
        self.client = client
        self.collection = collection
        self.schema = schema
        #: The caller's settings saved at `create` (e.g. an index config).
        self.metadata = metadata
        self.options = options
        self.where = _where(client)
        self._local = _is_local(client)
        #: Candidates are scored in the server (or, in local mode, by the client's own engine);
        #: the collection's quantization serves those queries, rescored from the originals.
        self.capabilities = Capabilities(lexical=schema.lexical, scores_in_store=True)

    @classmethod
    def create(cls, client: QdrantClient, collection: str, schema: StoreSchema, options: QdrantOptions | None = None,
               metadata: dict[str, Any] | None = None, indexes: Indexes | None = None) -> QdrantStore:
        """A new collection with payload `indexes`; `metadata` (JSON-able) is saved with the
        schema in its metadata."""
        options = options or QdrantOptions()
        where = _where(client)
        if with_retries(lambda: client.collection_exists(collection), options.retries, where):
            raise IndexConfigError(f"collection {collection!r} already exists at {where}; open it instead")
        vectors = {
            # As in edge.py: Dot on L2-normalised vectors, multi-vectors in float16. No HNSW graph
            # over them (m=0): colretrieve scores them itself, the graph would cost and serve nothing.
            MULTI: models.VectorParams(
                size=schema.multi_dim, distance=models.Distance.DOT, datatype=models.Datatype.FLOAT16,
                multivector_config=models.MultiVectorConfig(comparator=models.MultiVectorComparator.MAX_SIM),
                on_disk=options.on_disk, hnsw_config=models.HnswConfigDiff(m=0),
                quantization_config=QUANTIZATION[options.quantization]),
            SINGLE: models.VectorParams(size=schema.single_dim, distance=models.Distance.DOT),
        }
        sparse = {name: models.SparseVectorParams(modifier=models.Modifier.IDF)
                  for name in (LEXICAL if schema.lexical else ())}
        metadata = metadata or {}
        with_retries(lambda: client.create_collection(
            collection, vectors_config=vectors, sparse_vectors_config=sparse or None, shard_number=options.shard_number,
            replication_factor=options.replication_factor, write_consistency_factor=options.write_consistency_factor,
            metadata={META_KEY: {"schema": asdict(schema), "config": metadata}}), options.retries, where)
        store = cls(client, collection, schema, metadata, options)
        store.index_fields(indexes or {})
        return store

    @classmethod
    def open(cls, client: QdrantClient, collection: str, schema: StoreSchema | None = None,
             options: QdrantOptions | None = None) -> QdrantStore:
        """The store in `collection`; a `schema` other than the saved one is an IndexConfigError.
        Of `options`, only `batch_size` and `retries` apply: the layout was fixed at `create`."""
        options = options or QdrantOptions()
        where = _where(client)
        if not with_retries(lambda: client.collection_exists(collection), options.retries, where):
            raise IndexConfigError(f"no collection {collection!r} at {where}")
        info = with_retries(lambda: client.get_collection(collection), options.retries, where)
        saved = (info.config.metadata or {}).get(META_KEY)
        if saved is None:
            raise IndexConfigError(f"collection {collection!r} at {where} is not a colretrieve store "
                                   f"(no {META_KEY!r} metadata)")
        if schema is not None:
            schema.check(saved["schema"], f"collection {collection!r} at {where}")
        return cls(client, collection, StoreSchema(**saved["schema"]), saved["config"], options)

    def _call(self, method: Callable[..., T], **kwargs: Any) -> T:
        return with_retries(lambda: method(self.collection, **kwargs), self.options.retries, self.where)

    def upsert(self, points: Sequence[PagePoint]) -> None:
        for start in range(0, len(points), self.options.batch_size):
            batch = [models.PointStruct(id=p.id, vector=vectors, payload=payload)
                     for p in points[start : start + self.options.batch_size]
                     for vectors, payload in [p.parts(_sparse, {CHECKSUMS: {"float16": _crc(p.vectors)}})]]
            self._call(self.client.upsert, points=batch, wait=True)

    def set_payload(self, filter: Filter, values: dict[str, Any]) -> None:
        self._call(self.client.set_payload, payload=values, points=to_qdrant_filter(filter), wait=True)

    def delete(self, filter: Filter) -> None:
        self._call(self.client.delete, points_selector=models.FilterSelector(filter=_required_filter(filter)),
                   wait=True)

    def candidates(self, vector: np.ndarray, k: int, filter: Filter | None = None,
                   exact: bool = False) -> list[Candidate]:
        hits = self._call(self.client.query_points, query=vector.astype(np.float32).tolist(), using=SINGLE, limit=k,
                          query_filter=to_qdrant_filter(filter),
                          search_params=None if self._local else models.SearchParams(exact=exact),
                          with_payload=[ROWS], with_vectors=False).points
        return [Candidate(str(h.id), float(h.score), rows=(h.payload or {}).get(ROWS, 0)) for h in hits]

    def _retrieve(self, ids: Sequence[str], with_payload: bool | list[str], with_vectors: bool | list[str]
                  ) -> Iterator[models.Record]:
        """Records of `ids` in their order, a bounded number per request (with vectors, responses
        of `batch_size` pages stay tens of MB)."""
        step = self.options.batch_size if with_vectors else PAYLOAD_BATCH
        for start in range(0, len(ids), step):
            chunk = ids[start : start + step]
            records = self._call(self.client.retrieve, ids=list(chunk), with_payload=with_payload,
                                 with_vectors=with_vectors)
            yield from in_order(records, chunk, lambda r: r.id)

    def pages(self, items: Sequence[Candidate | str], fields: Sequence[str] = (),
              quantized: bool = False) -> list[StoredPage]:
        ids = [item if isinstance(item, str) else item.id for item in items]
        return [StoredPage(str(r.id), dict(r.payload or {}), _matrix(r))
                for r in self._retrieve(ids, with_payload=list(fields) or False, with_vectors=[MULTI])]

    def payloads(self, ids: Sequence[str], fields: Sequence[str] | None = None) -> list[dict[str, Any]]:
        return [dict(r.payload or {}) for r in self._retrieve(ids, list(fields) if fields else True, False)]

    def scan(self, filter: Filter | None = None, fields: Sequence[str] = (), vectors: bool = False,
             batch: int = 256, single: bool = False) -> Iterator[list[StoredPage]]:
        wanted = [MULTI] * vectors + [SINGLE] * single
        for records in scroll_pages(lambda offset: self._call(
                self.client.scroll, scroll_filter=to_qdrant_filter(filter), limit=batch, offset=offset,
                with_payload=list(fields) or False, with_vectors=wanted or False)):
            yield [StoredPage(str(r.id), dict(r.payload or {}), _matrix(r) if vectors else None,
                              np.asarray(named_vector(r.vector, SINGLE), dtype=np.float32) if single else None)
                   for r in records]

    def export(self, batch: int = 64) -> Iterator[list[PagePoint]]:
        for records in scroll_pages(lambda offset: self._call(
                self.client.scroll, limit=min(batch, self.options.batch_size), offset=offset, with_payload=True,
                with_vectors=True)):
            yield [PagePoint(str(r.id), _matrix(r), np.asarray(named_vector(r.vector, SINGLE), dtype=np.float32),
                             stored_payload(r.payload, CHECKSUMS),
                             {name: _terms(r.vector.get(name) if isinstance(r.vector, dict) else None)
                              for name in (LEXICAL if self.capabilities.lexical else ())}) for r in records]

    def count(self, filter: Filter | None = None) -> int:
        return self._call(self.client.count, count_filter=to_qdrant_filter(filter), exact=True).count

    def sparse_scores(self, name: str, query: Sparse, ids: Sequence[str], corpus: Filter | None = None) -> np.ndarray:
        if not query[0] or not ids:
            return np.zeros(len(ids), dtype=np.float32)
        hits = self._call(self.client.query_points, query=_sparse(query), using=name, limit=len(ids),
                          query_filter=models.Filter(must=[models.HasIdCondition(has_id=list(ids))]),
                          search_params=self._corpus(corpus), with_payload=False, with_vectors=False).points
        return scores_by_id(ids, ((hit.id, hit.score) for hit in hits))

    def idf(self, name: str, terms: Sequence[int], corpus: Filter | None = None) -> np.ndarray:
        def best(unique: list[int]) -> list[float | None]:
            results = self._call(self.client.query_batch_points, requests=[models.QueryRequest(
                query=_sparse(([term], [1.0])), using=name, limit=1, params=self._corpus(corpus), with_payload=False,
                with_vector=False) for term in unique])
            return [result.points[0].score if result.points else None for result in results]

        return term_idf(terms, best, lambda: self.count(corpus))

    def _corpus(self, corpus: Filter | None) -> models.SearchParams | None:
        """IDF over the pages `corpus` matches (local mode counts the whole collection)."""
        where = to_qdrant_filter(corpus)
        if self._local or where is None:
            return None
        return models.SearchParams(idf=models.IdfCorpusParams(corpus=where))

    def score_in_store(self, tokens: np.ndarray, single: np.ndarray, limit: int, filter: Filter | None = None,
                       exact: bool = False, bm25: Sparse | None = None, corpus: Filter | None = None) -> StoreScores:
        """One batch request: the prefilter's candidates with their single-vector scores, and the
        same candidates (a prefetch) rescored by MAX_SIM and by BM25 in the server."""
        where = to_qdrant_filter(filter)
        params = None if self._local else models.SearchParams(exact=exact)
        vector = single.astype(np.float32).tolist()

        def candidates() -> models.Prefetch:
            return models.Prefetch(query=vector, using=SINGLE, limit=limit, filter=where, params=params)

        rescore = None if self._local else models.SearchParams(
            quantization=models.QuantizationSearchParams(rescore=True))  # int8/binary: originals decide
        requests = [
            models.QueryRequest(query=vector, using=SINGLE, limit=limit, filter=where, params=params,
                                with_payload=[ROWS], with_vector=False),
            models.QueryRequest(prefetch=candidates(), query=tokens.astype(np.float32).tolist(), using=MULTI,
                                limit=limit, params=rescore, with_payload=False, with_vector=False)]
        if bm25 is not None and bm25[0]:
            requests.append(models.QueryRequest(prefetch=candidates(), query=_sparse(bm25), using=BM25, limit=limit,
                                                params=self._corpus(corpus), with_payload=False, with_vector=False))
        results = self._call(self.client.query_batch_points, requests=requests)
        # Each request runs its own prefetch: a page written between them can be in one and not
        # the other. Only pages MAX_SIM scored are ranked (BM25 leaves out pages without its words).
        scored = {str(p.id) for p in results[1].points}
        ids = [str(p.id) for p in results[0].points if str(p.id) in scored]

        def scores(result: models.QueryResponse) -> np.ndarray:
            return scores_by_id(ids, ((p.id, p.score) for p in result.points))

        counts = {str(p.id): (p.payload or {}).get(ROWS, 0) for p in results[0].points}
        rows = np.array([counts[i] for i in ids], dtype=np.int64)
        return StoreScores(ids, scores(results[0]), scores(results[1]), rows,
                           None if bm25 is None else scores(results[2]) if len(results) > 2
                           else np.zeros(len(ids), dtype=np.float32))

    def damaged(self, deep: bool = False) -> Iterator[Damage]:
        """Qdrant checks its own files; `deep` also compares each page's multi-vectors with the
        checksum taken of them at upsert (pages stored before checksums are not compared)."""
        if not deep:
            return
        for batch in self.scan(fields=("doc_id", "page", ROWS, CHECKSUMS), vectors=True, batch=self.options.batch_size):
            for page in batch:
                payload, vectors = page.payload, page.rows()
                saved = payload.get(CHECKSUMS, {}).get("float16")
                if len(vectors) != payload.get(ROWS) or (saved is not None and _crc(vectors) != saved):
                    yield Damage(page.id, payload.get("doc_id"), payload.get("page"),
                                 "its vectors do not match their checksum")

    def remove(self, ids: Sequence[str]) -> None:
        self._call(self.client.delete, points_selector=models.PointIdsList(points=list(ids)), wait=True)

    def flush(self) -> None:
        """Nothing to do: each write returns once the server has it in its write-ahead log (local
        mode: in its folder)."""

    def index_fields(self, indexes: Indexes) -> None:
        if self._local:  # local mode has no payload indexes
            return
        known = self._call(self.client.get_collection).payload_schema
        for name, kind in indexes.items():
            if name not in known:
                self._call(self.client.create_payload_index, field_name=name, field_schema=INDEX_KINDS[kind])

    def optimize(self) -> None:
        """Nothing to do: the server's optimizers run by themselves."""

    def close(self) -> None:
        self.client.close()


def _sparse(terms: Sparse) -> models.SparseVector:
    return models.SparseVector(indices=terms[0], values=terms[1])


def _terms(vector: Any) -> Sparse:
    """(ids, weights) of a stored sparse vector (none stored: an empty one)."""
    return (list(vector.indices), list(vector.values)) if vector is not None else ([], [])


def _crc(vectors: np.ndarray) -> int:
    """crc32 of a page's vectors as the collection keeps them (float16, row by row)."""
    return zlib.crc32(np.ascontiguousarray(vectors, dtype=np.float16).tobytes())


def _matrix(record: models.Record) -> np.ndarray:
    """A record's multi-vectors as float16, the collection's datatype (local mode keeps float32)."""
    return np.array(named_vector(record.vector, MULTI), dtype=np.float16)
