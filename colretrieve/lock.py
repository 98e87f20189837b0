"""One process per index directory, with an error that says who holds it."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from .errors import IndexLockedError


class IndexLock:
    """An exclusive advisory lock on `DIR/LOCK`, released when the process ends, even on kill -9.

    The embedded store admits one process at a time; taking this first turns a low-level
    "WAL would block" into "index is locked by pid N".
    """

    def __init__(self, directory: Path) -> None:
        self.path = directory / "LOCK"
        self._fd: int | None = None

    def acquire(self) -> None:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 64).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise IndexLockedError(
                f"index {self.path.parent} is locked by pid {holder}; wait for it to finish "
                "(the embedded store serves one process at a time; use a Qdrant server for more)"
            ) from None
        try:
            os.ftruncate(fd, 0)
            os.write(fd, str(os.getpid()).encode())
        except OSError:  # a full disk: the lock holds all the same, only its pid goes unsaid
            pass
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            try:
                os.ftruncate(self._fd, 0)
            except OSError:
                pass
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
