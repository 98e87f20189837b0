"""Index: the one place that wires documents, encoders, storage and scoring together."""

from __future__ import annotations

import os
import re
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .check import CheckReport, check_index
from .config import IndexConfig
from .documents import (
    CHANGED,
    DocumentReader,
    FileState,
    Page,
    content_hash,
    discover_documents,
    file_state,
    open_document,
    path_text,
    raw_path,
    read_words,
)
from .documents.render import MAX_DPI, MIN_DPI
from .encoders import (
    BUILTIN_PREFILTERS,
    DEFAULT_ENCODER,
    MultiVectorEncoder,
    PageVectors,
    load_encoder,
    load_prefilter,
)
from .encoders.loading import pick_device
from .errors import (
    BadDocumentError,
    ColretrieveError,
    DiskFullError,
    IndexConfigError,
    IndexCorruptError,
    StoreUnreachableError,
)
from .location import Location
from .lock import IndexLock
from .queries import searchable
from .scoring import cpu_kernel, maxsim_pages
from .scoring.layout import as_rows
from .scoring.lexical import Lexicon, fuse
from .scoring.pooling import pool_tokens
from .scoring.ranking import best_first
from .scoring.resident import ResidentPages
from .storage import Filter, PagePoint, point_id
from .storage.base import COMPLETE, PARTIAL, Store
from .storage.qdrant import QdrantOptions

if TYPE_CHECKING:
    from PIL import Image

#: Where the CLI keeps its index unless told otherwise.
DEFAULT_INDEX_DIR = "colretrieve-index"
INDEX_ENV = "COLRETRIEVE_INDEX"
#: Pages the prefilter hands to exact MaxSim: the speed/recall knob of two-stage search.
DEFAULT_CANDIDATES = 256
#: With int8 / binary vectors, this many of the best candidates (at least; 4 x k if more) are
#: rescored from their float16 copy, as Qdrant rescores quantized search.
RESCORE = 32
#: Candidates scored per step: quantized pages are decoded to float32 a step at a time.
SCORE_STEP = 512
#: Payload fields a hit needs; the rest (vector cells) stays in the store.
HIT_FIELDS = ("doc_id", "path", "path_raw", "page", "page_count", "text")
#: Failures of the index itself, not of one document: an ingest stops on them (pages stored before stay).
STORE_FAILURES = (DiskFullError, IndexCorruptError, IndexConfigError, StoreUnreachableError)
#: Weights of the z-scored parts of hybrid scoring. Measured on the dev set: a wide plateau
#: (dense 0-0.3, BM25 0.2-0.5 all give 88-90 nDCG@5), so the middle of it, not its peak.
HYBRID_WEIGHTS = {"maxsim": 1.0, "dense": 0.2, "bm25": 0.3}


def default_index_dir() -> Path:
    """`$COLRETRIEVE_INDEX`, else ./colretrieve-index."""
    return Path(os.environ.get(INDEX_ENV, DEFAULT_INDEX_DIR))


@dataclass
class Hit:
    """One ranked page. `image()` re-renders it from the source file: images are never stored."""

    rank: int
    score: float
    doc_id: str
    path: str
    page: int
    page_count: int
    text: str
    dpi: int = field(default=144, repr=False)
    #: The file name's bytes in hex where they are not UTF-8 (`path` shows them escaped).
    path_raw: str | None = field(default=None, repr=False)

    def image(self, dpi: int | None = None) -> "Image.Image":
        """The page rendered again at `dpi` (the index's by default), within MAX_PIXELS."""
        path = Path(os.fsdecode(bytes.fromhex(self.path_raw))) if self.path_raw else Path(self.path)
        if not path.is_file():
            raise ColretrieveError(f"{path}: the source file of this hit is gone")
        if content_hash(path) != self.doc_id:
            raise ColretrieveError(f"{path}: changed since it was ingested; re-ingest it")
        with open_document(path, self.doc_id, dpi=dpi or self.dpi) as reader:
            page = reader.page(self.page)
            image = page.image
            page.release()
        return image

    def to_dict(self) -> dict[str, Any]:
        return {"rank": self.rank, "score": self.score, "path": self.path, "page": self.page,
                "page_count": self.page_count, "doc_id": self.doc_id, "text": self.text}


