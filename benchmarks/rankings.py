"""Every query's top-k (file, page, score) of an index, written as JSON and compared with an
earlier dump: the check that a change to the code changed no result.

    python benchmarks/rankings.py ../shared/bench/dev --index /tmp/dev-index --out after.json --against before.json

Both two-stage and exact search are dumped. The index is opened read-only; build it first
(`colretrieve benchmark ../shared/bench/dev --index /tmp/dev-index`).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from colretrieve import Index, settings
from colretrieve.evaluation.datasets import load_dataset


def rankings(dataset: Path, index_dir: Path, k: int) -> dict[str, list[list]]:
    queries = load_dataset(dataset).queries
    out: dict[str, list[list]] = {}
    with Index.open(index_dir, read_only=True) as index:
        for query_id, text in queries.items():
            for exact in (False, True):
                hits = index.search(text, k=k, exact=exact, regions=False)
                out[query_id + ("/exact" if exact else "")] = [[Path(h.path).name, h.page, round(h.score, 5)]
                                                              for h in hits]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dataset", type=Path)
    parser.add_argument("--index", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--against", type=Path, help="an earlier dump to compare with")
    parser.add_argument("-k", type=int, default=settings.K)
    args = parser.parse_args()
    now = rankings(args.dataset, args.index, args.k)
    args.out.write_text(json.dumps(now, indent=0) + "\n")
    if args.against is None:
        return
    before = json.loads(args.against.read_text())
    pages = sum([h[:2] for h in now[q]] == [h[:2] for h in before.get(q, [])] for q in now)
    scores = sum(now[q] == before.get(q) for q in now)
    print(f"{len(now)} rankings ({len(now) // 2} queries, two-stage and exact): same top-{args.k} pages in {pages}, "
          f"same pages and scores (5 decimals) in {scores}")
    sys.exit(0 if pages == len(now) else 1)


if __name__ == "__main__":
    main()
