"""Copy an index to another store (a directory, a Qdrant server) without encoding anything again.

Pages are copied as stored (multi-vectors, single vector, payload), or compressed on the way
(token pooling, int8 / binary vector files), so a compression can be tried on an index
without encoding it again. Every copied page is written "partial" and documents are marked
complete only at the end, so a reader of the target never sees half a document as whole.
Point ids are deterministic, so an interrupted copy is resumed by running it again: pages
already in the target are skipped.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import catalog
from .errors import ColretrieveError, IndexConfigError
from .location import Location
from .scoring.pooling import pool_tokens
from .settings import MIGRATE_BATCH, STORE, IndexConfig
from .storage import Store
from .storage.collection import QdrantOptions

#: Settings that decide what the stored vectors mean; the target must agree on all of them.
SAME = ("encoder_id", "dim", "single_dim", "prefilter_id", "pool_factor", "scoring", "format_version")


@dataclass
class MigrateReport:
    pages: int = 0
    skipped: int = 0
    documents: int = 0
    seconds: float = 0.0


def migrate(source: str | Path, target: str | Path, *, store: str = STORE, qdrant: QdrantOptions | None = None,
            pool_factor: int | None = None, vectors: str | None = None, grpc: bool = False, batch: int = MIGRATE_BATCH,
            progress: bool = False) -> MigrateReport:
    """Copy the index at `source` to `target` (a directory, holding its pages in `store`, or a
    server URL; see `Index.create`). `qdrant` lays out a new Qdrant collection; `pool_factor`
    pools an unpooled source's pages and `vectors` picks the target's vector file (embedded
    store), both for a new target, as `Index.create` takes them."""
    report = MigrateReport()
    started = time.perf_counter()
    with Location.parse(source, grpc).open() as src:
        config = src.config
        if config.tenants:  # completion marks go by document, and teams may share one: not yet
            raise ColretrieveError(f"{source}: an index shared by teams cannot be migrated yet")
        location = Location.parse(target, grpc)
        pool = pool_factor or config.pool_factor
        if pool != config.pool_factor and config.pool_factor != 1:
            raise ColretrieveError(f"{source} is pooled by {config.pool_factor} already; pool from an "
                                   "unpooled index")
        wanted = dataclasses.replace(config, pool_factor=pool)
        # a new target takes the source's settings; no model is loaded
        with location.open() if location.exists() else location.create(store, vectors, lambda: wanted, qdrant) as dst:
            _check_compatible(wanted, dst.config, location)
            report = _copy(src.store, dst.store, batch, progress, report, pool if pool != config.pool_factor else 1)
    report.seconds = time.perf_counter() - started
    return report


def _check_compatible(src: IndexConfig, dst: IndexConfig, location: Location) -> None:
    differ = [name for name in SAME if getattr(src, name) != getattr(dst, name)]
    if differ:
        name = differ[0]
        raise IndexConfigError(f"{location} holds another index ({name} {getattr(dst, name)!r}, "
                               f"not {getattr(src, name)!r}); migrate into a new one")


def _copy(src: Store, dst: Store, batch: int, progress: bool, report: MigrateReport, pool: int) -> MigrateReport:
    from tqdm.auto import tqdm

    have = {page.id for chunk in dst.scan(batch=1024) for page in chunk}
    complete: set[str] = set()
    with tqdm(total=src.count(), unit="page", desc="migrate", disable=not progress, dynamic_ncols=True) as bar:
        for points in src.export(batch):
            fresh = [p for p in points if p.id not in have]
            for point in fresh if pool > 1 else ():
                point.vectors, cells = pool_tokens(point.vectors.astype(np.float32),
                                                   np.asarray(point.payload["cells"]), pool)
                point.payload["cells"] = cells.tolist()
            for point in points:
                if point.payload.get("state") == catalog.COMPLETE:
                    complete.add(point.payload["doc_id"])
                point.payload["state"] = catalog.PARTIAL
            if fresh:
                dst.upsert(fresh)
            report.pages += len(fresh)
            report.skipped += len(points) - len(fresh)
            bar.update(len(points))
    done = sorted(complete)
    catalog.mark(dst, done, catalog.COMPLETE)  # the completion marks, written last
    dst.flush()
    report.documents = len(done)
    return report
