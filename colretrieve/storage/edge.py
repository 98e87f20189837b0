"""The embedded default store: a qdrant-edge shard inside the index directory.

qdrant-edge runs Qdrant's storage engine in-process: no server, persistent with a write-ahead
log, and the same collection layout (named multi-vector with MAX_SIM, payload indexes) a
Qdrant server uses, so an index can later move to a cluster unchanged. Beside the shard, a
memory-mapped copy of the multi-vectors (storage/vectorfile.py) feeds MaxSim without
converting every number to a Python float.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import qdrant_edge as qe

from ..errors import IndexLockedError
from .base import INTEGER_FIELDS, KEYWORD_FIELDS, Filter, PagePoint, StoreSchema
from .vectorfile import VectorFile

MULTI = "patches"
SINGLE = "page"
SHARD_DIR = "shard"
VECTOR_FILE = "vectors.f16"
#: Payload fields that locate a page's rows in the vector file.
ROW, ROWS = "vector_row", "n_vectors"


def _condition(key: str, value: Any) -> qe.FieldCondition:
    if isinstance(value, (list, tuple, set)):
        return qe.FieldCondition(key, match=qe.MatchAny(list(value)))
    return qe.FieldCondition(key, match=qe.MatchValue(value))


def to_edge_filter(filter: Filter | None) -> qe.Filter | None:
    if not filter:
        return None
    return qe.Filter(must=[_condition(k, v) for k, v in filter.items()])


class EdgeStore:
    """A store in directory `path`; make one with `create`, reopen it with `open`."""

    def __init__(self, path: Path, shard: qe.EdgeShard, schema: StoreSchema) -> None:
        self.path = path
        self._shard = shard
        self._vectors = VectorFile(path / VECTOR_FILE, schema.multi_dim)

    @classmethod
    def create(cls, path: Path, schema: StoreSchema) -> "EdgeStore":
        config = qe.EdgeConfig(vectors={
            # Vectors arrive L2-normalised, so Dot is cosine without a second normalisation;
            # float16 halves the bytes read per query, MaxSim accumulates in float32.
            # Cold: colretrieve scores from its own memory map, so Qdrant's copy need not sit in RAM.
            MULTI: qe.EdgeVectorParams(
                size=schema.multi_dim, distance=qe.Distance.Dot,
                multivector_config=qe.MultiVectorConfig(qe.MultiVectorComparator.MaxSim),
                datatype=qe.VectorStorageDatatype.Float16, memory=qe.Memory.Cold),
            SINGLE: qe.EdgeVectorParams(size=schema.single_dim, distance=qe.Distance.Dot),
        })
        path.mkdir(parents=True, exist_ok=True)
        shard = qe.EdgeShard.create(str(path / SHARD_DIR), config)
        for name in KEYWORD_FIELDS:
            shard.update(qe.UpdateOperation.create_field_index(name, qe.PayloadSchemaType.Keyword))
        for name in INTEGER_FIELDS:
            shard.update(qe.UpdateOperation.create_field_index(name, qe.PayloadSchemaType.Integer))
        return cls(path, shard, schema)

    @classmethod
    def open(cls, path: Path, schema: StoreSchema) -> "EdgeStore":
        try:
            shard = qe.EdgeShard.load(str(path / SHARD_DIR))
        except Exception as exc:  # qdrant-edge raises a bare exception class for a held WAL
            if "WouldBlock" in str(exc):
                raise IndexLockedError(f"{path}: the store is open in another process") from exc
            raise
        return cls(path, shard, schema)

    def upsert(self, points: Sequence[PagePoint]) -> None:
        located = []
        for p in points:
            row = self._vectors.append(p.vectors)
            located.append(qe.Point(p.id, {MULTI: p.vectors.tolist(), SINGLE: p.summary.tolist()},
                                    {**p.payload, ROW: row, ROWS: len(p.vectors)}))
        self._vectors.sync()  # rows are on disk before any payload points at them
        self._shard.update(qe.UpdateOperation.upsert_points(located))

    def set_payload(self, filter: Filter, values: dict[str, Any]) -> None:
        self._shard.update(qe.UpdateOperation.set_payload_by_filter(to_edge_filter(filter), values))

    def delete(self, filter: Filter) -> None:
        self._shard.update(qe.UpdateOperation.delete_points_by_filter(to_edge_filter(filter)))

    def prefilter(self, vector: np.ndarray, k: int, filter: Filter | None = None,
                  exact: bool = False) -> tuple[list[str], np.ndarray]:
        hits = self._shard.query(qe.QueryRequest(
            limit=k, query=qe.Query.Nearest(vector.astype(np.float32).tolist(), using=SINGLE),
            filter=to_edge_filter(filter), with_payload=False, with_vector=False,
            params=qe.SearchParams(exact=exact)))
        return [str(h.id) for h in hits], np.array([h.score for h in hits], dtype=np.float32)

    def multivectors(self, ids: Sequence[str]) -> list[np.ndarray]:
        return [self._vectors.read(p[ROW], p[ROWS]) for p in self.payloads(ids, (ROW, ROWS))]

    def payloads(self, ids: Sequence[str], fields: Sequence[str] | None = None) -> list[dict[str, Any]]:
        selector = qe.PayloadSelector.Include(list(fields)) if fields else True
        records = {str(r.id): r for r in self._shard.retrieve(list(ids), with_payload=selector, with_vector=False)}
        return [dict(records[i].payload or {}) for i in ids]

    def scan(self, filter: Filter | None = None, fields: Sequence[str] = (), vectors: bool = False,
             batch: int = 256) -> Iterator[list[tuple[str, dict[str, Any], np.ndarray | None]]]:
        wanted = list(fields) + ([ROW, ROWS] if vectors else [])
        selector = qe.PayloadSelector.Include(wanted) if wanted else False
        offset = None
        while True:
            records, offset = self._shard.scroll(qe.ScrollRequest(
                offset=offset, limit=batch, filter=to_edge_filter(filter), with_payload=selector,
                with_vector=False))
            if records:
                yield [(str(r.id), dict(r.payload or {}),
                        self._vectors.read(r.payload[ROW], r.payload[ROWS]) if vectors else None)
                       for r in records]
            if offset is None:
                return

    def count(self, filter: Filter | None = None) -> int:
        return self._shard.count(qe.CountRequest(filter=to_edge_filter(filter), exact=True))

    def flush(self) -> None:
        self._shard.flush()

    def close(self) -> None:
        self._vectors.close()
        self._shard.close()
