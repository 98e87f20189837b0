"""The validation benchmark's queries and qrels read as colretrieve reads them, and point at
pages the manifest pins: a typo in a hand-written qrel would otherwise score as a miss."""

import importlib.util
import shutil
from collections import Counter
from pathlib import Path

from colretrieve.evaluation.datasets import load_dataset

HERE = Path(__file__).resolve().parents[2] / "benchmarks" / "validation"
KINDS = {"table", "text", "chart", "figure", "scan", "layout", "form"}


def test_queries_and_qrels_name_pinned_pages(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("fetch", HERE / "fetch.py")
    assert spec is not None and spec.loader is not None
    fetch = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fetch)
    pages = {row["file"]: int(row["pages"]) for row in fetch.read_manifest(HERE / "MANIFEST.tsv")}
    (tmp_path / "pdfs").mkdir()
    for name in ("queries.jsonl", "qrels.tsv"):
        shutil.copy(HERE / name, tmp_path / name)
    data = load_dataset(tmp_path)
    assert len(data.queries) >= 100 and set(data.qrels) == set(data.queries)
    assert set(data.kinds.values()) <= KINDS and len(data.kinds) == len(data.queries)
    for query_id, judged in data.qrels.items():
        assert Counter(judged.values())[2] == 1, query_id  # one page answers it; near-twins score 1
        for corpus_id in judged:
            file, page = corpus_id.rsplit("#", 1)
            assert 1 <= int(page) <= pages[file], corpus_id
    assert all(6 <= len(text.split()) <= 25 for text in data.queries.values())
    assert len(pages) >= 12 and len({f.split("__")[0] for f in pages}) >= 8
