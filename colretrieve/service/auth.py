"""Who may call the service: one bearer API key, compared in constant time.

Without a key the service answers anyone who can reach it, so it then binds to loopback only.
Probes (/health, /ready) need no key: they say nothing about the index.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
from pathlib import Path

from ..errors import ColretrieveError
from ..settings import API_KEY_ENV

#: Paths a load balancer or orchestrator polls without credentials.
OPEN_PATHS = frozenset({"/health", "/ready"})


def api_key(file: Path | None) -> str | None:
    """The key from `file` (its first line), else from $COLRETRIEVE_API_KEY; None if neither."""
    if file is not None:
        try:
            lines = file.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise ColretrieveError(f"{file}: cannot read the API key ({exc})") from None
        key = lines[0].strip() if lines else ""
        if not key:
            raise ColretrieveError(f"{file}: the API key file is empty")
        return key
    return os.environ.get(API_KEY_ENV) or None


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def host_name(host: str) -> str:
    """The name in a Host header, without its port (`[::1]:8000` -> `::1`)."""
    if host.startswith("["):
        return host[1:].partition("]")[0]
    return host.rpartition(":")[0] if host.count(":") == 1 else host


def check_binding(host: str, key: str | None) -> None:
    """Refuse to listen beyond this machine without a key."""
    if key is None and not is_loopback(host):
        raise ColretrieveError(f"--host {host}: without an API key the service listens on loopback only; set "
                               f"${API_KEY_ENV} or --api-key-file, or use --host 127.0.0.1")


def verdict(key: str | None, authorization: str | None) -> int | None:
    """None if a request with this Authorization header may pass, else its status: 401 when it
    carries no bearer key, 403 when the key is wrong."""
    if key is None:
        return None
    scheme, _, given = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not given.strip():
        return 401
    return None if hmac.compare_digest(given.strip().encode(), key.encode()) else 403
