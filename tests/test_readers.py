"""Readers never wait for a writer: while one process ingests, others search and list through it
(sharing.py), and see complete documents only. Real processes, real ingest."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from colretrieve import Index
from colretrieve.errors import IndexLockedError
from tests.helpers import cli

#: A reader process: every page an exact search can find, grouped by document, and the stats.
READER = """
import json, sys
from colretrieve import Index
with Index.open(sys.argv[1], read_only=True) as index:
    shared = type(index).__name__
    hits = index.search("table of arrests, principal components, loudspeakers", k=1000, exact=True)
    stats = index.stats()
print(json.dumps({"shared": shared, "pages": [[h.doc_id, h.page, h.page_count] for h in hits], "stats": stats}))
"""


def test_a_second_process_reads_during_an_ingest_and_sees_whole_documents(tmp_path: Path, samples: Path) -> None:
    target = tmp_path / "index"
    writer = subprocess.Popen([sys.executable, "-m", "colretrieve", "ingest", str(samples), "--index", str(target),
                               "--quiet", "--batch-size", "2"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              text=True)
    during = []
    try:
        while writer.poll() is None:
            if (target / "index.json").exists():
                run = subprocess.run([sys.executable, "-c", READER, str(target)], capture_output=True, text=True,
                                     timeout=300)
                assert run.returncode == 0, run.stderr  # never "index is locked"
                seen = json.loads(run.stdout)
                if writer.poll() is None:  # the ingest was still running when the answer came
                    during.append(seen)
            time.sleep(0.2)
    finally:
        writer.wait(timeout=600)
    assert writer.returncode == 0, writer.stderr.read() if writer.stderr else ""
    assert during and all(seen["shared"] == "SharedIndex" for seen in during)
    for seen in during:  # every document a reader finds is whole: all its pages, nothing half-stored
        pages: dict[str, set[int]] = {}
        for doc_id, page, count in seen["pages"]:
            pages.setdefault(doc_id, set()).add(page)
            assert count >= page
        counts = {doc_id: count for doc_id, _, count in seen["pages"]}
        assert all(found == set(range(1, counts[doc] + 1)) for doc, found in pages.items())
        # stats came a moment after the search: documents may have completed in between, none vanished
        assert seen["stats"]["documents"] >= len(pages) and seen["stats"]["pages"] >= len(seen["pages"])
    assert any(seen["stats"]["incomplete_documents"] or seen["stats"]["documents"] < 5 for seen in during)
    run = cli("stats", "--index", str(target), "--json")  # the writer is gone: the index opens as always
    assert run.returncode == 0 and json.loads(run.stdout)["documents"] == 5


def test_writes_wait_for_the_writer(built_index: Path, text_encoder) -> None:
    with Index.open(built_index, model=text_encoder):
        reader = Index.open(built_index, read_only=True)
        assert reader.stats()["documents"] == 5
        with pytest.raises(IndexLockedError, match="being written by another process"):
            reader.delete("hsaur3__pca.pdf")
        with pytest.raises(IndexLockedError):  # a writer of its own is refused, as before
            Index.open(built_index)
