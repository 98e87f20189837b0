"""`colretrieve serve`: the HTTP API over one open Index, for RAG pipelines and agents.

FastAPI under uvicorn: request and answer shapes are pydantic models, so every request is
validated before it reaches the index and the OpenAPI description (/openapi.json, /docs) is
the code itself. Each route is a few lines over an `Index` method a Python user calls. The
process holds the index; other processes read it through this one (sharing.py), and ingest
jobs run in a thread beside the searches (jobs.py). Errors are JSON `{"error": "..."}`: 4xx
for what the client sent, 5xx only for the server's own trouble.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import socket
import threading
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import FastAPI, File, Form, Query, Request, UploadFile
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse, Response
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    ValidationError,
    model_validator,
)
from starlette.exceptions import HTTPException
from starlette.routing import Route

from ..catalog import META_KEY, check_metadata
from ..errors import (
    ColretrieveError,
    DiskFullError,
    IndexConfigError,
    IndexCorruptError,
    IndexLockedError,
    NotFoundError,
    StoreUnreachableError,
)
from ..files import publish, sync_folder
from ..settings import HOST, IMAGE_SIDE, MAX_BODY_BYTES, MAX_IMAGE_SIDE, MAX_K, MAX_QUERY_CHARS, MAX_UPLOAD_BYTES, K
from ..storage.disk import ensure_room
from ..tenancy import NAME as TENANT_NAME
from . import auth
from .jobs import Job, JobRunningError, Jobs

if TYPE_CHECKING:
    from ..index import Index
    from ..search import Hit

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: Where uploaded files are kept, inside the index directory: hits re-render pages from them.
UPLOADS = "uploads"
UPLOAD_PATH = "/ingest/upload"

DocId = Annotated[str, PathParam(pattern=r"^[0-9a-f]{64}$", description="A document's id (sha256 of its bytes).")]
PageNo = Annotated[int, PathParam(ge=1, le=1_000_000)]
TENANT = f"^{TENANT_NAME.pattern}$"
Tenant = Annotated[str | None, Query(pattern=TENANT, description="The team whose pages to see.")]
Name = Annotated[StrictStr, Field(min_length=1, max_length=4096, pattern=r"^[^\x00]*$")]
Number = Annotated[StrictInt, Field(ge=1, le=1_000_000)]


class Problem(BaseModel):
    error: str


#: A metadata value: true/false, text or a number (strict: true is no 1, "1" no number).
Scalar = StrictBool | Name | StrictInt | StrictFloat


class Words(BaseModel):
    """Conditions on a text field: none of these values; holds a value or not."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    not_: Name | list[Name] | None = Field(None, alias="not")
    exists: bool | None = None


class Numbers(BaseModel):
    """Conditions on a number field: a range, none of these values, holds a value or not."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    gt: float | None = None
    gte: float | None = None
    lt: float | None = None
    lte: float | None = None
    not_: Number | list[Number] | None = Field(None, alias="not")
    exists: bool | None = None


class Conditions(Numbers):
    """Conditions on a metadata field (text or numbers)."""

    not_: Scalar | list[Scalar] | None = Field(None, alias="not")  # type: ignore[assignment]


MetaValue = Scalar | list[Scalar] | Conditions


class PageFilter(BaseModel):
    """Pages whose fields equal the value given (a list: any of its values), or meet the
    conditions given (e.g. `{"page": {"gte": 2, "lte": 5}}`, `{"file": {"not": "a.pdf"}}`);
    other names are the documents' metadata (`{"year": {"gte": 2020}}`)."""

    model_config = ConfigDict(extra="allow")
    __pydantic_extra__: dict[str, MetaValue] = Field(init=False)
    doc_id: Name | list[Name] | Words | None = None
    path: Name | list[Name] | Words | None = None
    file: Name | list[Name] | Words | None = None
    page: Number | list[Number] | Numbers | None = None

    @model_validator(mode="after")
    def _names(self) -> PageFilter:
        for key in self.__pydantic_extra__ or {}:
            if not META_KEY.fullmatch(key):
                raise ValueError(f"{key!r} cannot name metadata (letters, digits, '_' or '-')")
        return self

    def conditions(self) -> dict[str, Any]:
        return {key: value for key, value in self.model_dump(by_alias=True, exclude_none=True).items()
                if value != {}}


class SearchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    query: str = Field(min_length=1, max_length=MAX_QUERY_CHARS, description="What to find, in words.")
    k: int = Field(K, ge=1, le=MAX_K, description="Pages to return.")
    filter: PageFilter | None = None
    exact: bool = Field(False, description="Score every page, not only the prefilter's candidates (slower).")
    tenant: str | None = Field(None, pattern=TENANT, description="The team whose pages to search.")


