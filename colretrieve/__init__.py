"""colretrieve: page retrieval over PDFs with late interaction, embedded or on a Qdrant cluster.

`Index`, `Hit` and `IngestReport` load on first use, so the CLI's help and usage errors start
without torch; `Client` (integrations/client.py) talks to a `colretrieve serve` service."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .errors import ColretrieveError

if TYPE_CHECKING:
    from .index import Hit, Index, IngestReport
    from .integrations.client import Client

__all__ = ["Client", "ColretrieveError", "Hit", "Index", "IngestReport"]


def __getattr__(name: str) -> Any:
    if name in ("Hit", "Index", "IngestReport"):
        from . import index

        return getattr(index, name)
    if name == "Client":
        from .integrations.client import Client

        return Client
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
