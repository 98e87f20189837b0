"""The ViDoRe benchmark formats, from local files: v1 QA tables and v2/v3 BEIR subsets.

Their corpora are page images. They are written once into a folder beside the index, one
file per corpus page, so the ordinary ingest path (image pages, read by OCR for the text
default) indexes them, and a hit's file name leads back to its corpus id.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from PIL import Image, UnidentifiedImageError

from ..errors import ColretrieveError
from .tables import column_names, pick_column, read_rows, table_files

BEIR_SUBSETS = ("corpus", "queries", "qrels")
MANIFEST = "manifest.json"
#: Columns that give a query's kind (for the by-kind table), in order of preference.
KIND_COLUMNS = ("kind", "query_type", "query_types")
_SUFFIXES = {"PNG": ".png", "JPEG": ".jpg", "TIFF": ".tif", "WEBP": ".webp", "BMP": ".bmp", "GIF": ".gif",
             "MPO": ".jpg"}


def is_beir(root: Path) -> bool:
    return all((root / name).is_dir() for name in BEIR_SUBSETS)


def load_qa(root: Path, corpus_dir: Path) -> tuple[dict[str, str], dict[str, dict[str, int]], dict[str, str]]:
    """ViDoRe v1: one row per (query, page). Rows without a query are distractor pages, and a
    query asked of several pages becomes one query relevant to all of them (as vidore-benchmark
    merges them). Returns queries, qrels and the corpus folder's file name → image_filename."""
    files = _files(root)
    names = column_names(files)
    for column in ("query", "image", "image_filename"):
        pick_column(names, column, where=files[0])
    ids: dict[str, str] = {}
    qrels: dict[str, dict[str, int]] = {}
    for row in read_rows(files, ("query", "image_filename")):
        text = (row["query"] or "").strip()
        if text:
            query_id = ids.setdefault(text, f"q{len(ids) + 1}")
            qrels.setdefault(query_id, {})[str(row["image_filename"])] = 1
    images = ((str(row["image_filename"]), row["image"]) for row in read_rows(files, ("image_filename", "image")))
    corpus = extract_images(images, corpus_dir, source=files, root=root)
    return {query_id: text for text, query_id in ids.items()}, qrels, corpus


def load_beir(root: Path, corpus_dir: Path) -> tuple[dict[str, str], dict[str, str], dict[str, dict[str, int]],
                                                     dict[str, str]]:
    """ViDoRe v2/v3: subsets `corpus`, `queries`, `qrels`. Returns queries, kinds, qrels and
    the corpus folder's file name → corpus id."""
    corpus_files, query_files, qrel_files = (_files(root / name) for name in BEIR_SUBSETS)
    names = column_names(query_files)
    query_id = pick_column(names, "query-id", "query_id", where=query_files[0])
    text = pick_column(names, "query", where=query_files[0])
    kind = next((c for c in KIND_COLUMNS if c in names), None)
    queries: dict[str, str] = {}
    kinds: dict[str, str] = {}
    for row in read_rows(query_files, [query_id, text] + ([kind] if kind else [])):
        queries[str(row[query_id])] = row[text]
        if kind and row[kind]:
            value = row[kind]
            kinds[str(row[query_id])] = "+".join(value) if isinstance(value, list) else str(value)

    names = column_names(qrel_files)
    q_col = pick_column(names, "query-id", "query_id", where=qrel_files[0])
    c_col = pick_column(names, "corpus-id", "corpus_id", where=qrel_files[0])
    score = pick_column(names, "score", where=qrel_files[0])
    qrels: dict[str, dict[str, int]] = {}
    for row in read_rows(qrel_files, (q_col, c_col, score)):
        qrels.setdefault(str(row[q_col]), {})[str(row[c_col])] = int(row[score])

    names = column_names(corpus_files)
    c_col = pick_column(names, "corpus-id", "corpus_id", where=corpus_files[0])
    pick_column(names, "image", where=corpus_files[0])
    images = ((str(row[c_col]), row["image"]) for row in read_rows(corpus_files, (c_col, "image")))
    corpus = extract_images(images, corpus_dir, source=corpus_files, root=root)
    return queries, kinds, qrels, corpus


def extract_images(images: Iterable[tuple[str, Any]], folder: Path, *, source: list[Path],
                   root: Path) -> dict[str, str]:
    """Write each corpus image once as `folder/NNNNNN.ext`; returns file name → corpus id.

    The folder keeps a manifest of the dataset files it was made from, so a second run over
    the same dataset reads no image column at all.
    """
    stamp = [[str(p), p.stat().st_size, p.stat().st_mtime_ns] for p in source]
    manifest = folder / MANIFEST
    if manifest.is_file():
        saved = json.loads(manifest.read_text())
        if saved.get("source") == stamp:
            return saved["files"]
    folder.mkdir(parents=True, exist_ok=True)
    files: dict[str, str] = {}
    seen: set[str] = set()
    for corpus_id, value in images:
        if corpus_id in seen:  # v1 repeats a page once per query asked of it
            continue
        seen.add(corpus_id)
        data = _image_bytes(value, root, corpus_id)
        name = f"{len(seen):06d}{_suffix(data)}"
        (folder / name).write_bytes(data)
        files[name] = corpus_id
    manifest.write_text(json.dumps({"source": stamp, "files": files}))  # last: its presence means complete
    return files


def _files(root: Path) -> list[Path]:
    files = table_files(root)
    if not files:
        raise ColretrieveError(f"{root}: no .parquet or .arrow files")
    return files


def _image_bytes(value: Any, root: Path, corpus_id: str) -> bytes:
    """The encoded image of a cell: `datasets`' Image feature stores {bytes, path}."""
    if isinstance(value, dict):
        if value.get("bytes"):
            return value["bytes"]
        if value.get("path") and (root / value["path"]).is_file():
            return (root / value["path"]).read_bytes()
    elif isinstance(value, bytes) and value:
        return value
    raise ColretrieveError(f"{root}: corpus page {corpus_id} has no image bytes")


def _suffix(data: bytes) -> str:
    """The extension of the image's real format; unreadable bytes keep .png and fail at ingest,
    where they are reported like any bad file."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            return _SUFFIXES.get(image.format or "", ".png")
    except (UnidentifiedImageError, OSError):
        return ".png"
