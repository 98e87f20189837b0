"""Benchmark datasets from local files, in the three formats users bring (see `load_dataset`)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ..errors import ColretrieveError
from . import vidore
from .tables import table_files

PDF_FOLDER_FILES = ("pdfs", "queries.jsonl", "qrels.tsv")


@dataclass
class Dataset:
    """Queries, their kinds (when given) and graded relevance over the dataset's corpus ids.

    `documents` is the folder to ingest. Its PDFs' pages are corpus ids `<file>#<page>`; an
    image corpus maps each image file's name to its corpus id in `images`.
    """

    name: str
    documents: Path
    queries: dict[str, str]
    kinds: dict[str, str]
    qrels: dict[str, dict[str, int]]
    images: dict[str, str] | None = None

    def corpus_id(self, file: str, page: int) -> str:
        return self.images.get(file, file) if self.images is not None else f"{file}#{page}"


def load_dataset(path: str | Path, corpus_dir: Path | None = None) -> Dataset:
    """Read a benchmark at `path`, whichever of the formats it is in.

    - PDF folder: `pdfs/`, `queries.jsonl` (query-id, query, optional kind), `qrels.tsv`.
    - ViDoRe v2/v3 BEIR: folders `corpus/`, `queries/`, `qrels/` of parquet or arrow files.
    - ViDoRe v1 QA: parquet or arrow files (or one such file) with query, image, image_filename.

    The ViDoRe corpora are images; they are written to `corpus_dir` (once) for ingest.
    """
    root = Path(path)
    if not root.exists():
        raise ColretrieveError(f"{root}: no such file or directory")
    name = root.resolve().stem if root.is_file() else root.resolve().name
    if root.is_dir() and all((root / f).exists() for f in PDF_FOLDER_FILES):
        return _load_pdf_folder(root, name)
    beir = vidore.is_beir(root)
    if beir or table_files(root):
        if corpus_dir is None:
            raise ValueError("a ViDoRe dataset needs corpus_dir, the folder its page images are written to")
        if beir:
            queries, kinds, qrels, images = vidore.load_beir(root, corpus_dir)
            return Dataset(name, corpus_dir, queries, kinds, qrels, images)
        queries, qrels, images = vidore.load_qa(root, corpus_dir)
        return Dataset(name, corpus_dir, queries, {}, qrels, images)
    raise ColretrieveError(
        f"{root}: not a benchmark: expected a PDF folder ({', '.join(PDF_FOLDER_FILES)}), a ViDoRe v2/v3 "
        f"dataset ({', '.join(vidore.BEIR_SUBSETS)} folders) or ViDoRe v1 parquet/arrow files")


def _load_pdf_folder(root: Path, name: str) -> Dataset:
    queries: dict[str, str] = {}
    kinds: dict[str, str] = {}
    for number, line in enumerate((root / "queries.jsonl").read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            queries[row["query-id"]] = row["query"]
        except (json.JSONDecodeError, KeyError) as exc:
            raise ColretrieveError(f"{root / 'queries.jsonl'}:{number}: expected a JSON object with "
                                   f"query-id and query ({exc})") from exc
        if "kind" in row:
            kinds[row["query-id"]] = row["kind"]
    qrels: dict[str, dict[str, int]] = {}
    lines = (root / "qrels.tsv").read_text().splitlines()
    for number, line in enumerate(lines[1:], 2):
        if line.strip():
            try:
                query_id, corpus_id, score = line.split("\t")
                qrels.setdefault(query_id, {})[corpus_id] = int(score)
            except ValueError as exc:
                raise ColretrieveError(f"{root / 'qrels.tsv'}:{number}: expected query-id, corpus-id, score") from exc
    return Dataset(name, root / "pdfs", queries, kinds, qrels)
