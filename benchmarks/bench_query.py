"""Query latency without query encoding, on a synthetic ColPali-shaped index: colretrieve's
path (prefilter K candidates in qdrant-edge, their float16 vectors from the memory-mapped
file, the MaxSim kernel) beside qdrant-edge's own prefetch + MAX_SIM rerank, on a bare shard
that holds the same vectors as Qdrant keeps them (colretrieve's shard keeps no multi-vectors).

Pages get 1,030 random unit vectors of dim 128 around a page topic, and the page's single
vector is their normalised mean (`pooled`); queries are 20 noisy copies of one page's vectors,
so the prefilter has something to find. Building the 10k-page shard takes a few minutes and
about 12 GB of disk (both copies); it is kept under --dir and reused. Both paths are timed warm, as in a
long-running service: every query runs once untimed (the page cache and the memory maps
fill), then every query is timed.

    python benchmarks/bench_query.py [--pages 10000] [--candidates 256] [--queries 50] [--dir /tmp/bench-query]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
import qdrant_edge as qe
from tqdm import tqdm

from colretrieve import settings
from colretrieve.catalog import COMPLETE, INDEXES, point_id
from colretrieve.scoring import cpu_kernel, maxsim_pages
from colretrieve.storage.base import MULTI, SINGLE, PagePoint, StoreSchema
from colretrieve.storage.edge import EdgeStore

DIM, VECTORS, TOKENS = 128, 1030, 20


def unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def page_vectors(page: int, count: int = VECTORS) -> np.ndarray:
    """`count` unit vectors of page `page` around its topic (the same for a page every run)."""
    rng = np.random.default_rng(page)
    topic = rng.standard_normal(DIM)
    return unit(topic + 2.0 * rng.standard_normal((count, DIM))).astype(np.float16)


ENGINE = "engine"  # the bare shard, under --dir


def build(directory: Path, pages: int) -> tuple[EdgeStore, qe.EdgeShard]:
    schema = StoreSchema(DIM, DIM)
    if (directory / "built").exists():
        return EdgeStore.open(directory, schema), qe.EdgeShard.load(str(directory / ENGINE))
    store = EdgeStore.create(directory, schema, indexes=INDEXES)
    engine = qe.EdgeShard.create(str(directory / ENGINE), qe.EdgeConfig(vectors={
        MULTI: qe.EdgeVectorParams(size=DIM, distance=qe.Distance.Dot, datatype=qe.VectorStorageDatatype.Float16,
                                   multivector_config=qe.MultiVectorConfig(qe.MultiVectorComparator.MaxSim)),
        SINGLE: qe.EdgeVectorParams(size=DIM, distance=qe.Distance.Dot)}))
    for start in tqdm(range(0, pages, 32), desc="build", unit="batch"):
        points = []
        for page in range(start, min(pages, start + 32)):
            vectors = page_vectors(page)
            points.append(PagePoint(id=point_id("synthetic", page), vectors=vectors,
                                    summary=unit(vectors.astype(np.float32).mean(axis=0)),
                                    payload={"doc_id": "synthetic", "page": page, "state": COMPLETE}))
        store.upsert(points)
        engine.update(qe.UpdateOperation.upsert_points([qe.Point(p.id, {
            MULTI: p.vectors.tolist(), SINGLE: p.summary.tolist()}, {}) for p in points]))
    store.flush()
    store.optimize()
    engine.flush()
    (directory / "built").touch()
    return store, engine


def colretrieve_path(store: EdgeStore, engine: qe.EdgeShard, query: np.ndarray, k: int, candidates: int) -> list[str]:
    summary = unit(query.mean(axis=0))
    found = store.candidates(summary, candidates, {"state": COMPLETE})
    scores = maxsim_pages([query], [page.vectors for page in store.pages(found)])[0]
    order = np.argsort(-scores, kind="stable")[:k]
    return [found[i].id for i in order]


def qdrant_rerank(store: EdgeStore, engine: qe.EdgeShard, query: np.ndarray, k: int, candidates: int) -> list[str]:
    """Qdrant's own two-stage query: prefetch on the single vector, MAX_SIM over `patches`."""
    summary = unit(query.mean(axis=0))
    hits = engine.query(qe.QueryRequest(
        limit=k, query=qe.Query.Nearest(query.tolist(), using=MULTI), with_payload=False, with_vector=False,
        prefetches=[qe.Prefetch(limit=candidates, query=qe.Query.Nearest(summary.tolist(), using=SINGLE))]))
    return [str(h.id) for h in hits]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=10000)
    parser.add_argument("--candidates", type=int, default=settings.CANDIDATES)
    parser.add_argument("--queries", type=int, default=50)
    parser.add_argument("--dir", type=Path, default=Path("/tmp/bench-query"))
    args = parser.parse_args()

    store, engine = build(args.dir / str(args.pages), args.pages)
    rng = np.random.default_rng(123)
    queries = []
    for _ in range(args.queries):
        source = page_vectors(int(rng.integers(args.pages))).astype(np.float32)
        picked = source[rng.choice(VECTORS, TOKENS, replace=False)]
        queries.append(unit(picked + 0.3 * rng.standard_normal(picked.shape)).astype(np.float32))
    print(f"{args.pages} pages x {VECTORS} vectors x {DIM} dims (float16), K = {args.candidates}, "
          f"{args.queries} queries of {TOKENS} tokens, query encoding excluded; CPU MaxSim: {cpu_kernel.name()}")
    print(f"{'path':<34}{'p50 ms':>8}{'p95 ms':>8}{'top-5 = other path':>20}")
    tops = {}
    paths = (("colretrieve (mmap + kernel)", colretrieve_path), ("qdrant-edge prefetch + MAX_SIM", qdrant_rerank))
    for name, fn in paths:
        for query in queries:  # warm: page cache, memory maps, code
            fn(store, engine, query, settings.K, args.candidates)
        latencies, tops[name] = [], []
        for query in queries:
            started = time.perf_counter()
            tops[name].append(fn(store, engine, query, settings.K, args.candidates))
            latencies.append(1000 * (time.perf_counter() - started))
        p95 = statistics.quantiles(latencies, n=20)[18]
        tops[name] = [set(t) for t in tops[name]]
        print(f"{name:<34}{statistics.median(latencies):>8.1f}{p95:>8.1f}", end="")
        print("" if len(tops) == 1 else f"{sum(a == b for a, b in zip(*tops.values())) / len(queries):>19.0%}")
    store.close()
    engine.close()


if __name__ == "__main__":
    main()
