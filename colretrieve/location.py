"""Where an index lives, and the store that holds its pages there.

An index is a directory (its pages in the embedded qdrant-edge store, or in qdrant-client's
local mode) or a collection on a Qdrant server or cluster, named by URL:
`http://HOST:6333/COLLECTION`. A directory keeps its config in index.json; a collection keeps
it in the collection's metadata, so any machine that reaches the server can open it.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
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

    def create(self, store: str, vectors: str | None, configure: Callable[[], IndexConfig],
               options: QdrantOptions | None = None) -> tuple[IndexConfig, Store, IndexLock | None]:
        """A new, empty index here: (its config, its store, the directory's lock or None).

        `configure` builds the config (e.g. loading the encoder) once the directory is held; the
        store kind, vector form and collection are settled here. `vectors` None keeps the
        configured form where the store keeps vector files (the embedded one), else float16.
        A directory's index.json is written last: its presence means the index is complete.
        """
        store = "qdrant" if self.server else store
        if store not in DIRECTORY_STORES:
            raise ColretrieveError(f"store {store!r}: choose one of {', '.join(DIRECTORY_STORES)}")
        if vectors not in (None, "float16") and store != "edge":
            raise ColretrieveError(f"--vectors {vectors} is for the embedded store; a Qdrant collection "
                                   "compresses with its own --quantization option")
        if self.exists():
            raise IndexConfigError(f"{self} already holds an index; open it with Index.open")
        lock = self._lock(create=True)
        try:
            config = configure()
            config = replace(config, store=store,
                             vectors=vectors or (config.vectors if store == "edge" else "float16"),
                             collection=self.collection or ("pages" if store == "qdrant" else ""))
            if self.directory is not None:  # a create that died before its config left this
                shutil.rmtree(self.directory / STORE_DIR, ignore_errors=True)
            pages = self._create_store(config, options)
            if self.directory is not None:
                config.save(self.directory)
        except BaseException:
            if lock:
                lock.release()
            raise
        return config, pages, lock

    def open(self) -> tuple[IndexConfig, Store, IndexLock | None]:
        """The index here: (its config, its store, the directory's lock or None). A store built
        for another schema than the config's is an error."""
        if self.directory is None:
            store = QdrantStore.open(connect(self.server, grpc=self.grpc), self.collection)  # type: ignore[arg-type]
            return IndexConfig.from_dict(store.metadata, str(self)), store, None
        config = IndexConfig.load(self.directory)
        lock = self._lock()
        try:
            if config.store == "edge":
                store = EdgeStore.open(self.directory / STORE_DIR, config.schema, config.vectors)
            else:
                store = QdrantStore.open(connect(str(self.directory / STORE_DIR)), config.collection, config.schema)
        except BaseException:
            lock.release()  # type: ignore[union-attr]
            raise
        return config, store, lock

    def _lock(self, create: bool = False) -> IndexLock | None:
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

    def _create_store(self, config: IndexConfig, options: QdrantOptions | None) -> Store:
        if self.directory is None:
            client = connect(self.server, grpc=self.grpc)  # type: ignore[arg-type]
            return QdrantStore.create(client, self.collection, config.schema, options,  # type: ignore[arg-type]
                                      metadata=asdict(config))
        if config.store == "edge":
            return EdgeStore.create(self.directory / STORE_DIR, config.schema, config.vectors)
        return QdrantStore.create(connect(str(self.directory / STORE_DIR)), config.collection, config.schema,
                                  options, metadata=asdict(config))
