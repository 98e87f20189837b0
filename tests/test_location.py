"""location.py: where an index lives, and what it refuses to touch. A directory that is not
ours (a user's folder, a regular file) is refused as it is; one of ours that a create left half
made is cleaned and made; one whose index.json was lost is rebuilt from its store by
`check --repair`, not started over. The fault-suite cases run the real CLI (tests/helpers.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from colretrieve import Index
from colretrieve.errors import IndexConfigError
from colretrieve.location import MARKER
from colretrieve.storage.edge import SHARD_DIR
from tests.helpers import CENSUS, cli, one_line, snapshot


def test_open_and_create_errors(tmp_path: Path, built_index: Path) -> None:
    with pytest.raises(IndexConfigError, match="not a colretrieve index"):
        Index.open(tmp_path)
    with pytest.raises(IndexConfigError, match="already holds an index"):
        Index.create(built_index)


# ---- 1. never delete what colretrieve did not create ----------------------------------

def test_a_folder_of_the_users_is_refused_and_left_as_it_was(samples: Path, tmp_path: Path) -> None:
    folder = tmp_path / "mine"
    (folder / "store").mkdir(parents=True)
    (folder / "store" / "thesis.tex").write_text("years of work")
    run = cli("ingest", str(samples / CENSUS), "--index", str(folder))
    assert run.returncode == 2
    assert "holds files and is not a colretrieve index" in one_line(run)
    assert (folder / "store" / "thesis.tex").read_text() == "years of work"
    assert sorted(p.name for p in folder.rglob("*")) == ["store", "thesis.tex"]


def test_a_regular_file_as_index_is_refused(samples: Path, tmp_path: Path) -> None:
    target = tmp_path / "notes.txt"
    target.write_text("mine")
    run = cli("ingest", str(samples / CENSUS), "--index", str(target))
    assert run.returncode == 2 and "is a file, not an index directory" in one_line(run)
    assert target.read_text() == "mine"


def test_a_lost_index_json_is_rebuilt_from_the_store_not_started_over(index_copy: Path, samples: Path, before,
                                                                       text_encoder) -> None:
    (index_copy / "index.json").unlink()
    run = cli("ingest", str(samples / CENSUS), "--index", str(index_copy))
    assert run.returncode == 2
    assert one_line(run).endswith(f"holds an index; run colretrieve check --repair --index {index_copy} to rebuild it")
    query = cli("query", "arrests", "--index", str(index_copy))
    assert query.returncode == 2 and "index.json is missing; run colretrieve check --repair" in one_line(query)
    repair = cli("check", "--repair", "--index", str(index_copy))
    assert repair.returncode == 0, repair.stderr
    assert "rebuilt" in repair.stdout and (index_copy / MARKER).exists()
    assert snapshot(index_copy, text_encoder) == before


def test_a_half_made_index_of_ours_is_cleaned_and_made(samples: Path, tmp_path: Path) -> None:
    index = tmp_path / "index"
    (index / "store" / SHARD_DIR).mkdir(parents=True)  # what a create killed before its config leaves
    (index / MARKER).write_text("{}")
    run = cli("ingest", str(samples / CENSUS), "--index", str(index), "--quiet")
    assert run.returncode == 0, run.stderr
    assert "ingested 1 documents, 1 pages" in run.stderr
