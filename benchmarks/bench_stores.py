"""The same index on two stores gives the same answers: an embedded (qdrant-edge) index is
migrated to another store (qdrant-client local mode by default, or a server URL) and every
query of a benchmark is asked of both.

    python benchmarks/bench_stores.py ../shared/bench/dev --index /tmp/dev-index [--target /tmp/dev-local | --target http://HOST:6333/dev]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from colretrieve import Index, settings
from colretrieve.evaluation.datasets import load_dataset
from colretrieve.location import Location
from colretrieve.migrate import migrate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset", type=Path)
    parser.add_argument("--index", type=Path, required=True, help="an embedded index of the dataset's corpus")
    parser.add_argument("--target", default="/tmp/bench-stores-local", help="a directory (local mode) or a server URL")
    parser.add_argument("-k", type=int, default=settings.K)
    args = parser.parse_args()

    dataset = load_dataset(args.dataset, corpus_dir=args.index / "corpus")
    if not Location.parse(args.target).exists():
        report = migrate(args.index, args.target, store="qdrant", progress=True)
        print(f"migrated {report.pages} pages in {report.seconds:.1f} s ({report.pages / report.seconds:.1f} pages/s)")
    with Index.open(args.index) as edge, Index.open(args.target) as other:
        same, worst, latency = 0, 0.0, {"edge": [], "other": []}
        for query in dataset.queries.values():
            tops = {}
            for name, index in (("edge", edge), ("other", other)):
                started = time.perf_counter()
                tops[name] = index.search(query, k=args.k)
                latency[name].append(1000 * (time.perf_counter() - started))
            a, b = ([(h.doc_id, h.page) for h in tops[n]] for n in ("edge", "other"))
            same += a == b
            worst = max([worst] + [abs(x.score - y.score) for x, y in zip(tops["edge"], tops["other"])])
    print(f"{dataset.name}: {len(dataset.queries)} queries; {args.index} (qdrant-edge) vs {args.target} "
          f"({'server' if args.target.startswith('http') else 'qdrant-client local mode'})")
    print(f"same top-{args.k} in the same order: {same}/{len(dataset.queries)}; largest score difference {worst:.2e}")
    print(f"latency p50: qdrant-edge {statistics.median(latency['edge']):.0f} ms, "
          f"other {statistics.median(latency['other']):.0f} ms")


if __name__ == "__main__":
    main()
