"""`colretrieve check`: is every stored page readable as written, and mend what is not.

A check reads every page's payload and compares each page's place in the vector files with
their lengths; a deep check also recomputes every page's checksum. A repair rebuilds a lost or
damaged index.json from the copy the store keeps, drops the damaged pages, and marks their
documents incomplete, so the next ingest of the same files encodes only what is missing.
Nothing else is changed: pages that read back as written stay as they are.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import catalog
from .errors import ColretrieveError, IndexCorruptError
from .location import Location
from .settings import IndexConfig
from .storage.base import Damage


@dataclass
class CheckReport:
    """What a check found (`damaged`, `incomplete`: documents marked whole that lack pages) and,
    with repair, what it mended."""

    index: str
    deep: bool
    pages: int = 0
    damaged: list[Damage] = field(default_factory=list)
    incomplete: list[str] = field(default_factory=list)
    config_rebuilt: bool = False
    repaired: bool = False

    @property
    def healthy(self) -> bool:
        """True if nothing was wrong, or everything wrong was repaired."""
        return self.repaired or not (self.damaged or self.incomplete)

    def to_dict(self) -> dict[str, Any]:
        return {"index": self.index, "deep": self.deep, "pages": self.pages, "healthy": self.healthy,
                "config_rebuilt": self.config_rebuilt, "repaired": self.repaired,
                "incomplete_documents": self.incomplete,
                "damaged": [{"id": d.id, "doc_id": d.doc_id, "page": d.page, "reason": d.reason}
                            for d in self.damaged]}


def check_index(target: str | Path, *, deep: bool = False, repair: bool = False, grpc: bool = False) -> CheckReport:
    """Check the index at `target` (see the module docstring); `repair` mends what it finds."""
    location = Location.parse(target, grpc)
    report = CheckReport(str(location), deep)
    if repair and location.directory is not None:
        try:
            lost = IndexConfig.load(location.directory, location.repair) is None
        except IndexCorruptError:
            lost = True
        if lost:
            location.rebuild_config()
            report.config_rebuilt = True
    with location.open(writable=repair, verify=False) as held:
        store = held.store
        if repair and held.config.tenants:  # marks go by document, and teams may share one: not yet
            raise ColretrieveError(f"{location}: an index shared by teams cannot be repaired yet")
        report.damaged = list(store.damaged(deep))
        if repair and report.damaged:
            store.remove([d.id for d in report.damaged])
        report.incomplete = catalog.marked_whole_but_short(store)
        reopened = sorted(set(report.incomplete) | {d.doc_id for d in report.damaged if d.doc_id})
        if repair and reopened:  # the next ingest encodes the missing pages again
            catalog.mark(store, reopened, catalog.PARTIAL)
        if repair:
            store.flush()
            report.repaired = True
        report.pages = store.count()
    return report

