"""The Store contract: what the index needs from a vector database, and nothing more.

Filters are plain dicts, so callers never import a backend's filter classes; each store
translates them with `translate_filter`. Every key must hold: `{"field": value}` (equal),
`{"field": [v1, v2]}` (any of them), or a dict of conditions: `{"year": {"gte": 2020, "lt":
2024}}` (a range of numbers), `{"lang": {"not": ["de", "it"]}}` (none of them), `{"draft":
{"exists": False}}` (the field holds no value).

Both stores (edge.py, qdrant.py) keep the same Qdrant collection layout, defined here once:
named vectors MULTI and SINGLE, payload indexes on the fields the caller names at `create`,
and `n_vectors` in every payload. What a page's payload means is the caller's (catalog.py).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

import numpy as np

from ..errors import ColretrieveError, IndexConfigError, IndexCorruptError
from ..vectors.layout import PageArray, as_rows
from ..vectors.sparse import Sparse

Filter = dict[str, Any]
#: Payload indexes: field name -> "keyword", "integer", "float", "bool" or "tenant" (a keyword
#: that partitions the pages, Qdrant's is_tenant).
Indexes = Mapping[str, str]

#: Named vectors: a page's multi-vectors (MaxSim) and its single vector (the prefilter).
MULTI, SINGLE = "patches", "page"
#: Named sparse vectors of a store with corpus statistics (`StoreSchema.lexical`), each weighed
#: by IDF in the store: a page's words with BM25 weights, and its encoder vocabulary ids.
BM25, TERMS = "bm25", "terms"
LEXICAL = (BM25, TERMS)
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
    #: The store keeps the LEXICAL sparse vectors (stores made before them do not).
    lexical: bool = False

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
    #: Sparse vectors by name (LEXICAL, where the store keeps them).
    sparse: dict[str, Sparse] = field(default_factory=dict)

    def parts(self, sparse: Callable[[Sparse], Any], extra: dict[str, Any] | None = None, multi: bool = True
              ) -> tuple[dict[str, Any], dict[str, Any]]:
        """(named vectors, payload with `n_vectors` and `extra`): what a store writes; `sparse`
        makes the backend's sparse vector of (ids, weights); `multi` False leaves out the
        multi-vectors, for a store that keeps them elsewhere."""
        vectors = {SINGLE: self.summary.tolist(), **({MULTI: self.vectors.tolist()} if multi else {}),
                   **{name: sparse(terms) for name, terms in self.sparse.items()}}
        return vectors, {**self.payload, ROWS: len(self.vectors), **(extra or {})}


@dataclass(frozen=True)
class Capabilities:
    """What a store does itself, so callers ask instead of checking which store they hold.

    `quantized`: the form ("int8", "binary") of a compressed copy of the multi-vectors that
    `pages(quantized=True)` reads, or None where the store keeps none.
    """

    quantized: str | None = None
    #: The store keeps corpus statistics (`sparse_scores`, `idf`); else callers compute them.
    lexical: bool = False
    #: The store scores candidates by MaxSim itself, next to the vectors (a Qdrant server):
    #: it is a `ScoringStore`, and no page vector crosses the network at query time.
    scores_in_store: bool = False


@dataclass(frozen=True)
class Candidate:
    """A page the prefilter found: its id, its single-vector score, and where the store keeps
    its vectors (`location`, the store's own handle, or None): passing the candidates back to
    `pages` spares a second lookup, and nothing is remembered between the two calls."""

    id: str
    score: float
    location: Any = None
    #: How many multi-vectors the page holds, read with the candidate (hybrid scoring takes
    #: MaxSim's trend on it out); 0 where the store did not read it: such a page neither sets
    #: that trend nor moves with it.
    rows: int = 0


@dataclass(frozen=True)
class StoreScores:
    """What a `ScoringStore` computed for each candidate, in the order of `ids` (the single-vector
    prefilter's, best first): the single-vector score, MaxSim, the page's vector count and, when
    asked for, BM25 (0 for a candidate sharing no word with the query)."""

    ids: list[str]
    dense: np.ndarray
    maxsim: np.ndarray
    #: Each candidate's number of multi-vectors, read with it.
    rows: np.ndarray
    bm25: np.ndarray | None = None


@dataclass
class StoredPage:
    """A page as a store reads it back: its id, the payload `fields` asked for, its
    multi-vectors when asked for (rows, or panels where the store keeps the kernel's layout),
    and its single vector when asked for."""

    id: str
    payload: dict[str, Any] = field(default_factory=dict)
    vectors: PageArray | None = None
    single: np.ndarray | None = None

    def array(self) -> PageArray:
        """The page's vectors in the layout they were read in (rows or panels)."""
        if self.vectors is None:
            raise ValueError(f"page {self.id} was read without its vectors")
        return self.vectors

    def rows(self) -> np.ndarray:
        """The page's (n, dim) vectors, whichever layout they were read in."""
        return as_rows(self.array())


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


def named_vector(vectors: object, name: str) -> Any:
    """Vector `name` of a point's vectors as a backend returns them (a dict by name here, where
    every vector is named; anything else is a TypeError, as indexing it by name would be)."""
    if not isinstance(vectors, dict):
        raise TypeError(f"a point's vectors are not named: cannot read {name!r} of {type(vectors).__name__}")
    return vectors[name]


#: The conditions a filter's dict value may hold.
RANGE = ("gt", "gte", "lt", "lte")
CONDITIONS = (*RANGE, "not", "exists")


@dataclass(frozen=True)
class FilterParts(Generic[C, F]):
    """A backend's constructors for `translate_filter`: a field equal to a text or an integer
    (`match`; true/false too), equal to any of several texts or integers, within a range (the
    bounds of RANGE given), empty; a condition that holds where one of several does; and the
    filter of conditions that must and must not hold."""

    match: Callable[[str, Any], C]
    match_any: Callable[[str, list[Any]], C]
    range: Callable[[str, dict[str, float]], C]
    empty: Callable[[str], C]
    either: Callable[[list[C]], C]
    build: Callable[[list[C], list[C]], F]

    def equal(self, key: str, value: Any) -> C:
        """Qdrant matches texts, integers and booleans, and any of several texts or integers:
        a float is equal where it is within [value, value]; a list holding floats or booleans
        is one of its values' conditions."""
        if isinstance(value, (list, tuple, set)):
            values = list(value)
            if any(isinstance(v, (bool, float)) for v in values):
                return self.either([self.equal(key, v) for v in values])
            return self.match_any(key, values)
        if isinstance(value, float):
            return self.range(key, {"gte": value, "lte": value})
        return self.match(key, value)


def translate_filter(filter: Filter | None, parts: FilterParts[C, F]) -> F | None:
    """A filter dict (see the module's docstring) in a backend's classes; one reading of the
    dict for all stores. A condition colretrieve does not know is a ColretrieveError naming it."""
    if not filter:
        return None
    must: list[C] = []
    must_not: list[C] = []
    for key, value in filter.items():
        if not isinstance(value, dict):
            must.append(parts.equal(key, value))
            continue
        unknown = sorted(set(value) - set(CONDITIONS))
        if unknown or not value:
            raise ColretrieveError(f"filter on {key!r}: {', '.join(unknown) or 'no condition'}: a condition is one of "
                                   f"{', '.join(CONDITIONS)}")
        bounds = {bound: value[bound] for bound in RANGE if bound in value}
        if any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in bounds.values()):
            raise ColretrieveError(f"filter on {key!r}: a range takes numbers, not {bounds!r}")
        if bounds:
            must.append(parts.range(key, bounds))
        if "not" in value:
            must_not.append(parts.equal(key, value["not"]))
        if "exists" in value:
            (must_not if value["exists"] else must).append(parts.empty(key))
    return parts.build(must, must_not)


def unseen_idf(pages: int) -> float:
    """The IDF of a term no page holds (df 0) among `pages` pages, as Qdrant's IDF modifier
    computes it for the others: a store's `idf` finds no page to read it from."""
    return float(np.log1p((pages + 0.5) / 0.5))


def scores_by_id(ids: Sequence[str], hits: Iterable[tuple[Any, float]]) -> np.ndarray:
    """The scores of `hits` ((point id, score), any order) in the order of `ids`; 0 for an id
    no hit names."""
    found = {str(pid): score for pid, score in hits}
    return np.array([found.get(pid, 0.0) for pid in ids], dtype=np.float32)


def term_idf(terms: Sequence[int], best: Callable[[list[int]], list[float | None]],
             pages: Callable[[], int]) -> np.ndarray:
    """IDF of each of `terms`: `best(unique terms)` gives each one's top score against a
    one-term query of weight 1 (its IDF), None where no page holds it; `pages()` counts the
    corpus for those (`unseen_idf`), asked only when needed."""
    unique = sorted(set(terms))
    found = {term: score for term, score in zip(unique, best(unique) if unique else []) if score is not None}
    unseen = unseen_idf(pages()) if len(found) < len(unique) else 0.0
    return np.array([found.get(term, unseen) for term in terms], dtype=np.float32)


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
    """Persistent page storage with a single-vector prefilter. One contract suite
    (tests/storage/test_contract.py) holds every store to it."""

    #: The caller's settings saved when the store was made (an index keeps its config there).
    metadata: dict[str, Any]
    capabilities: Capabilities

    def upsert(self, points: Sequence[PagePoint]) -> None: ...

    def set_payload(self, filter: Filter, values: dict[str, Any]) -> None:
        """Set `values` on every point matching `filter` (e.g. a document's completion mark)."""

    def delete(self, filter: Filter) -> None: ...

    def candidates(self, vector: np.ndarray, k: int, filter: Filter | None = None,
                   exact: bool = False) -> list[Candidate]:
        """The `k` best points by single-vector dot product, best first (`exact`: no
        approximate index, every point compared)."""

    def pages(self, items: Sequence[Candidate | str], fields: Sequence[str] = (),
              quantized: bool = False) -> list[StoredPage]:
        """The pages `items` (candidates or ids) with their vectors and payload `fields`, in
        that order; `quantized` reads the compressed copy (`capabilities.quantized`, decoded to
        float32) where the store keeps one."""

    def payloads(self, ids: Sequence[str], fields: Sequence[str] | None = None) -> list[dict[str, Any]]:
        """Each point's payload (only `fields` when given), in the order of `ids`."""

    def scan(self, filter: Filter | None = None, fields: Sequence[str] = (), vectors: bool = False,
             batch: int = 256, single: bool = False) -> Iterator[list[StoredPage]]:
        """Every matching point in batches, with payload `fields` (and its multi-vectors, its
        single vector, if asked)."""

    def export(self, batch: int = 64) -> Iterator[list[PagePoint]]:
        """Every point as it was upserted (multi-vectors, single vector, payload), in batches:
        what another store needs to hold the same pages."""

    def count(self, filter: Filter | None = None) -> int: ...

    def sparse_scores(self, name: str, query: Sparse, ids: Sequence[str], corpus: Filter | None = None) -> np.ndarray:
        """The IDF-weighted dot product of `query` with sparse vector `name` of each page `ids`
        (0 where they share no term), IDF counted over the pages `corpus` matches."""

    def idf(self, name: str, terms: Sequence[int], corpus: Filter | None = None) -> np.ndarray:
        """IDF of each term of sparse vector `name` over the pages `corpus` matches:
        log(1 + (N - df + 0.5) / (df + 0.5)), N the pages with a non-empty vector."""

    def damaged(self, deep: bool = False) -> Iterator[Damage]:
        """Pages whose payload or vectors cannot be read back as written (`deep`: every vector
        compared with its checksum; else only what lengths can tell)."""

    def remove(self, ids: Sequence[str]) -> None:
        """Delete the points `ids`, however damaged their payloads are (a repair)."""

    def flush(self) -> None:
        """Make every write so far durable (e.g. after a document's completion mark)."""

    def index_fields(self, indexes: Indexes) -> None:
        """Payload indexes on the fields of `indexes` that have none yet (the user's metadata
        names, as documents bring them); a field's existing index stays as it is."""

    def optimize(self) -> None:
        """After a run of writes: reorganise what they left so the next open stays quick as the
        store grows (a server does it by itself)."""

    def close(self) -> None: ...


class ScoringStore(Store, Protocol):
    """A store that ranks by MaxSim itself (`capabilities.scores_in_store`)."""

    def score_in_store(self, tokens: np.ndarray, single: np.ndarray, limit: int, filter: Filter | None = None,
                       exact: bool = False, bm25: Sparse | None = None, corpus: Filter | None = None) -> StoreScores:
        """The `limit` best candidates by `single` (with `filter`; `exact`: every page compared),
        each scored by MaxSim of `tokens` on its multi-vectors (token weights ride on `tokens`:
        w * max<q, d> = max<w * q, d> for w > 0), and by `bm25` with IDF over `corpus`."""
        ...
