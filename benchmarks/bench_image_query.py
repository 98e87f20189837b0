"""Query by image on the dev set: 30 regions cut from rendered pages, each searched as an
image; hit@1 is how often the top hit is the page the region came from. The regions are the
answer boxes of every third dev query (benchmarks/data/dev_answer_boxes.jsonl), grown to at
least half the page's width and a quarter of its height: a screenshot of part of a page.

    python benchmarks/bench_image_query.py ../shared/bench/dev --index /tmp/dev-index
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import time
from pathlib import Path

from colretrieve import Index
from colretrieve.documents import content_hash, open_document

BOXES = Path(__file__).parent / "data" / "dev_answer_boxes.jsonl"
CROPS, MIN_W, MIN_H = 30, 0.5, 0.25


def grown(box: list[float]) -> tuple[float, float, float, float]:
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    w, h = max(box[2] - box[0], MIN_W), max(box[3] - box[1], MIN_H)
    x0, y0 = min(max(cx - w / 2, 0), 1 - w), min(max(cy - h / 2, 0), 1 - h)
    return x0, y0, x0 + w, y0 + h


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dataset", type=Path)
    parser.add_argument("--index", type=Path, required=True)
    args = parser.parse_args()
    answers = [json.loads(line) for line in BOXES.read_text().splitlines() if line.strip()][::3][:CROPS]
    found, seconds, modes = 0, [], set()
    with Index.open(args.index, read_only=True) as index:
        for answer in answers:
            file, page_no = answer["corpus-id"].rsplit("#", 1)
            path = args.dataset / "pdfs" / file
            with open_document(path, content_hash(path), dpi=index.config.dpi) as reader:
                image = reader.page(int(page_no)).image
                x0, y0, x1, y1 = grown(answer["box"])
                crop = image.crop((round(x0 * image.width), round(y0 * image.height), round(x1 * image.width),
                                   round(y1 * image.height)))
            started = time.perf_counter()
            hits = index.search(image=crop, k=1, explain=lambda line: modes.add(re.sub(r"\d+ words", "N words", line)))
            seconds.append(time.perf_counter() - started)
            found += bool(hits) and (Path(hits[0].path).name, hits[0].page) == (file, int(page_no))
    print(f"index {args.index} ({index.config.encoder}); {'; '.join(sorted(modes))}")
    print("| crops | hit@1 | search p50 (incl. reading the image) |")
    print("|---|---|---|")
    print(f"| {len(answers)} | {found}/{len(answers)} ({found / len(answers):.0%}) | "
          f"{statistics.median(seconds) * 1000:.0f} ms |")


if __name__ == "__main__":
    main()
