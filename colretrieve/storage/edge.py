"""The embedded default store: a qdrant-edge shard inside the index directory.

qdrant-edge runs Qdrant's storage engine in-process: no server, persistent with a write-ahead
log, and the same collection layout (named multi-vector with MAX_SIM, payload indexes) a
Qdrant server uses, so an index can later move to a cluster unchanged. Beside the shard, a
memory-mapped copy of the multi-vectors (storage/vectorfile.py) feeds MaxSim without
converting every number to a Python float, in the CPU kernel's panel layout (scoring/layout.py;
stores made before it keep their rows); an int8 or binary store keeps a second, smaller copy
in the same row order, which MaxSim reads first.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import qdrant_edge as qe

from ..errors import IndexConfigError, IndexLockedError
from ..scoring.layout import PANEL, PanelPage, as_rows
from .base import (
    INTEGER_FIELDS,
    KEYWORD_FIELDS,
    MULTI,
    ROWS,
    SINGLE,
    Filter,
    PagePoint,
    StoreSchema,
    in_order,
    scroll_pages,
    stored_payload,
    translate_filter,
)
from .vectorfile import VectorFile

SHARD_DIR = "shard"
PANEL_FILE = "vectors.panels.f16"
VECTOR_FILE = "vectors.f16"  # row by row: stores made before the panel layout, read as they are
SCHEMA_FILE = "schema.json"
#: Payload field that, with `n_vectors`, locates a page's rows in the vector file.
ROW = "vector_row"


def to_edge_filter(filter: Filter | None) -> qe.Filter | None:
    return translate_filter(filter, lambda k, v: qe.FieldCondition(k, match=qe.MatchValue(v)),
                            lambda k, vs: qe.FieldCondition(k, match=qe.MatchAny(vs)),
                            lambda conditions: qe.Filter(must=conditions))


def float16_file(directory: Path) -> Path:
    """A store's float16 vector file: rows where a store made before the panel layout has them,
    else panels (what a new store writes)."""
    return directory / VECTOR_FILE if (directory / VECTOR_FILE).exists() else directory / PANEL_FILE


class EdgeStore:
    """A store in directory `path`; make one with `create`, reopen it with `open`.

    The schema is saved beside the shard (SCHEMA_FILE), so `open` refuses another encoder's.
    """

    def __init__(self, path: Path, shard: qe.EdgeShard, schema: StoreSchema, vectors: str = "float16") -> None:
        self.path = path
        self._shard = shard
        file = float16_file(path)
        panels = file.name == PANEL_FILE
        self._vectors = VectorFile(file, schema.multi_dim, panels=panels)
        self._quantized = None
        # Where the last prefilter's hits lie in the vector file: the hits bring it along, which
        # spares `multivectors` a second lookup (~6 ms for 256 pages). Replaced by each
        # prefilter; an upsert or delete drops what it may have moved.
        self._located: dict[str, tuple[int, int]] = {}
        if vectors != "float16":
            self._quantized = VectorFile(path / f"vectors.{vectors}", schema.multi_dim, vectors,
                                         align=PANEL if panels else 1)
            rows = min(self._vectors.rows, self._quantized.rows)  # a crash between the two appends
            self._vectors.truncate(rows)
            self._quantized.truncate(rows)

    @classmethod
    def create(cls, path: Path, schema: StoreSchema, vectors: str = "float16") -> "EdgeStore":
        """A new store; `vectors` "int8" or "binary" adds a copy in that form (scoring/quantization.py)."""
        if (path / SHARD_DIR).exists():
            raise IndexConfigError(f"{path} already holds a store; open it instead")
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
        (path / SCHEMA_FILE).write_text(json.dumps(asdict(schema)) + "\n")
        return cls(path, shard, schema, vectors)

    @classmethod
    def open(cls, path: Path, schema: StoreSchema, vectors: str = "float16") -> "EdgeStore":
        if not (path / SHARD_DIR).is_dir():
            raise IndexConfigError(f"{path}: no store here")
        saved = path / SCHEMA_FILE  # absent in stores made before schemas were saved
        schema.check(json.loads(saved.read_text()) if saved.exists() else None, f"the store at {path}")
        try:
            shard = qe.EdgeShard.load(str(path / SHARD_DIR))
        except Exception as exc:  # qdrant-edge raises a bare exception class for a held WAL
            if "WouldBlock" in str(exc):
                raise IndexLockedError(f"{path}: the store is open in another process") from exc
            raise
        return cls(path, shard, schema, vectors)

    def upsert(self, points: Sequence[PagePoint]) -> None:
        located = []
        for p in points:
            row = self._vectors.append(p.vectors)
            if self._quantized is not None:
                self._quantized.append(p.vectors)
            located.append(qe.Point(p.id, *p.parts({ROW: row})))
            self._located.pop(p.id, None)
        for copy in (self._vectors, self._quantized):  # rows are on disk before any payload points at them
            if copy is not None:
                copy.sync()
        self._shard.update(qe.UpdateOperation.upsert_points(located))

    def set_payload(self, filter: Filter, values: dict[str, Any]) -> None:
        self._shard.update(qe.UpdateOperation.set_payload_by_filter(to_edge_filter(filter), values))

    def delete(self, filter: Filter) -> None:
        self._located.clear()
        self._shard.update(qe.UpdateOperation.delete_points_by_filter(to_edge_filter(filter)))

    def prefilter(self, vector: np.ndarray, k: int, filter: Filter | None = None,
                  exact: bool = False) -> tuple[list[str], np.ndarray]:
        hits = self._shard.query(qe.QueryRequest(
            limit=k, query=qe.Query.Nearest(vector.astype(np.float32).tolist(), using=SINGLE),
            filter=to_edge_filter(filter), with_payload=qe.PayloadSelector.Include([ROW, ROWS]), with_vector=False,
            params=qe.SearchParams(exact=exact)))
        self._located = {str(h.id): (h.payload[ROW], h.payload[ROWS]) for h in hits}
        return [str(h.id) for h in hits], np.array([h.score for h in hits], dtype=np.float32)

    def multivectors(self, ids: Sequence[str], quantized: bool = False) -> list[np.ndarray | PanelPage]:
        source = self._quantized if quantized and self._quantized is not None else self._vectors
        unknown = [i for i in ids if i not in self._located]
        found = {i: (p[ROW], p[ROWS]) for i, p in zip(unknown, self.payloads(unknown, (ROW, ROWS)))} if unknown else {}
        return [source.read(*(self._located.get(i) or found[i])) for i in ids]

    def payloads(self, ids: Sequence[str], fields: Sequence[str] | None = None) -> list[dict[str, Any]]:
        selector = qe.PayloadSelector.Include(list(fields)) if fields else True
        records = self._shard.retrieve(list(ids), with_payload=selector, with_vector=False)
        return [dict(r.payload or {}) for r in in_order(records, ids, lambda r: r.id)]

    def scan(self, filter: Filter | None = None, fields: Sequence[str] = (), vectors: bool = False,
             batch: int = 256) -> Iterator[list[tuple[str, dict[str, Any], np.ndarray | None]]]:
        wanted = list(fields) + ([ROW, ROWS] if vectors else [])
        selector = qe.PayloadSelector.Include(wanted) if wanted else False
        for records in scroll_pages(lambda offset: self._shard.scroll(qe.ScrollRequest(
                offset=offset, limit=batch, filter=to_edge_filter(filter), with_payload=selector,
                with_vector=False))):
            yield [(str(r.id), dict(r.payload or {}),
                    as_rows(self._vectors.read(r.payload[ROW], r.payload[ROWS])) if vectors else None)
                   for r in records]

    def export(self, batch: int = 64) -> Iterator[list[PagePoint]]:
        for records in scroll_pages(lambda offset: self._shard.scroll(qe.ScrollRequest(
                offset=offset, limit=batch, with_payload=True, with_vector=[SINGLE]))):
            yield [PagePoint(str(r.id), as_rows(self._vectors.read(r.payload[ROW], r.payload[ROWS])),
                             np.asarray(r.vector[SINGLE], dtype=np.float32), stored_payload(r.payload, ROW))
                   for r in records]

    def count(self, filter: Filter | None = None) -> int:
        return self._shard.count(qe.CountRequest(filter=to_edge_filter(filter), exact=True))

    def flush(self) -> None:
        self._shard.flush()

    def close(self) -> None:
        for copy in (self._vectors, self._quantized):
            if copy is not None:
                copy.close()
        self._shard.close()
