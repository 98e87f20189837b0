"""Helpers shared by test modules: the CLI as a user runs it (a real subprocess), the one line a
failed run prints, and the pages and top hits of an index for a fixed set of questions."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from colretrieve import Index

#: The fault suite's queries (tests/test_faults.py, tests/test_location.py).
QUERIES = ("arrests by sex and age", "principal components variances", "application for review of discharge")
CENSUS = "tabula__census_table_12s0324.pdf"

#: Questions on the sample PDFs with the (file, page) that answers each.
QUESTIONS = [
    ("How many people were arrested in 2009, broken down by sex and age?", "tabula__census_table_12s0324.pdf", 1),
    ("barplot showing the variances of the principal components", "hsaur3__pca.pdf", 8),
    ("why should the review board grant the requested change of discharge", "pikepdf__dd_form_293.pdf", 2),
]


def cli(*args: str, timeout: float = 600, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "colretrieve", *args], capture_output=True, text=True,
                          timeout=timeout, **kwargs)


def one_line(run: subprocess.CompletedProcess) -> str:
    """The run's only line on stderr (a traceback or a library's chatter would be more)."""
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, run.stderr
    return lines[0]


def snapshot(directory: Path, encoder) -> tuple[set[tuple[str, int]], list[list[tuple[str, int]]]]:
    """The complete pages of the index, and the top-5 (doc, page) of each of QUERIES."""
    with Index.open(directory, read_only=True, model=encoder) as index:
        pages = {(p["doc_id"], p["page"]) for _, p in index.pages(("doc_id", "page"))}
        tops = [[(h.doc_id, h.page) for h in index.search(q)] for q in QUERIES]
    return pages, tops


def _top(index: Index, k: int = 5) -> list[list[tuple[str, int]]]:
    """The top-k (file name, page) of each of QUESTIONS."""
    return [[(Path(h.path).name, h.page) for h in index.search(q, k=k)] for q, _, _ in QUESTIONS]