class RegionOut(BaseModel):
    """Where on the page the query matched (see `Hit.regions`)."""

    box: tuple[float, float, float, float] = Field(description="x0, y0, x1, y1 as shares of the page, from the "
                                                               "top-left corner.")
    points: tuple[float, float, float, float] = Field(description="The same box in PDF points (1/72 inch).")
    share: float = Field(description="The region's part of the page's MaxSim score.")
    text: str = Field(description="The words inside, in reading order.")


class PageOut(BaseModel):
    rank: int
    score: float
    doc_id: str
    path: str
    page: int
    page_count: int
    text: str
    metadata: dict[str, Any] = {}
    regions: list[RegionOut] = []
    image_url: str


class SearchResponse(BaseModel):
    hits: list[PageOut]


def _checked(metadata: dict[str, Any]) -> dict[str, Any]:
    try:
        return check_metadata(metadata, "metadata")
    except ColretrieveError as exc:
        raise ValueError(str(exc)) from None


#: The metadata an ingest request gives every page of its files (`ingest --meta`).
Metadata = Annotated[dict[str, StrictStr | StrictInt | float | bool | list[StrictStr | StrictInt | float | bool]],
                     AfterValidator(_checked)]
MAX_META_NAMES = 64
META_HELP = ("Names and values stored with every page of these files, returned in hits and taken by filters "
             "(a `<file>.json` beside a file adds its own).")


class IngestRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    paths: list[Name] = Field(min_length=1, max_length=1000,
                              description="Files or folders on the server's disk, under one of its --root folders.")
    images: bool = Field(False, description="Also take image files found in folders.")
    tenant: str | None = Field(None, pattern=TENANT)
    metadata: Metadata = Field(default_factory=dict, max_length=MAX_META_NAMES, description=META_HELP)


class JobOut(BaseModel):
    id: str
    state: Literal["running", "done", "failed"]
    paths: list[str]
    pages_done: int
    pages_total: int
    pages_per_second: float
    seconds: float
    documents: int
    unchanged: int
    failures: list[dict[str, str]]
    error: str | None


class Deleted(BaseModel):
    doc_id: str
    deleted_pages: int


#: The status of each of colretrieve's own errors; the rest of ColretrieveError is a bad request.
STATUS: list[tuple[type[ColretrieveError], int]] = [
    (NotFoundError, 404), (JobRunningError, 409), (IndexLockedError, 409), (DiskFullError, 507),
    (StoreUnreachableError, 503), (IndexCorruptError, 500), (IndexConfigError, 400)]
ERRORS: dict[int | str, dict[str, Any]] = {status: {"model": Problem} for status in (400, 401, 403, 404, 409, 413)}


def _problem(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


class Guard:
    """Every request passes here (after CORS): where a browser sent it from, the API key, then
    the body's size (counted as it arrives, so a body without Content-Length cannot slip past).

    Without a key, the service answers only requests addressed to a loopback name: a web page
    that rebinds its own domain to 127.0.0.1 sends its domain as the Host. A browser's request
    from an origin not given with --cors-origin is refused whatever it carries: a form can post
    an upload across sites without asking first.
    """

    def __init__(self, app: ASGIApp, key: str | None, upload_limit: int, origins: Sequence[str] = ()) -> None:
        self.app, self.key, self.upload_limit, self.origins = app, key, upload_limit, set(origins)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in scope["headers"]}
        origin = headers.get("origin")
        if origin is not None and origin not in self.origins:
            await _problem(403, f"requests from web pages at {origin} are not accepted (serve --cors-origin)")(
                scope, receive, send)
            return
        if self.key is None and not auth.is_loopback(auth.host_name(headers.get("host", ""))):
            await _problem(403, "without an API key this service answers requests to 127.0.0.1 or localhost only")(
                scope, receive, send)
            return
        if scope["path"] not in auth.OPEN_PATHS:
            status = auth.verdict(self.key, headers.get("authorization"))
            if status is not None:
                message = "an API key is required (Authorization: Bearer KEY)" if status == 401 else "wrong API key"
                await _problem(status, message, {"WWW-Authenticate": "Bearer"})(scope, receive, send)
                return
        limit = self.upload_limit if scope["path"] == UPLOAD_PATH else MAX_BODY_BYTES
        too_big = _problem(413, f"the request body is over {limit:,} bytes")
        if headers.get("content-length", "0").isdigit() and int(headers.get("content-length", "0")) > limit:
            await too_big(scope, receive, send)
            return
        received, over, replaced = 0, False, False

        async def counted() -> MutableMapping[str, Any]:
            nonlocal received, over
            message = await receive()
            received += len(message.get("body", b""))
            if received > limit:
                over = True
                raise _TooLarge
            return message

        async def watched(message: MutableMapping[str, Any]) -> None:
            nonlocal replaced
            if over:  # whatever the app answers to a body it could not finish reading, the answer is 413
                if not replaced:
                    replaced = True
                    await too_big(scope, receive, send)
                return
            await send(message)

        try:
            await self.app(scope, counted, watched)
        except _TooLarge:
            if not replaced:
                await too_big(scope, receive, send)


