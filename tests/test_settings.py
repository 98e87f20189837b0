"""settings.py: the defaults of a new index, and IndexConfig, what an index saves of its choices
in index.json so that it reopens the same way. (A garbled index.json through the CLI is a case of
tests/test_faults.py; a lost one is tests/test_location.py.)"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import pytest

from colretrieve.errors import IndexConfigError, IndexCorruptError
from colretrieve.settings import CONFIG_FILE, FORMAT_VERSION, INDEX_ENV, IndexConfig, default_index_dir

CONFIG = IndexConfig(encoder_id="minilm-grid:test", dim=384, prefilter_id="native", single_dim=384,
                     encoder_options={"max_pixels": 9})


def test_a_saved_config_loads_the_same(tmp_path: Path) -> None:
    assert IndexConfig.load(tmp_path) is None  # nothing saved: no config, not an error
    CONFIG.save(tmp_path)
    assert IndexConfig.load(tmp_path) == CONFIG
    assert json.loads((tmp_path / CONFIG_FILE).read_text())["format_version"] == FORMAT_VERSION
    assert [p.name for p in tmp_path.iterdir()] == [CONFIG_FILE]  # no temporary copy left beside it


@pytest.mark.parametrize(("text", "error", "message"), [
    ("{not json", IndexCorruptError, "is not valid JSON .*; run colretrieve check --repair --index X"),
    ("[1, 2]", IndexCorruptError, "is not an index config; run colretrieve check --repair --index X"),
    (json.dumps({**asdict(CONFIG), "colour": "red"}), IndexCorruptError, "is not an index config"),
    (json.dumps({**asdict(CONFIG), "dim": 0}), IndexCorruptError, r"not an index config \(dim 0, dpi 144\)"),
    (json.dumps({**asdict(CONFIG), "format_version": 0}), IndexConfigError,
     f"index format 0, this colretrieve reads format {FORMAT_VERSION}; re-ingest"),
], ids=["not-json", "not-a-dict", "unknown-key", "dim-0", "other-format"])
def test_a_config_that_cannot_be_read_names_the_repair(tmp_path: Path, text: str, error: type, message: str) -> None:
    (tmp_path / CONFIG_FILE).write_text(text)
    with pytest.raises(error, match=message) as raised:
        IndexConfig.load(tmp_path, repair="colretrieve check --repair --index X")
    assert str(tmp_path / CONFIG_FILE) in str(raised.value)


def test_the_default_index_dir_follows_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(INDEX_ENV, raising=False)
    assert default_index_dir() == Path("colretrieve-index")
    monkeypatch.setenv(INDEX_ENV, str(tmp_path / "mine"))
    assert default_index_dir() == tmp_path / "mine"
