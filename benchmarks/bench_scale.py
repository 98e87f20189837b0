"""The embedded store at scale: a synthetic ColPali-shaped corpus (pool factor 2: 515 vectors of
dim 128 per page) of `--pages` pages, float16 or int8: disk bytes per page, time to build, cold
and warm query latency at K = 256 and 1,024, and the prefilter's candidate recall against exact
MaxSim over every page.

    python benchmarks/bench_scale.py --pages 100000 --vectors float16 --dir /tmp/scale-f16

Pages are random unit vectors around a page topic (as benchmarks/bench_query.py), queries 20
noisy copies of one page's vectors; the page's single vector is their normalised mean. A cold
query is a new process that opens the store and answers one query (the page cache is not
dropped: that needs root); warm queries run in one process after one untimed pass. Query
encoding is not included. The store is kept under --dir and reused.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from bench_query import DIM, unit  # the same synthetic pages, run as `python benchmarks/...`
from bench_query import page_vectors as synthetic_page
from tqdm import tqdm

from colretrieve.catalog import COMPLETE, INDEXES, point_id
from colretrieve.scoring import maxsim_pages
from colretrieve.scoring.ranking import best_first
from colretrieve.settings import RESCORE
from colretrieve.storage.base import PagePoint, StoreSchema
from colretrieve.storage.edge import EdgeStore

VECTORS, TOKENS, TOP = 515, 20, 5
#: Pages per upsert: what an ingest writes at a time (a ColPali batch is 8 to 16 pages).
UPSERT = 16


def page_vectors(page: int) -> np.ndarray:
    return synthetic_page(page, VECTORS)


def query_of(page: int) -> np.ndarray:
    rng = np.random.default_rng(10**9 + page)
    picked = page_vectors(page)[rng.choice(VECTORS, TOKENS, replace=False)].astype(np.float32)
    return unit(picked + 0.3 * rng.standard_normal((TOKENS, DIM))).astype(np.float32)


def build(directory: Path, pages: int, vectors: str) -> float:
    """Seconds to build the store (0 when it was built before)."""
    if (directory / "built").exists():
        return json.loads((directory / "built").read_text())["seconds"]
    start = time.perf_counter()
    store = EdgeStore.create(directory, StoreSchema(DIM, DIM), vectors, indexes=INDEXES)
    for first in tqdm(range(0, pages, UPSERT), desc="build", unit="batch"):
        points = []
        for page in range(first, min(pages, first + UPSERT)):
            matrix = page_vectors(page)
            points.append(PagePoint(id=point_id("synthetic", page), vectors=matrix,
                                    summary=unit(matrix.astype(np.float32).mean(axis=0)),
                                    payload={"doc_id": "synthetic", "page": page, "state": COMPLETE}))
        store.upsert(points)
    store.flush()
    store.optimize()  # as an ingest ends
    store.close()
    seconds = time.perf_counter() - start
    (directory / "built").write_text(json.dumps({"seconds": seconds}))
    return seconds


def search(store: EdgeStore, query: np.ndarray, k: int) -> list[str]:
    """colretrieve's two stages on the store: K candidates by the single vector, MaxSim on the
    stored form (int8 first, the best rescored from float16), top-5 ids."""
    found = store.candidates(unit(query.mean(axis=0)).astype(np.float32), k)
    quantized = store.capabilities.quantized is not None
    scores = maxsim_pages([query], [p.array() for p in store.pages(found, quantized=quantized)])[0]
    ids = [c.id for c in found]
    if quantized:
        best = np.argsort(-scores, kind="stable")[: max(RESCORE, 4 * TOP)]
        scores[best] = maxsim_pages([query], [p.array() for p in store.pages([found[j] for j in best])])[0]
    return [ids[j] for j in best_first(scores, ids, TOP)]


def exact_top(store: EdgeStore, queries: list[np.ndarray], pages: int) -> list[set[str]]:
    """Each query's true top-5 by MaxSim over every page (float16), read in steps."""
    ids, scores = [], []
    for first in range(0, pages, 4096):
        batch = [point_id("synthetic", p) for p in range(first, min(pages, first + 4096))]
        found = store.pages(batch)
        scores.append(maxsim_pages(queries, [p.array() for p in found]))
        ids += batch
    every = np.concatenate(scores, axis=1)
    return [{ids[j] for j in np.argsort(-row)[:TOP]} for row in every]


def cold(directory: Path, vectors: str, page: int, k: int) -> float:
    """Wall seconds of a new process that opens the store and answers one query."""
    start = time.perf_counter()
    subprocess.run([sys.executable, __file__, "--dir", str(directory), "--vectors", vectors, "--one", str(page),
                    "-k", str(k)], check=True)
    return time.perf_counter() - start


def percentiles(times: list[float]) -> str:
    times = sorted(times)
    return f"{statistics.median(times) * 1000:.0f} / {times[round(0.95 * (len(times) - 1))] * 1000:.0f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pages", type=int, default=100_000)
    parser.add_argument("--vectors", choices=["float16", "int8"], default="float16")
    parser.add_argument("--dir", type=Path, required=True)
    parser.add_argument("--queries", type=int, default=20)
    parser.add_argument("--cold", type=int, default=5, help="cold queries (new processes) per K")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)  # a cold query: this page's query, then exit
    parser.add_argument("-k", type=int, default=256, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one is not None:
        store = EdgeStore.open(args.dir, StoreSchema(DIM, DIM), args.vectors, writable=False)
        search(store, query_of(args.one), args.k)
        return
    seconds = build(args.dir, args.pages, args.vectors)
    disk = sum(f.stat().st_blocks * 512 for f in args.dir.rglob("*") if f.is_file())
    rng = np.random.default_rng(7)
    targets = [int(p) for p in rng.choice(args.pages, args.queries, replace=False)]
    queries = [query_of(p) for p in targets]
    rows: list[list] = []
    store = EdgeStore.open(args.dir, StoreSchema(DIM, DIM), args.vectors, writable=False)
    truth = exact_top(store, queries, args.pages)
    for k in (256, 1024):
        for query in queries:  # the untimed pass: page cache and memory maps fill
            search(store, query, k)
        warm, recall = [], []
        for query, expected in zip(queries, truth):
            start = time.perf_counter()
            top = search(store, query, k)
            warm.append(time.perf_counter() - start)
            recall.append(len(expected & set(top)) / TOP)
        rows.append([k, percentiles(warm), statistics.mean(recall)])
    store.close()  # qdrant-edge opens a shard in one process at a time
    for row in rows:
        row.insert(1, percentiles([cold(args.dir, args.vectors, p, row[0]) for p in targets[: args.cold]]))
    print(f"{args.pages:,} synthetic ColPali pages ({VECTORS} x {DIM}, {args.vectors}); built in "
          f"{seconds / 60:.1f} min; {disk / args.pages / 1024:.0f} KiB on disk per page ({disk / 2**30:.1f} GiB)\n")
    print("| K | cold query p50 / p95 (new process) | warm p50 / p95 | top-5 recall vs exact |")
    print("|---:|---:|---:|---:|")
    for k, cold_text, warm_text, recall in rows:
        print(f"| {k} | {cold_text} | {warm_text} | {recall:.2f} |")


if __name__ == "__main__":
    main()
