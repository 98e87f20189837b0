"""How a Qdrant collection is laid out and spoken to: options a caller sets without loading
the Qdrant client (qdrant.py loads it, ~1 s, only when a collection is opened)."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import ColretrieveError

#: Collection metadata key under which colretrieve keeps {"schema": ..., "config": ...}.
META_KEY = "colretrieve"
#: Compressed RAM copies a collection may keep of its multi-vectors (qdrant.QUANTIZATION).
QUANTIZATIONS = (None, "int8", "binary")


@dataclass
class QdrantOptions:
    """How a new collection is laid out (the first five) and how requests are sent (the last two).

    `on_disk`: the server keeps multi-vectors (~260 KB a ColPali page in float16) in
    memory-mapped files, its page cache holding the hot ones, rather than all in RAM.
    `quantization`: None, "int8" or "binary": a compressed RAM copy of the multi-vectors for
    Qdrant's own MAX_SIM queries (colretrieve itself reads the originals). `shard_number`, `replication_factor`,
    `write_consistency_factor`: the cluster layout, None for the server's default.
    `batch_size`: points per request; 8 ColPali pages (1030 x 128) are ~23 MB of JSON, under
    the server's default 32 MB request limit. `retries`: see `with_retries`.
    """

    on_disk: bool = True
    quantization: str | None = None
    shard_number: int | None = None
    replication_factor: int | None = None
    write_consistency_factor: int | None = None
    batch_size: int = 8
    retries: int = 5

    def __post_init__(self) -> None:
        if self.quantization not in QUANTIZATIONS:
            raise ColretrieveError(f"quantization: expected None, 'int8' or 'binary', got {self.quantization!r}")
