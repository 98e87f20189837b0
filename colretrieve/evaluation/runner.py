"""One benchmark run: ingest the corpus, answer every query, score with pytrec_eval."""

from __future__ import annotations

import statistics
import time
from collections import defaultdict
from importlib.metadata import version
from pathlib import Path
from typing import Any

from ..documents import content_hash, discover_documents
from ..encoders import MultiVectorEncoder
from ..index import Index
from ..scoring.bm25 import Bm25
from .datasets import Dataset
from .metrics import PRIMARY_METRIC, evaluate, mean

RETRIEVERS = ("default", "bm25")
DEPTH = 100


def run_benchmark(dataset: Dataset, index_dir: Path, retriever: str = "default", exact: bool = False,
                  progress: bool = False, model: MultiVectorEncoder | None = None) -> dict[str, Any]:
    """Results as `{"metadata": {...}, "metrics": {dataset: {...}}, "by_kind": ..., "ingest": ..., "latency": ...}`.

    The index at `index_dir` is reused when it exists (unchanged files are skipped), so runs
    of several retrievers over one corpus encode it once. `bm25` ranks with BM25 over the
    same stored words the default encoder reads. `model` is the index's encoder already loaded
    (see `Index.open`).
    """
    with Index.open_or_create(index_dir, model=model) as index:
        report = index.ingest([dataset.documents], images=dataset.images is not None, progress=progress)
        if report.failed:
            raise RuntimeError(f"{len(report.failed)} corpus files failed: {report.failed[0]}")
        ranking, latency = _rank(index, dataset, retriever, exact, _identical_files(dataset.documents))
        encoder = index.config.encoder_id
    per_query = evaluate(dataset.qrels, ranking)
    kinds: dict[str, list[str]] = defaultdict(list)
    for query_id, kind in dataset.kinds.items():
        kinds[kind].append(query_id)
    return {
        "metadata": {"retriever": retriever, "encoder": encoder if retriever == "default" else "bm25",
                     "exact": exact, "dataset": dataset.name, "queries": len(dataset.queries),
                     "primary_metric": PRIMARY_METRIC, "colretrieve": version("colretrieve")},
        "metrics": {dataset.name: mean(per_query)},
        "by_kind": {kind: {"queries": len(ids), **mean(per_query, ids)} for kind, ids in sorted(kinds.items())},
        "ingest": {"pages": report.pages, "seconds": round(report.seconds, 3),
                   "pages_per_second": round(report.pages_per_second, 3)},
        "latency_ms": {"p50": round(1000 * statistics.median(latency), 1),
                       "p95": round(1000 * statistics.quantiles(latency, n=20)[18], 1) if len(latency) > 1 else None},
    }


def _identical_files(folder: Path) -> dict[str, list[str]]:
    """File name -> the other files in `folder` with the same bytes.

    Ingest stores identical files once (one doc id), but a benchmark's corpus may hold the
    same page under two ids (a blank page, a repeated cover); a hit on one is a hit on all,
    ranked side by side as they would be had both been stored.
    """
    by_hash: dict[str, list[str]] = defaultdict(list)
    for path in discover_documents([folder], images=True):
        by_hash[content_hash(path)].append(path.name)
    return {name: [other for other in names if other != name]
            for names in by_hash.values() if len(names) > 1 for name in names}


def _rank(index: Index, dataset: Dataset, retriever: str, exact: bool,
          twins: dict[str, list[str]]) -> tuple[dict[str, list[str]], list[float]]:
    ranking: dict[str, list[str]] = {}
    latency: list[float] = []
    if retriever == "bm25":
        stored = {dataset.corpus_id(p["file"], p["page"]): p for _, p in index.pages(("file", "page", "text"))}
        bm25 = Bm25(list(stored), [p["text"] for p in stored.values()])
    elif retriever != "default":
        raise ValueError(f"unknown retriever {retriever!r}: expected one of {', '.join(RETRIEVERS)}")
    for query_id, text in dataset.queries.items():
        started = time.perf_counter()
        if retriever == "bm25":
            found = [(stored[cid]["file"], stored[cid]["page"]) for cid, _ in bm25.search(text, DEPTH)]
        else:
            found = [(Path(h.path).name, h.page) for h in index.search(text, k=DEPTH, exact=exact, regions=False)]
        latency.append(time.perf_counter() - started)
        ranking[query_id] = [dataset.corpus_id(name, page) for file, page in found
                             for name in (file, *twins.get(file, ()))][:DEPTH]
    return ranking, latency
