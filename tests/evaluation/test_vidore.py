"""ViDoRe v1 QA and v2/v3 BEIR datasets, built as parquet/arrow files the way the hub and
`datasets.save_to_disk` write them, loaded and run end to end."""

import io
import json
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from colretrieve.errors import ColretrieveError
from colretrieve.evaluation.datasets import load_dataset
from colretrieve.evaluation.runner import run_benchmark
from tests.conftest import IMAGE_PAGES

#: How `datasets` stores an Image feature.
IMAGE = pa.struct([("bytes", pa.binary()), ("path", pa.string())])


def tiny_image(color: str, fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (16, 16), color).save(buffer, fmt)
    return buffer.getvalue()


def qa_table(rows: list[tuple[str | None, bytes, str]]) -> pa.Table:
    return pa.table({"query": pa.array([q for q, _, _ in rows], pa.string()),
                     "image": pa.array([{"bytes": b, "path": None} for _, b, _ in rows], IMAGE),
                     "image_filename": [f for _, _, f in rows]})


QA_ROWS = [
    ("what is red?", tiny_image("red"), "pages/a.png"),
    ("what is red?", tiny_image("blue", "JPEG"), "pages/b.jpg"),  # the same query asked of a second page
    ("", tiny_image("green"), "pages/c.png"),  # distractor pages: no query
    (None, tiny_image("white"), "pages/d.png"),
    ("which one is blank?", tiny_image("red"), "pages/a.png"),  # a page asked two questions
]


def check_qa(dataset, corpus: Path) -> None:
    assert dataset.queries == {"q1": "what is red?", "q2": "which one is blank?"}
    assert dataset.qrels == {"q1": {"pages/a.png": 1, "pages/b.jpg": 1}, "q2": {"pages/a.png": 1}}
    assert sorted(dataset.images.values()) == ["pages/a.png", "pages/b.jpg", "pages/c.png", "pages/d.png"]
    by_id = {cid: name for name, cid in dataset.images.items()}
    assert by_id["pages/b.jpg"].endswith(".jpg") and Image.open(corpus / by_id["pages/b.jpg"]).format == "JPEG"
    assert Image.open(corpus / by_id["pages/c.png"]).getpixel((0, 0)) == (0, 128, 0)
    assert dataset.corpus_id(by_id["pages/d.png"], 1) == "pages/d.png"


def test_v1_hub_parquet_snapshot(tmp_path: Path) -> None:
    root = tmp_path / "docvqa_test_subsampled"
    (root / "data").mkdir(parents=True)
    pq.write_table(qa_table(QA_ROWS), root / "data" / "test-00000-of-00001.parquet")
    pq.write_table(qa_table([("a training query", tiny_image("black"), "train.png")]),
                   root / "data" / "train-00000-of-00001.parquet")  # another split: left out
    corpus = tmp_path / "corpus"
    dataset = load_dataset(root, corpus)
    assert dataset.name == "docvqa_test_subsampled" and dataset.documents == corpus
    check_qa(dataset, corpus)

    first = {p.name: p.stat().st_mtime_ns for p in corpus.iterdir()}
    again = load_dataset(root, corpus)  # the manifest matches: no image is written again
    assert again.images == dataset.images
    assert {p.name: p.stat().st_mtime_ns for p in corpus.iterdir()} == first


def test_v1_saved_to_disk_arrow(tmp_path: Path) -> None:
    table = qa_table(QA_ROWS)
    (tmp_path / "saved" / "test").mkdir(parents=True)
    with pa.ipc.new_stream(tmp_path / "saved" / "test" / "data-00000-of-00001.arrow", table.schema) as writer:
        writer.write_table(table, max_chunksize=2)
    check_qa(load_dataset(tmp_path / "saved", tmp_path / "corpus"), tmp_path / "corpus")


def test_v1_single_parquet_file_missing_a_column_is_named(tmp_path: Path) -> None:
    path = tmp_path / "broken.parquet"
    pq.write_table(qa_table(QA_ROWS).drop_columns(["image_filename"]), path)
    with pytest.raises(ColretrieveError, match=r"broken.parquet: no column image_filename \(columns: query, image\)"):
        load_dataset(path, tmp_path / "corpus")


