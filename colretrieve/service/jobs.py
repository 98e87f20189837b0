"""Ingest jobs of the service: one at a time, in a thread of the process that holds the index,
so searches go on meanwhile and see complete documents only (a document counts once its last
page is stored). A job killed with its process resumes at the next ingest of the same files."""

from __future__ import annotations

import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ColretrieveError
from ..ingest import IngestReport

if TYPE_CHECKING:
    from ..index import Index

#: Finished jobs remembered for GET /jobs/{id}.
KEEP = 100


class JobRunningError(ColretrieveError):
    """An ingest job is running: the index takes one writer at a time."""


@dataclass
class Job:
    id: str
    paths: list[str]
    state: str = "running"  # running, done, failed
    report: IngestReport = field(default_factory=IngestReport)
    started: float = field(default_factory=time.monotonic)
    finished: float | None = None
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        report = self.report
        seconds = (self.finished or time.monotonic()) - self.started
        rate = round(report.encoded / seconds, 2) if seconds else 0.0
        return {"id": self.id, "state": self.state, "paths": self.paths, "pages_done": report.encoded,
                "pages_total": report.planned, "pages_per_second": rate,
                "seconds": round(seconds, 1), "documents": report.documents, "unchanged": report.unchanged,
                "failures": [{"path": str(path), "reason": reason} for path, reason in report.failed],
                "error": self.error}


class Jobs:
    """The jobs of one service, and its one writer: a job holds the index's write slot from
    the moment it is asked for until it ends; a delete takes the same slot for its moment."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._writing = threading.Lock()
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._thread: threading.Thread | None = None
        #: A job stored pages: the store is optimised when the service stops (not after each
        #: job: the optimiser holds every search of the process while it runs).
        self.wrote = False

    @property
    def running(self) -> Job | None:
        with self._lock:
            return next((job for job in self._jobs.values() if job.state == "running"), None)

    def _busy(self, doing: str) -> JobRunningError:
        running = self.running
        return JobRunningError(f"ingest job {running.id} is running; {doing} when it ends" if running else
                               f"the index is being written; {doing} in a moment")

    @contextmanager
    def writing(self) -> Iterator[None]:
        """The write slot for a short write (a delete), or JobRunningError while a job holds it."""
        if not self._writing.acquire(blocking=False):
            raise self._busy("delete documents")
        try:
            yield
        finally:
            self._writing.release()

    def start(self, index: Index, paths: Callable[[], Sequence[Path]], within: Sequence[Path],
              images: bool = False, after: Callable[[Job], None] | None = None,
              metadata: dict[str, Any] | None = None) -> Job:
        """A job ingesting what `paths()` gives (called once the slot is held: an upload is
        written only for a job that will run); `after(job)` runs when it ends."""
        if not self._writing.acquire(blocking=False):
            raise self._busy("start another")
        try:
            files = list(paths())
            job = Job(uuid.uuid4().hex, [str(path) for path in files])
            with self._lock:
                self._jobs[job.id] = job
                while len(self._jobs) > KEEP:
                    self._jobs.popitem(last=False)
            self._thread = threading.Thread(target=self._run, args=(index, job, files, list(within), images, after,
                                                                          metadata or {}),
                                            daemon=True, name=f"ingest-{job.id[:8]}")
            self._thread.start()
        except BaseException:
            self._writing.release()
            raise
        return job

    def _run(self, index: Index, job: Job, paths: list[Path], within: list[Path], images: bool,
             after: Callable[[Job], None] | None, metadata: dict[str, Any]) -> None:
        try:
            index.ingest(paths, images=images, report=job.report, within=within, optimize=False,  # at shutdown
                         metadata=metadata)
            self.wrote = self.wrote or job.report.encoded > 0
            job.state = "done"
        except Exception as exc:  # the job's answer says why; the service goes on
            job.error = str(exc) if isinstance(exc, ColretrieveError) else f"{type(exc).__name__}: {exc}"
            job.state = "failed"
        finally:
            try:
                if after is not None:
                    after(job)
            finally:
                job.finished = time.monotonic()
                self._writing.release()

    def wait(self) -> None:
        """Until the running job (if any) ends."""
        if self._thread is not None:
            self._thread.join()

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            return self._jobs.get(job_id)
