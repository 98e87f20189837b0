"""Find documents under the paths a user names, and fingerprint them by content."""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path

from ..errors import BadDocumentError
from .image import IMAGE_SUFFIXES

_CHUNK = 1 << 20
_KINDS = ((stat.S_ISFIFO, "a named pipe"), (stat.S_ISCHR, "a device"), (stat.S_ISBLK, "a device"),
          (stat.S_ISSOCK, "a socket"), (stat.S_ISDIR, "a folder"))

#: Why a file that changed while colretrieve read it failed.
CHANGED = "changed while it was read; run the ingest again once it is written"

#: Why a file a link leads out of a service's allowed folders is not read.
OUTSIDE = "outside the folders this service may read"

#: What identifies a file's current version without reading it: size, mtime, inode, device.
FileState = tuple[int, int, int, int]


def discover_documents(paths: Iterable[str | Path], images: bool = False,
                       problem: Callable[[Path, str], None] | None = None,
                       within: Sequence[Path] | None = None) -> Iterator[Path]:
    """Yield PDF files (and image files, with `images`) under `paths`, recursively, sorted.

    Any case of the extension counts (`.PDF`, `.Pdf`): scanners and Windows tools write them.
    Images in folders are opt-in, since PDF folders often hold logos and figures beside them.
    A path named explicitly is yielded whatever its extension, so the user learns why it
    failed instead of seeing it ignored. A missing path raises FileNotFoundError. Linked
    folders are followed, each folder searched once (a link back up is not a loop); a folder
    that cannot be read goes to `problem` with the reason. With `within` (a service's allowed
    folders), a file whose real location, links resolved, lies outside them goes to `problem`.
    """
    suffixes = {".pdf"} | (IMAGE_SUFFIXES if images else set())
    seen: set[Path] = set()
    for raw in paths:
        path = Path(raw)
        if not path.exists():
            raise FileNotFoundError(f"{path}: no such file or directory")
        candidates = sorted(_walk(path, suffixes, problem)) if path.is_dir() else [path]
        for candidate in candidates:
            key = candidate.resolve()
            if within is not None and not any(key.is_relative_to(folder) for folder in within):
                if problem is not None:
                    problem(candidate, OUTSIDE)
                continue
            if key not in seen:
                seen.add(key)
                yield candidate


def _walk(folder: Path, suffixes: set[str], problem: Callable[[Path, str], None] | None) -> Iterator[Path]:
    searched: set[tuple[int, int]] = set()

    def unreadable(error: OSError) -> None:
        if problem is not None:
            problem(Path(error.filename), f"cannot read this folder ({error.strerror})")

    for root, folders, files in os.walk(folder, followlinks=True, onerror=unreadable):
        where = os.stat(root)
        if (where.st_dev, where.st_ino) in searched:  # reached again through a link
            folders[:] = []
            continue
        searched.add((where.st_dev, where.st_ino))
        folders.sort()
        yield from (Path(root, name) for name in files if Path(name).suffix.lower() in suffixes)


def file_state(path: Path) -> FileState:
    """The file's size, mtime, inode and device: if any differs later, the file was changed."""
    info = os.stat(path)
    return info.st_size, info.st_mtime_ns, info.st_ino, info.st_dev


def content_hash(path: Path) -> str:
    """sha256 of the file's bytes: the document id, so renames keep and edits change it.

    Only regular files are read (a named pipe or a device would never end); a file that
    changes while it is read is a BadDocumentError.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    with os.fdopen(fd, "rb") as fh:
        before = os.fstat(fd)
        for test, kind in _KINDS:
            if test(before.st_mode):
                raise BadDocumentError(path, f"not a regular file ({kind})")
        digest = hashlib.sha256()
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
        after = os.fstat(fd)
    if (after.st_size, after.st_mtime_ns) != (before.st_size, before.st_mtime_ns):
        raise BadDocumentError(path, CHANGED)
    return digest.hexdigest()


def path_text(path: Path) -> str:
    """A path as text any terminal and JSON can carry: bytes that are not UTF-8 are written
    as \\xNN escapes (`raw_path` keeps the real name)."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def raw_path(path: Path) -> str | None:
    """The name's bytes in hex where they are not UTF-8 (`path_text` escaped them), else None."""
    raw = os.fsencode(path)
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.hex()
    return None