@dataclass
class IngestReport:
    """What one `ingest` call did; `failed` holds (path, reason) for every file it could not take."""

    documents: int = 0
    pages: int = 0
    unchanged: int = 0
    failed: list[tuple[Path, str]] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def pages_per_second(self) -> float:
        return self.pages / self.seconds if self.seconds else 0.0

    def skip(self, path: Path, reason: str) -> str:
        """Record a file that could not be taken; returns the line to show the user."""
        self.failed.append((path, reason))
        return f"skipped {path_text(path)}: {reason}"


@dataclass(eq=False)  # identity: jobs are told apart and hashed as the objects they are
class _Job:
    path: Path
    doc_id: str
    page_count: int
    stored: set[int]
    state: FileState  # the file as it was hashed: if it changes while read, the document fails
    reader: DocumentReader | None = None
    left: int = 0  # pages not yet stored
    failed: bool = False


class _Batcher:
    """Collects pages from any documents into encoder batches and keeps each document's count.

    When a batch fails, the document to blame is found (the file named by a BadDocumentError,
    else each document's pages retried alone), reported, and the rest of the batch goes on.
    """

    def __init__(self, index: Index, pool: ThreadPoolExecutor, bar: Any, report: IngestReport,
                 fail: Callable[[_Job, Exception], None]) -> None:
        self.index, self.pool, self.bar, self.report, self.fail = index, pool, bar, report, fail
        self.pages: list[tuple[_Job, Page]] = []

    def add(self, job: _Job, page: Page) -> None:
        self.pages.append((job, page))
        if len(self.pages) >= self.index.encoder.batch_size:
            self.flush()

    def flush(self) -> None:
        batch, self.pages = self.pages, []
        self._store(batch)

    def drop(self, job: _Job, exc: Exception) -> None:
        self.pages = [(j, p) for j, p in self.pages if j is not job]
        if not job.failed:
            self.fail(job, exc)

    def complete(self, job: _Job) -> None:
        try:
            self.index._complete(job)
        except BadDocumentError as exc:
            self.drop(job, exc)
            return
        self.report.documents += 1
        self.report.pages += job.page_count - len(job.stored)

    def _store(self, batch: list[tuple[_Job, Page]]) -> None:
        if not batch:
            return
        try:
            self.index._encode_and_store(batch, self.pool)
        except STORE_FAILURES:
            raise  # the index failed, not a document: no file is to blame
        except Exception as exc:
            jobs = list(dict.fromkeys(job for job, _ in batch))
            named = [job for job in jobs if isinstance(exc, BadDocumentError) and Path(exc.path) == job.path]
            if named or len(jobs) == 1:
                culprit = (named or jobs)[0]
                self.drop(culprit, exc)
                self._store([(j, p) for j, p in batch if j is not culprit])
            else:
                for job in jobs:
                    self._store([(j, p) for j, p in batch if j is job])
            return
        self.bar.update(len(batch))
        for job, _ in batch:
            job.left -= 1
            if job.left == 0:
                self.complete(job)


