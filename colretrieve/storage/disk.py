"""The disk under an embedded store: room before writing, and what to do when there is none.

qdrant-edge writes through memory-mapped files: on a full disk a write into a hole of such a
file is not an error the engine can return but a SIGBUS that kills the process. So room is
checked before every write, and before loading a shard (loading fills some of those holes).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..errors import DiskFullError

#: Room kept free beyond what a write itself needs: the engine grows its files in steps
#: (memory-mapped chunks and write-ahead-log segments of up to 32 MiB).
RESERVE = 64 << 20


def free_bytes(path: Path) -> int:
    """Bytes an unprivileged writer may still use on the filesystem holding `path`."""
    stat = os.statvfs(path)
    return stat.f_bavail * stat.f_frsize


def mount_of(path: Path) -> Path:
    """The mount point holding `path`: the disk named in messages."""
    path = path.resolve()
    while not os.path.ismount(path) and path != path.parent:
        path = path.parent
    return path


def _size(count: int) -> str:
    return f"{count / 2**20:,.0f} MiB"


def ensure_room(path: Path, need: int, what: str) -> None:
    """Raise DiskFullError unless `need` bytes and the RESERVE are free where `path` lies."""
    free = free_bytes(path)
    if free < need + RESERVE:
        raise DiskFullError(f"the disk at {mount_of(path)} is full ({_size(free)} free, {what} needs "
                            f"{_size(need + RESERVE)}); the pages stored before are kept: free space and "
                            "run the same command again")


def load_room(shard: Path) -> int:
    """Bytes loading the shard at `shard` may write: the holes of its payload indexes' sparse
    files, which qdrant-edge 0.9 fills in full on every load (measured; its vector and log
    files it leaves as they are)."""
    total = 0
    for root, _, files in os.walk(shard):
        if "payload_index" in Path(root).parts:
            for name in files:
                stat = os.stat(os.path.join(root, name))
                total += max(stat.st_size - stat.st_blocks * 512, 0)
    return total


def copy_for_reading(directory: Path) -> Path:
    """A temporary copy of `directory` on another disk, for reading a shard whose own disk is too
    full to load it; the caller removes it. DiskFullError if no temporary disk has room either."""
    used = sum(os.stat(os.path.join(root, name)).st_size for root, _, files in os.walk(directory) for name in files)
    scratch = Path(tempfile.gettempdir())
    if os.stat(scratch).st_dev == os.stat(directory).st_dev or free_bytes(scratch) < used + RESERVE:
        raise DiskFullError(f"the disk at {mount_of(directory)} is too full to open {directory} "
                            f"({_size(free_bytes(directory))} free), and {scratch} has no room for a copy: "
                            "free some space")
    copy = Path(tempfile.mkdtemp(prefix="colretrieve-read-"))
    try:
        shutil.copytree(directory, copy / directory.name)
    except OSError as exc:
        shutil.rmtree(copy, ignore_errors=True)
        raise DiskFullError(f"cannot copy {directory} to {scratch} for reading: {exc.strerror or exc}") from exc
    return copy / directory.name


@contextmanager
def quiet_stderr() -> Iterator[None]:
    """Silence file descriptor 2 for a call into native code: a Rust panic prints its backtrace
    there, while the user should see the one-line error it becomes."""
    saved = os.dup(2)
    sink = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(sink, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(sink)
