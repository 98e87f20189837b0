"""What a stored page carries, and the marks that say which documents are whole: written once.

Every writer (ingest, migrate, check's repair) and every reader (search, stats, delete, check)
goes through here, so the payload schema and the completion protocol live in one file:

- a page's payload: doc_id (sha256 of the file), path (absolute, shown), path_raw (its bytes
  in hex where they are not UTF-8), file (the name it was given), page, page_count, width_pt,
  height_pt, text, words_source, boxes (its words' boxes, regions.py), cells and grid (each
  vector's patch, for maps and regions), state;
- a document counts only when all its pages are stored: pages are written PARTIAL, and the
  completion mark (state COMPLETE on all of them) is written last. Search, stats and
  documents see complete documents only; an interrupted ingest resumes from the partial ones.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .documents import path_text, raw_path
from .encoders import MultiVectorEncoder
from .errors import BadDocumentError, ColretrieveError
from .page import Page
from .regions import BOXES, pack_boxes
from .scoring.lexical import bm25_document, term_set
from .storage.base import BM25, ROWS, TERMS, Filter, PagePoint, Store
from .vectors.sparse import Sparse

PARTIAL, COMPLETE = "partial", "complete"
#: The payload field naming the team a page belongs to (tenancy.py); absent without tenants.
TENANT = "tenant"
#: Payload indexes of every store: what filters and lookups match on. (`state` is a keyword,
#: not a bool: qdrant-edge 0.9's Python binding matches True as the integer 1.)
INDEXES = {"doc_id": "keyword", "path": "keyword", "file": "keyword", "state": "keyword", "page": "integer",
           TENANT: "tenant", "label": "keyword"}
#: Payload fields a hit needs; the rest (vector cells) stays in the store.
#: The user's metadata of a page's document (`ingest --meta`, a `<file>.json` beside it).
META = "meta"
HIT_FIELDS = ("doc_id", "path", "path_raw", "page", "page_count", "text", META)
#: Payload fields a hit's regions need besides (regions.py).
REGION_FIELDS = ("cells", "grid", BOXES, "width_pt", "height_pt")
#: A page's zero-shot label (its most likely) and every label's probability (labels.py).
LABEL, LABEL_SCORES = "label", "label_scores"
#: Fields of a page's own that filters name as they are; any other name is the user's metadata.
OWN_FIELDS = ("doc_id", "path", "file", "page", "page_count", "words_source", "width_pt", "height_pt", LABEL)
#: Completion marks written per request.
MARK_BATCH = 256


def point_id(doc_id: str, page_no: int) -> str:
    """Deterministic id, so storing a page twice overwrites instead of duplicating it."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"colretrieve:{doc_id}#{page_no}"))


def source(path: Path) -> dict[str, str | None]:
    """Where a page's file is, as its payload says it: the absolute path shown, its bytes where
    they are not UTF-8 (for `Hit.image`), and the name it was given, which `delete` and filters take."""
    where = path.resolve()
    return {"path": path_text(where), "path_raw": raw_path(where), "file": path_text(Path(path.name))}


def page_point(page: Page, vectors: np.ndarray, cells: np.ndarray, grid: tuple[int, int],
               summary: np.ndarray, sparse: dict[str, Sparse] | None = None,
               meta: dict[str, Any] | None = None, labels: dict[str, Any] | None = None) -> PagePoint:
    """A page as it is stored: its vectors, its single vector, its sparse vectors (corpus
    statistics, `lexical_vectors`), its payload, PARTIAL, its document's metadata and its
    zero-shot labels."""
    return PagePoint(
        id=point_id(page.doc_id, page.page_no), vectors=vectors, summary=summary, sparse=sparse or {},
        payload={"doc_id": page.doc_id, **source(page.path), "page": page.page_no, "page_count": page.page_count,
                 "width_pt": page.width_pt, "height_pt": page.height_pt, "text": page.text,
                 "words_source": page.words_source, BOXES: pack_boxes(page.words), "cells": cells.tolist(),
                 "grid": list(grid), "state": PARTIAL,
                 **({META: meta} if meta else {}), **(labels or {})})


def lexical_vectors(text: str, encoder: MultiVectorEncoder) -> dict[str, Sparse]:
    """A page's share of the corpus statistics hybrid scoring reads (scoring/lexical.py)."""
    return {BM25: bm25_document(text), TERMS: term_set(encoder.page_terms(text))}


#: A metadata name: what a filter expression can name (filters.py).
META_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_-]{0,63}")
#: The file beside a document that holds its metadata: `report.pdf.json` for `report.pdf`.
SIDECAR = ".json"


def check_metadata(meta: Any, where: str) -> dict[str, Any]:
    """`meta` if it is metadata colretrieve can store and filter on: names that are not a
    page's own fields, values that are text, numbers, true/false or lists of text or numbers."""
    if not isinstance(meta, dict):
        raise ColretrieveError(f"{where}: metadata is a JSON object of names and values, not {type(meta).__name__}")
    for key, value in meta.items():
        if not META_KEY.fullmatch(key) or key in OWN_FIELDS:
            raise ColretrieveError(f"{where}: {key!r} cannot name metadata (letters, digits, '_' or '-', not one of "
                                   f"{', '.join(OWN_FIELDS)})")
        items = value if isinstance(value, list) else [value]
        if not all(isinstance(item, (str, int, float, bool)) for item in items):
            raise ColretrieveError(f"{where}: {key!r} must be text, a number, true/false or a list of them")
    return meta