def write_beir(root: Path, spell: str, pages: dict[str, bytes], queries: list[tuple[str, str, list[str] | None]],
               qrels: list[tuple[str, str, int]]) -> None:
    """`spell` is "-" (ViDoRe v2: corpus-id) or "_" (v3: corpus_id); ids are ints as in the hub files."""
    for subset in ("corpus", "queries", "qrels"):
        (root / subset).mkdir(parents=True)
    pq.write_table(pa.table({f"corpus{spell}id": [int(k) for k in pages],
                             "image": pa.array([{"bytes": b, "path": None} for b in pages.values()], IMAGE)}),
                   root / "corpus" / "test-00000-of-00001.parquet")
    pq.write_table(pa.table({f"query{spell}id": [int(q) for q, _, _ in queries], "query": [t for _, t, _ in queries],
                             "query_types": [k for _, _, k in queries]}),
                   root / "queries" / "test-00000-of-00001.parquet")
    pq.write_table(pa.table({f"query{spell}id": [int(q) for q, _, _ in qrels],
                             f"corpus{spell}id": [int(c) for _, c, _ in qrels], "score": [s for _, _, s in qrels]}),
                   root / "qrels" / "test-00000-of-00001.parquet")


@pytest.mark.parametrize("spell", ["-", "_"])
def test_beir_v2_and_v3_spellings(tmp_path: Path, spell: str) -> None:
    pages = {"7": tiny_image("red"), "8": tiny_image("blue"), "9": tiny_image("green")}
    write_beir(tmp_path / "esg", spell, pages,
               [("1", "red page?", ["extractive"]), ("2", "blue or green?", ["boolean", "multi-hop"]),
                ("3", "any", None)],
               [("1", "7", 2), ("2", "8", 1), ("2", "9", 2), ("3", "9", 1)])
    dataset = load_dataset(tmp_path / "esg", tmp_path / "corpus")
    assert dataset.queries == {"1": "red page?", "2": "blue or green?", "3": "any"}
    assert dataset.kinds == {"1": "extractive", "2": "boolean+multi-hop"}
    assert dataset.qrels == {"1": {"7": 2}, "2": {"8": 1, "9": 2}, "3": {"9": 1}}
    assert sorted(dataset.images.values()) == ["7", "8", "9"] and len(list((tmp_path / "corpus").glob("*.png"))) == 3


def test_beir_bad_qrels_column(tmp_path: Path) -> None:
    write_beir(tmp_path / "ds", "-", {"1": tiny_image("red")}, [("1", "q", None)], [("1", "1", 1)])
    pq.write_table(pa.table({"query-id": [1], "doc": [1], "score": [1]}),
                   tmp_path / "ds" / "qrels" / "test-00000-of-00001.parquet")
    with pytest.raises(ColretrieveError, match="qrels/test-00000-of-00001.parquet: no column corpus-id or corpus_id"):
        load_dataset(tmp_path / "ds", tmp_path / "corpus")


# ---- end to end on real page images (OCR, the text default encoder, pytrec_eval) ------------

def test_v1_benchmark_from_the_cli(tmp_path: Path, page_pngs: dict[str, bytes]) -> None:
    rows = [(question, page_pngs[key], f"{key}.png") for key, (_, _, question) in IMAGE_PAGES.items()]
    rows.append((None, tiny_image("white"), "blank.png"))
    pq.write_table(qa_table(rows), tmp_path / "mini_v1.parquet")
    out = tmp_path / "results.json"
    run = subprocess.run([sys.executable, "-m", "colretrieve", "benchmark", str(tmp_path / "mini_v1.parquet"),
                          "--index", str(tmp_path / "index"), "--out", str(out)],
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    results = json.loads(out.read_text())
    assert results["ingest"]["pages"] == 4 and results["metadata"]["queries"] == 3
    assert results["metrics"]["mini_v1"]["ndcg_at_5"] == 1.0  # every page found first through its OCR words
    assert "mini_v1: 3 queries" in run.stdout


def test_beir_benchmark_default_and_bm25(tmp_path: Path, page_pngs: dict[str, bytes], text_encoder) -> None:
    keys = list(IMAGE_PAGES)
    write_beir(tmp_path / "mini_v3", "_", {str(i): page_pngs[k] for i, k in enumerate(keys)},
               [(str(10 + i), IMAGE_PAGES[k][2], [IMAGE_PAGES[k][0].split("__")[0]]) for i, k in enumerate(keys)],
               [(str(10 + i), str(i), 1) for i in range(len(keys))])
    dataset = load_dataset(tmp_path / "mini_v3", tmp_path / "corpus")
    default = run_benchmark(dataset, tmp_path / "index", model=text_encoder)
    assert default["metrics"]["mini_v3"]["mrr_at_1"] == 1.0
    assert default["by_kind"]["pikepdf"] == {**default["by_kind"]["pikepdf"], "queries": 1, "ndcg_at_5": 1.0}
    bm25 = run_benchmark(dataset, tmp_path / "index", retriever="bm25", model=text_encoder)
    assert bm25["ingest"]["pages"] == 0 and bm25["metrics"]["mini_v3"]["recall_at_3"] == 1.0
