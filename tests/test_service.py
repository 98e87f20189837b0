"""The HTTP service as its users meet it: a real `colretrieve serve` process on 127.0.0.1,
talked to with httpx (and with `colretrieve.Client`): every endpoint, an ingest job while
searches run, the API key, path confinement, size limits and bad requests."""

from __future__ import annotations

import io
import json
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from PIL import Image

from colretrieve import Client
from colretrieve.errors import NotFoundError
from colretrieve.settings import MAX_K
from tests.helpers import CENSUS, QUESTIONS, cli, one_line, served

KEY = "test-key-0123456789"
AUTH = {"Authorization": f"Bearer {KEY}"}
APP = "http://app.example"  # the one web origin the module's service accepts


def copies(samples: Path, folder: Path, tag: str) -> list[Path]:
    """The sample PDFs again, each a new document (a comment after %%EOF changes its bytes)."""
    folder.mkdir(parents=True, exist_ok=True)
    made = []
    for pdf in sorted(samples.glob("*.pdf")):
        target = folder / f"{tag}-{pdf.name}"
        target.write_bytes(pdf.read_bytes() + f"\n% {tag}\n".encode())
        made.append(target)
    return made


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory, samples: Path) -> Path:
    """The folder the service may ingest from: three rounds of new copies of the samples."""
    folder = tmp_path_factory.mktemp("root")
    for tag in ("a", "b", "c"):
        copies(samples, folder / "batch", tag)
    return folder


@pytest.fixture(scope="module")
def url(built_index: Path, root: Path, tmp_path_factory: pytest.TempPathFactory):
    index = tmp_path_factory.mktemp("served") / "index"
    shutil.copytree(built_index, index)
    (index / "LOCK").unlink(missing_ok=True)
    with served(index, "--root", str(root), "--max-upload-mb", "1", "--cors-origin", APP, key=KEY) as address:
        yield address


@pytest.fixture
def http(url: str):
    with httpx.Client(base_url=url, headers=AUTH, timeout=120) as client:
        yield client


def wait_for(http: httpx.Client, job: dict) -> dict:
    while job["state"] == "running":
        time.sleep(0.2)
        job = http.get(f"/jobs/{job['id']}").json()
    return job


# ---- the API key ------------------------------------------------------------------------

@pytest.mark.parametrize(("method", "path"), [("POST", "/search"), ("GET", "/documents"), ("GET", "/stats"),
                                              ("GET", "/openapi.json"), ("POST", "/ingest"), ("GET", "/jobs/0")])
