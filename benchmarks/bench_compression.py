"""Compression options against quality: token pooling and int8 / binary vector files.

Each variant is made from one encoded index with `colretrieve migrate` (no encoding again),
benchmarked with the same runner as `colretrieve benchmark`, and measured on disk. A second
table gives the bytes per ColPali-shaped page (1,030 x 128) of each vector form, measured on
a store of synthetic pages.

    python benchmarks/bench_compression.py ../shared/bench/dev --index /tmp/dev-index [--work /tmp/compression]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

from colretrieve import Index
from colretrieve.catalog import point_id
from colretrieve.evaluation.datasets import load_dataset
from colretrieve.evaluation.runner import run_benchmark
from colretrieve.migrate import migrate
from colretrieve.storage.base import PagePoint, StoreSchema
from colretrieve.storage.edge import EdgeStore, float16_file
from colretrieve.vectors.forms import FORMATS

VARIANTS = {
    "float16 (as ingested)": {},
    "pool 2": {"pool_factor": 2},
    "pool 3": {"pool_factor": 3},
    "int8": {"vectors": "int8"},
    "binary": {"vectors": "binary"},
    "pool 2 + int8": {"pool_factor": 2, "vectors": "int8"},
}


def vector_bytes(index: Index) -> tuple[float, float, float]:
    """(vectors per page, bytes per page of the copy MaxSim reads first, bytes per page of all
    vector files: with int8 / binary, the float16 copy for rescoring too)."""
    stats = index.stats()
    pages = stats["pages"]
    store = index.directory / "store"
    form = index.config.vectors
    first = float16_file(store) if form == "float16" else store / f"vectors.{form}"
    files = sum(f.stat().st_size for f in store.glob("vectors.*"))
    return stats["vectors"] / pages, first.stat().st_size / pages, files / pages


def colpali_page_bytes(pages: int = 64) -> dict[str, float]:
    """Bytes a ColPali page costs in each vector file form, measured on a real store."""
    rng = np.random.default_rng(0)
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for form in FORMATS:
            store = EdgeStore.create(Path(tmp) / form, StoreSchema(128, 128), form)
            for start in range(0, pages, 16):
                store.upsert([PagePoint(point_id("colpali", n), rng.standard_normal((1030, 128)).astype(np.float32),
                                        rng.standard_normal(128).astype(np.float32), {"doc_id": "colpali", "page": n})
                              for n in range(start, start + 16)])
            store.close()
            directory = Path(tmp) / form
            file = float16_file(directory) if form == "float16" else directory / f"vectors.{form}"
            out[form] = file.stat().st_size / pages
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset", type=Path)
    parser.add_argument("--index", type=Path, required=True, help="the encoded float16 index (made if missing)")
    parser.add_argument("--work", type=Path, default=Path("/tmp/compression"), help="where the variants go")
    args = parser.parse_args()

    dataset = load_dataset(args.dataset, corpus_dir=args.index / "corpus")
    rows = []
    for name, options in VARIANTS.items():
        target = args.index if not options else args.work / name.replace(" ", "")
        if options and not target.exists():
            migrate(args.index, target, **options)
        results = run_benchmark(dataset, target)
        with Index.open(target) as index:
            per_page, first, disk = vector_bytes(index)
        rows.append((name, per_page, first, disk, 100 * results["metrics"][dataset.name]["ndcg_at_5"],
                     results["latency_ms"]["p50"]))

    base = rows[0][4]
    print(f"{dataset.name}: {len(dataset.queries)} queries, encoder {results['metadata']['encoder']}")
    print(f"{'variant':<24}{'vectors/page':>13}{'MaxSim KB/page':>16}{'files KB/page':>15}{'nDCG@5':>8}"
          f"{'change':>8}{'p50 ms':>8}")
    for name, per_page, first, disk, ndcg, p50 in rows:
        print(f"{name:<24}{per_page:>13.0f}{first / 1024:>16.1f}{disk / 1024:>15.1f}{ndcg:>8.1f}"
              f"{ndcg - base:>+8.1f}{p50:>8.1f}")
    print("\nColPali page (1,030 x 128) in each vector file form, measured:")
    for form, size in colpali_page_bytes().items():
        print(f"  {form:<8}{size:>10,.0f} bytes/page")


if __name__ == "__main__":
    main()
