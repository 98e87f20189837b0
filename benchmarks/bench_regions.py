"""How well hits are grounded: on the queries whose top-1 hit is their relevant page, how often
the hit's top region overlaps the answer box drawn on that page (benchmarks/data/
dev_answer_boxes.jsonl), and how much of the page the region covers. Prints a table.

    python benchmarks/bench_regions.py ../shared/bench/dev --index /tmp/dev-index

Build the index first (`colretrieve ingest ../shared/bench/dev/pdfs --index /tmp/dev-index`).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from colretrieve import Index
from colretrieve.evaluation.datasets import load_dataset

BOXES = Path(__file__).parent / "data" / "dev_answer_boxes.jsonl"


def overlap(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    """Area shared by two boxes (x0, y0, x1, y1)."""
    return max(0.0, min(a[2], b[2]) - max(a[0], b[0])) * max(0.0, min(a[3], b[3]) - max(a[1], b[1]))


def area(box: tuple[float, ...]) -> float:
    return (box[2] - box[0]) * (box[3] - box[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dataset", type=Path)
    parser.add_argument("--index", type=Path, required=True)
    parser.add_argument("--boxes", type=Path, default=BOXES)
    args = parser.parse_args()
    queries = load_dataset(args.dataset).queries
    answers = [json.loads(line) for line in args.boxes.read_text().splitlines() if line.strip()]
    answers = [a for a in answers if a["box"]]
    correct = top_hits = any_hits = 0
    areas, shares, seconds = [], [], []
    with Index.open(args.index, read_only=True) as index:
        index.search("warm up", k=1)
        for answer in answers:
            file, page = answer["corpus-id"].rsplit("#", 1)
            started = time.perf_counter()
            (hit,) = index.search(queries[answer["query-id"]], k=1)
            seconds.append(time.perf_counter() - started)
            if (Path(hit.path).name, hit.page) != (file, int(page)) or not hit.regions:
                continue
            correct += 1
            box = tuple(answer["box"])
            top = hit.regions[0]
            top_hits += overlap(top.box, box) > 0
            any_hits += any(overlap(r.box, box) > 0 for r in hit.regions)
            areas.append(area(top.box))
            shares.append(top.share)
    print(f"index {args.index}, {len(answers)} queries with an answer box")
    print("| queries with a box | top-1 correct | top region overlaps the answer | any region overlaps | "
          "median top-region area (share of page) | median top-region share of score | search p50 (regions on) |")
    print("|---|---|---|---|---|---|---|")
    print(f"| {len(answers)} | {correct} | {top_hits}/{correct} ({top_hits / max(correct, 1):.0%}) | "
          f"{any_hits}/{correct} ({any_hits / max(correct, 1):.0%}) | {statistics.median(areas or [0]):.4f} | "
          f"{statistics.median(shares or [0]):.2f} | {statistics.median(seconds) * 1000:.0f} ms |")


if __name__ == "__main__":
    main()
