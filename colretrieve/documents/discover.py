"""Find documents under the paths a user names, and fingerprint them by content."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from pathlib import Path

from .image import IMAGE_SUFFIXES

_CHUNK = 1 << 20


def discover_documents(paths: Iterable[str | Path], images: bool = False) -> Iterator[Path]:
    """Yield PDF files (and image files, with `images`) under `paths`, recursively, sorted.

    Any case of the extension counts (`.PDF`, `.Pdf`): scanners and Windows tools write them.
    Images in folders are opt-in, since PDF folders often hold logos and figures beside them.
    A path named explicitly is yielded whatever its extension, so the user learns why it
    failed instead of seeing it ignored. A missing path raises FileNotFoundError.
    """
    suffixes = {".pdf"} | (IMAGE_SUFFIXES if images else set())
    seen: set[Path] = set()
    for raw in paths:
        path = Path(raw)
        if not path.exists():
            raise FileNotFoundError(f"{path}: no such file or directory")
        if path.is_dir():
            found = (p for p in path.rglob("*") if p.suffix.lower() in suffixes and p.is_file())
            candidates = sorted(found)
        else:
            candidates = [path]
        for candidate in candidates:
            key = candidate.resolve()
            if key not in seen:
                seen.add(key)
                yield candidate


def content_hash(path: Path) -> str:
    """sha256 of the file's bytes: the document id, so renames keep and edits change it."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()
