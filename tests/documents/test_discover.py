import hashlib
from pathlib import Path

import pytest

from colretrieve.documents import content_hash, discover_documents


def test_discovers_recursively_any_case_sorted(tmp_path: Path) -> None:
    (tmp_path / "b" / "deep").mkdir(parents=True)
    for name in ("b/deep/z.PDF", "a.pdf", "b/m.Pdf", "notes.txt", "b/deep/y.pdfx"):
        (tmp_path / name).write_bytes(b"%PDF-1.4")
    found = [p.relative_to(tmp_path).as_posix() for p in discover_documents([tmp_path])]
    assert found == ["a.pdf", "b/deep/z.PDF", "b/m.Pdf"]


def test_named_file_is_kept_even_without_extension_and_not_repeated(tmp_path: Path) -> None:
    odd = tmp_path / "scan.bin"
    odd.write_bytes(b"data")
    (tmp_path / "a.pdf").write_bytes(b"%PDF-1.4")
    found = list(discover_documents([odd, tmp_path, tmp_path / "a.pdf"]))
    assert found == [odd, tmp_path / "a.pdf"]


def test_missing_path_is_an_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nowhere"):
        list(discover_documents([tmp_path / "nowhere"]))


def test_content_hash_is_sha256_of_the_bytes(samples: Path) -> None:
    path = samples / "revtex__apssamp.pdf"
    assert content_hash(path) == hashlib.sha256(path.read_bytes()).hexdigest()
