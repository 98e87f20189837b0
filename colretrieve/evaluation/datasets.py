"""Benchmark datasets read from local files. This release reads the PDF-folder format of
../shared/bench (BEIR-style queries and qrels over PDF pages); the ViDoRe parquet formats
are the next step."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ..errors import ColretrieveError


@dataclass
class Dataset:
    """Queries, their kinds (when given) and graded relevance over corpus ids `<file>#<page>`."""

    name: str
    pdfs: Path
    queries: dict[str, str]
    kinds: dict[str, str]
    qrels: dict[str, dict[str, int]]


def load_dataset(path: str | Path) -> Dataset:
    """A folder with `pdfs/`, `queries.jsonl` and `qrels.tsv` (header `query-id corpus-id score`)."""
    root = Path(path)
    missing = [name for name in ("pdfs", "queries.jsonl", "qrels.tsv") if not (root / name).exists()]
    if missing:
        raise ColretrieveError(f"{root}: not a PDF-folder benchmark (missing {', '.join(missing)}); "
                               "ViDoRe parquet datasets are not supported yet")
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
    return Dataset(root.resolve().name, root / "pdfs", queries, kinds, qrels)
