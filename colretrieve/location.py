"""Where an index lives, and the store that holds its pages there.

An index is a directory (its pages in the embedded qdrant-edge store, or in qdrant-client's
local mode) or a collection on a Qdrant server or cluster, named by URL:
`http://HOST:6333/COLLECTION`. A directory keeps its config in index.json; a collection keeps
it in the collection's metadata, so any machine that reaches the server can open it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import urlsplit

from .config import CONFIG_FILE, IndexConfig
from .errors import ColretrieveError, IndexConfigError
from .lock import IndexLock
from .storage.base import Store
from .storage.edge import EdgeStore
from .storage.qdrant import QdrantOptions, QdrantStore, connect

#: Stores a directory index can use: the embedded engine, or qdrant-client's local mode.
DIRECTORY_STORES = ("edge", "qdrant")
STORE_DIR = "store"


def check_vectors(store: str, vectors: str) -> None:
    """int8 / binary vector files are kept beside the embedded store only."""
    if vectors != "float16" and store != "edge":
        raise ColretrieveError(f"--vectors {vectors} is for the embedded store; a Qdrant collection "
                               "compresses with its own --quantization option")


@dataclass(frozen=True)
class Location:
    """A directory, or a server URL and collection; `grpc` is how this process talks to a server."""

    directory: Path | None = None
    server: str | None = None
    collection: str | None = None
    grpc: bool = False

    @classmethod
    def parse(cls, target: str | Path, grpc: bool = False) -> "Location":
        text = str(target)
        if not text.startswith(("http://", "https://")):
            return cls(directory=Path(target))
        parts = urlsplit(text)
        collection = parts.path.strip("/")
        if not collection or "/" in collection:
            raise IndexConfigError(f"{text}: name one collection after the server, e.g. "
                                   f"{parts.scheme}://{parts.netloc}/my-index")
        return cls(server=f"{parts.scheme}://{parts.netloc}", collection=collection, grpc=grpc)

    def __str__(self) -> str:
        return str(self.directory) if self.directory else f"{self.server}/{self.collection}"

    def store_kind(self, store: str) -> str:
        """The store a new index here uses: a server's collection is always "qdrant"."""
        if self.server:
            return "qdrant"
        if store not in DIRECTORY_STORES:
            raise ColretrieveError(f"store {store!r}: choose one of {', '.join(DIRECTORY_STORES)}")
        return store

    def lock(self, create: bool = False) -> IndexLock | None:
        """Hold the directory for this process (made first if `create`): one writer at a time.
        A server orders concurrent writers itself, so there is nothing to hold."""
        if self.directory is None:
            return None
        if create:
            self.directory.mkdir(parents=True, exist_ok=True)
        held = IndexLock(self.directory)
        held.acquire()
        return held

    def exists(self) -> bool:
        """True if an index is already here (for a server: the collection exists)."""
        if self.directory is not None:
            return (self.directory / CONFIG_FILE).exists()
        client = connect(self.server, grpc=self.grpc)  # type: ignore[arg-type]
        try:
            return client.collection_exists(self.collection)  # type: ignore[arg-type]
        finally:
            client.close()

    def load_config(self) -> IndexConfig:
        if self.directory is not None:
            return IndexConfig.load(self.directory)
        store = self.open_store(None)
        try:
            return IndexConfig.from_dict(store.metadata, str(self))  # type: ignore[union-attr]
        finally:
            store.close()

    def create_store(self, config: IndexConfig, options: QdrantOptions | None = None) -> Store:
        """An empty store for `config`; a directory's index.json is the caller's to write last."""
        if self.directory is None:
            client = connect(self.server, grpc=self.grpc)  # type: ignore[arg-type]
            return QdrantStore.create(client, self.collection, config.schema, options,  # type: ignore[arg-type]
                                      metadata=asdict(config))
        if config.store == "edge":
            return EdgeStore.create(self.directory / STORE_DIR, config.schema, config.vectors)
        return QdrantStore.create(connect(str(self.directory / STORE_DIR)), config.collection, config.schema,
                                  options, metadata=asdict(config))

    def open_store(self, config: IndexConfig | None, options: QdrantOptions | None = None) -> Store:
        """The store of the index here; with `config`, a store built for another schema is an
        error. A directory's store needs its `config` (read from index.json first)."""
        schema = config.schema if config else None
        if self.directory is None:
            client = connect(self.server, grpc=self.grpc)  # type: ignore[arg-type]
            return QdrantStore.open(client, self.collection, schema, options)  # type: ignore[arg-type]
        if config is None:
            raise ValueError("a directory index's store opens with its config")
        if config.store == "edge":
            return EdgeStore.open(self.directory / STORE_DIR, config.schema, config.vectors)
        return QdrantStore.open(connect(str(self.directory / STORE_DIR)), config.collection, schema, options)
