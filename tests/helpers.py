"""Helpers shared by test modules: the CLI as a user runs it (a real subprocess), the one line a
failed run prints, the pages and top hits of an index for a fixed set of questions, and a
real `colretrieve serve` process."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from colretrieve import Index
from colretrieve.settings import API_KEY_ENV

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


@contextmanager
def served(index: Path, *args: str, key: str | None = None, timeout: float = 180) -> Iterator[str]:
    """A real `colretrieve serve` process for `index` on 127.0.0.1 (a free port), ready to answer
    searches; yields its URL, stops it after."""
    env = {k: v for k, v in os.environ.items() if k != API_KEY_ENV}
    if key is not None:
        env[API_KEY_ENV] = key
    proc = subprocess.Popen([sys.executable, "-m", "colretrieve", "serve", "--index", str(index), "--port", "0",
                             "--device", "cpu", *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env=env)
    assert proc.stderr is not None
    said: list[str] = []
    url = None
    while url is None:
        line = proc.stderr.readline()
        if not line:
            proc.wait()
            raise AssertionError(f"serve ended before listening: {''.join(said)}")
        said.append(line)
        found = re.search(r" on (http://127\.0\.0\.1:\d+) ", line)
        url = found.group(1) if found else None
    threading.Thread(target=lambda: said.extend(proc.stderr), daemon=True).start()  # type: ignore[arg-type]
    try:
        deadline = time.monotonic() + timeout
        while not _ready(url):
            assert proc.poll() is None and time.monotonic() < deadline, "".join(said)
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/ready").status_code == 200
    except httpx.ConnectError:  # bound, not yet listening
        return False
