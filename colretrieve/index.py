"""Index: the facade users hold. Each call is a few lines over the part that does the work
(ingest.py, search.py, catalog.py, grounding.py, check.py); the CLI and any service call the
same methods a Python user does."""

from __future__ import annotations

import contextlib
import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from . import catalog
from .check import CheckReport, check_index
from .documents.render import MAX_DPI, MIN_DPI
from .encoders import MultiVectorEncoder, SingleVectorEncoder
from .errors import ColretrieveError, IndexConfigError, IndexLockedError, NotFoundError
from .image_query import ImageInput
from .ingest import IngestReport, ingest
from .labels import Labels, page_labels
from .location import Held, Location
from .models import Models
from .scoring import cpu_kernel
from .search import Hit, Searcher
from .settings import (
    CANDIDATES,
    DEVICE,
    DPI,
    ENCODER,
    IMAGE_WEIGHT,
    OCR,
    POOL_FACTOR,
    RENDERER,
    STORE,
    VECTORS,
    IndexConfig,
    K,
)
from .sharing import ReaderService, ask, can_share
from .storage import Filter, Store
from .storage.collection import QdrantOptions
from .tenancy import TenantView, check_tenant

T = TypeVar("T")

#: Seconds a reader waits for a process that holds a directory index to answer reads (it may
#: be loading its models before it starts serving, or letting go of the index).
READ_PATIENCE = 30.0
#: Tenant views an index keeps (`as_tenant`).
VIEWS = 64