class Index:
    """A directory of indexed pages of PDFs (and images). Create with `Index.create`, reopen with `Index.open`.

    One process holds an index at a time (it takes DIR/LOCK); use it as a context manager or
    call `close()` so the next process can open it.
    """

    def __init__(self, location: Location, config: IndexConfig, store: Store, lock: IndexLock | None,
                 encoder: MultiVectorEncoder | None = None, prefilter: Any = None, device: str = "auto") -> None:
        self.location = location
        #: The index directory; None for an index on a Qdrant server.
        self.directory = location.directory
        self.config = config
        self._store = store
        self._lock = lock
        self._encoder = encoder
        self._prefilter = prefilter
        self._device = device
        self._lexicon: Lexicon | None = None  # built on the first hybrid search, dropped on change
        self._resident: ResidentPages | None = None  # likewise, on the first exact search on a GPU

    # ---- lifecycle -------------------------------------------------------------------
    @classmethod
    def create(cls, target: str | Path, encoder: str = DEFAULT_ENCODER, *, dpi: int = 144,
               renderer: str = "pdfium", ocr: str = "tesseract", prefilter: str | None = None,
               pool_factor: int = 1, vectors: str = "float16", store: str = "edge",
               qdrant: QdrantOptions | None = None, grpc: bool = False, device: str = "auto",
               **encoder_options: Any) -> "Index":
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
        ("auto", "cpu", "cuda", ...) is not saved: each process picks its own.
        `encoder_options` (e.g. `max_pixels`) are saved.
        """
        if not MIN_DPI <= dpi <= MAX_DPI:
            raise ColretrieveError(f"dpi {dpi}: expected {MIN_DPI} to {MAX_DPI}")
        loaded: dict[str, Any] = {}

        def configure() -> IndexConfig:  # runs once the directory is held: models load once
            model = load_encoder(encoder, device=device, **encoder_options)
            kind = prefilter or ("native" if model.summary_dim is not None else "pooled")
            if kind == "native" and model.summary_dim is None:
                raise ColretrieveError(f"encoder {model.name} has no single vector of its own; "
                                       "use prefilter 'pooled' or a CLIP/SigLIP model")
            dual = None if kind in BUILTIN_PREFILTERS else load_prefilter(kind, device=device)
            single_dim = {"native": model.summary_dim, "pooled": model.dim}.get(kind) or dual.dim
            scoring = "hybrid" if model.has_vocabulary else "maxsim"  # hybrid needs a text vocabulary
            loaded.update(model=model, dual=dual)
            return IndexConfig(encoder=encoder, encoder_options=encoder_options, encoder_id=model.name,
                               dim=model.dim, prefilter=kind, prefilter_id=dual.name if dual else kind,
                               scoring=scoring, single_dim=single_dim, dpi=dpi, renderer=renderer, ocr=ocr,
                               pool_factor=pool_factor)

        location = Location.parse(target, grpc)
        config, pages, lock = location.create(store, vectors, configure, qdrant)
        return cls(location, config, pages, lock, loaded["model"], loaded["dual"], device)

    @classmethod
    def open(cls, target: str | Path, device: str = "auto", grpc: bool = False, read_only: bool = False) -> "Index":
        """The index at `target` (a directory or a server URL, as for `create`); the encoder
        loads on first use (stats and delete need none). `read_only` refuses writes, and reads
        an index whose disk is full."""
        location = Location.parse(target, grpc)
        config, store, lock = location.open(writable=not read_only)
        return cls(location, config, store, lock, device=device)

    @staticmethod
    def check(target: str | Path, *, deep: bool = False, repair: bool = False, grpc: bool = False) -> CheckReport:
        """Check that every page of the index at `target` reads back as written (`deep`: every
        vector against its checksum); `repair` rebuilds a lost index.json from the store, drops
        damaged pages and marks their documents incomplete, so the next ingest encodes them again.
        Takes the index as `open` does: not while another process holds it."""
        return check_index(target, deep=deep, repair=repair, grpc=grpc)

    def close(self) -> None:
        self._store.close()
        if self._lock:
            self._lock.release()

    def __enter__(self) -> "Index":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def store(self) -> Store:
        """Where the pages are kept (for tools that move them, such as migrate)."""
        return self._store

    @property
    def encoder(self) -> MultiVectorEncoder:
        if self._encoder is None:
            model = load_encoder(self.config.encoder, device=self._device, **self.config.encoder_options)
            _check_same(self, self.config.encoder_id, model.name)
            self._encoder = model
        return self._encoder

    @property
    def prefilter(self) -> Any:
        """The CLIP/SigLIP prefilter model, for indexes built with one (else None)."""
        if self._prefilter is None and self.config.prefilter not in BUILTIN_PREFILTERS:
            dual = load_prefilter(self.config.prefilter, device=self._device)
            _check_same(self, self.config.prefilter_id, dual.name)
            self._prefilter = dual
        return self._prefilter

    # ---- ingest ----------------------------------------------------------------------
    def ingest(self, paths: Iterable[str | Path], *, images: bool = False, progress: bool = False,
               echo: Callable[[str], None] | None = None, batch_size: int | None = None) -> IngestReport:
        """Add the documents under `paths`; unchanged files are skipped, interrupted ones resumed.

        With `images`, image files in folders (PNG, JPEG, TIFF, WebP, BMP, GIF) are pages too;
        image files named directly in `paths` are always taken.

        A bad file is reported through `echo` as one line (`skipped x.pdf: empty file`) and in
        the report; the other files go on. A document becomes visible to search only once all
        its pages are stored. `batch_size` (pages per encoder step) trades speed for memory.
        """
        say = echo or (lambda line: None)
        self._lexicon = self._resident = None
        if batch_size is not None:
            self.encoder.batch_size = batch_size
        report = IngestReport()
        started = time.perf_counter()
        jobs = self._plan(paths, images, report, say)
        total = sum(job.page_count - len(job.stored) for job in jobs)
        from tqdm.auto import tqdm

        with tqdm(total=total, unit="page", disable=not progress or total == 0, dynamic_ncols=True,
                  desc="ingest") as bar, ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
            def tell(line: str) -> None:
                bar.write(line, file=sys.stderr) if progress else say(line)

            def fail(job: _Job, exc: Exception) -> None:  # one bad file must not stop the others
                reason = exc.reason if isinstance(exc, BadDocumentError) else f"{type(exc).__name__}: {exc}"
                job.failed = True
                if job.reader is not None:
                    job.reader.close()
                added = sorted(set(range(1, job.page_count + 1)) - job.stored)
                if added:  # what this run stored of it; pages stored before are not touched
                    self._store.delete({"doc_id": job.doc_id, "page": added})
                tell(report.skip(job.path, reason))

            self._ingest_jobs(jobs, _Batcher(self, pool, bar, report, fail), tell)
        report.seconds = time.perf_counter() - started
        return report

    def _plan(self, paths: Iterable[str | Path], images: bool, report: IngestReport,
              say: Callable[[str], None]) -> list[_Job]:
        """Hash and open every file once, up front: bad files are reported before the long part,
        and the progress bar knows the total."""
        jobs: list[_Job] = []
        planned: dict[str, Path] = {}
        for path in self._discover(paths, images, report, say):
            try:
                state = file_state(path)
                doc_id = content_hash(path)
                if doc_id in planned:
                    report.unchanged += 1
                    continue
                if self._is_complete(doc_id, path):
                    report.unchanged += 1
                    continue
                with open_document(path, doc_id, dpi=self.config.dpi) as reader:
                    page_count = reader.page_count
            except BadDocumentError as exc:
                say(report.skip(path, exc.reason))
                continue
            except OSError as exc:
                say(report.skip(path, exc.strerror or str(exc)))
                continue
            stored = {p["page"] for batch in self._store.scan({"doc_id": doc_id}, fields=("page",))
                      for _, p, _ in batch}
            planned[doc_id] = path
            jobs.append(_Job(path, doc_id, page_count, stored, state))
        return jobs

    def _discover(self, paths: Iterable[str | Path], images: bool, report: IngestReport,
                  say: Callable[[str], None]) -> Iterator[Path]:
        for raw in paths:
            try:
                yield from discover_documents([raw], images, lambda path, why: say(report.skip(path, why)))
            except FileNotFoundError:
                say(report.skip(Path(raw), "no such file or directory"))

    def _is_complete(self, doc_id: str, path: Path) -> bool:
        """True if `doc_id` is fully stored; a renamed or moved file gets its new path recorded."""
        found = next(self._store.scan({"doc_id": doc_id, "state": COMPLETE}, fields=("path",), batch=1), None)
        if not found:
            return False
        stored_path, source = found[0][1]["path"], _source(path)
        if stored_path != source["path"] and not Path(stored_path).exists():
            self._store.set_payload({"doc_id": doc_id}, source)
        return True

    def _ingest_jobs(self, jobs: Sequence[_Job], batcher: _Batcher, tell: Callable[[str], None]) -> None:
        """Stream the pages of every document through shared encoder batches.

        Pages of consecutive documents share a batch, so a folder of one-page scans keeps the
        OCR threads and the encoder as busy as one long PDF does.
        """
        from .documents.ocr import OCR_DPI

        ocr = self._ocr_function()
        for job in jobs:
            try:
                job.reader = open_document(job.path, job.doc_id, dpi=self.config.dpi, renderer=self.config.renderer,
                                           ocr=ocr, ocr_dpi=OCR_DPI)
                if job.reader.page_count != job.page_count:
                    raise BadDocumentError(job.path, CHANGED)
                job.left = job.page_count - len(job.stored)
                if job.left == 0:  # every page stored before an interruption, only the mark missing
                    batcher.complete(job)
                for page in job.reader.pages(skip=job.stored):
                    if page.note:
                        tell(f"note: {path_text(job.path)}: {page.note}")
                    batcher.add(job, page)
                    if job.failed:
                        break
            except STORE_FAILURES:
                raise
            except Exception as exc:  # opening the file or loading a page
                batcher.drop(job, exc)
        batcher.flush()
        for job in jobs:  # a document whose pages did not all arrive was changed under the reader
            if not job.failed and job.left > 0:
                batcher.drop(job, BadDocumentError(job.path, CHANGED))

    def _encode_and_store(self, batch: Sequence[tuple[_Job, Page]], pool: ThreadPoolExecutor) -> None:
        read_words([(job.reader, page) for job, page in batch], pool)  # scans OCRed side by side
        pages = [page for _, page in batch]
        vectors = self.encoder.encode_pages(pages)
        if self.prefilter is not None:
            singles = list(self.prefilter.embed_pages(pages))
        elif self.config.prefilter == "native":
            singles = [pv.summary for pv in vectors]
        else:
            singles = [_pooled(pv.vectors) for pv in vectors]
        self._store_pages(pages, vectors, singles)

    def _complete(self, job: _Job) -> None:
        if file_state(job.path) != job.state:  # its pages may mix two versions of the file
            raise BadDocumentError(job.path, CHANGED)
        self._store.set_payload({"doc_id": job.doc_id}, {"state": COMPLETE})  # the completion mark
        self._drop_older_versions(job)
        self._store.flush()
        job.reader.close()  # type: ignore[union-attr]

    def _store_pages(self, pages: Sequence[Page], vectors: Sequence[PageVectors], singles: Sequence[np.ndarray]) -> None:
        points = []
        for page, pv, summary in zip(pages, vectors, singles):
            pv.vectors, pv.cells = pool_tokens(pv.vectors, pv.cells, self.config.pool_factor)
            points.append(PagePoint(
                id=point_id(page.doc_id, page.page_no), vectors=pv.vectors, summary=summary,
                payload={"doc_id": page.doc_id, **_source(page.path), "page": page.page_no,
                         "page_count": page.page_count, "width_pt": page.width_pt, "height_pt": page.height_pt,
                         "text": page.text, "words_source": page.words_source,
                         "cells": pv.cells.tolist(), "grid": list(pv.grid or self.encoder.grid),
                         "state": PARTIAL}))
            page.release()
        self._store.upsert(points)

    def _drop_older_versions(self, job: _Job) -> None:
        """A file edited since its last ingest has a new doc_id; its old pages go."""
        path = path_text(job.path.resolve())
        old = {p["doc_id"] for batch in self._store.scan({"path": path}, fields=("doc_id",))
               for _, p, _ in batch} - {job.doc_id}
        if old:
            self._store.delete({"doc_id": sorted(old)})

    def _ocr_function(self) -> Callable[[Any], list] | None:
        """Reads a scanned page image; the engine loads on the first scan, so a missing engine
        fails only the files that need it."""
        if self.config.ocr == "none":
            return None
        from .documents.ocr import get_ocr

        return lambda image: get_ocr(self.config.ocr).words(image)

    # ---- search ----------------------------------------------------------------------
    def search(self, text: str, k: int = 5, filter: Filter | None = None, *, exact: bool = False,
               candidates: int = DEFAULT_CANDIDATES) -> list[Hit]:
        """The `k` best pages for `text`.

        Parameters
        ----------
        filter
            Payload conditions, e.g. `{"file": "report.pdf"}` or `{"doc_id": [a, b]}`.
        exact
            Score every page instead of the prefilter's `candidates`: slower, and the
            yardstick for the prefilter's recall.
        candidates
            Pages the single-vector prefilter passes on to MaxSim (and, with hybrid scoring,
            to BM25 and IDF weighting: z-scores are taken over the candidates); at least `k`.

        A query without a letter or a digit (`queries.searchable`) finds nothing.
        """
        if not searchable(text):
            return []
        candidates = max(candidates, k)
        where = {**(filter or {}), "state": COMPLETE}
        query, summary = self._encode_query(text)
        resident = self._resident_pages() if exact and not filter and self.config.scoring == "maxsim" else None
        if resident is not None:  # every page is on the GPU: no need to list them from the store
            top, best = resident.best(query, k)
        else:
            limit = max(self._store.count(where), 1) if exact else candidates
            ids, dense = self._store.prefilter(summary, limit, where, exact=exact)
            scores = self._score(text, query, ids, dense, k, exact)
            order = best_first(scores, ids, k)
            top, best = [ids[j] for j in order], scores[order]
        payloads = self._store.payloads(top, HIT_FIELDS)
        return [Hit(rank=r + 1, score=float(score), doc_id=p["doc_id"], path=p["path"], page=p["page"],
                    page_count=p["page_count"], text=p["text"], dpi=self.config.dpi, path_raw=p.get("path_raw"))
                for r, (score, p) in enumerate(zip(best, payloads))]

    def similarity_maps(self, text: str, hits: Sequence[Hit], directory: str | Path,
                        per_token: bool = False) -> list[Path]:
        """Write a heatmap PNG per hit of where on its page `text` matched (see maps.py).

        Files are `NN-<file>-pPAGE.png` in `directory`; `per_token` adds one per query token.
        """
        from .maps import write_maps

        query = self.encoder.encode_queries([text])[0]
        ids = [point_id(h.doc_id, h.page) for h in hits]
        written: list[Path] = []
        for hit, vectors, payload in zip(hits, self._store.multivectors(ids), self._store.payloads(ids, ("cells", "grid"))):
            grid = tuple(payload.get("grid") or self.encoder.grid)
            stem = Path(directory) / f"{hit.rank:02d}-{Path(hit.path).stem}-p{hit.page}"
            written += write_maps(hit.image(), query, as_rows(vectors), np.asarray(payload["cells"], dtype=np.int64),
                                  grid, stem, per_token)  # type: ignore[arg-type]
        return written

    def _encode_query(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """(n_tokens, dim) token vectors and the single vector the prefilter compares."""
        if self.config.prefilter == "native":
            tokens, summaries = self.encoder.encode_queries_with_summary([text])
            return tokens[0], summaries[0]
        query = self.encoder.encode_queries([text])[0]
        if self.prefilter is not None:
            return query, self.prefilter.embed_queries([text])[0]
        return query, _pooled(query)

    def _score(self, text: str, query: np.ndarray, ids: list[str], dense: np.ndarray, k: int,
               exact: bool = False) -> np.ndarray:
        """Final scores of the candidates `ids`: MaxSim alone, or the hybrid of HYBRID_WEIGHTS.

        With int8 / binary vectors, MaxSim runs on them first; the best candidates are then
        rescored from float16 and the scores fused again. Exact search on a GPU scores the
        float16 vectors held in GPU memory (`ResidentPages`).
        """
        if not ids:
            return np.zeros(0, dtype=np.float32)
        weights = None
        if self.config.scoring == "hybrid":
            lexicon = self._corpus_lexicon()
            weights = lexicon.idf(self.encoder.query_terms([text])[0])
            parts = {"dense": dense, "bm25": lexicon.bm25(text, ids)}
        resident = self._resident_pages() if exact else None
        quantized = self.config.vectors != "float16" and resident is None
        late = resident.scores(query, ids, weights) if resident else self._maxsim(query, ids, weights, quantized)

        def final() -> np.ndarray:
            return late if self.config.scoring == "maxsim" else fuse({"maxsim": late, **parts}, HYBRID_WEIGHTS)

        if quantized:
            best = np.argsort(-final(), kind="stable")[: max(RESCORE, 4 * k)]
            late[best] = self._maxsim(query, [ids[j] for j in best], weights, quantized=False)
        return final()

    def _maxsim(self, query: np.ndarray, ids: Sequence[str], weights: np.ndarray | None,
                quantized: bool) -> np.ndarray:
        scores = []
        for start in range(0, len(ids), SCORE_STEP):
            pages = self._store.multivectors(ids[start : start + SCORE_STEP], quantized=quantized)
            scores.append(maxsim_pages([query], pages, weights=None if weights is None else [weights])[0].numpy())
        return np.concatenate(scores)

    def _resident_pages(self) -> ResidentPages | None:
        """All searchable pages in GPU memory, loaded on the first exact search on a GPU and
        kept until the index changes; None on other devices (there the memory map is as fast)."""
        if self._resident is None:
            device = pick_device(self._device)
            if not device.startswith("cuda"):
                return None
            self._resident = ResidentPages.load(self._store, device, {"state": COMPLETE}, self.config.dim)
        return self._resident

    def _corpus_lexicon(self) -> Lexicon:
        """BM25 and term statistics over every complete page's text, kept until the index changes."""
        if self._lexicon is None:
            pages = [(pid, p.get("text", "")) for pid, p in self.pages(("text",))]
            self._lexicon = Lexicon([pid for pid, _ in pages], [t for _, t in pages], self.encoder.page_terms)
        return self._lexicon

    def pages(self, fields: Sequence[str] = HIT_FIELDS) -> Iterator[tuple[str, dict[str, Any]]]:
        """(point id, payload `fields`) of every searchable page, in store order."""
        for batch in self._store.scan({"state": COMPLETE}, fields=fields):
            for point, payload, _ in batch:
                yield point, payload

    # ---- maintenance -----------------------------------------------------------------
    def delete(self, target: str | Path) -> int:
        """Remove a document by file path, bare file name or doc id (a unique prefix of 4+ hex
        digits, any case, will do). Returns the number of pages removed; naming nothing stored,
        or more than one document, is an error."""
        doc_ids = self._resolve_documents(str(target))
        if not doc_ids:
            raise ColretrieveError(f"{target}: no such document in {self.location}")
        removed = self._store.count({"doc_id": doc_ids})
        self._store.delete({"doc_id": doc_ids})
        self._lexicon = self._resident = None
        self._store.flush()
        return removed

    def _resolve_documents(self, target: str) -> list[str]:
        def matching(field: str, value: str) -> dict[str, str]:  # doc_id -> path
            return {p["doc_id"]: p["path"] for batch in self._store.scan({field: value}, fields=("doc_id", "path"))
                    for _, p, _ in batch}

        found = matching("path", path_text(Path(target).resolve()))
        if not found and Path(target).name == target:
            found = matching("file", target)
            if len(set(found.values())) > 1:
                raise ColretrieveError(f"{target}: {len(set(found.values()))} files of that name are stored; "
                                       "give the path")
        if not found and re.fullmatch(r"[0-9a-fA-F]{4,64}", target):
            found = {d["doc_id"]: d["path"] for d in self.documents() if d["doc_id"].startswith(target.lower())}
            if len(found) > 1:
                raise ColretrieveError(f"{target}: matches {len(found)} documents; give more digits")
        return sorted(found)

    def documents(self) -> list[dict[str, Any]]:
        """One entry per stored document: doc_id, path, pages stored, page_count, complete, vectors."""
        docs: dict[str, dict[str, Any]] = {}
        for batch in self._store.scan(fields=("doc_id", "path", "page_count", "state", "n_vectors")):
            for _, p, _ in batch:
                doc = docs.setdefault(p["doc_id"], {"doc_id": p["doc_id"], "path": p["path"], "pages": 0,
                                                    "page_count": p["page_count"], "complete": p["state"] == COMPLETE,
                                                    "vectors": 0})
                doc["pages"] += 1
                doc["vectors"] += p["n_vectors"]
        return sorted(docs.values(), key=lambda d: d["path"])

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


def _check_same(index: Index, saved: str, loaded: str) -> None:
    """A model that now loads under another name would put pages in another vector space."""
    if saved != loaded:
        raise IndexConfigError(f"index {index.location} was built with {saved}, but the model now loads as "
                               f"{loaded}; re-ingest into a new index")


def _source(path: Path) -> dict[str, str | None]:
    """Where a page's file is, as its payload says it: the absolute path shown, its bytes where
    they are not UTF-8 (for `Hit.image`), and the name it was given, which `delete` and filters take."""
    where = path.resolve()
    return {"path": path_text(where), "path_raw": raw_path(where), "file": path_text(Path(path.name))}


def _pooled(vectors: np.ndarray) -> np.ndarray:
    """Mean of a page's (or query's) vectors, normalised: a prefilter any encoder supports."""
    mean = vectors.astype(np.float32).mean(axis=0)
    norm = np.linalg.norm(mean)
    return mean / norm if norm else mean