def metadata_indexes(meta: dict[str, Any]) -> dict[str, str]:
    """Payload indexes for the names of `meta`, by the kind of their values (a list's first
    item), so filters on them stay fast as the store grows. Numbers get a float index, which
    ranges over integers and fractions alike (documents may give a name either)."""
    kinds: dict[str, str] = {}
    for key, value in meta.items():
        item = (value or [None])[0] if isinstance(value, list) else value
        kind = ("bool" if isinstance(item, bool) else "float" if isinstance(item, (int, float))
                else "keyword" if isinstance(item, str) else None)
        if kind:
            kinds[f"{META}.{key}"] = kind
    return kinds


def metadata_of(path: Path) -> dict[str, Any]:
    """What the `<file>.json` beside `path` says of it ({} if there is none); a file that is
    not such metadata is a BadDocumentError naming it."""
    beside = path.with_name(path.name + SIDECAR)
    try:
        raw = beside.read_bytes()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise BadDocumentError(path, f"its metadata {beside.name} cannot be read ({exc.strerror})") from None
    try:
        return check_metadata(json.loads(raw), beside.name)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadDocumentError(path, f"its metadata {beside.name} is not valid JSON ({exc})") from None
    except ColretrieveError as exc:
        raise BadDocumentError(path, str(exc)) from None


def user_filter(filter: Filter | None) -> Filter | None:
    """A user's filter with metadata names read as such (`year` is `meta.year`)."""
    if not filter:
        return filter
    return {key if key in OWN_FIELDS else f"{META}.{key}": value for key, value in filter.items()}


def searchable_only(filter: Filter | None) -> Filter:
    """`filter` restricted to pages of complete documents: what every search and listing sees."""
    return {**(filter or {}), "state": COMPLETE}


def mark(store: Store, doc_ids: Sequence[str], state: str) -> None:
    """Set the completion mark of every page of `doc_ids` (COMPLETE last, once all are stored;
    PARTIAL when a repair reopens a document)."""
    for start in range(0, len(doc_ids), MARK_BATCH):
        store.set_payload({"doc_id": list(doc_ids[start : start + MARK_BATCH])}, {"state": state})


def stored_pages(store: Store, doc_id: str) -> set[int]:
    """Page numbers of `doc_id` already stored, complete or not."""
    return {page.payload["page"] for batch in store.scan({"doc_id": doc_id}, fields=("page",)) for page in batch}


def complete_path(store: Store, doc_id: str) -> str | None:
    """The path a complete `doc_id` was stored under, None if it is not complete."""
    found = next(store.scan({"doc_id": doc_id, "state": COMPLETE}, fields=("path",), batch=1), None)
    return found[0].payload["path"] if found else None


def older_versions(store: Store, path: Path, doc_id: str) -> list[str]:
    """doc_ids stored for the file at `path` other than `doc_id`: earlier versions of an edited file."""
    stored = {page.payload["doc_id"] for batch in store.scan({"path": path_text(path.resolve())}, fields=("doc_id",))
              for page in batch}
    return sorted(stored - {doc_id})


def searchable_pages(store: Store, fields: Sequence[str] = HIT_FIELDS) -> Iterator[tuple[str, dict[str, Any]]]:
    """(point id, payload `fields`) of every page of a complete document, in store order."""
    for batch in store.scan(searchable_only(None), fields=fields):
        for page in batch:
            yield page.id, page.payload


def documents(store: Store) -> list[dict[str, Any]]:
    """One entry per stored document: doc_id, path, pages stored, page_count, complete, vectors."""
    docs: dict[str, dict[str, Any]] = {}
    for batch in store.scan(fields=("doc_id", "path", "page_count", "state", ROWS)):
        for page in batch:
            p = page.payload
            doc = docs.setdefault(p["doc_id"], {"doc_id": p["doc_id"], "path": p["path"], "pages": 0,
                                                "page_count": p["page_count"], "complete": p["state"] == COMPLETE,
                                                "vectors": 0})
            doc["pages"] += 1
            doc["vectors"] += p[ROWS]
    return sorted(docs.values(), key=lambda d: d["path"])


def marked_whole_but_short(store: Store) -> list[str]:
    """Documents marked complete with fewer pages stored than they have."""
    stored: dict[str, list[int]] = {}
    for batch in store.scan(searchable_only(None), fields=("doc_id", "page_count")):
        for page in batch:
            entry = stored.setdefault(page.payload["doc_id"], [0, page.payload["page_count"]])
            entry[0] += 1
    return sorted(doc for doc, (pages, count) in stored.items() if pages < count)


def find_documents(store: Store, target: str) -> list[str]:
    """The doc_ids `target` names: a file path, a bare file name (one file of that name), or a
    doc id (a unique prefix of 4+ hex digits, any case)."""
    def matching(field: str, value: str) -> dict[str, str]:  # doc_id -> path
        return {page.payload["doc_id"]: page.payload["path"]
                for batch in store.scan({field: value}, fields=("doc_id", "path")) for page in batch}

    found = matching("path", path_text(Path(target).resolve()))
    if not found and Path(target).name == target:
        found = matching("file", target)
        if len(set(found.values())) > 1:
            raise ColretrieveError(f"{target}: {len(set(found.values()))} files of that name are stored; "
                                   "give the path")
    if not found and re.fullmatch(r"[0-9a-fA-F]{4,64}", target):
        found = {d["doc_id"]: d["path"] for d in documents(store) if d["doc_id"].startswith(target.lower())}
        if len(found) > 1:
            raise ColretrieveError(f"{target}: matches {len(found)} documents; give more digits")
    return sorted(found)