class Index:
    """A directory of indexed pages of PDFs (and images), or a collection on a Qdrant server.
    Make one with `create`, reopen it with `open` (or `open_or_create`).

    One process holds a directory index at a time (it takes DIR/LOCK); use it as a context
    manager or call `close()` so the next process can open it.
    """

    def __init__(self, location: Location, held: Held, models: Models, tenant: str | None = None,
                 view: bool = False) -> None:
        self.location = location
        #: The index directory; None for an index on a Qdrant server.
        self.directory = location.directory
        self.config = held.config
        #: The team whose pages this index object sees and writes (tenancy.py); None: all pages.
        self.tenant = tenant
        if tenant is not None and not held.config.tenants:
            raise IndexConfigError(f"index {location} was made for one team; --tenant takes an index made with a "
                                   "tenant (ingest --tenant NAME into a new index)")
        self._held = held
        self._store: Store = TenantView(held.store, tenant) if tenant is not None else held.store
        self._models = models
        self._searcher = Searcher(self._store, models)
        #: A view (`as_tenant`) shares the holder's store: it serves no readers and closes nothing.
        self._view = view
        self._views: dict[str | None, Index] = {}
        self._root = self  # the index the views (`as_tenant`) were made from
        self._views_lock = threading.Lock()
        # other processes read a directory index through the one holding it (sharing.py)
        self._readers = ReaderService(location.directory, self._answer) if not view and location.directory else None

    # ---- lifecycle -------------------------------------------------------------------
    @classmethod
    def create(cls, target: str | Path, encoder: str = ENCODER, *, dpi: int = DPI, renderer: str = RENDERER,
               ocr: str = OCR, prefilter: str | None = None, pool_factor: int = POOL_FACTOR, vectors: str = VECTORS,
               store: str = STORE, qdrant: QdrantOptions | None = None, grpc: bool = False, device: str = DEVICE,
               model: MultiVectorEncoder | None = None, tenant: str | None = None, **encoder_options: Any) -> Index:
        """A new, empty index at `target` (which must not hold one already).

        `target` is a directory, or `http://HOST:6333/COLLECTION` for a collection on a Qdrant
        server or cluster (`grpc` to talk gRPC; API key from $QDRANT_API_KEY). A directory
        index keeps its pages in `store` "edge" (embedded qdrant-edge) or "qdrant"
        (qdrant-client's local mode); `qdrant` sets a Qdrant collection's layout (on-disk,
        quantization, shards, replication).

        `encoder` is "text" (the offline default) or a ColPali/ColQwen2/ColModernVBert hub id
        or folder. `prefilter` is "native" (the encoder's own single vector, the default where
        there is one), "pooled" (mean of the page's multi-vectors, the default otherwise) or
        a CLIP/SigLIP hub id or folder. `pool_factor` (2, 3) merges similar vectors of a page
        by hierarchical clustering, keeping about 1/factor of them. `vectors` is the form MaxSim
        reads from the embedded store: "float16", "int8" (about half the bytes) or "binary"
        (1/16), the last two with the best candidates rescored from float16. `device`
        ("auto", "cpu", "cuda", ...) is not saved: each process picks its own. `model` is
        `encoder` already loaded (one model shared by several indexes), else it is loaded.
        `encoder_options` (e.g. `max_pixels`) are saved.
        """
        if not MIN_DPI <= dpi <= MAX_DPI:
            raise ColretrieveError(f"dpi {dpi}: expected {MIN_DPI} to {MAX_DPI}")
        loaded: list[Any] = []

        def configure() -> IndexConfig:  # runs once the directory is held: models load once
            config, *models = Models.choose(encoder, prefilter, device, encoder_options, model, dpi=dpi,
                                            renderer=renderer, ocr=ocr, pool_factor=pool_factor,
                                            tenants=tenant is not None)
            loaded.extend(models)
            return config

        location = Location.parse(target, grpc)
        held = location.create(store, vectors, configure, qdrant)
        return cls(location, held, Models(held.config, str(location), device, *loaded), tenant)

    @classmethod
    def open(cls, target: str | Path, device: str = DEVICE, grpc: bool = False, read_only: bool = False,
             model: MultiVectorEncoder | None = None, tenant: str | None = None) -> Index:
        """The index at `target` (a directory or a server URL, as for `create`); the encoder
        loads on first use (stats and delete need none), unless `model`, the index's encoder
        already loaded, is given. `read_only` refuses writes, and reads an index whose disk is full.
        `tenant` (also for `create`): the index as that team sees it, its own pages only."""
        location = Location.parse(target, grpc)
        deadline = time.monotonic() + READ_PATIENCE
        while True:
            try:
                held = location.open(writable=not read_only)
                break
            except IndexLockedError:
                if not read_only or location.directory is None or not can_share() or time.monotonic() > deadline:
                    raise
                try:  # another process holds it: read through that process
                    return SharedIndex.reach(location, tenant)
                except IndexLockedError:  # it is starting (loading its models) or letting go
                    time.sleep(0.1)
        try:
            models = Models(held.config, str(location), device, model)
            return cls(location, held, models, tenant)
        except BaseException:
            held.close()
            raise

    @classmethod
    def open_or_create(cls, target: str | Path, encoder: str | None = None, *, device: str = DEVICE,
                       grpc: bool = False, model: MultiVectorEncoder | None = None, tenant: str | None = None,
                       **settings: Any) -> Index:
        """The index at `target` if there is one, else a new one made with `encoder` and
        `settings` (as `create` takes them; an existing index keeps its own). Naming an
        `encoder` other than an existing index's is an error: its pages are in another space."""
        if not Location.parse(target, grpc).exists():
            return cls.create(target, encoder or ENCODER, device=device, grpc=grpc, model=model, tenant=tenant,
                              **settings)
        index = cls.open(target, device=device, grpc=grpc, model=model, tenant=tenant)
        if encoder is not None and encoder != index.config.encoder:
            index.close()
            raise ColretrieveError(f"index {target} uses encoder {index.config.encoder!r}, not {encoder!r}")
        return index

    @staticmethod
    def check(target: str | Path, *, deep: bool = False, repair: bool = False, grpc: bool = False) -> CheckReport:
        """Check that every page of the index at `target` reads back as written (`deep`: every
        vector against its checksum); `repair` rebuilds a lost index.json from the store, drops
        damaged pages and marks their documents incomplete, so the next ingest encodes them again.
        Takes the index as `open` does: not while another process holds it."""
        return check_index(target, deep=deep, repair=repair, grpc=grpc)

    def _one_team(self) -> None:
        """Writes name their team in an index shared by teams: documents are kept per team, and
        a write for none would touch every team's copy."""
        if self.tenant is None and self.config.tenants:
            raise ColretrieveError(f"index {self.location} holds several teams' pages: name the team (--tenant NAME)")

    def close(self) -> None:
        if self._view:
            return
        if self._readers is not None:
            self._readers.close()
        self._held.close()

    def _answer(self, op: str, args: dict[str, Any]) -> Any:
        """A read another process asked of this index (sharing.py), as `tenant` sees it."""
        if op == "ping":  # a reader checking that this process answers: no store work
            return True
        view = self.as_tenant(args.pop("tenant", None))
        if op == "search":
            notes: list[str] = []
            return {"hits": [asdict(hit) for hit in view.search(**args, explain=notes.append)], "notes": notes}
        if op == "similarity_maps":
            hits = [Hit(**hit) for hit in args.pop("hits")]
            return [str(path) for path in view.similarity_maps(hits=hits, **args)]
        if op == "page":
            return asdict(view.page(**args))
        if op == "documents":
            return view.documents()
        if op == "stats":
            return view.stats()
        raise ColretrieveError(f"no read {op!r}")

    def as_tenant(self, tenant: str | None) -> Index:
        """This index as team `tenant` sees it (None: as opened), sharing its store and models;
        closing the view closes nothing."""
        if tenant == self.tenant:
            return self
        root = self._root
        if tenant == root.tenant:
            return root
        with root._views_lock:  # kept: each view keeps its own corpus statistics
            if tenant not in root._views:
                if len(root._views) >= VIEWS:
                    root._views.pop(next(iter(root._views)))
                view = Index(self.location, self._held, self._models, None if tenant is None else check_tenant(tenant),
                             view=True)
                view._root = root
                root._views[tenant] = view
            return root._views[tenant]

    def _changed(self) -> None:
        """The pages changed: every view of the store drops what it cached of them."""
        root = self._root
        with root._views_lock:
            family = [root, *root._views.values()]
        for index in family:
            index._searcher.changed()

    def __enter__(self) -> Index:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def store(self) -> Store:
        """Where the pages are kept (for tools that read them directly)."""
        return self._store

    @property
    def encoder(self) -> MultiVectorEncoder:
        return self._models.encoder

    @property
    def prefilter(self) -> SingleVectorEncoder:
        return self._models.prefilter

    # ---- ingest and search -----------------------------------------------------------
    def ingest(self, paths: Iterable[str | Path], *, images: bool = False, progress: bool = False,
               echo: Callable[[str], None] | None = None, batch_size: int | None = None,
               report: IngestReport | None = None, within: Sequence[Path] | None = None,
               optimize: bool = True, metadata: dict[str, Any] | None = None,
               labels: Labels | None = None) -> IngestReport:
        """Add the documents under `paths`; unchanged files are skipped, interrupted ones resumed.

        With `images`, image files in folders (PNG, JPEG, TIFF, WebP, BMP, GIF) are pages too;
        image files named directly in `paths` are always taken.

        A bad file is reported through `echo` as one line (`skipped x.pdf: empty file`) and in
        the report; the other files go on. A document becomes visible to search only once all
        its pages are stored. `batch_size` (pages per encoder step) trades speed for memory.
        `report`, where given, is filled in as the work goes (another thread may watch it).
        `within`: folders files must lie in, links resolved (a service's allowed roots).
        `optimize` False leaves the store's reorganisation for later (`Store.optimize`): it holds
        searches in this process while it runs (4 s at 10k pages), which a service cannot afford
        after every job. `metadata` is stored with every page of these documents and returned in
        their hits, merged under what a `<file>.json` beside a document says of it; an unchanged
        document gets its metadata set again. With `labels`, each new page gets its zero-shot
        label (as `classify` gives them).
        """
        self._one_team()
        if metadata:
            catalog.check_metadata(metadata, "metadata")
        self._changed()
        try:
            return ingest(self._store, self._models, paths, images=images, progress=progress, echo=echo,
                          batch_size=batch_size, report=report, within=within, optimize=optimize,
                          metadata=metadata, labels=labels)
        finally:  # a search during the ingest (a reader's) may have cached the corpus as it was then
            self._changed()

    def search(self, text: str = "", k: int = K, filter: Filter | None = None, *, exact: bool = False,
               candidates: int = CANDIDATES, regions: bool = True, image: ImageInput | None = None,
               image_weight: float = IMAGE_WEIGHT, explain: Callable[[str], None] | None = None) -> list[Hit]:
        """The `k` best pages for `text`, or for `image`, or for both.

        Parameters
        ----------
        filter
            Payload conditions, e.g. `{"file": "report.pdf"}`, `{"doc_id": [a, b]}`,
            `{"page": {"gte": 2}}`; names other than a page's own fields (catalog.OWN_FIELDS)
            are the documents' metadata (`{"year": {"gte": 2020}}`).
        exact
            Score every page instead of the prefilter's `candidates`: slower, and the
            yardstick for the prefilter's recall.
        candidates
            Pages the single-vector prefilter passes on to MaxSim (and, with hybrid scoring,
            to BM25 and IDF weighting: z-scores are taken over the candidates); at least `k`.
        regions
            Give each hit the regions of its page that matched (`Hit.regions`, regions.py):
            a few milliseconds per hit; a benchmark run leaves them out.
        image
            An image file (its first page) or a PIL image to search with (image_query.py): a
            VLM encoder compares it page against page; the text default searches with its
            words (text layer or OCR). With `text` too, the image weighs `image_weight` of the
            score. `explain` is told, in a line, what was done with it.

        A query without a letter or a digit (`search.searchable`) finds nothing.
        """
        return self._searcher.search(text, k, catalog.user_filter(filter), exact=exact, candidates=candidates,
                                     regions=regions, image=image, image_weight=image_weight, explain=explain)

    def similarity_maps(self, text: str, hits: Sequence[Hit], directory: str | Path,
                        per_token: bool = False) -> list[Path]:
        """Write a heatmap PNG per hit of where on its page `text` matched (see grounding.py).

        Files are `NN-<file>-pPAGE.png` in `directory`; `per_token` adds one per query token.
        """
        from .grounding import hit_maps

        page_id: Callable[[str, int], str] = catalog.point_id
        if isinstance(self._store, TenantView):
            view = self._store

            def page_id(doc_id: str, page_no: int) -> str:
                return view.point_id(catalog.point_id(doc_id, page_no))
        return hit_maps(self._store, self._models, text, hits, Path(directory), per_token, page_id)

    def pages(self, fields: Sequence[str] = catalog.HIT_FIELDS) -> Iterator[tuple[str, dict[str, Any]]]:
        """(point id, payload `fields`) of every searchable page, in store order."""
        return catalog.searchable_pages(self._store, fields)

    # ---- maintenance -----------------------------------------------------------------
    def delete(self, target: str | Path) -> int:
        """Remove a document by file path, bare file name or doc id (a unique prefix of 4+ hex
        digits, any case, will do). Returns the number of pages removed; naming nothing stored,
        or more than one document, is an error."""
        self._one_team()
        doc_ids = catalog.find_documents(self._store, str(target))
        if not doc_ids:
            raise NotFoundError(f"{target}: no such document in {self.location}")
        removed = self._store.count({"doc_id": doc_ids})
        self._store.delete({"doc_id": doc_ids})
        self._changed()
        self._store.flush()
        self._store.optimize()
        return removed

    def classify(self, labels: Labels, progress: bool = False,
                 echo: Callable[[str], None] | None = None) -> list[dict[str, Any]]:
        """Give every stored page its zero-shot label among `labels` (labels.py), stored with
        the page (`filter={"label": "chart"}`); each page's path, page, label and scores.
        `echo` hears what the user should know of how (the text default reads words only)."""
        self._one_team()
        self._models.load()
        prefilter = self._models.prefilter
        labels.check(prefilter)
        if not prefilter.embeds_images and not self._models.encoder.reads_images and echo is not None:
            echo("note: the text default labels pages by their words only, not by how they look")
        vectors = labels.vectors(prefilter)
        self._store.index_fields({catalog.LABEL: "keyword"})
        out = []
        from tqdm.auto import tqdm

        fields = ("doc_id", "page", "path")
        with tqdm(total=self._store.count(), unit="page", disable=not progress, desc="classify") as bar:
            for batch in self._store.scan(fields=fields, single=True):
                singles = np.stack([np.asarray(page.single) for page in batch])
                tags = page_labels(prefilter, labels.names, vectors, singles)
                for page, tag in zip(batch, tags):
                    where = {"doc_id": page.payload["doc_id"], "page": page.payload["page"]}
                    self._store.set_payload(where, tag or {catalog.LABEL: None, catalog.LABEL_SCORES: None})
                    out.append({"path": page.payload["path"], "page": page.payload["page"],
                                "label": tag.get(catalog.LABEL), "label_scores": tag.get(catalog.LABEL_SCORES)})
                bar.update(len(batch))
        self._store.flush()
        return sorted(out, key=lambda found: (found["path"], found["page"]))

    def page(self, doc_id: str, page: int) -> Hit:
        """Page `page` of document `doc_id` as a hit (rank 0, score 0): its text, and its image
        through `Hit.image()`. Only complete documents' pages are found."""
        found = [p.payload for batch in self._store.scan(catalog.searchable_only({"doc_id": doc_id, "page": page}),
                                                          fields=catalog.HIT_FIELDS) for p in batch]
        if not found:
            raise NotFoundError(f"page {page} of document {doc_id}: not in {self.location}")
        return Hit.from_payload(found[0], 0, 0.0, self.config.dpi)

    def documents(self) -> list[dict[str, Any]]:
        """One entry per stored document: doc_id, path, pages stored, page_count, complete, vectors."""
        return catalog.documents(self._store)

    def stats(self) -> dict[str, Any]:
        """Counts and sizes for `colretrieve stats`."""
        docs = self.documents()
        complete = [d for d in docs if d["complete"]]
        return {
            "index": str(self.location),
            "documents": len(complete),
            "pages": sum(d["pages"] for d in complete),
            "vectors": sum(d["vectors"] for d in complete),
            "incomplete_documents": len(docs) - len(complete),
            "bytes_on_disk": (sum(f.stat().st_blocks * 512 for f in self.directory.rglob("*") if f.is_file())
                              if self.directory else None),
            "encoder": self.config.encoder_id,
            "dim": self.config.dim,
            "prefilter": self.config.prefilter,
            "pool_factor": self.config.pool_factor,
            "vector_format": self.config.vectors,
            "store": self.config.store,
            "maxsim_kernel": cpu_kernel.name(),  # which CPU path scores the candidates here
        }