class _TooLarge(Exception):
    pass


def create_app(index: Index, *, key: str | None = None, roots: Sequence[Path] = (), cors_origins: Sequence[str] = (),
               upload_limit: int = MAX_UPLOAD_BYTES, mcp: bool = True, host: str = HOST) -> FastAPI:
    """The API over `index` (which the caller opened and closes). `roots`: folders whose files
    POST /ingest may name; `upload_limit`: bytes of one upload request; `mcp` adds the MCP
    tools at /mcp (`host`, where the service listens, sets their DNS-rebinding guard)."""
    jobs = Jobs()
    allowed = [root.resolve() for root in roots]
    warm = threading.Event()
    # As many searches at once as there are cores: more only queue inside the interpreter,
    # and leave an ingest job no turn.
    searching = threading.BoundedSemaphore(os.cpu_count() or 1)
    warm_error: list[str] = []
    mcp_app, mcp_lifespan = _mcp(index, host) if mcp else (None, None)

    def warm_up() -> None:
        """The models load before the first search, not during it; then what ingest jobs need,
        which would otherwise import a model library while searches hold the interpreter (a
        job under 16 busy clients stalled for minutes in that import)."""
        try:
            index.search("warm up", 1)
        except Exception as exc:  # /ready says why
            warm_error.append(f"{type(exc).__name__}: {exc}")
        warm.set()
        if not warm_error:
            index.encoder.prepare_pages()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        threading.Thread(target=warm_up, daemon=True, name="warm-up").start()
        if mcp_lifespan is None:
            yield
        else:
            async with mcp_lifespan():
                yield

    app = FastAPI(title="colretrieve", summary="Page retrieval over PDFs with late interaction (ColPali-style).",
                  version=_version(), lifespan=lifespan, responses=ERRORS)
    app.state.jobs = jobs

    def view(tenant: str | None) -> Index:
        """The index as `tenant` sees it; a service started for one team serves that team only."""
        if tenant is None or tenant == index.tenant:
            return index
        if index.tenant is not None:
            raise HTTPException(403, f"this service serves team {index.tenant!r} only")
        return index.as_tenant(tenant)

    def out(hit: Hit, tenant: str | None) -> PageOut:
        url = f"/pages/{hit.doc_id}/{hit.page}/image" + (f"?tenant={tenant}" if tenant else "")
        return PageOut(**hit.to_dict(), image_url=url)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        parts = []
        for error in exc.errors()[:5]:
            if error.get("type") == "json_invalid":
                parts.append(f"the body is not valid JSON ({error.get('ctx', {}).get('error', 'cannot parse it')})")
                continue
            where = ".".join(str(part) for part in error.get("loc", ()) if part != "body")
            parts.append(f"{where}: {error.get('msg')}" if where else str(error.get("msg")))
        return JSONResponse({"error": "; ".join(parts) or "invalid request", "detail": jsonable(exc.errors())},
                            status_code=422)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        return _problem(exc.status_code, str(exc.detail), getattr(exc, "headers", None))

    @app.exception_handler(ColretrieveError)
    async def colretrieve_error(request: Request, exc: ColretrieveError) -> JSONResponse:
        status = next((code for kind, code in STATUS if isinstance(exc, kind)), 400)
        return _problem(status, str(exc))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:  # the server's fault, said as JSON
        return _problem(500, f"internal error ({type(exc).__name__}); the service's log has the details")

    @app.get("/health", summary="The process answers.")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/ready", summary="The models are loaded: searches answer at full speed.",
             responses={503: {"model": Problem}})
    def ready() -> Any:
        if warm_error:
            return _problem(503, f"the models failed to load: {warm_error[0]}")
        if not warm.is_set():
            return _problem(503, "loading the models")
        return {"ready": True}

    @app.post("/search", summary="The k best pages for a query.")
    def search(request: SearchRequest) -> SearchResponse:
        filter = request.filter.conditions() if request.filter else None
        with searching:
            hits = view(request.tenant).search(request.query, request.k, filter or None, exact=request.exact)
        return SearchResponse(hits=[out(hit, request.tenant) for hit in hits])

    @app.get("/pages/{doc_id}/{page}", summary="One page: its text and where to get its image.")
    def page(doc_id: DocId, page: PageNo, tenant: Tenant = None) -> PageOut:
        return out(view(tenant).page(doc_id, page), tenant)

    @app.get("/pages/{doc_id}/{page}/image", summary="One page as a PNG, rendered again from its file.",
             response_class=Response, responses={200: {"content": {"image/png": {}}}})
    def page_image(doc_id: DocId, page: PageNo, tenant: Tenant = None,
                   max_side: Annotated[int, Query(ge=16, le=MAX_IMAGE_SIDE)] = IMAGE_SIDE) -> Response:
        return Response(view(tenant).page(doc_id, page).png(max_side), media_type="image/png")

    @app.get("/documents", summary="Every stored document, complete or not.")
    def documents(tenant: Tenant = None) -> dict[str, list[dict[str, Any]]]:
        return {"documents": view(tenant).documents()}

    @app.delete("/documents/{doc_id}", summary="Remove a document's pages.")
    def delete(doc_id: DocId, tenant: Tenant = None) -> Deleted:
        with jobs.writing():
            return Deleted(doc_id=doc_id, deleted_pages=view(tenant).delete(doc_id))

    @app.get("/stats", summary="Counts and sizes of the index.")
    def stats(tenant: Tenant = None) -> dict[str, Any]:
        return view(tenant).stats()

    @app.post("/ingest", status_code=202, summary="Ingest files on the server's disk, as a background job.")
    def ingest(request: IngestRequest) -> JobOut:
        paths = [_confined(Path(name), allowed) for name in request.paths]
        return JobOut(**jobs.start(view(request.tenant), lambda: paths, allowed, request.images,
                                   metadata=request.metadata).to_dict())

    @app.post(UPLOAD_PATH, status_code=202, summary="Ingest uploaded files, as a background job.",
              responses={413: {"model": Problem}})
    def upload(files: Annotated[list[UploadFile], File(description="PDFs or page images.")],
               tenant: Tenant = None,
               metadata: Annotated[str | None, Form(description=f"A JSON object: {META_HELP}")] = None) -> JobOut:
        meta = _form_metadata(metadata)
        if index.directory is None:
            raise HTTPException(400, "this service's index is on a Qdrant server: it keeps no uploaded files; "
                                     "ingest paths on the server's disk instead")
        target = view(tenant)
        folder = index.directory / UPLOADS / uuid.uuid4().hex

        def saved() -> list[Path]:  # only once the job has the write slot; nothing half kept
            try:
                return [_save(file, folder) for file in files]
            except BaseException:
                shutil.rmtree(folder, ignore_errors=True)  # made by this request alone
                raise

        def tidy(job: Job) -> None:
            """Uploads no page was stored from go (they are this service's own files)."""
            for path, _ in job.report.failed:
                if path.parent == folder:
                    path.unlink(missing_ok=True)
            if folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()

        return JobOut(**jobs.start(target, saved, [folder.resolve()], after=tidy, metadata=meta).to_dict())

    @app.get("/jobs/{job_id}", summary="How an ingest job is going.")
    def job(job_id: Annotated[str, PathParam(pattern=r"^[0-9a-f]{32}$")]) -> JobOut:
        found = jobs.get(job_id)
        if found is None:
            raise NotFoundError(f"no ingest job {job_id}")
        return JobOut(**found.to_dict())

    if mcp_app is not None:  # a route, not a mount: a mount answers /mcp with a redirect to /mcp/
        app.router.routes.append(Route("/mcp", endpoint=mcp_app))
    app.add_middleware(Guard, key=key, upload_limit=upload_limit, origins=cors_origins)
    if cors_origins:  # outermost: a preflight carries no key, and a refusal must still name the origin
        app.add_middleware(CORSMiddleware, allow_origins=list(cors_origins), allow_methods=["GET", "POST", "DELETE"],
                           allow_headers=["Authorization", "Content-Type"])
    return app


