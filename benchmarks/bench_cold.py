"""Cold start: wall time of a one-shot `colretrieve query` (a new process, as a user types it),
on an index and on a copy of it grown to `--pages` pages, to show it does not grow with the corpus.

    python benchmarks/bench_cold.py ../shared/bench/dev --index /tmp/dev-index --scaled /tmp/dev-10k --pages 10000

The grown copy stores the index's pages again and again under new document ids (vectors,
payload and corpus statistics as they are), so it is built in minutes without encoding. Each
query runs in a fresh process, on the two indexes in turn; the table gives p50 and p95 over `--queries` dev queries, and
the first run of `colretrieve --help`.
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

from colretrieve import catalog
from colretrieve.evaluation.datasets import load_dataset
from colretrieve.location import Location

#: Pages per upsert while growing: the text encoder's batch, what an ingest writes at a time
#: (qdrant-edge's write-ahead log, replayed when a shard opens, grows with the request size).
UPSERT = 16
CLI = [str(Path(sys.executable).parent / "colretrieve")]  # the command users run, installed beside python


def grow(source: Path, target: Path, pages: int) -> None:
    """A copy of index `source` at `target` holding about `pages` pages."""
    if target.exists():
        return
    shutil.copytree(source, target)
    with Location.parse(target).open() as held:
        originals = [p for batch in held.store.export() for p in batch]
        copy = 1
        while held.store.count() + len(originals) <= pages:
            points = []
            for point in originals:
                doc_id = hashlib.sha256(f"{point.payload['doc_id']}#{copy}".encode()).hexdigest()
                points.append(replace(point, id=catalog.point_id(doc_id, point.payload["page"]),
                                      payload={**point.payload, "doc_id": doc_id}))
            for start in range(0, len(points), UPSERT):  # as an ingest writes them: a batch per encoder step
                held.store.upsert(points[start : start + UPSERT])
            copy += 1
            print(f"  {held.store.count()} pages", file=sys.stderr, end="\r")
        held.store.flush()
        held.store.optimize()  # as an ingest ends
    print(file=sys.stderr)


def wall(args: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dataset", type=Path)
    parser.add_argument("--index", type=Path, required=True)
    parser.add_argument("--scaled", type=Path, required=True, help="where the grown copy is (built if absent)")
    parser.add_argument("--pages", type=int, default=10_000)
    parser.add_argument("--queries", type=int, default=10)
    args = parser.parse_args()
    grow(args.index, args.scaled, args.pages)
    queries = list(load_dataset(args.dataset).queries.values())[: args.queries]
    help_time = wall([*CLI, "--help"])
    print(f"colretrieve --help: {help_time:.2f} s (first run)\n")
    print("| index | pages | one-shot query p50 | p95 |")
    print("|---|---:|---:|---:|")
    indexes = (args.index, args.scaled)
    times: dict[Path, list[float]] = {index: [] for index in indexes}
    for text in queries:  # the two indexes in turn, so a slower minute of the machine hits both
        for index in indexes:
            times[index].append(wall([*CLI, "query", text, "--index", str(index), "-k", "5"]))
    for index in indexes:
        with Location.parse(index).open(writable=False) as held:
            count = held.store.count()
        ordered = sorted(times[index])
        p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
        print(f"| {index} | {count} | {statistics.median(ordered):.2f} s | {p95:.2f} s |")


if __name__ == "__main__":
    main()
