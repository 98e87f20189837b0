"""The command line as users run it: a real subprocess per command."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from colretrieve import Index
from colretrieve.documents import content_hash
from colretrieve.scoring import cpu_kernel
from colretrieve.storage.edge import PANEL_FILE
from tests.helpers import cli


@pytest.mark.slow
def test_bad_files_are_named_and_the_rest_is_ingested(bad_pdfs: Path, tmp_path: Path) -> None:
    index = tmp_path / "index"
    run = cli("ingest", str(bad_pdfs), "--index", str(index))
    assert run.returncode == 1
    lines = [line for line in run.stderr.splitlines() if line.startswith("skipped")]
    assert sorted(lines) == sorted([
        f"skipped {bad_pdfs / 'locked.pdf'}: password-protected",
        f"skipped {bad_pdfs / 'truncated.pdf'}: damaged or truncated PDF "
        "(Failed to load document (PDFium: Data format error))",
        f"skipped {bad_pdfs / 'x.pdf'}: empty file",
        f"skipped {bad_pdfs / 'y.pdf'}: not a PDF (starts with 'hello, I am a te')",
    ])
    assert "ingested 1 documents, 1 pages" in run.stderr and "4 failed" in run.stderr

    again = cli("ingest", str(bad_pdfs / "good.pdf"), "--index", str(index), "--json")
    assert again.returncode == 0
    assert json.loads(again.stdout) | {"seconds": 0} == {"documents": 0, "pages": 0, "unchanged": 1, "seconds": 0,
                                                          "pages_per_second": 0.0, "failed": []}

    query = cli("query", "arrests by sex and age", "--index", str(index), "--json")
    assert query.returncode == 0
    (hit,) = [json.loads(line) for line in query.stdout.splitlines()]
    assert {"rank", "score", "path", "page", "doc_id", "text"} <= hit.keys()
    assert (hit["rank"], hit["page"], Path(hit["path"]).name) == (1, 1, "good.pdf")
    assert hit["doc_id"] == content_hash(bad_pdfs / "good.pdf") and "Arrests" in hit["text"]

    human = cli("query", "arrests by sex and age", "--index", str(index), "-k", "3")
    first, snippet = human.stdout.splitlines()[:2]
    assert first.split()[0] == "1." and first.endswith("good.pdf  page 1/1")
    assert float(first.split()[1]) == round(hit["score"], 3) and "Arrests" in snippet

    stats = json.loads(cli("stats", "--index", str(index), "--json").stdout)
    assert (stats["documents"], stats["pages"], stats["incomplete_documents"]) == (1, 1, 0)
    assert stats["vectors"] > 100 and stats["bytes_on_disk"] > 0 and stats["encoder"].startswith("minilm-grid")
    assert stats["maxsim_kernel"] == cpu_kernel.name()

    deleted = cli("delete", str(bad_pdfs / "good.pdf"), "--index", str(index))
    assert deleted.returncode == 0 and "1 pages" in deleted.stdout
    missing = cli("delete", str(bad_pdfs / "good.pdf"), "--index", str(index))
    assert missing.returncode == 2 and missing.stderr.startswith("error:") and "no such document" in missing.stderr


@pytest.mark.slow
def test_kill_9_mid_ingest_then_rerun_stores_every_page_once(samples: Path, tmp_path: Path) -> None:
    index = tmp_path / "index"
    proc = subprocess.Popen([sys.executable, "-m", "colretrieve", "ingest", str(samples), "--index", str(index),
                             "--batch-size", "2", "--quiet"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    vectors = index / "store" / PANEL_FILE
    deadline = time.monotonic() + 300
    while (not vectors.exists() or vectors.stat().st_size == 0) and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(1.0)  # a few more batches: the kill lands inside a document
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()

    rerun = cli("ingest", str(samples), "--index", str(index), "--json")
    assert rerun.returncode == 0, rerun.stderr
    report = json.loads(rerun.stdout)
    assert 0 < report["pages"] < 23  # it resumed: pages stored before the kill were kept

    with Index.open(index) as opened:
        pages = [(p.payload["doc_id"], p.payload["page"]) for batch in opened.store.scan(fields=("doc_id", "page"))
                 for p in batch]
        stats = opened.stats()
    assert len(pages) == len(set(pages)) == 23
    assert (stats["documents"], stats["pages"], stats["incomplete_documents"]) == (5, 23, 0)


#: Runs the CLI in-process on argv, then prints which heavy libraries it had imported.
_LOADED = """
import sys
from colretrieve.cli import main
try:
    main(sys.argv[1:])
except SystemExit as exit:
    code = exit.code
print("loaded:", sorted(m for m in ("torch", "transformers", "qdrant_client") if m in sys.modules), code)
"""


@pytest.mark.parametrize("args", [["--help"], ["--version"], ["query", "--help"], ["ingest", "x.pdf", "--dpi", "0"],
                                  ["query", "?!"], ["frobnicate"], ["serve", "--help"], ["mcp", "--help"],
                                  ["query", "x", "--filter", "page>>2"]])
def test_help_version_and_usage_errors_load_no_model_library(args: list[str]) -> None:
    """They answer at once: neither torch nor transformers (seconds to import) is loaded."""
    run = subprocess.run([sys.executable, "-c", _LOADED, *args], capture_output=True, text=True, timeout=120)
    *_, last = run.stdout.strip().splitlines()
    assert last.startswith("loaded: []"), run.stdout + run.stderr
    assert last.endswith(" 0") if "--help" in args or "--version" in args else last.endswith(" 2")
