"""The index as MCP tools for LLM agents: search pages, read one page, list the documents.

One server, two transports: stdio (`colretrieve mcp`) and streamable HTTP, which the HTTP
service serves at /mcp. Each tool answers with what an agent can cite: a line naming file,
page and doc_id, the page's text, and the page itself as a PNG the model can look at.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from contextlib import AbstractAsyncContextManager, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.streamable_http_manager import StreamableHTTPASGIApp
from mcp.types import ImageContent, TextContent, ToolAnnotations
from pydantic import Field
from starlette.types import ASGIApp

from ..errors import ColretrieveError
from ..settings import DEVICE, HOST, IMAGE_SIDE, MAX_K, MAX_QUERY_CHARS, K

if TYPE_CHECKING:
    from ..index import Index
    from ..search import Hit

Query = Annotated[str, Field(description=f"What to look for, in plain words (at most {MAX_QUERY_CHARS} characters).")]
PageCount = Annotated[int, Field(description=f"How many pages to return, best first: 1 to {MAX_K}.")]
DocId = Annotated[str, Field(description="The document's doc_id, as search_pages or list_documents give it.")]
PageNo = Annotated[int, Field(description="The page number, counted from 1.")]

#: Tools only read: clients may run them without asking the user.
READ_ONLY = ToolAnnotations(read_only_hint=True, destructive_hint=False, open_world_hint=False)


def build_server(index: Index) -> MCPServer:
    """The MCP server whose tools read `index`.

    The tools are plain functions: the SDK runs them in a worker thread, so a search (CPU-bound)
    does not hold up the event loop. A `ColretrieveError` becomes a tool error (`isError`, its
    one line for the model to read); anything else the SDK reports as a failed call, and logs.
    """
    server: MCPServer = MCPServer(
        "colretrieve", log_level="WARNING",  # not a line per request on the service's stderr
        instructions="Search a collection of document pages (PDFs, scans) and read them as text and image. "
                     "Cite pages by file name and page number.")

    @server.tool(annotations=READ_ONLY, description=(
        f"Find the k pages (default {K}) that best answer a question. For each page, best first: a line with "
        "rank, file name, page number, doc_id and score, then the page's text, then the page as an image."))
    def search_pages(query: Query, k: PageCount = K) -> list[TextContent | ImageContent]:
        if not 1 <= k <= MAX_K:
            raise ToolError(f"k must be between 1 and {MAX_K}, not {k}")
        if len(query) > MAX_QUERY_CHARS:
            raise ToolError(f"the query has {len(query)} characters; at most {MAX_QUERY_CHARS} are allowed")
        with _as_tool_errors():
            hits = index.search(query, k)
            if not hits:
                return [TextContent(type="text", text="No page matched this query.")]
            return [block for hit in hits for block in _page(hit)]

    @server.tool(annotations=READ_ONLY, description=(
        "Read one page of a document: a line with file name, page number and doc_id, then the page's text, "
        "then the page as an image."))
    def get_page(doc_id: DocId, page: PageNo) -> list[TextContent | ImageContent]:
        with _as_tool_errors():
            return _page(index.page(doc_id, page))

    @server.tool(annotations=READ_ONLY, description=(
        "The indexed documents as a JSON list: doc_id, path, pages (stored), page_count, complete "
        "(false: still being ingested, its pages not searchable yet) and vectors."))
    def list_documents() -> TextContent:
        with _as_tool_errors():
            return TextContent(type="text", text=json.dumps(index.documents(), ensure_ascii=False))

    return server


def run_stdio(target: str, *, grpc: bool = False, device: str = DEVICE, tenant: str | None = None) -> None:
    """Serve the index at `target` over stdin/stdout until the client closes them.

    Opened read-only, so an ingest (or `colretrieve serve`) may hold the index meanwhile. While
    the server runs the SDK points fd 1 at stderr, so a library's chatter cannot break the
    protocol; the SDK's log lines go to stderr too.
    """
    from ..index import Index

    with Index.open(target, grpc=grpc, device=device, read_only=True, tenant=tenant) as index:
        build_server(index).run("stdio")


def http_app(index: Index, *, host: str = HOST) -> tuple[ASGIApp, Callable[[], AbstractAsyncContextManager[None]]]:
    """The tools over streamable HTTP: `(app, lifespan)`.

    `app` answers MCP at whatever path it is routed to (stateless, JSON responses: no session
    to keep, so any worker can answer any request). Route it at the exact path, not with
    `mount`: Starlette's `Mount("/mcp")` only matches "/mcp/...", and the parent answers "/mcp"
    with a redirect that clients do not follow for a POST. In the parent FastAPI app::

        mcp_app, mcp_lifespan = http_app(index, host=host)

        @asynccontextmanager
        async def lifespan(app: FastAPI) -> AsyncIterator[None]:
            async with mcp_lifespan():  # the SDK's session manager: requests fail without it
                yield

        app = FastAPI(lifespan=lifespan)
        app.router.routes.append(Route("/mcp", endpoint=mcp_app))  # starlette.routing.Route

    `lifespan` can be entered once only: a new app needs a new `http_app`. `host` is the
    address the service listens on: for a loopback one the SDK checks the Host and Origin
    headers against localhost (DNS rebinding), for any other it checks nothing (the API key
    guards such a service).
    """
    server = build_server(index)
    server.streamable_http_app(stateless_http=True, json_response=True, host=host)  # makes the session manager
    manager = server.session_manager
    return StreamableHTTPASGIApp(manager), manager.run


@contextmanager
def _as_tool_errors() -> Iterator[None]:
    """The errors users are meant to see, as tool errors (one line each) rather than crashes."""
    try:
        yield
    except ColretrieveError as exc:
        raise ToolError(str(exc)) from exc


def _page(hit: Hit) -> list[TextContent | ImageContent]:
    """What a hit shows the model: its citation and text, then its image (long side at most
    IMAGE_SIDE, the size models read well), or a note saying why there is none."""
    where = f"{Path(hit.path).name}, page {hit.page} of {hit.page_count}, doc_id {hit.doc_id}"
    cite = f"[{hit.rank}] {where}, score {hit.score:.3f}" if hit.rank else where
    if hit.regions and hit.regions[0].text:  # where on the page the query matched: the passage to read first
        top = hit.regions[0]
        cite += f"\nbest match ({top.share:.0%} of the score, box {list(top.box)} of the page): {top.text}"
    try:
        png = hit.png(IMAGE_SIDE)
    except ColretrieveError as exc:  # one moved file costs its image, not the other hits
        return [TextContent(type="text", text=f"{cite} (no image: {exc})\n\n{hit.text}")]
    return [TextContent(type="text", text=f"{cite}\n\n{hit.text}"),
            ImageContent(type="image", data=base64.b64encode(png).decode("ascii"), mime_type="image/png")]
