"""Many teams in one index: a tenant's view of a store sees, writes and counts only its pages.

Every page a tenant stores carries `tenant` in its payload (a keyword index with Qdrant's
tenant flag, so each tenant's pages are laid out together) and a point id of its own, so
two tenants storing the same file keep two copies and neither can overwrite the other's.
Every filter the view passes down gains the tenant; ids reach the view only from its own
results. Corpus statistics (BM25, IDF) are counted over the tenant's pages alone. Without a
tenant, an index is one team's and sees every page.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import replace
from typing import Any, cast

import numpy as np

from .catalog import TENANT
from .errors import ColretrieveError
from .storage import Candidate, Filter, Indexes, PagePoint, ScoringStore, Store, StoredPage, StoreScores
from .vectors.sparse import Sparse

#: What a tenant name may be: it is typed on command lines and sent in requests.
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def check_tenant(name: str) -> str:
    if not NAME.fullmatch(name):
        raise ColretrieveError(f"tenant {name!r}: use 1-64 letters, digits, '.', '_' or '-', starting with a "
                               "letter or digit")
    return name


class TenantView:
    """`store` as tenant `tenant` sees it (a Store itself)."""

    def __init__(self, store: Store, tenant: str) -> None:
        self.store = store
        self.tenant = check_tenant(tenant)
        self.metadata = store.metadata
        self.capabilities = store.capabilities

    def _only(self, filter: Filter | None) -> Filter:
        return {**(filter or {}), TENANT: self.tenant}

    def point_id(self, page_id: str) -> str:
        """The tenant's own id for a page the catalog names `page_id`."""
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"colretrieve-tenant:{self.tenant}/{page_id}"))

    def upsert(self, points: Sequence[PagePoint]) -> None:
        self.store.upsert([replace(p, id=self.point_id(p.id), payload={**p.payload, TENANT: self.tenant})
                           for p in points])

    def set_payload(self, filter: Filter, values: dict[str, Any]) -> None:
        self.store.set_payload(self._only(filter), values)

    def delete(self, filter: Filter) -> None:
        self.store.delete(self._only(filter))

    def candidates(self, vector: np.ndarray, k: int, filter: Filter | None = None,
                   exact: bool = False) -> list[Candidate]:
        return self.store.candidates(vector, k, self._only(filter), exact)

    def pages(self, items: Sequence[Candidate | str], fields: Sequence[str] = (),
              quantized: bool = False) -> list[StoredPage]:
        return self.store.pages(items, fields, quantized)

    def payloads(self, ids: Sequence[str], fields: Sequence[str] | None = None) -> list[dict[str, Any]]:
        return self.store.payloads(ids, fields)

    def scan(self, filter: Filter | None = None, fields: Sequence[str] = (), vectors: bool = False,
             batch: int = 256, single: bool = False) -> Iterator[list[StoredPage]]:
        return self.store.scan(self._only(filter), fields, vectors, batch, single)

    def export(self, batch: int = 64) -> Iterator[list[PagePoint]]:
        raise ColretrieveError("an index is exported whole, not one tenant's view of it")

    def count(self, filter: Filter | None = None) -> int:
        return self.store.count(self._only(filter))

    def sparse_scores(self, name: str, query: Sparse, ids: Sequence[str], corpus: Filter | None = None) -> np.ndarray:
        return self.store.sparse_scores(name, query, ids, self._only(corpus))

    def idf(self, name: str, terms: Sequence[int], corpus: Filter | None = None) -> np.ndarray:
        return self.store.idf(name, terms, self._only(corpus))

    def score_in_store(self, tokens: np.ndarray, single: np.ndarray, limit: int, filter: Filter | None = None,
                       exact: bool = False, bm25: Sparse | None = None, corpus: Filter | None = None) -> StoreScores:
        scoring = cast(ScoringStore, self.store)  # called only where capabilities.scores_in_store says so
        return scoring.score_in_store(tokens, single, limit, self._only(filter), exact, bm25, self._only(corpus))

    def damaged(self, deep: bool = False) -> Iterator[Any]:
        return self.store.damaged(deep)

    def remove(self, ids: Sequence[str]) -> None:
        self.store.remove(ids)

    def flush(self) -> None:
        self.store.flush()

    def index_fields(self, indexes: Indexes) -> None:
        self.store.index_fields(indexes)

    def optimize(self) -> None:
        self.store.optimize()

    def close(self) -> None:
        self.store.close()
