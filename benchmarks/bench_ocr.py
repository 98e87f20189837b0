"""OCR engines compared on the dev scans: speed, words, and what their text does for retrieval.

The scanned pages are those of the PDFs that the `scan` queries point to (37 pages). Each
engine reads every page; BM25 over its text then ranks the pages for each `scan` query,
scored with nDCG@5 and recall@5. The same runs again with every page image turned 90 and
180 degrees counter-clockwise, so an engine that does not find the upright page loses
there. Seconds count OCR only, not rendering.

    python benchmarks/bench_ocr.py [--engines tesseract,rapidocr] [--dpi 200] [--json out.json]
    python benchmarks/bench_ocr.py --engines tesseract --tesseract "--psm 3;--psm 6;--psm 11" --rotations 0
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path

import bm25s
import pypdfium2 as pdfium
import pytrec_eval
from PIL import Image

from colretrieve.documents.ocr import OCR_DPI, TesseractOcr, get_ocr

DEV = Path(__file__).resolve().parents[2] / "shared" / "bench" / "dev"
ROTATIONS = (0, 90, 180)


def load_scan_queries() -> tuple[dict[str, str], dict[str, dict[str, int]]]:
    """The `scan` queries and their qrels."""
    queries = {}
    for line in (DEV / "queries.jsonl").read_text().splitlines():
        q = json.loads(line)
        if q["kind"] == "scan":
            queries[q["query-id"]] = q["query"]
    qrels: dict[str, dict[str, int]] = {}
    with open(DEV / "qrels.tsv", newline="") as f:
        for row in csv.DictReader(f, delimiter="\t"):
            if row["query-id"] in queries:
                qrels.setdefault(row["query-id"], {})[row["corpus-id"]] = int(row["score"])
    return queries, qrels


def render_pages(files: list[str], dpi: int) -> dict[str, Image.Image]:
    """Every page of `files`, keyed by corpus id (`<file>#<1-based page>`)."""
    pages = {}
    for name in files:
        pdf = pdfium.PdfDocument(DEV / "pdfs" / name)
        for i in range(len(pdf)):
            pages[f"{name}#{i + 1}"] = pdf[i].render(scale=dpi / 72).to_pil()
        pdf.close()
    return pages


def evaluate(texts: dict[str, str], queries: dict[str, str], qrels: dict[str, dict[str, int]]) -> dict:
    """nDCG@5 and recall@5 of BM25 over `texts`, averaged over the queries."""
    ids = list(texts)
    retriever = bm25s.BM25()
    retriever.index(bm25s.tokenize([texts[i] for i in ids], stopwords="en", return_ids=False,
                                   show_progress=False), show_progress=False)
    qids = list(queries)
    tokens = bm25s.tokenize([queries[q] for q in qids], stopwords="en", return_ids=False,
                            show_progress=False)
    docs, scores = retriever.retrieve(tokens, k=len(ids), show_progress=False)
    run = {q: {ids[d]: float(s) for d, s in zip(docs[n], scores[n])} for n, q in enumerate(qids)}
    per_query = pytrec_eval.RelevanceEvaluator(qrels, {"ndcg_cut.5", "recall.5"}).evaluate(run)
    return {m: sum(r[m] for r in per_query.values()) / len(per_query) for m in ("ndcg_cut_5", "recall_5")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engines", default="tesseract,rapidocr", help="comma-separated engine names")
    parser.add_argument("--dpi", type=int, default=OCR_DPI, help="render dpi (default: OCR_DPI)")
    parser.add_argument("--json", type=Path, help="also write the rows to this JSON file")
    parser.add_argument("--tesseract", default="", help="Tesseract option sets to sweep, ';'-separated "
                        "(each a row, e.g. '--psm 3;--psm 6'), in place of --engines")
    parser.add_argument("--rotations", default=",".join(map(str, ROTATIONS)), help="turns to read, in degrees")
    args = parser.parse_args()
    rotations = [int(r) for r in args.rotations.split(",")]

    queries, qrels = load_scan_queries()
    files = sorted({doc.split("#")[0] for rel in qrels.values() for doc in rel})
    pages = render_pages(files, args.dpi)
    rows = []
    engines = ([(f"tesseract {c}", TesseractOcr(config=c)) for c in args.tesseract.split(";")] if args.tesseract
               else [(name, get_ocr(name)) for name in args.engines.split(",")])
    for name, engine in engines:
        for rotation in rotations:
            seconds, texts, words = 0.0, {}, 0
            for page_id, image in pages.items():
                turned = image.rotate(rotation, expand=True)
                started = time.perf_counter()
                found = engine.words(turned)
                seconds += time.perf_counter() - started
                texts[page_id] = " ".join(w.text for w in found)
                words += len(found)
            scores = evaluate(texts, queries, qrels)
            rows.append({"engine": name, "dpi": args.dpi, "rotation": rotation,
                         "s_per_page": round(seconds / len(pages), 2),
                         "words_per_page": round(words / len(pages), 1),
                         "ndcg@5": round(scores["ndcg_cut_5"], 3), "recall@5": round(scores["recall_5"], 3)})
            print(rows[-1], file=sys.stderr, flush=True)

    print(f"\n{len(pages)} scanned pages, {len(queries)} scan queries, {args.dpi} dpi")
    header = f"{'engine':<22} {'rot':>4} {'s/page':>7} {'words/page':>11} {'nDCG@5':>7} {'R@5':>6}"
    print(header + "\n" + "-" * len(header))
    for r in rows:
        print(f"{r['engine']:<22} {r['rotation']:>4} {r['s_per_page']:>7.2f} {r['words_per_page']:>11.1f} "
              f"{r['ndcg@5']:>7.3f} {r['recall@5']:>6.3f}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
