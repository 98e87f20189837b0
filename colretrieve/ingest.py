"""Files → pages → vectors → points: resumable, and a bad file never stops the rest.

Every file is hashed and opened once up front (bad files are reported before the long part,
the progress bar knows the total). Pages of consecutive documents then share encoder
batches, so a folder of one-page scans keeps the OCR threads and the encoder as busy as one
long PDF does. A document's completion mark (catalog.py) is written once all its pages are
stored; a failure of the index itself (full disk, damaged store) stops the run, pages stored
before it stay.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import catalog
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
    read_words,
)
from .documents.ocr import ocr_function
from .encoders import MultiVectorEncoder
from .errors import BadDocumentError, DiskFullError, IndexConfigError, IndexCorruptError, StoreUnreachableError
from .labels import Labels, page_labels
from .models import Models
from .scoring.pooling import pool_tokens
from .storage import Store

#: Failures of the index itself, not of one document: an ingest stops on them (pages stored before stay).
STORE_FAILURES = (DiskFullError, IndexCorruptError, IndexConfigError, StoreUnreachableError)


@dataclass
class IngestReport:
    """What one `ingest` call did; `failed` holds (path, reason) for every file it could not take."""

    documents: int = 0
    pages: int = 0
    unchanged: int = 0
    failed: list[tuple[Path, str]] = field(default_factory=list)
    seconds: float = 0.0
    #: Pages this run has to encode, and how many it has encoded so far (for progress).
    planned: int = 0
    encoded: int = 0

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
    meta: dict[str, Any] = field(default_factory=dict)  # the user's metadata of the document


def ingest(store: Store, models: Models, paths: Iterable[str | Path], *, images: bool = False, progress: bool = False,
           echo: Callable[[str], None] | None = None, batch_size: int | None = None,
           report: IngestReport | None = None, within: Sequence[Path] | None = None,
           optimize: bool = True, metadata: dict[str, Any] | None = None,
           labels: Labels | None = None) -> IngestReport:
    """Add the documents under `paths` to `store` (see `Index.ingest`). The models load only
    when there are pages to encode, and a model that cannot load stops the run."""
    say = echo or (lambda line: None)
    report = report if report is not None else IngestReport()
    started = time.perf_counter()
    run = _Run(store, models, report, say)
    run.labels = labels
    jobs = run.plan(paths, images, within, metadata or {})
    total = report.planned = sum(job.page_count - len(job.stored) for job in jobs)
    if total:
        models.load()
        if labels is not None:  # before any page is read: a model that cannot label stops the run
            labels.check(models.prefilter)
            store.index_fields({catalog.LABEL: "keyword"})
    from tqdm.auto import tqdm

    with tqdm(total=total, unit="page", disable=not progress or total == 0, dynamic_ncols=True,
              desc="ingest") as bar, ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool, \
            _pages_per_step(models, batch_size if total else None):
        run.bar, run.pool = bar, pool
        if progress:
            run.tell = lambda line: bar.write(line, file=sys.stderr)
        run.pages_of(jobs)
    if total and optimize:
        store.optimize()
    report.seconds = time.perf_counter() - started
    return report


@contextmanager
def _pages_per_step(models: Models, size: int | None) -> Iterator[None]:
    """The encoder takes `size` pages a step for this run (None: its own); a model shared by
    several indexes keeps its own setting after."""
    if size is None:
        yield
        return
    encoder = models.encoder
    before, encoder.batch_size = encoder.batch_size, size
    try:
        yield
    finally:
        encoder.batch_size = before


class _Run:
    """One ingest: its plan, its batches of pages from any documents, and each document's count.

    When a batch fails, the document to blame is found (the file named by a BadDocumentError,
    else each document's pages retried alone), reported, and the rest of the batch goes on.
    """

    def __init__(self, store: Store, models: Models, report: IngestReport, say: Callable[[str], None]) -> None:
        self.store, self.models, self.config = store, models, models.config
        self.report, self.say, self.tell = report, say, say
        self.bar: Any = None
        self.pool: ThreadPoolExecutor | None = None
        self.batch: list[tuple[_Job, Page]] = []
        self.labels: Labels | None = None  # zero-shot labels each page is given (labels.py)
        self._label_vectors: np.ndarray | None = None

    @property
    def encoder(self) -> MultiVectorEncoder:
        return self.models.encoder

    # ---- plan ------------------------------------------------------------------------
    def plan(self, paths: Iterable[str | Path], images: bool, within: Sequence[Path] | None = None,
             metadata: dict[str, Any] | None = None) -> list[_Job]:
        """Hash and open every file once: bad files are reported before the long part."""
        jobs: list[_Job] = []
        planned: set[str] = set()
        indexes: dict[str, str] = {}  # for the metadata names the documents bring
        for path in self._discover(paths, images, within):
            try:
                meta = {**(metadata or {}), **catalog.metadata_of(path)}
                indexes = {**catalog.metadata_indexes(meta), **indexes}
                state = file_state(path)
                doc_id = content_hash(path)
                if doc_id in planned or self._is_complete(doc_id, path):
                    if meta and doc_id not in planned:
                        self.store.set_payload({"doc_id": doc_id}, {catalog.META: meta})
                    self.report.unchanged += 1
                    continue
                with open_document(path, doc_id, dpi=self.config.dpi) as reader:
                    page_count = reader.page_count
            except BadDocumentError as exc:
                self.say(self.report.skip(path, exc.reason))
                continue
            except OSError as exc:
                self.say(self.report.skip(path, exc.strerror or str(exc)))
                continue
            planned.add(doc_id)
            jobs.append(_Job(path, doc_id, page_count, catalog.stored_pages(self.store, doc_id), state, meta=meta))
        if indexes:
            self.store.index_fields(indexes)
        return jobs

    def _discover(self, paths: Iterable[str | Path], images: bool, within: Sequence[Path] | None) -> Iterator[Path]:
        for raw in paths:
            try:
                yield from discover_documents([raw], images, lambda path, why: self.say(self.report.skip(path, why)),
                                              within)
            except FileNotFoundError:
                self.say(self.report.skip(Path(raw), "no such file or directory"))

    def _is_complete(self, doc_id: str, path: Path) -> bool:
        """True if `doc_id` is fully stored; a renamed or moved file gets its new path recorded."""
        stored_path = catalog.complete_path(self.store, doc_id)
        if stored_path is None:
            return False
        where = catalog.source(path)
        if stored_path != where["path"] and not Path(stored_path).exists():
            self.store.set_payload({"doc_id": doc_id}, where)
        return True

    # ---- pages -----------------------------------------------------------------------
    def pages_of(self, jobs: Sequence[_Job]) -> None:
        """Stream the pages of every document through shared encoder batches."""
        ocr = ocr_function(self.config.ocr)
        for job in jobs:
            try:
                job.reader = open_document(job.path, job.doc_id, dpi=self.config.dpi, renderer=self.config.renderer,
                                           ocr=ocr)
                if job.reader.page_count != job.page_count:
                    raise BadDocumentError(job.path, CHANGED)
                job.left = job.page_count - len(job.stored)
                if job.left == 0:  # every page stored before an interruption, only the mark missing
                    self._complete(job)
                for page in job.reader.pages(skip=job.stored):
                    if page.note:
                        self.tell(f"note: {path_text(job.path)}: {page.note}")
                    self._add(job, page)
                    if job.failed:
                        break
            except STORE_FAILURES:
                raise
            except Exception as exc:  # opening the file or loading a page
                self._drop(job, exc)
        self._flush()
        for job in jobs:  # a document whose pages did not all arrive was changed under the reader
            if not job.failed and job.left > 0:
                self._drop(job, BadDocumentError(job.path, CHANGED))

    def _add(self, job: _Job, page: Page) -> None:
        self.batch.append((job, page))
        if len(self.batch) >= self.encoder.batch_size:
            self._flush()

    def _flush(self) -> None:
        batch, self.batch = self.batch, []
        self._store(batch)

    def _store(self, batch: list[tuple[_Job, Page]]) -> None:
        if not batch:
            return
        try:
            self._encode_and_store(batch)
        except STORE_FAILURES:
            raise  # the index failed, not a document: no file is to blame
        except Exception as exc:
            jobs = list(dict.fromkeys(job for job, _ in batch))
            named = [job for job in jobs if isinstance(exc, BadDocumentError) and Path(exc.path) == job.path]
            if named or len(jobs) == 1:
                culprit = (named or jobs)[0]
                self._drop(culprit, exc)
                self._store([(j, p) for j, p in batch if j is not culprit])
            else:
                for job in jobs:
                    self._store([(j, p) for j, p in batch if j is job])
            return
        self.bar.update(len(batch))
        self.report.encoded += len(batch)
        for job, _ in batch:
            job.left -= 1
            if job.left == 0:
                self._complete(job)

    def _encode_and_store(self, batch: Sequence[tuple[_Job, Page]]) -> None:
        """Encode and upsert; the pages are released only once stored, so a failed batch can
        be tried again in parts."""
        assert self.pool is not None, "ingest() sets the pool for the run"
        opened = []
        for job, page in batch:
            assert job.reader is not None, "a job's pages are batched while its reader is open"
            opened.append((job.reader, page))
        read_words(opened, self.pool)  # scans OCRed side by side
        pages = [page for _, page in batch]
        encoded = self.encoder.encode_pages(pages)
        singles = self.models.prefilter.embed_pages(pages, encoded)
        tags: list[dict[str, Any]] = [{} for _ in pages]
        if self.labels is not None:
            if self._label_vectors is None:
                self._label_vectors = self.labels.vectors(self.models.prefilter)
            tags = page_labels(self.models.prefilter, self.labels.names, self._label_vectors, singles)
        points = []
        for (job, page), item, summary, tag in zip(batch, encoded, singles, tags):
            vectors, cells = pool_tokens(item.vectors, item.cells, self.config.pool_factor)
            sparse = catalog.lexical_vectors(page.text, self.encoder) if self.config.lexical else {}
            points.append(catalog.page_point(page, vectors, cells, item.grid or self.encoder.grid, summary, sparse,
                                             job.meta, tag))
        self.store.upsert(points)
        for page in pages:
            page.release()

    def _complete(self, job: _Job) -> None:
        try:
            if file_state(job.path) != job.state:  # its pages may mix two versions of the file
                raise BadDocumentError(job.path, CHANGED)
        except BadDocumentError as exc:
            self._drop(job, exc)
            return
        catalog.mark(self.store, [job.doc_id], catalog.COMPLETE)
        old = catalog.older_versions(self.store, job.path, job.doc_id)
        if old:  # a file edited since its last ingest has a new doc_id; its old pages go
            self.store.delete({"doc_id": old})
        self.store.flush()
        if job.reader is not None:
            job.reader.close()
        self.report.documents += 1
        self.report.pages += job.page_count - len(job.stored)

    def _drop(self, job: _Job, exc: Exception) -> None:
        """Fail `job` alone: its pages leave the batch, what this run stored of it is deleted
        (pages stored before are not touched), and one line says why."""
        self.batch = [(j, p) for j, p in self.batch if j is not job]
        if job.failed:
            return
        reason = exc.reason if isinstance(exc, BadDocumentError) else f"{type(exc).__name__}: {exc}"
        job.failed = True
        if job.reader is not None:
            job.reader.close()
        added = sorted(set(range(1, job.page_count + 1)) - job.stored)
        if added:
            self.store.delete({"doc_id": job.doc_id, "page": added})
        self.tell(self.report.skip(job.path, reason))
