"""The Store contract: what the index needs from a vector database, and nothing more.

Filters are plain dicts, `{"field": value}` or `{"field": [v1, v2]}` (any of), so callers
never import a backend's filter classes; each store translates them with `translate_filter`.

Both stores (edge.py, qdrant.py) keep the same Qdrant collection layout, defined here once:
named vectors MULTI and SINGLE, payload indexes on KEYWORD_FIELDS and INTEGER_FIELDS, and
`n_vectors` in every payload.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

import numpy as np

from ..errors import IndexConfigError, IndexCorruptError
from ..scoring.layout import PanelPage

Filter = dict[str, Any]

#: Payload fields every page carries; the indexed ones can be filtered on cheaply.
#: `state` is "partial" until a document's last page is stored, then "complete". (A keyword,
#: not a bool: qdrant-edge 0.9's Python binding matches True as the integer 1.)
KEYWORD_FIELDS = ("doc_id", "path", "file", "state")
INTEGER_FIELDS = ("page",)
PARTIAL, COMPLETE = "partial", "complete"

#: Named vectors: a page's multi-vectors (MaxSim) and its single vector (the prefilter).
MULTI, SINGLE = "patches", "page"
#: Payload field holding the row count of a page's multi-vectors.
ROWS = "n_vectors"
#: Payload field holding a page's vector checksums (crc32), by the form they were taken of:
#: written with the page, compared by a deep check.
CHECKSUMS = "checksums"

C = TypeVar("C")
F = TypeVar("F")
R = TypeVar("R")


def point_id(doc_id: str, page_no: int) -> str:
    """Deterministic id, so storing a page twice overwrites instead of duplicating it."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"colretrieve:{doc_id}#{page_no}"))


@dataclass
class StoreSchema:
    """What a store's vectors are: their widths and the encoder that made them.

    Saved with the store, so reopening it for another encoder (another vector space) fails
    instead of ranking pages by meaningless dot products.
    """

    multi_dim: int
    single_dim: int
    encoder: str = ""

    def __str__(self) -> str:
        return f"encoder {self.encoder!r} ({self.multi_dim}-d multi-vectors, {self.single_dim}-d single vector)"

    def check(self, saved: dict[str, Any] | None, where: str) -> None:
        """Raise IndexConfigError if the schema `saved` at `where` is not this one
        (None: a store made before schemas were saved, trusted as it is)."""
        if saved is None:
            return
        try:
            schema = StoreSchema(**saved)
        except TypeError:
            raise IndexCorruptError(f"{where} has a damaged schema ({saved!r:.80})") from None
        if schema != self:
            raise IndexConfigError(f"{where} was built for {schema}, not {self}")


@dataclass
class PagePoint:
    """One page as stored: its multi-vectors, its single vector and its payload.

    Stores add `n_vectors` (the row count of `vectors`) to the payload they keep.
    """

    id: str
    vectors: np.ndarray  # (n_vectors, multi_dim)
    summary: np.ndarray  # (single_dim,)
    payload: dict[str, Any] = field(default_factory=dict)

    def parts(self, extra: dict[str, Any] | None = None) -> tuple[dict[str, list], dict[str, Any]]:
        """(named vectors as lists, payload with `n_vectors` and `extra`): what a store writes."""
        vectors = {MULTI: self.vectors.tolist(), SINGLE: self.summary.tolist()}
        return vectors, {**self.payload, ROWS: len(self.vectors), **(extra or {})}


@dataclass(frozen=True)
class Damage:
    """A stored page a check found damaged: its point id, what its payload still tells, and why."""

    id: str
    doc_id: str | None
    page: int | None
    reason: str


def stored_payload(payload: dict[str, Any] | None, *internal: str) -> dict[str, Any]:
    """A stored payload without the fields a store adds itself (`n_vectors`, `internal`)."""
    return {k: v for k, v in (payload or {}).items() if k not in (ROWS, *internal)}


def translate_filter(filter: Filter | None, match: Callable[[str, Any], C],
                     match_any: Callable[[str, list[Any]], C], all_of: Callable[[list[C]], F]) -> F | None:
    """A plain filter dict in a backend's classes: every key must match (a list: any of its
    values). One reading of the dict for all stores; each passes its own constructors."""
    if not filter:
        return None
    return all_of([match_any(k, list(v)) if isinstance(v, (list, tuple, set)) else match(k, v)
                   for k, v in filter.items()])


def in_order(records: Iterable[R], ids: Sequence[str], key: Callable[[R], Any]) -> list[R]:
    """`records` (returned in the backend's order) rearranged into the order of `ids`."""
    by_id = {str(key(r)): r for r in records}
    return [by_id[i] for i in ids]


def scroll_pages(scroll: Callable[[Any], tuple[list[R], Any]]) -> Iterator[list[R]]:
    """Every non-empty page of a scroll: `scroll(offset)` returns (records, next offset or None)."""
    offset = None
    while True:
        records, offset = scroll(offset)
        if records:
            yield records
        if offset is None:
            return


class Store(Protocol):
    """Persistent page storage with a single-vector prefilter."""

    #: The caller's settings saved when the store was made (an index keeps its config there).
    metadata: dict[str, Any]

    def upsert(self, points: Sequence[PagePoint]) -> None: ...

    def set_payload(self, filter: Filter, values: dict[str, Any]) -> None:
        """Set `values` on every point matching `filter` (e.g. a document's completion mark)."""

    def delete(self, filter: Filter) -> None: ...

    def prefilter(self, vector: np.ndarray, k: int, filter: Filter | None = None,
                  exact: bool = False) -> tuple[list[str], np.ndarray]:
        """Ids of the `k` best points by single-vector dot product, best first, and their scores
        (`exact`: no approximate index, every point compared)."""

    def multivectors(self, ids: Sequence[str], quantized: bool = False) -> list[np.ndarray | PanelPage]:
        """Each point's vectors as the store keeps them, in the order of `ids`: an (n_vectors, dim)
        array, or a `PanelPage` where they are kept in the kernel's panel layout (`as_rows` gives
        the array); `quantized`: the store's int8/binary copy where it keeps one (decoded to
        float32), else the float vectors."""

    def payloads(self, ids: Sequence[str], fields: Sequence[str] | None = None) -> list[dict[str, Any]]:
        """Each point's payload (only `fields` when given), in the order of `ids`."""

    def scan(self, filter: Filter | None = None, fields: Sequence[str] = (), vectors: bool = False,
             batch: int = 256) -> Iterator[list[tuple[str, dict[str, Any], np.ndarray | None]]]:
        """Every matching point in batches: (id, payload with `fields`, multi-vectors or None)."""

    def export(self, batch: int = 64) -> Iterator[list[PagePoint]]:
        """Every point as it was upserted (multi-vectors, single vector, payload), in batches:
        what another store needs to hold the same pages."""

    def count(self, filter: Filter | None = None) -> int: ...

    def damaged(self, deep: bool = False) -> Iterator[Damage]:
        """Pages whose payload or vectors cannot be read back as written (`deep`: every vector
        compared with its checksum; else only what lengths can tell)."""

    def remove(self, ids: Sequence[str]) -> None:
        """Delete the points `ids`, however damaged their payloads are (a repair)."""

    def flush(self) -> None:
        """Make every write so far durable (e.g. after a document's completion mark)."""

    def close(self) -> None: ...