def jsonable(errors: Sequence[Any]) -> list[dict[str, Any]]:
    """Validation errors without the parts JSON cannot carry (exceptions in `ctx`)."""
    return [{key: value for key, value in dict(error).items() if key in ("type", "loc", "msg")} for error in errors]


def _form_metadata(raw: str | None) -> dict[str, Any]:
    """The `metadata` field of an upload form, checked as IngestRequest checks its own."""
    if raw is None:
        return {}
    try:
        return Upload.model_validate({"metadata": json.loads(raw)}).metadata
    except json.JSONDecodeError as exc:
        raise HTTPException(422, f"metadata: not a JSON object ({exc})") from None
    except ValidationError as exc:
        raise RequestValidationError(exc.errors()) from None


class Upload(BaseModel):
    metadata: Metadata = Field(max_length=MAX_META_NAMES)


def _confined(path: Path, roots: Sequence[Path]) -> Path:
    """`path` if it lies under one of `roots` once links are resolved; names with `..` are refused."""
    if not roots:
        raise HTTPException(403, "this service takes no paths on its disk (start it with --root DIR); "
                                 "upload the files to POST /ingest/upload instead")
    if ".." in path.parts or not path.is_absolute():
        raise HTTPException(400, f"{path}: give an absolute path without '..'")
    try:
        resolved = path.resolve()
        exists = resolved.exists()
    except (OSError, RuntimeError) as exc:  # unreadable folder, a loop of links
        raise HTTPException(400, f"{path}: cannot be read ({exc})") from None
    if not any(resolved.is_relative_to(root) for root in roots):
        raise HTTPException(403, f"{path}: outside the folders this service may read")
    if not exists:
        raise NotFoundError(f"{path}: no such file or folder")
    return resolved


