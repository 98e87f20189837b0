"""The MCP server as agents reach it: the SDK's own client over stdio (the CLI in a subprocess)
and over streamable HTTP (the tools mounted in a FastAPI app served by uvicorn)."""

from __future__ import annotations

import base64
import io
import json
import os
import re
import shutil
import socket
import sys
import threading
from collections.abc import AsyncIterator, Awaitable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

import anyio
import httpx
import uvicorn
from fastapi import FastAPI
from mcp import Client, ClientSession, StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.types import CallToolResult, ImageContent, TextContent
from mcp.types.version import HANDSHAKE_PROTOCOL_VERSIONS
from PIL import Image
from starlette.routing import Route

from colretrieve import Index
from colretrieve.service.mcp import build_server, http_app
from colretrieve.settings import IMAGE_SIDE
from tests.helpers import CENSUS, QUESTIONS

TOOLS = {"search_pages", "get_page", "list_documents"}
#: A hang guard, not a measurement: the CLI's first search loads the encoder (and exports its
#: query graph into the session's cache).
PATIENCE = 300
QUESTION, FILE, _ = QUESTIONS[1]
CITATION = re.compile(r"(?P<file>\S+), page (?P<page>\d+) of \d+, doc_id (?P<doc_id>[^,\s]+)")


def pages(result: CallToolResult) -> list[tuple[TextContent, ImageContent]]:
    """The (citation + text, image) pairs of a successful page-returning call, images checked."""
    assert not result.is_error, result.content
    blocks = result.content
    assert len(blocks) % 2 == 0
    pairs = []
    for text, image in zip(blocks[::2], blocks[1::2]):
        assert isinstance(text, TextContent) and isinstance(image, ImageContent)
        assert image.mime_type == "image/png"
        with Image.open(io.BytesIO(base64.b64decode(image.data))) as png:
            assert png.format == "PNG" and max(png.size) <= IMAGE_SIDE
        pairs.append((text, image))
    return pairs


def error(result: CallToolResult) -> str:
    """The one line a failed call tells the model."""
    assert result.is_error
    (block,) = result.content
    assert isinstance(block, TextContent) and "\n" not in block.text and "Traceback" not in block.text
    return block.text


def test_an_agent_searches_reads_and_lists_over_stdio(index_copy: Path, tmp_path: Path) -> None:
    faults: list[Exception] = []  # anything on stdout that is not MCP comes back here

    async def on_message(message: object) -> None:
        if isinstance(message, Exception):
            faults.append(message)

    command = StdioServerParameters(
        command=sys.executable, args=["-m", "colretrieve", "mcp", "--index", str(index_copy), "--device", "cpu"],
        env=dict(os.environ))  # the session's model cache (conftest) among them

    async def agent() -> None:
        with (tmp_path / "server-stderr.log").open("w") as errlog:
            async with (stdio_client(command, errlog=errlog) as (read, write),
                        ClientSession(read, write, message_handler=on_message) as session):
                with anyio.fail_after(60):
                    await session.initialize()
                tools = (await session.list_tools()).tools
                assert {tool.name for tool in tools} == TOOLS
                search = next(tool for tool in tools if tool.name == "search_pages")
                assert search.description and {"query", "k"} <= search.input_schema["properties"].keys()

                found = pages(await session.call_tool("search_pages", {"query": QUESTION, "k": 3}))
                assert len(found) == 3 and found[0][0].text.startswith("[1] ")
                assert any(FILE in text.text for text, _ in found)
                cited = CITATION.search(found[0][0].text)
                assert cited is not None
                assert "best match (" in found[0][0].text.split("\n\n", 1)[0]  # the top region, before the page

                ((text, _),) = pages(await session.call_tool(
                    "get_page", {"doc_id": cited["doc_id"], "page": int(cited["page"])}))
                assert text.text.startswith(cited[0])
                assert text.text.split("\n\n", 1)[1] == found[0][0].text.split("\n\n", 1)[1]

                missing = error(await session.call_tool("get_page", {"doc_id": "0123abcd", "page": 1}))
                assert "0123abcd" in missing and "not in" in missing
                assert "k must be between 1 and 100" in error(
                    await session.call_tool("search_pages", {"query": QUESTION, "k": 0}))

                listed = (await session.call_tool("list_documents", {})).content
                (block,) = listed
                assert isinstance(block, TextContent)
                documents = json.loads(block.text)
                assert len(documents) == 5 and all(doc["complete"] for doc in documents)
                assert cited["doc_id"] in {doc["doc_id"] for doc in documents}

    anyio.run(lambda: _within(agent()))
    assert faults == []
    assert "Traceback" not in (tmp_path / "server-stderr.log").read_text()


async def _within(work: Awaitable[None]) -> None:
    with anyio.fail_after(PATIENCE):
        await work


@contextmanager
def serving(app: FastAPI) -> Iterator[str]:
    """`app` served by uvicorn in a thread; yields its base URL. The socket listens before the
    thread starts, so a client may connect at once: its request waits for the server's start."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]})
    thread.start()
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join()
        sock.close()


def test_the_tools_answer_at_slash_mcp_of_a_fastapi_app(index_copy: Path, text_encoder) -> None:
    with Index.open(index_copy, model=text_encoder) as index:
        mcp_app, mcp_lifespan = http_app(index)

        @asynccontextmanager
        async def lifespan(app: FastAPI) -> AsyncIterator[None]:
            async with mcp_lifespan():
                yield

        app = FastAPI(lifespan=lifespan)
        app.router.routes.append(Route("/mcp", endpoint=mcp_app))

        async def agent(url: str) -> None:
            async with (streamable_http_client(f"{url}/mcp") as (read, write),
                        ClientSession(read, write) as session):
                await session.initialize()
                assert {tool.name for tool in (await session.list_tools()).tools} == TOOLS
                found = pages(await session.call_tool("search_pages", {"query": QUESTION, "k": 2}))
                assert len(found) == 2 and any(FILE in text.text for text, _ in found)
                assert "k must be between" in error(
                    await session.call_tool("search_pages", {"query": QUESTION, "k": 101}))

        with serving(app) as url:
            # /mcp itself answers: no redirect to /mcp/, which a client need not follow for a POST
            hello = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
                "protocolVersion": HANDSHAKE_PROTOCOL_VERSIONS[-1], "capabilities": {},
                "clientInfo": {"name": "test", "version": "0"}}}
            answer = httpx.post(f"{url}/mcp", json=hello, headers={"accept": "application/json, text/event-stream"})
            assert answer.status_code == 200 and answer.json()["result"]["serverInfo"]["name"] == "colretrieve"
            anyio.run(lambda: _within(agent(url)))


def test_a_page_whose_file_is_gone_keeps_its_text_and_says_why(samples: Path, tmp_path: Path, text_encoder) -> None:
    pdf = tmp_path / CENSUS
    shutil.copy(samples / CENSUS, pdf)
    with Index.create(tmp_path / "index", model=text_encoder) as index:
        index.ingest([pdf])
        pdf.unlink()

        async def agent() -> None:
            async with Client(build_server(index)) as client:
                found = await client.call_tool("search_pages", {"query": "arrests by sex and age"})
                assert not found.is_error and all(isinstance(block, TextContent) for block in found.content)
                assert CENSUS in found.content[0].text and "no image" in found.content[0].text
                assert "gone" in found.content[0].text
                listed = (await client.call_tool("list_documents", {})).content
                assert isinstance(listed[0], TextContent) and len(json.loads(listed[0].text)) == 1

        anyio.run(lambda: _within(agent()))
