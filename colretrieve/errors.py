"""Errors users see: one line each, saying what went wrong and with what."""

from __future__ import annotations

import os


class ColretrieveError(Exception):
    """Base class; the CLI prints these as one line without a traceback."""


class BadDocumentError(ColretrieveError):
    """A file that cannot be ingested; the message is the reason, the path travels with it."""

    def __init__(self, path: str | os.PathLike[str], reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


class NotFoundError(ColretrieveError):
    """What a caller named (a document, a page) is not in the index."""


class IndexLockedError(ColretrieveError):
    """Another process writes to the index; embedded Qdrant allows one process per directory."""


class IndexConfigError(ColretrieveError):
    """The index on disk does not match what the caller asked for (encoder, format)."""


class StoreUnreachableError(ColretrieveError):
    """A Qdrant server cannot be used: down, a wrong URL, refused access, or failing past retries."""


class IndexCorruptError(ColretrieveError):
    """A file of the index cannot be read as written (garbage, cut short); the message names the
    file and the command that repairs it. Nothing is written into such an index."""


class DiskFullError(ColretrieveError):
    """The disk under the index has no room (or failed a write); what was stored before stays."""