def test_no_key_is_401_and_a_wrong_key_is_403(url: str, method: str, path: str) -> None:
    missing = httpx.request(method, url + path, json={"query": "x"})
    assert missing.status_code == 401 and missing.headers["www-authenticate"] == "Bearer"
    assert "API key" in missing.json()["error"]
    wrong = httpx.request(method, url + path, json={"query": "x"}, headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 403 and wrong.json() == {"error": "wrong API key"}


def test_probes_need_no_key(url: str) -> None:
    assert httpx.get(f"{url}/health").json() == {"status": "ok"}
    assert httpx.get(f"{url}/ready").json() == {"ready": True}


def test_without_a_key_the_service_stays_on_loopback(built_index: Path) -> None:
    run = cli("serve", "--index", str(built_index), "--host", "0.0.0.0", env={"PATH": ""})
    assert run.returncode == 2
    assert "without an API key the service listens on loopback only" in one_line(run)


def test_only_the_named_web_origin_may_call(url: str) -> None:
    preflight = httpx.options(f"{url}/search", headers={"Origin": APP, "Access-Control-Request-Method": "POST",
                                                         "Access-Control-Request-Headers": "authorization"})
    assert preflight.status_code == 200 and preflight.headers["access-control-allow-origin"] == APP
    allowed = httpx.get(f"{url}/stats", headers={**AUTH, "Origin": APP})
    assert allowed.status_code == 200 and allowed.headers["access-control-allow-origin"] == APP
    other = httpx.post(f"{url}/ingest/upload", headers={**AUTH, "Origin": "http://evil.example"},
                       files=[("files", ("x.pdf", b"%PDF", "application/pdf"))])
    assert other.status_code == 403 and "evil.example" in other.json()["error"]


def test_without_a_key_only_loopback_names_are_answered(index_copy: Path) -> None:
    """A page that rebinds its own domain to 127.0.0.1 sends that domain as the Host."""
    with served(index_copy) as address:
        assert httpx.get(f"{address}/stats").status_code == 200
        rebound = httpx.get(f"{address}/stats", headers={"Host": "attacker.example:8000"})
        assert rebound.status_code == 403 and "127.0.0.1 or localhost" in rebound.json()["error"]


# ---- search, pages, documents, stats ------------------------------------------------------

@pytest.mark.parametrize(("question", "file", "page"), QUESTIONS)
def test_search_finds_the_answering_page(http: httpx.Client, question: str, file: str, page: int) -> None:
    hits = http.post("/search", json={"query": question, "k": 5}).json()["hits"]
    assert len(hits) == 5 and [h["rank"] for h in hits] == [1, 2, 3, 4, 5]
    assert any(Path(h["path"]).name.endswith(file) and h["page"] == page for h in hits[:3])
    assert all(h["text"] and h["image_url"] == f"/pages/{h['doc_id']}/{h['page']}/image" for h in hits)


def test_a_filter_keeps_to_its_file(http: httpx.Client) -> None:
    hits = http.post("/search", json={"query": "table", "k": 10, "filter": {"file": CENSUS}}).json()["hits"]
    assert hits and {Path(h["path"]).name for h in hits} == {CENSUS}


def test_filter_conditions(http: httpx.Client) -> None:
    where = {"file": {"not": CENSUS}, "page": {"gte": 2, "lte": 3}}
    hits = http.post("/search", json={"query": "table", "k": 10, "filter": where}).json()["hits"]
    assert hits and all(Path(h["path"]).name != CENSUS and 2 <= h["page"] <= 3 for h in hits)
    bad = http.post("/search", json={"query": "table", "filter": {"page": {"between": [1, 2]}}})
    assert bad.status_code == 422
    for odd in ({"draft": [True, False]}, {"draft": {"not": True}}, {"score": [0.5, 1]}, {"score": {"not": 0.5}}):
        assert http.post("/search", json={"query": "table", "filter": odd}).status_code == 200, odd  # no page has them


def test_a_page_and_its_image(http: httpx.Client) -> None:
    hit = http.post("/search", json={"query": QUESTIONS[1][0], "k": 1}).json()["hits"][0]
    page = http.get(f"/pages/{hit['doc_id']}/{hit['page']}").json()
    assert page["text"] == hit["text"] and page["page"] == hit["page"]
    png = http.get(hit["image_url"], params={"max_side": 300})
    assert png.headers["content-type"] == "image/png"
    assert max(Image.open(io.BytesIO(png.content)).size) == 300
    assert http.get(f"/pages/{hit['doc_id']}/999").status_code == 404
    assert http.get(hit["image_url"], params={"max_side": 100_000}).status_code == 422


def test_documents_and_stats(http: httpx.Client) -> None:
    docs = http.get("/documents").json()["documents"]
    names = {Path(d["path"]).name for d in docs}
    assert {p.name for p in Path(__file__).parents[1].joinpath("samples").glob("*.pdf")} <= names
    stats = http.get("/stats").json()
    assert stats["documents"] == len([d for d in docs if d["complete"]]) and stats["pages"] >= 23


@pytest.mark.parametrize(("body", "message"), [
    ({"query": ""}, "query: String should have at least 1 character"),
    ({"query": "x", "k": MAX_K + 1}, f"k: Input should be less than or equal to {MAX_K}"),
    ({"query": "x", "k": "five"}, "k: Input should be a valid integer"),
    ({"query": "x" * 5000}, "query: String should have at most"),
    ({"query": "x", "color": "red"}, "color: Extra inputs are not permitted"),
    ({"query": "x", "filter": {"bad key": 2020}}, "filter: Value error, 'bad key' cannot name metadata"),
    ({"query": "x", "tenant": "../etc"}, "tenant: String should match pattern"),
    ({"query": "x", "filter": {"page": 2 ** 70}},
     "filter.page.constrained-int: Input should be less than or equal to 1000000"),
])
def test_bad_requests_are_422_with_a_readable_error(http: httpx.Client, body: dict, message: str) -> None:
    answer = http.post("/search", json=body)
    assert answer.status_code == 422 and answer.json()["error"].startswith(message)


def test_bad_json_and_wrong_routes(http: httpx.Client) -> None:
    bad = http.post("/search", content=b'{"query": ', headers={"Content-Type": "application/json"})
    assert bad.status_code == 422 and bad.json()["error"].startswith("the body is not valid JSON")
    assert http.get("/nothing").status_code == 404 and http.get("/nothing").json() == {"error": "Not Found"}
    assert http.put("/search").status_code == 405
    assert http.get("/pages/not-an-id/1").status_code == 422


def test_a_tenant_on_a_one_team_index_is_a_client_error(http: httpx.Client) -> None:
    answer = http.post("/search", json={"query": "x", "tenant": "blue"})
    assert answer.status_code == 400 and "made for one team" in answer.json()["error"]


def test_bodies_over_the_limit_are_413(http: httpx.Client) -> None:
    big = {"query": "x", "filter": {"path": ["p" * 1000] * 1100}}
    assert http.post("/search", json=big).status_code == 413

    def chunks():  # no Content-Length: counted as it arrives
        for _ in range(3):
            yield b" " * 600_000

    answer = http.post("/search", content=chunks(), headers={"Content-Type": "application/json"})
    assert answer.status_code == 413 and "over 1,048,576 bytes" in answer.json()["error"]


# ---- ingest jobs --------------------------------------------------------------------------

@pytest.mark.parametrize(("path", "status", "message"), [
    ("/etc/passwd", 403, "outside the folders this service may read"),
    ("relative/file.pdf", 400, "give an absolute path without '..'"),
    ("ROOT/../../etc", 400, "give an absolute path without '..'"),
    ("ROOT/missing.pdf", 404, "no such file or folder"),
])
def test_ingest_paths_are_confined_to_the_roots(http: httpx.Client, root: Path, path: str, status: int,
                                                message: str) -> None:
    answer = http.post("/ingest", json={"paths": [path.replace("ROOT", str(root))]})
    assert answer.status_code == status and message in answer.json()["error"]


def test_odd_paths_are_client_errors(http: httpx.Client, root: Path) -> None:
    loop = root / "loop"
    loop.symlink_to(loop)
    try:
        assert http.post("/ingest", json={"paths": [str(loop)]}).status_code == 400
    finally:
        loop.unlink()
    assert http.post("/ingest", json={"paths": [f"{root}/a\x00b"]}).status_code == 422


def test_links_inside_a_root_lead_nowhere_outside_it(http: httpx.Client, root: Path, samples: Path,
                                                     tmp_path: Path) -> None:
    outside = copies(samples, tmp_path / "secret", "s")[0]
    folder = root / "linked"
    folder.mkdir()
    (folder / "escape.pdf").symlink_to(outside)
    (folder / "escape-dir").symlink_to(outside.parent, target_is_directory=True)
    job = wait_for(http, http.post("/ingest", json={"paths": [str(folder)]}).json())
    assert job["documents"] == 0 and len(job["failures"]) == 1 + len(list(outside.parent.glob("*.pdf")))
    assert all(f["reason"] == "outside the folders this service may read" for f in job["failures"])


def test_a_link_out_of_a_root_is_refused(http: httpx.Client, root: Path) -> None:
    link = root / "escape"
    link.symlink_to("/etc", target_is_directory=True)
    try:
        answer = http.post("/ingest", json={"paths": [str(link)]})
    finally:
        link.unlink()
    assert answer.status_code == 403


def test_an_ingest_job_while_searches_run_sees_complete_documents_only(http: httpx.Client, root: Path) -> None:
    started = http.post("/ingest", json={"paths": [str(root / "batch")]})
    assert started.status_code == 202, started.text
    job = started.json()
    assert http.post("/ingest", json={"paths": [str(root / "batch")]}).status_code == 409  # one writer
    new_docs: set[str] = set()
    searches = 0
    while (job := http.get(f"/jobs/{job['id']}").json())["state"] == "running":
        hits = http.post("/search", json={"query": QUESTIONS[0][0], "k": 10})
        assert hits.status_code == 200
        searches += 1
        found = {h["doc_id"] for h in hits.json()["hits"] if "/batch/" in h["path"]}
        if found - new_docs:
            docs = {d["doc_id"]: d for d in http.get("/documents").json()["documents"]}
            assert all(docs[d]["complete"] and docs[d]["pages"] == docs[d]["page_count"] for d in found)
            new_docs |= found
    assert job["state"] == "done" and job["failures"] == [] and job["error"] is None
    assert job["documents"] == 15 and job["pages_done"] == job["pages_total"] == 69
    assert searches > 0 and new_docs  # searches ran during the job, and saw its documents arrive


def test_delete_a_document(http: httpx.Client, root: Path) -> None:
    extra = copies(Path(__file__).parents[1] / "samples", root / "to-delete", "d")[:1]
    job = wait_for(http, http.post("/ingest", json={"paths": [str(extra[0])], "metadata": {"batch": 7}}).json())
    assert job["state"] == "done" and job["documents"] == 1
    found = http.post("/search", json={"query": "table", "k": 10, "filter": {"batch": 7}}).json()["hits"]
    assert {h["path"] for h in found} == {str(extra[0])} and found[0]["metadata"] == {"batch": 7}
    doc = next(d for d in http.get("/documents").json()["documents"] if d["path"] == str(extra[0]))
    deleted = http.delete(f"/documents/{doc['doc_id']}")
    assert deleted.json() == {"doc_id": doc["doc_id"], "deleted_pages": doc["pages"]}
    assert http.delete(f"/documents/{doc['doc_id']}").status_code == 404


def test_uploads_are_kept_and_searchable(http: httpx.Client, samples: Path, tmp_path: Path) -> None:
    pdf = copies(samples, tmp_path, "up")[-1]
    with open(pdf, "rb") as handle:
        job = http.post("/ingest/upload", files=[("files", (pdf.name, handle, "application/pdf"))],
                        data={"metadata": '{"source": "upload", "year": 2020}'}).json()
    job = wait_for(http, job)
    assert job["state"] == "done" and job["documents"] == 1 and "/uploads/" in job["paths"][0]
    hit = http.post("/search", json={"query": "census table", "k": 3, "filter": {"file": pdf.name}}).json()["hits"][0]
    assert http.get(hit["image_url"]).status_code == 200  # rendered from the kept upload
    assert hit["metadata"] == {"source": "upload", "year": 2020}


@pytest.mark.parametrize("metadata", [{"page": 2}, {"a b": 1}, {"x": {"nested": 1}}, {"x": None}, [1]])
def test_bad_metadata_is_422_before_any_job(http: httpx.Client, root: Path, metadata: object) -> None:
    answer = http.post("/ingest", json={"paths": [str(root)], "metadata": metadata})
    assert answer.status_code == 422 and "metadata" in answer.json()["error"]
    upload = http.post("/ingest/upload", files=[("files", ("a.pdf", b"%PDF-1.4", "application/pdf"))],
                       data={"metadata": json.dumps(metadata)})
    assert upload.status_code == 422 and "metadata" in upload.json()["error"]
    assert http.post("/ingest/upload", files=[("files", ("a.pdf", b"%PDF-1.4", "application/pdf"))],
                     data={"metadata": "{year: 2020"}).status_code == 422


@pytest.mark.parametrize("name", ["../evil.pdf", ".hidden.pdf"])
def test_upload_names_are_bare_file_names(http: httpx.Client, name: str) -> None:
    answer = http.post("/ingest/upload", files=[("files", (name, b"%PDF-1.4", "application/pdf"))])
    if name.startswith(".."):  # the bare name is kept, never the path
        job = wait_for(http, answer.json())
        assert "/../" not in job["paths"][0] and job["paths"][0].endswith("/evil.pdf")
        assert job["failures"] and not Path(job["paths"][0]).parent.exists()  # not a PDF: not kept
    else:
        assert answer.status_code == 400 and "not a file name to keep" in answer.json()["error"]


def test_an_oversized_upload_is_413(http: httpx.Client) -> None:
    answer = http.post("/ingest/upload", files=[("files", ("big.pdf", b"%PDF" + b"0" * (2 << 20), "application/pdf"))])
    assert answer.status_code == 413


# ---- the Python client --------------------------------------------------------------------

def test_the_client_is_shaped_like_an_index(url: str) -> None:
    with Client(url, api_key=KEY) as client:
        hits = client.search(QUESTIONS[1][0], k=3)
        assert len(hits) == 3 and hits[0].rank == 1
        assert max(hits[0].image(max_side=200).size) == 200
        assert client.page(hits[0].doc_id, hits[0].page).text == hits[0].text
        assert client.stats()["pages"] >= 23 and client.documents()
        with pytest.raises(NotFoundError, match="404"):
            client.page(hits[0].doc_id, 999)


def test_the_client_sends_metadata_with_an_upload(url: str, samples: Path, tmp_path: Path) -> None:
    pdf = copies(samples, tmp_path, "meta")[0]
    with Client(url, api_key=KEY) as client:
        job = client.upload([pdf], metadata={"team": "legal", "reviewed": True})
        while job["state"] == "running":
            time.sleep(0.2)
            job = client.job(job["id"])
        assert job["state"] == "done", job
        hits = client.search("table", k=5, filter={"team": "legal", "reviewed": True})
        assert {Path(h.path).name for h in hits} == {pdf.name}
        assert hits[0].metadata == {"team": "legal", "reviewed": True}


# ---- MCP at /mcp ----------------------------------------------------------------------------

def test_mcp_tools_answer_at_slash_mcp_behind_the_key(url: str) -> None:
    import anyio
    import httpx2
    from mcp import ClientSession
    from mcp.client.streamable_http import streamable_http_client
    from mcp.types import ImageContent, TextContent

    assert httpx.post(f"{url}/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "ping"}).status_code == 401

    async def session() -> tuple[list[str], list]:
        async with (httpx2.AsyncClient(headers=AUTH, timeout=120) as http,
                    streamable_http_client(f"{url}/mcp", http_client=http) as (read, write),
                    ClientSession(read, write) as mcp):
            await mcp.initialize()
            tools = [tool.name for tool in (await mcp.list_tools()).tools]
            found = await mcp.call_tool("search_pages", {"query": QUESTIONS[1][0], "k": 2})
            return tools, found.content

    tools, content = anyio.run(session)
    assert sorted(tools) == ["get_page", "list_documents", "search_pages"]
    assert [type(block) for block in content] == [TextContent, ImageContent] * 2
    assert QUESTIONS[1][1] in content[0].text


# ---- the OpenAPI description, fuzzed ---------------------------------------------------------

def test_schemathesis_finds_no_server_error(built_index: Path, tmp_path: Path) -> None:
    """A bounded schemathesis run over the live OpenAPI description: no 5xx on any input."""
    index = tmp_path / "index"
    shutil.copytree(built_index, index)
    (index / "LOCK").unlink(missing_ok=True)
    with served(index, "--root", str(tmp_path), "--max-upload-mb", "1", key=KEY) as address:
        run = subprocess.run([str(Path(sys.executable).parent / "st"), "run", f"{address}/openapi.json",
                              "--header", f"Authorization: Bearer {KEY}", "--checks", "not_a_server_error",
                              "--max-examples", "25", "--seed", "1", "--request-timeout", "60"],
                             capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]


def test_port_in_use_is_one_line(built_index: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        run = cli("serve", "--index", str(built_index), "--port", str(taken.getsockname()[1]))
    assert run.returncode == 2 and "cannot listen on 127.0.0.1" in one_line(run)
