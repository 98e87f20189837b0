"""A benchmark run end to end on a small PDF-folder dataset made from the sample PDFs."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from colretrieve.errors import ColretrieveError
from colretrieve.evaluation.datasets import load_dataset
from colretrieve.evaluation.metrics import CUTOFFS
from colretrieve.evaluation.runner import run_benchmark

QUERIES = [
    ("q1", "How many people were arrested in 2009, broken down by sex and age?", "table",
     "tabula__census_table_12s0324.pdf#1"),
    ("q2", "barplot showing the variances of the principal components", "chart", "hsaur3__pca.pdf#8"),
    ("q3", "why should the review board grant the requested change of discharge", "form",
     "pikepdf__dd_form_293.pdf#2"),
]


@pytest.fixture
def dataset(tmp_path: Path, samples: Path) -> Path:
    root = tmp_path / "mini"
    root.mkdir()
    (root / "pdfs").symlink_to(samples, target_is_directory=True)
    (root / "queries.jsonl").write_text("".join(
        json.dumps({"query-id": q, "query": text, "kind": kind}) + "\n" for q, text, kind, _ in QUERIES))
    (root / "qrels.tsv").write_text("query-id\tcorpus-id\tscore\n" + "".join(
        f"{q}\t{cid}\t2\n" for q, _, _, cid in QUERIES))
    return root


def test_default_and_bm25_runs_report_every_metric(dataset: Path, index_copy: Path, text_encoder) -> None:
    data = load_dataset(dataset)
    assert (data.name, len(data.queries), data.kinds["q2"]) == ("mini", 3, "chart")
    default = run_benchmark(data, index_copy, model=text_encoder)
    assert default["ingest"]["pages"] == 0  # the copy already holds the samples: nothing re-encoded
    metrics = default["metrics"]["mini"]
    assert set(metrics) == {f"{m}_at_{k}" for m in ("ndcg", "map", "recall", "precision", "mrr") for k in CUTOFFS}
    assert metrics["ndcg_at_5"] == 1.0 and metrics["mrr_at_1"] == 1.0  # every answer page ranked first
    assert default["by_kind"]["form"]["queries"] == 1 and default["by_kind"]["form"]["ndcg_at_5"] == 1.0
    assert default["latency_ms"]["p50"] > 0

    bm25 = run_benchmark(data, index_copy, retriever="bm25", model=text_encoder)
    assert bm25["metadata"]["encoder"] == "bm25" and 0 < bm25["metrics"]["mini"]["recall_at_10"] <= 1


def test_cli_writes_results_json(dataset: Path, index_copy: Path, tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    run = subprocess.run([sys.executable, "-m", "colretrieve", "benchmark", str(dataset), "--index", str(index_copy),
                          "--encoder", "bm25", "--out", str(out)], capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    results = json.loads(out.read_text())
    assert set(results) >= {"metadata", "metrics"} and "ndcg_at_5" in results["metrics"]["mini"]
    assert "nDCG@5 by query kind" in run.stdout and "table" in run.stdout


def test_not_a_benchmark_folder(tmp_path: Path) -> None:
    with pytest.raises(ColretrieveError, match="not a benchmark: expected a PDF folder"):
        load_dataset(tmp_path)
