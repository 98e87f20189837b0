"""Small files written so that a crash or a full disk never leaves half of one: write a
temporary copy, fsync it, then publish it under its name (and fsync the folder)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .errors import IndexCorruptError


def publish(path: Path, data: bytes | Iterable[bytes]) -> None:
    """`path` holds `data` (bytes, or chunks of them) whole, or keeps what it held before."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "wb") as fh:
            for chunk in [data] if isinstance(data, bytes) else data:
                fh.write(chunk)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    sync_folder(path.parent)


def sync_folder(folder: Path) -> None:
    """Make the names in `folder` (a rename, a new file) durable."""
    handle = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(handle)
    finally:
        os.close(handle)


def fsync_tree(folder: Path) -> None:
    """Every file in `folder`, and the folder itself, on disk: before a rename publishes it."""
    for item in folder.iterdir():
        if item.is_file():
            with open(item, "rb") as fh:
                os.fsync(fh.fileno())
    sync_folder(folder)


def publish_json(path: Path, value: Any) -> None:
    publish(path, (json.dumps(value, indent=2) + "\n").encode())


def read_json(path: Path, repair: str) -> Any:
    """The JSON saved at `path`, None if there is none; garbage there is an IndexCorruptError
    naming `repair`, the command that mends it."""
    try:
        return json.loads(path.read_bytes())
    except FileNotFoundError:
        return None
    except (ValueError, UnicodeDecodeError) as exc:
        raise IndexCorruptError(f"{path} is not valid JSON ({exc}); run {repair}") from exc