class SharedIndex(Index):
    """An index another process holds (an ingest, a service), read through that process
    (sharing.py): search, similarity maps, documents and stats answer as that process sees the
    index, complete documents only; writes wait for it to finish. If the holder lets go, the
    reads that follow open the index here."""

    def __init__(self, location: Location, config: IndexConfig, tenant: str | None) -> None:
        self.location = location
        self.directory = location.directory
        self.config = config
        self.tenant = tenant
        self._readers = None
        self._local: Index | None = None  # the index opened here once its holder let go

    @classmethod
    def reach(cls, location: Location, tenant: str | None) -> SharedIndex:
        """The index `location` through the process holding it; IndexLockedError if none answers."""
        assert location.directory is not None, "only a directory index is held by one process"
        config = IndexConfig.load(location.directory)
        if config is None:
            raise IndexLockedError(f"index {location} is being created by another process")
        index = cls(location, config, tenant)
        ask(location.directory, "ping", {})  # reachable now, or the caller takes the index itself
        return index

    def _read(self, op: str, args: dict[str, Any], here: Callable[[Index], T]) -> Any:
        """`op` answered by the holder, or by `here` on the index opened in this process when
        the holder has let go of it."""
        if self._local is None:
            assert self.directory is not None
            try:
                return ask(self.directory, op, {**args, **({"tenant": self.tenant} if self.tenant else {})})
            except IndexLockedError as exc:  # the holder is gone (or going): the index is free to open
                local = Index.open(self.directory, read_only=True, tenant=self.tenant)
                if isinstance(local, SharedIndex):  # still held, and this read cannot go through it
                    raise exc
                self._local = local
        return here(self._local)

    def as_tenant(self, tenant: str | None) -> Index:
        return self if tenant == self.tenant else SharedIndex(self.location, self.config, tenant)

    def _busy(self) -> IndexLockedError:
        return IndexLockedError(f"index {self.location} is being written by another process; it reads through "
                                "that process until it finishes")

    def search(self, text: str = "", k: int = K, filter: Filter | None = None, *, exact: bool = False,
               candidates: int = CANDIDATES, regions: bool = True, image: ImageInput | None = None,
               image_weight: float = IMAGE_WEIGHT, explain: Callable[[str], None] | None = None) -> list[Hit]:
        with contextlib.ExitStack() as stack:
            if image is not None and not isinstance(image, (str, os.PathLike)):  # the holder reads it from a file
                folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="colretrieve-query-")))
                image.save(folder / "query.png")
                image = folder / "query.png"
            found = self._read("search", {"text": text, "k": k, "filter": filter, "exact": exact,
                                          "candidates": candidates, "regions": regions,
                                          "image": None if image is None else str(Path(image).resolve()),
                                          "image_weight": image_weight},
                               lambda index: {"hits": index.search(text, k, filter, exact=exact, candidates=candidates,
                                                                   regions=regions, image=image,
                                                                   image_weight=image_weight, explain=explain)})
        if explain is not None:
            for line in found.get("notes", []):
                explain(line)
        return [hit if isinstance(hit, Hit) else Hit(**hit) for hit in found["hits"]]

    def similarity_maps(self, text: str, hits: Sequence[Hit], directory: str | Path,
                        per_token: bool = False) -> list[Path]:
        return [Path(p) for p in self._read("similarity_maps", {
            "text": text, "hits": [asdict(h) for h in hits], "directory": str(Path(directory).resolve()),
            "per_token": per_token}, lambda index: index.similarity_maps(text, hits, directory, per_token))]

    def page(self, doc_id: str, page: int) -> Hit:
        found = self._read("page", {"doc_id": doc_id, "page": page}, lambda index: index.page(doc_id, page))
        return found if isinstance(found, Hit) else Hit(**found)

    def documents(self) -> list[dict[str, Any]]:
        return list(self._read("documents", {}, lambda index: index.documents()))

    def stats(self) -> dict[str, Any]:
        return dict(self._read("stats", {}, lambda index: index.stats()))

    def ingest(self, paths: Iterable[str | Path], *, images: bool = False, progress: bool = False,
               echo: Callable[[str], None] | None = None, batch_size: int | None = None,
               report: IngestReport | None = None, within: Sequence[Path] | None = None,
               optimize: bool = True, metadata: dict[str, Any] | None = None,
               labels: Labels | None = None) -> IngestReport:
        raise self._busy()

    def classify(self, labels: Labels, progress: bool = False,
                 echo: Callable[[str], None] | None = None) -> list[dict[str, Any]]:
        raise self._busy()

    def delete(self, target: str | Path) -> int:
        raise self._busy()

    def pages(self, fields: Sequence[str] = catalog.HIT_FIELDS) -> Iterator[tuple[str, dict[str, Any]]]:
        raise self._busy()

    @property
    def store(self) -> Store:
        raise self._busy()

    @property
    def encoder(self) -> MultiVectorEncoder:
        raise self._busy()

    @property
    def prefilter(self) -> SingleVectorEncoder:
        raise self._busy()

    def close(self) -> None:
        if self._local is not None:
            self._local.close()
