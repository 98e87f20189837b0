"""Readers never wait for a writer: the process that holds an index answers other processes' reads.

qdrant-edge lets one process open a shard: a second `load` fails on the write-ahead log's lock,
and on the way deletes files the first process still needs (measured; the index's own LOCK
keeps it from getting that far). So the process holding an index directory serves reads on a
local socket for as long as it holds it: searches, stats, document lists and similarity maps,
answered by its own Index, which sees complete documents only, during an ingest as at any
other time. The socket lives in Linux's abstract namespace (no file to leave behind), named
after the index directory's device and inode, and answers only processes of the same user.

One request per connection: a JSON object with `op` and `args`, answered by `{"ok": true,
"result": ...}` or `{"ok": false, "error": "...", "kind": "..."}`.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import socketserver
import struct
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .errors import ColretrieveError, IndexLockedError

#: The largest request a reader may send (a query and its filter, or hits to map).
MAX_REQUEST = 1 << 20
#: How long a reader waits for an answer: a search, or maps rendered from the source files.
TIMEOUT = 600.0
#: How long a closing holder waits for the reads it is answering.
CLOSE_WAIT = 30.0

Handler = Callable[[str, dict[str, Any]], Any]


def address(directory: Path) -> bytes | None:
    """The socket of the process holding `directory`; None where there is no abstract namespace."""
    if not can_share():
        return None
    stat = directory.stat()
    key = hashlib.sha256(f"{stat.st_dev}:{stat.st_ino}".encode()).hexdigest()[:32]
    return b"\0colretrieve-" + key.encode()


def _read_all(sock: socket.socket, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > limit:
            raise ColretrieveError(f"a request over {limit} bytes")
        chunks.append(chunk)


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    handle: Handler
    #: Requests being answered: the holder waits for them before it closes its store.
    active = 0
    idle = threading.Condition()


class _Request(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        sock: socket.socket = self.request
        if _peer_uid(sock) != os.getuid():  # another user's process: not an answer, not even an error
            return
        server: _Server = self.server  # type: ignore[assignment]
        with server.idle:
            server.active += 1
        try:
            self._answer(sock, server)
        finally:
            with server.idle:
                server.active -= 1
                server.idle.notify_all()

    def _answer(self, sock: socket.socket, server: _Server) -> None:
        try:
            request = json.loads(_read_all(sock, MAX_REQUEST))
            result = server.handle(request["op"], request.get("args") or {})
            answer = {"ok": True, "result": result}
        except ColretrieveError as exc:
            answer = {"ok": False, "error": str(exc), "kind": type(exc).__name__}
        except Exception as exc:  # a bug in one read must not end the writer's process
            answer = {"ok": False, "error": f"{type(exc).__name__}: {exc}", "kind": "ColretrieveError"}
        try:
            sock.sendall(json.dumps(answer).encode())
        except OSError:  # the reader went away
            pass


class ReaderService:
    """Serves `handle(op, args)` to readers of `directory` from a background thread."""

    def __init__(self, directory: Path, handle: Handler) -> None:
        self._server: _Server | None = None
        name = address(directory)
        if name is None:
            return
        try:
            server = _Server(name, _Request, bind_and_activate=True)
        except OSError:  # taken: a process that held the index before us and still winds down
            return
        server.handle = handle
        self._server = server
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True,
                         name="colretrieve-readers").start()

    def close(self) -> None:
        """Stop taking reads, and let those being answered finish (up to CLOSE_WAIT seconds)
        before the caller closes the store under them."""
        if self._server is not None:
            server, self._server = self._server, None
            server.shutdown()
            server.server_close()
            with server.idle:
                server.idle.wait_for(lambda: server.active == 0, timeout=CLOSE_WAIT)


def can_share() -> bool:
    """Whether readers can reach a holder here (Linux's abstract sockets)."""
    return sys.platform.startswith("linux")


def ask(directory: Path, op: str, args: dict[str, Any]) -> Any:
    """`op` answered by the process holding `directory`; IndexLockedError when none answers
    (it is not a colretrieve that serves readers, or it has just let go of the index)."""
    name = address(directory)
    if name is None:
        raise IndexLockedError(f"index {directory} is open in another process")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(TIMEOUT)
        try:
            sock.connect(name)
            if _peer_uid(sock) != os.getuid():  # a name anyone could have bound first: not ours
                raise IndexLockedError(f"index {directory} is open in another process, and another user's "
                                       "process answers on its socket")
            sock.sendall(json.dumps({"op": op, "args": args}).encode())
            sock.shutdown(socket.SHUT_WR)
            raw = _read_all(sock, 1 << 30)
        except OSError as exc:
            raise IndexLockedError(f"index {directory} is open in another process that does not answer "
                                   f"reads ({exc.strerror or exc})") from exc
    if not raw:
        raise IndexLockedError(f"index {directory} is open in another process that does not answer reads")
    try:
        answer = json.loads(raw)
        ok, result = answer["ok"], answer.get("result")
        error = answer.get("error", "")
    except (ValueError, KeyError, TypeError) as exc:  # cut short: the holder died while answering
        raise ColretrieveError(f"index {directory}: the process holding it sent no whole answer") from exc
    if not ok:
        raise ColretrieveError(error)
    return result


def _peer_uid(sock: socket.socket) -> int:
    _, uid, _ = struct.unpack("3i", sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i")))
    return int(uid)
