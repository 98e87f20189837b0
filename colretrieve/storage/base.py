"""The Store contract: what the index needs from a vector database, and nothing more.

Filters are plain dicts, `{"field": value}` or `{"field": [v1, v2]}` (any of), so callers
never import a backend's filter classes; each store translates them.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

Filter = dict[str, Any]

#: Payload fields every page carries; the indexed ones can be filtered on cheaply.
#: `state` is "partial" until a document's last page is stored, then "complete". (A keyword,
#: not a bool: qdrant-edge 0.9's Python binding matches True as the integer 1.)
KEYWORD_FIELDS = ("doc_id", "path", "file", "state")
INTEGER_FIELDS = ("page",)
PARTIAL, COMPLETE = "partial", "complete"


def point_id(doc_id: str, page_no: int) -> str:
    """Deterministic id, so storing a page twice overwrites instead of duplicating it."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"colretrieve:{doc_id}#{page_no}"))


@dataclass
class StoreSchema:
    """Vector widths a store is created with."""

    multi_dim: int
    single_dim: int


@dataclass
class PagePoint:
    """One page as stored: its multi-vectors, its single vector and its payload.

    Stores add `n_vectors` (the row count of `vectors`) to the payload they keep.
    """

    id: str
    vectors: np.ndarray  # (n_vectors, multi_dim)
    summary: np.ndarray  # (single_dim,)
    payload: dict[str, Any] = field(default_factory=dict)


class Store(Protocol):
    """Persistent page storage with a single-vector prefilter."""

    def upsert(self, points: Sequence[PagePoint]) -> None: ...

    def set_payload(self, filter: Filter, values: dict[str, Any]) -> None:
        """Set `values` on every point matching `filter` (e.g. a document's completion mark)."""

    def delete(self, filter: Filter) -> None: ...

    def prefilter(self, vector: np.ndarray, k: int, filter: Filter | None = None,
                  exact: bool = False) -> tuple[list[str], np.ndarray]:
        """Ids of the `k` best points by single-vector dot product, best first, and their scores
        (`exact`: no approximate index, every point compared)."""

    def multivectors(self, ids: Sequence[str]) -> list[np.ndarray]:
        """Each point's (n_vectors, dim) array, in the order of `ids`."""

    def payloads(self, ids: Sequence[str], fields: Sequence[str] | None = None) -> list[dict[str, Any]]:
        """Each point's payload (only `fields` when given), in the order of `ids`."""

    def scan(self, filter: Filter | None = None, fields: Sequence[str] = (), vectors: bool = False,
             batch: int = 256) -> Iterator[list[tuple[str, dict[str, Any], np.ndarray | None]]]:
        """Every matching point in batches: (id, payload with `fields`, multi-vectors or None)."""

    def count(self, filter: Filter | None = None) -> int: ...

    def close(self) -> None: ...
