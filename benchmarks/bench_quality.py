"""Retrieval quality on a PDF-folder benchmark (../shared/bench format), beside BM25 over the same words.

Ingests the folder into an index (reused when it already holds the files), runs every query
two-stage, exact, and with BM25 over the pages' stored words, and prints nDCG@5 overall and
by query kind, recall@5 and latency.

    python benchmarks/bench_quality.py ../shared/bench/dev --index /tmp/dev-index [--json]
"""

from __future__ import annotations

import json
import statistics
import time
from collections import defaultdict
from pathlib import Path

import click

from colretrieve import Index
from colretrieve.config import CONFIG_FILE
from colretrieve.evaluation.metrics import evaluate, mean
from colretrieve.scoring.bm25 import Bm25


def _load(dataset: Path) -> tuple[list[dict], dict[str, dict[str, int]]]:
    queries = [json.loads(line) for line in (dataset / "queries.jsonl").read_text().splitlines() if line.strip()]
    qrels: dict[str, dict[str, int]] = defaultdict(dict)
    for line in (dataset / "qrels.tsv").read_text().splitlines()[1:]:
        qid, cid, score = line.split("\t")
        qrels[qid][cid] = int(score)
    return queries, qrels


@click.command()
@click.argument("dataset", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--index", "index_dir", type=click.Path(file_okay=False, path_type=Path), required=True)
@click.option("--json", "as_json", is_flag=True)
def main(dataset: Path, index_dir: Path, as_json: bool) -> None:
    queries, qrels = _load(dataset)
    index = Index.open(index_dir) if (index_dir / CONFIG_FILE).exists() else Index.create(index_dir)
    with index:
        index.ingest([dataset / "pdfs"])
        pages = [(pid, f"{p['file']}#{p['page']}", p["text"]) for batch in index._store.scan(fields=("file", "page", "text"))
                 for pid, p, _ in batch]
        corpus_id = {pid: cid for pid, cid, _ in pages}
        bm25 = Bm25([pid for pid, _, _ in pages], [text for _, _, text in pages])
        runs: dict[str, dict[str, list[str]]] = {"default": {}, "default --exact": {}, "bm25": {}}
        latency: list[float] = []
        for q in queries:
            started = time.perf_counter()
            hits = index.search(q["query"], k=100)
            latency.append(time.perf_counter() - started)
            runs["default"][q["query-id"]] = [f"{Path(h.path).name}#{h.page}" for h in hits]
            runs["default --exact"][q["query-id"]] = [f"{Path(h.path).name}#{h.page}"
                                                      for h in index.search(q["query"], k=100, exact=True)]
            runs["bm25"][q["query-id"]] = [corpus_id[pid] for pid, _ in bm25.search(q["query"], 100)]
    kinds: dict[str, list[str]] = defaultdict(list)
    for q in queries:
        kinds[q.get("kind", "all")].append(q["query-id"])
    table = {}
    for name, ranking in runs.items():
        per_query = evaluate(qrels, ranking)
        overall = mean(per_query)
        table[name] = {"ndcg_at_5": overall["ndcg_at_5"], "recall_at_5": overall["recall_at_5"],
                       **{f"ndcg_at_5[{k}]": mean(per_query, ids)["ndcg_at_5"] for k, ids in sorted(kinds.items())}}
    p50, p95 = statistics.quantiles(latency, n=20)[9], statistics.quantiles(latency, n=20)[18]
    if as_json:
        click.echo(json.dumps({"metrics": table, "latency_s": {"p50": p50, "p95": p95}}))
        return
    header = ["retriever", "nDCG@5", "R@5"] + [f"{k}({len(v)})" for k, v in sorted(kinds.items())]
    click.echo(" | ".join(header))
    for name, row in table.items():
        cells = [name, f"{100 * row['ndcg_at_5']:.1f}", f"{100 * row['recall_at_5']:.1f}"]
        cells += [f"{100 * row[f'ndcg_at_5[{k}]']:.1f}" for k in sorted(kinds)]
        click.echo(" | ".join(cells))
    click.echo(f"two-stage query latency (encoding included): p50 {1000 * p50:.0f} ms, p95 {1000 * p95:.0f} ms")


if __name__ == "__main__":
    main()
