"""Where an index lives, and the store that holds its pages there.

An index is a directory (its pages in the embedded qdrant-edge store, or in qdrant-client's
local mode) or a collection on a Qdrant server or cluster, named by URL:
`http://HOST:6333/COLLECTION`. A directory keeps its config in index.json; a collection keeps
it in the collection's metadata, so any machine that reaches the server can open it.

colretrieve never deletes what it did not create. A directory it makes an index in carries
MARKER first; only a marked directory's half-made store is ever cleaned, a folder holding
anything else is refused, and the store keeps a copy of the config so a lost index.json is
rebuilt (`colretrieve check --repair`), never started over.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .catalog import INDEXES
from .errors import ColretrieveError, IndexConfigError, IndexCorruptError
from .files import publish_json, read_json
from .lock import IndexLock
from .settings import CONFIG_FILE, DIRECTORY_STORES, IndexConfig
from .storage import Store, StoreSchema
from .storage.collection import META_KEY, QdrantOptions
from .storage.edge import METADATA_FILE, SHARD_DIR, EdgeStore

STORE_DIR = "store"
#: Written first into every directory colretrieve makes an index in: what it may clean up.
MARKER = ".colretrieve-index"


@dataclass
class Held:
    """An index opened for this process: its config, its store and the directory's lock (None
    on a server, which orders writers itself). Closed together: the store, then the lock."""

    config: IndexConfig
    store: Store
    lock: IndexLock | None = None

    def close(self) -> None:
        try:
            self.store.close()
        finally:
            if self.lock:
                self.lock.release()

    def __enter__(self) -> Held:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass(frozen=True)
class Location:
    """A directory, or a server URL and collection; `grpc` is how this process talks to a server."""

    directory: Path | None = None
    server: str | None = None
    collection: str | None = None
    grpc: bool = False

    @classmethod
    def parse(cls, target: str | Path, grpc: bool = False) -> Location:
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
               options: QdrantOptions | None = None) -> Held:
        """A new, empty index here, held.

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
        self._claim()
        lock = self._lock(create=True)
        try:
            if self.directory is not None:
                self._claim()  # again, now that no other process can be making it
                self._mark()
                shutil.rmtree(self.directory / STORE_DIR, ignore_errors=True)  # ours: a create that died
            config = configure()
            config = replace(config, store=store,
                             vectors=vectors or (config.vectors if store == "edge" else "float16"),
                             collection=self.collection or ("pages" if store == "qdrant" else ""))
            held = Held(config, self._create_store(config, options), lock)
        except BaseException:
            if lock:
                lock.release()
            raise
        if self.directory is not None:
            try:
                config.save(self.directory)
            except BaseException:
                held.close()
                raise
        return held

    @property
    def repair(self) -> str:
        """The command that mends this index, as errors name it."""
        return f"colretrieve check --repair --index {self}"

    def _claim(self) -> None:
        """Refuse a target that holds what colretrieve did not make: a file, a folder of the user's,
        or an index whose config is lost (that one is repaired, not made again)."""
        directory = self.directory
        if directory is None or not (directory.exists() or directory.is_symlink()):
            return
        if not directory.is_dir():
            raise IndexConfigError(f"{directory} is a file, not an index directory; name a new or empty folder")
        entries = set(os.listdir(directory)) - {"LOCK"}
        if entries and MARKER not in entries:
            raise IndexConfigError(f"{directory} holds files and is not a colretrieve index; name a new or "
                                   "empty folder (colretrieve deletes nothing it did not create)")
        if self._saved_config() is not None:
            raise IndexCorruptError(f"{directory / CONFIG_FILE} is missing but {directory / STORE_DIR} holds an "
                                    f"index; run {self.repair} to rebuild it")

    @property
    def _directory(self) -> Path:
        """The index directory, of a location that is one (not a server)."""
        assert self.directory is not None, f"{self} is on a server, not in a directory"
        return self.directory

    @property
    def _server(self) -> tuple[str, str]:
        """(server URL, collection), of a location on a server."""
        assert self.server is not None and self.collection is not None, f"{self} is not on a server"
        return self.server, self.collection

    def _mark(self) -> None:
        publish_json(self._directory / MARKER, {"created_by": "colretrieve", "at": time.time()})

    def _saved_config(self) -> dict[str, Any] | None:
        """The copy of the config a directory's store keeps, None if it has none (a store that a
        create left half-made, or one made before copies were kept)."""
        store = self._directory / STORE_DIR
        if (store / SHARD_DIR).is_dir():
            return read_json(store / METADATA_FILE, self.repair) or None
        if not (store / "meta.json").is_file():  # qdrant-client's local mode keeps its collections there
            return None
        from .storage.qdrant import connect  # the Qdrant client (~1 s to import) loads only where it is used

        client = connect(str(store))
        try:
            for collection in client.get_collections().collections:
                saved = (client.get_collection(collection.name).config.metadata or {}).get(META_KEY)
                if saved:
                    return saved["config"]
        finally:
            client.close()
        return None

    def rebuild_config(self) -> IndexConfig:
        """index.json again, from the copy the store keeps (`colretrieve check --repair`)."""
        assert self.directory is not None
        saved = self._saved_config()
        if saved is None:
            raise IndexCorruptError(f"{self.directory / STORE_DIR} keeps no copy of the index config (made "
                                    "before copies were kept, or never finished): ingest into a new index")
        config = IndexConfig.from_dict(saved, str(self.directory / STORE_DIR), self.repair)
        config.save(self.directory)
        return config

    def open(self, writable: bool = True, verify: bool = True) -> Held:
        """The index here, held. A store built for another schema than the config's is an error;
        a store opened not `writable` refuses writes (and can be read even where its disk is
        full); `verify` False opens a writable store that needs repairing."""
        store: Store
        if self.directory is None:
            server, collection = self._server
            store = _open_collection(server, collection, grpc=self.grpc)
            try:
                return Held(IndexConfig.from_dict(store.metadata, str(self)), store)
            except BaseException:
                store.close()
                raise
        config = self._config()
        lock = self._hold(self.directory)
        try:
            if writable and not (self.directory / MARKER).exists():  # an index made before markers
                self._mark()
            if config.store == "edge":
                store = EdgeStore.open(self.directory / STORE_DIR, config.schema, config.vectors, writable=writable,
                                       verify=verify, repair=self.repair)
            else:
                store = _open_collection(str(self.directory / STORE_DIR), config.collection, config.schema)
        except BaseException:
            lock.release()
            raise
        return Held(config, store, lock)

    def _config(self) -> IndexConfig:
        directory = self.directory
        assert directory is not None
        if directory.exists() and not directory.is_dir():
            raise IndexConfigError(f"{directory} is a file, not an index directory")
        config = IndexConfig.load(directory, self.repair)
        if config is not None:
            return config
        if (directory / MARKER).exists() or (directory / STORE_DIR).is_dir():
            raise IndexCorruptError(f"{directory / CONFIG_FILE} is missing; run {self.repair} to rebuild it "
                                    "from the store")
        raise IndexConfigError(f"{directory} is not a colretrieve index (no {CONFIG_FILE}); "
                               "create one with: colretrieve ingest PDFS --index DIR")

    def _lock(self, create: bool = False) -> IndexLock | None:
        """Hold the directory for this process (made first if `create`): one writer at a time.
        A server orders concurrent writers itself, so there is nothing to hold."""
        if self.directory is None:
            return None
        return self._hold(self.directory, create)

    @staticmethod
    def _hold(directory: Path, create: bool = False) -> IndexLock:
        """`directory` held for this process (made first if `create`)."""
        if create:
            directory.mkdir(parents=True, exist_ok=True)
        held = IndexLock(directory)
        held.acquire()
        return held

    def exists(self) -> bool:
        """True if an index is already here (for a server: the collection exists)."""
        if self.directory is not None:
            return (self.directory / CONFIG_FILE).exists()
        from .storage.qdrant import connect

        server, collection = self._server
        client = connect(server, grpc=self.grpc)
        try:
            return client.collection_exists(collection)
        finally:
            client.close()

    def _create_store(self, config: IndexConfig, options: QdrantOptions | None) -> Store:
        if self.directory is not None and config.store == "edge":
            return EdgeStore.create(self.directory / STORE_DIR, config.schema, config.vectors, asdict(config), INDEXES)
        from .storage.qdrant import QdrantStore, connect

        if self.directory is None:
            server, collection = self._server
            return QdrantStore.create(connect(server, grpc=self.grpc), collection, config.schema, options,
                                      metadata=asdict(config), indexes=INDEXES)
        return QdrantStore.create(connect(str(self.directory / STORE_DIR)), config.collection, config.schema,
                                  options, metadata=asdict(config), indexes=INDEXES)


def _open_collection(where: str, collection: str, schema: StoreSchema | None = None, grpc: bool = False) -> Store:
    """The store in a Qdrant collection. The Qdrant client (~1 s to import) loads only where a
    collection is opened or made, not for the embedded store."""
    from .storage.qdrant import QdrantStore, connect

    return QdrantStore.open(connect(where, grpc=grpc), collection, schema)