def _save(upload: UploadFile, folder: Path) -> Path:
    """An uploaded file kept under `folder` by its bare name: written, fsynced, then published."""
    name = Path(upload.filename or "").name
    if name in ("", ".", "..") or name.startswith(".") or name.endswith(".tmp") or "\x00" in name \
            or len(name.encode()) > 200:
        raise HTTPException(400, f"{upload.filename!r}: not a file name to keep")
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / name
    if target.exists():
        raise HTTPException(400, f"{name}: uploaded twice in one request")
    ensure_room(folder, upload.size or 0, f"keeping the upload {name}")
    try:
        publish(target, iter(lambda: upload.file.read(1 << 20), b""))
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise DiskFullError(f"the disk under {folder} filled while keeping the upload {name}") from None
        raise
    sync_folder(folder.parent)  # the request's own folder is a new name in uploads/
    return target


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _mcp(index: Index, host: str) -> tuple[Any, Any]:
    from .mcp import http_app

    return http_app(index, host=host)


def _version() -> str:
    from importlib.metadata import version

    return version("colretrieve")


def serve(target: str, *, grpc: bool = False, host: str, port: int, key: str | None, roots: Sequence[Path] = (),
          cors_origins: Sequence[str] = (), upload_limit: int = MAX_UPLOAD_BYTES, device: str = "auto",
          tenant: str | None = None, say: Callable[[str], None] = print) -> None:
    """Open (or create) the index at `target` and serve it until interrupted."""
    import uvicorn

    from ..index import Index
    from ..location import Location

    for root in roots:
        if not root.is_dir():
            raise ColretrieveError(f"--root {root}: no such folder")
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ColretrieveError(f"cannot listen on {host}:{port} ({exc.strerror or exc})") from None
    if not Location.parse(target, grpc).exists():
        say(f"no index at {target}: serving a new, empty one")
    index = Index.open_or_create(target, device=device, grpc=grpc, tenant=tenant)
    try:
        app = create_app(index, key=key, roots=roots, cors_origins=cors_origins, upload_limit=upload_limit, host=host)
        say(f"serving {target} on http://{host}:{sock.getsockname()[1]} (API key "
            f"{'required' if key else 'off: loopback only'}; OpenAPI at /docs, MCP at /mcp)")
        signal.signal(signal.SIGTERM, _interrupt)  # uvicorn raises the signal again once it has stopped
        try:
            uvicorn.Server(uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=5)).run(sockets=[sock])
        except KeyboardInterrupt:
            pass
        running = app.state.jobs.running
        if running is not None:
            say(f"waiting for ingest job {running.id} to end; Ctrl-C again stops it (the next ingest of its files "
                "resumes it)")
            try:
                app.state.jobs.wait()
            except KeyboardInterrupt:
                os._exit(130)  # as a kill would: what is stored stays, the lock goes with the process
        if app.state.jobs.wrote:
            say("optimising the store for a quick next start")
            index.store.optimize()
    finally:
        index.close()
        sock.close()
