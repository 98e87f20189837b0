"""Turn a PDF-folder benchmark into a ViDoRe v2/v3 (BEIR) dataset of page images.

ViDoRe corpora are page images with no text layer, so every page is read by OCR. Running the
dev set in this form measures what the default encoder does on such corpora, and exercises
`colretrieve benchmark` on the parquet format at full size:

    python benchmarks/to_vidore.py ../shared/bench/dev /tmp/dev-vidore [--dpi 144]
    colretrieve benchmark /tmp/dev-vidore --index /tmp/dev-vidore-index
    colretrieve benchmark /tmp/dev-vidore --index /tmp/dev-vidore-index --encoder bm25

Writes corpus/, queries/ and qrels/ as hub-style `test-00000-of-00001.parquet` files, with
the columns of ViDoRe v3 (`corpus_id`, `query_id`, `query`, `query_types`, `score`).
"""

from __future__ import annotations

import argparse
import io
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from tqdm import tqdm

from colretrieve import settings
from colretrieve.documents import PdfReader, content_hash, discover_documents
from colretrieve.evaluation.datasets import load_dataset

IMAGE = pa.struct([("bytes", pa.binary()), ("path", pa.string())])  # datasets' Image feature
FILE = "test-00000-of-00001.parquet"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path, help="a PDF-folder benchmark (pdfs/, queries.jsonl, qrels.tsv)")
    parser.add_argument("target", type=Path)
    parser.add_argument("--dpi", type=int, default=settings.DPI, help="page image resolution")
    args = parser.parse_args()

    dataset = load_dataset(args.source)
    ids: dict[str, int] = {}
    with pq.ParquetWriter(_subset(args.target, "corpus"),
                          pa.schema([("corpus_id", pa.int64()), ("image", IMAGE)])) as writer:
        pdfs = list(discover_documents([dataset.documents]))
        for path in tqdm(pdfs, desc="render", unit="pdf"):
            with PdfReader(path, content_hash(path), dpi=args.dpi) as reader:
                for page in reader.pages():
                    buffer = io.BytesIO()
                    page.image.save(buffer, "PNG")
                    page.release()
                    ids[dataset.corpus_id(path.name, page.page_no)] = corpus_id = len(ids)
                    writer.write_table(pa.table({"corpus_id": [corpus_id],
                                                 "image": pa.array([{"bytes": buffer.getvalue(), "path": None}],
                                                                   IMAGE)}))
    query_ids = sorted(dataset.queries)
    pq.write_table(pa.table({"query_id": list(range(len(query_ids))),
                             "query": [dataset.queries[q] for q in query_ids],
                             "query_types": [[dataset.kinds[q]] if q in dataset.kinds else None for q in query_ids]}),
                   _subset(args.target, "queries"))
    rows = [(n, ids[cid], score) for n, q in enumerate(query_ids) for cid, score in dataset.qrels.get(q, {}).items()]
    pq.write_table(pa.table({"query_id": [r[0] for r in rows], "corpus_id": [r[1] for r in rows],
                             "score": [r[2] for r in rows]}), _subset(args.target, "qrels"))
    print(f"{args.target}: {len(ids)} pages, {len(query_ids)} queries, {len(rows)} qrels")


def _subset(root: Path, name: str) -> Path:
    (root / name).mkdir(parents=True, exist_ok=True)
    return root / name / FILE


if __name__ == "__main__":
    main()
