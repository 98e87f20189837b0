"""Store tests' shared parts: random pages, and every store behind one `Backend` interface.

A backend makes a store, reopens it (closing it first where the storage allows one user at a
time) and closes whatever is left at teardown. Qdrant server tests run when QDRANT_URL is set.
"""

from __future__ import annotations

import os
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from colretrieve.catalog import point_id
from colretrieve.storage import PagePoint, Store, StoreSchema
from colretrieve.storage.edge import EdgeStore
from colretrieve.storage.qdrant import QdrantStore, connect

SCHEMA = StoreSchema(multi_dim=8, single_dim=4, encoder="test-encoder")
SERVER_SKIP = "set QDRANT_URL to run against a Qdrant server"


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def pages(rng: np.random.Generator, doc: str, n: int) -> list[PagePoint]:
    """Pages 1..n of `doc`: 1 to 29 unit 8-d vectors each, a unit 4-d summary."""
    return [PagePoint(point_id(doc, p), unit(rng.standard_normal((int(rng.integers(1, 30)), 8))),
                      unit(rng.standard_normal(4)),
                      {"doc_id": doc, "page": p, "file": f"{doc}.pdf", "state": "partial"})
            for p in range(1, n + 1)]


class Backend(ABC):
    """One kind of store; subclasses say how to create and open it."""

    #: True where a store must be closed before it is opened again (one user at a time).
    exclusive = True
    #: True where IDF can be counted over a filtered corpus (not qdrant-client's local mode).
    corpus_filters = True

    def __init__(self) -> None:
        self.stores: list[Store] = []

    def create(self, schema: StoreSchema = SCHEMA) -> Store:
        return self._keep(self._create(schema))

    def reopen(self, store: Store, schema: StoreSchema = SCHEMA) -> Store:
        if self.exclusive:
            self.close(store)
        return self._keep(self._open(store, schema))

    @abstractmethod
    def create_again(self, store: Store) -> Store:
        """A second `create` over the storage `store` lives in (an error)."""

    def close(self, store: Store) -> None:
        self.stores.remove(store)
        store.close()

    def teardown(self) -> None:
        for store in list(self.stores):
            self.close(store)

    def _keep(self, store: Store) -> Store:
        self.stores.append(store)
        return store

    @abstractmethod
    def _create(self, schema: StoreSchema) -> Store: ...

    @abstractmethod
    def _open(self, store: Store, schema: StoreSchema) -> Store: ...


class EdgeBackend(Backend):
    def __init__(self, tmp_path: Path) -> None:
        super().__init__()
        self.path = tmp_path / "store"

    def _create(self, schema: StoreSchema) -> Store:
        return EdgeStore.create(self.path, schema)

    def create_again(self, store: Store) -> Store:
        return EdgeStore.create(self.path, SCHEMA)

    def _open(self, store: Store, schema: StoreSchema) -> Store:
        return EdgeStore.open(self.path, schema)


class QdrantBackend(Backend):
    """qdrant-client at `location`: a folder (local mode), ":memory:" or a server URL."""

    def __init__(self, location: str) -> None:
        super().__init__()
        self.location = location
        self.collection = f"colretrieve_test_{uuid.uuid4().hex[:12]}"
        # ":memory:" lives and dies with its client: reopen over the same one.
        self.exclusive = location != ":memory:"
        self.corpus_filters = location.startswith("http")

    def _create(self, schema: StoreSchema, **kwargs) -> QdrantStore:
        return QdrantStore.create(connect(self.location), self.collection, schema, **kwargs)

    def create_with(self, **kwargs) -> QdrantStore:
        """A store made with `QdrantStore.create` keyword arguments (options, metadata)."""
        return self._keep(self._create(SCHEMA, **kwargs))

    def create_again(self, store: Store) -> Store:
        return QdrantStore.create(store.client, self.collection, SCHEMA)

    def _open(self, store: Store, schema: StoreSchema) -> Store:
        client = connect(self.location) if self.exclusive else store.client
        try:
            return QdrantStore.open(client, self.collection, schema)
        except BaseException:
            if self.exclusive:
                client.close()
            raise

    def teardown(self) -> None:
        super().teardown()
        if self.location.startswith("http"):  # a server keeps collections after the test
            client = connect(self.location)
            client.delete_collection(self.collection)
            client.close()


def _qdrant(kind: str, tmp_path: Path) -> QdrantBackend:
    if kind == "qdrant-server":
        if not os.environ.get("QDRANT_URL"):
            pytest.skip(SERVER_SKIP)
        return QdrantBackend(os.environ["QDRANT_URL"])
    return QdrantBackend(":memory:" if kind == "qdrant-memory" else str(tmp_path / "qdrant"))


QDRANT_KINDS = ["qdrant-path", "qdrant-memory", "qdrant-server"]


@pytest.fixture(params=["edge", *QDRANT_KINDS])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    made = EdgeBackend(tmp_path) if request.param == "edge" else _qdrant(request.param, tmp_path)
    yield made
    made.teardown()


@pytest.fixture(params=QDRANT_KINDS)
def qdrant_backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[QdrantBackend]:
    made = _qdrant(request.param, tmp_path)
    yield made
    made.teardown()


@pytest.fixture
def schema() -> StoreSchema:
    return SCHEMA


@pytest.fixture
def make_pages() -> Callable[[np.random.Generator, str, int], list[PagePoint]]:
    return pages


@pytest.fixture
def make_unit() -> Callable[[np.ndarray], np.ndarray]:
    return unit
