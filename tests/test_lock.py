"""lock.py: one process per index directory, with an error that names the pid holding it; the
lock goes with its holder, released by `release()` or by the process ending, even on kill -9."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from colretrieve import Index
from colretrieve.lock import IndexLock

#: Tries to take the lock of the directory argv[1] in a process of its own, and says what happened.
PROBE = """
import sys
from pathlib import Path
from colretrieve.errors import IndexLockedError
from colretrieve.lock import IndexLock
try:
    IndexLock(Path(sys.argv[1])).acquire()
    print("acquired")
except IndexLockedError as e:
    print("IndexLockedError", e)
"""

#: Takes the lock of the directory argv[1], says so, and holds it until killed.
HOLD = """
import sys, time
from pathlib import Path
from colretrieve.lock import IndexLock
IndexLock(Path(sys.argv[1])).acquire()
print("held", flush=True)
time.sleep(600)
"""


def try_lock(directory: Path) -> str:
    run = subprocess.run([sys.executable, "-c", PROBE, str(directory)], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    return run.stdout.strip()


def test_second_process_gets_a_clear_lock_error(built_index: Path) -> None:
    with Index.open(built_index):
        probe = ("from colretrieve import Index\n"
                 f"try:\n    Index.open({str(built_index)!r})\nexcept Exception as e:\n    print(type(e).__name__, e)")
        out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120).stdout
    assert out.startswith("IndexLockedError") and f"locked by pid {os.getpid()}" in out
    with Index.open(built_index):  # released on close: the same process reopens it
        pass


def test_another_process_is_refused_until_release(tmp_path: Path) -> None:
    lock = IndexLock(tmp_path)
    lock.acquire()
    assert (tmp_path / "LOCK").read_text() == str(os.getpid())  # the holder's pid, for the error
    try:
        refused = try_lock(tmp_path)
    finally:
        lock.release()
    assert refused.startswith(f"IndexLockedError index {tmp_path} is locked by pid {os.getpid()}; wait for it")
    assert (tmp_path / "LOCK").read_text() == ""  # released: no pid left behind
    assert try_lock(tmp_path) == "acquired"
    lock.release()  # a second release does nothing


def test_the_lock_of_a_killed_process_is_taken_over(tmp_path: Path) -> None:
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        assert try_lock(tmp_path).endswith(f"locked by pid {holder.pid}; wait for it to finish (the embedded store "
                                        "serves one process at a time; use a Qdrant server for more)")
    finally:
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait()
        if holder.stdout is not None:
            holder.stdout.close()
    assert (tmp_path / "LOCK").read_text() == str(holder.pid)  # the dead holder's pid is still written there
    lock = IndexLock(tmp_path)
    lock.acquire()  # the kernel let go of the lock with its process
    try:
        assert (tmp_path / "LOCK").read_text() == str(os.getpid())
    finally:
        lock.release()
