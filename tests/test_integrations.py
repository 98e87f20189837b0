"""The LangChain and LlamaIndex retrievers over a real index, through the frameworks' own entry
points (invoke, ainvoke, retrieve, aretrieve). Every check goes through the `source` fixture, so
another kind of source (the HTTP client) joins by adding a `<kind>_source` fixture and its
name to `source`'s params."""

from __future__ import annotations

import asyncio
import base64
import io
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path

import pytest
from langchain_core.documents import Document
from llama_index.core.schema import ImageNode, MetadataMode, NodeWithScore, TextNode
from PIL import Image

from colretrieve import Client, Index
from colretrieve.integrations.langchain import ColretrieveRetriever as LangChainRetriever
from colretrieve.integrations.llamaindex import ColretrieveRetriever as LlamaIndexRetriever
from colretrieve.settings import IMAGE_SIDE
from tests.helpers import CENSUS, QUESTIONS, served

FIELDS = ("path", "page", "page_count", "doc_id", "score", "rank", "metadata", "regions")


@pytest.fixture(scope="module")
def index_source(built_index: Path, text_encoder) -> Iterator[Index]:
    with Index.open(built_index, model=text_encoder, read_only=True) as index:
        yield index


@pytest.fixture(scope="module")
def client_source(built_index: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Client]:
    """The same pages behind a real `colretrieve serve` process."""
    index = tmp_path_factory.mktemp("served") / "index"
    shutil.copytree(built_index, index)
    (index / "LOCK").unlink(missing_ok=True)
    with served(index, key="integration-key") as url, Client(url, api_key="integration-key") as client:
        yield client


@pytest.fixture(scope="module", params=["index", "client"])
def source(request: pytest.FixtureRequest):
    """Each kind of source the retrievers take, by the name of its `<kind>_source` fixture."""
    return request.getfixturevalue(f"{request.param}_source")


def expected_metadata(hit) -> dict:
    return {**{field: getattr(hit, field) for field in FIELDS}, "regions": [asdict(r) for r in hit.regions]}


def decoded(data: str) -> Image.Image:
    image = Image.open(io.BytesIO(base64.b64decode(data, validate=True)))
    image.load()
    return image


# ---- LangChain ---------------------------------------------------------------------------

def test_langchain_documents_are_the_source_hits(source) -> None:
    retriever = LangChainRetriever(source=source, k=3)
    tops = []
    for question, _, _ in QUESTIONS:
        documents = retriever.invoke(question)
        hits = source.search(question, k=3)
        assert len(documents) == 3 and all(isinstance(d, Document) for d in documents)
        assert [d.page_content for d in documents] == [h.text for h in hits]
        assert [d.metadata for d in documents] == [expected_metadata(h) for h in hits]
        assert [d.id for d in documents] == [f"{h.doc_id}#{h.page}" for h in hits]
        tops.append(Path(documents[0].metadata["path"]).name)
    assert any(top == file for top, (_, file, _) in zip(tops, QUESTIONS)), tops


def test_langchain_images_are_capped_pngs(source) -> None:
    question = QUESTIONS[1][0]
    documents = LangChainRetriever(source=source, k=2, with_images=True).invoke(question)
    assert len(documents) == 2
    for document, hit in zip(documents, source.search(question, k=2)):
        assert document.metadata["image_mime_type"] == "image/png"
        image = decoded(document.metadata["image_base64"])
        assert image.format == "PNG" and max(image.size) == min(IMAGE_SIDE, max(hit.image().size))
        assert set(document.metadata) == {*FIELDS, "image_base64", "image_mime_type"}


def test_langchain_filter_keeps_to_one_file(source) -> None:
    question = QUESTIONS[1][0]  # answered by another file
    documents = LangChainRetriever(source=source, filter={"file": CENSUS}).invoke(question)
    assert documents and {Path(d.metadata["path"]).name for d in documents} == {CENSUS}


def test_langchain_ainvoke_answers_as_invoke(source) -> None:
    retriever = LangChainRetriever(source=source, k=3)
    question = QUESTIONS[0][0]
    assert asyncio.run(retriever.ainvoke(question)) == retriever.invoke(question)


# ---- LlamaIndex --------------------------------------------------------------------------

def test_llamaindex_nodes_are_the_source_hits(source) -> None:
    retriever = LlamaIndexRetriever(source, k=4)
    tops = []
    for question, _, _ in QUESTIONS:
        nodes = retriever.retrieve(question)
        hits = source.search(question, k=4)
        assert len(nodes) == 4 and all(isinstance(n, NodeWithScore) for n in nodes)
        scores = [n.score for n in nodes]
        assert scores == sorted(scores, reverse=True) == [h.score for h in hits]
        assert all(type(n.node) is TextNode for n in nodes)
        assert [n.node.text for n in nodes] == [h.text for h in hits]
        assert [n.node.metadata for n in nodes] == [expected_metadata(h) for h in hits]
        assert [n.node.node_id for n in nodes] == [f"{h.doc_id}#{h.page}" for h in hits]
        tops.append(Path(nodes[0].node.metadata["path"]).name)
    assert any(top == file for top, (_, file, _) in zip(tops, QUESTIONS)), tops


def test_llamaindex_images_stay_out_of_what_llms_and_embedders_read(source) -> None:
    nodes = LlamaIndexRetriever(source, k=2, with_images=True).retrieve(QUESTIONS[2][0])
    assert len(nodes) == 2
    for found in nodes:
        node = found.node
        assert isinstance(node, ImageNode) and node.image and node.image_mimetype == "image/png"
        image = decoded(node.image)
        assert image.format == "PNG" and max(image.size) <= IMAGE_SIDE
        assert set(node.metadata) == set(FIELDS)
        for mode in (MetadataMode.LLM, MetadataMode.EMBED):
            content = node.get_content(metadata_mode=mode)
            assert node.text in content and f"page: {node.metadata['page']}" in content
            assert node.image not in content and node.image[:64] not in content


def test_llamaindex_aretrieve_answers_as_retrieve(source) -> None:
    retriever = LlamaIndexRetriever(source, k=3)
    question = QUESTIONS[2][0]
    found = asyncio.run(retriever.aretrieve(question))
    assert [(n.node.node_id, n.score) for n in found] == [(n.node.node_id, n.score)
                                                         for n in retriever.retrieve(question)]


# ---- optional extras ---------------------------------------------------------------------

_IMPORTS = """
import sys
import colretrieve, colretrieve.integrations.pages
print("loaded:", sorted(m for m in ("langchain_core", "llama_index") if m in sys.modules))
sys.modules["langchain_core"] = sys.modules["llama_index"] = None  # as if the extras were not installed
for module in ("langchain", "llamaindex"):
    try:
        __import__(f"colretrieve.integrations.{module}")
    except ImportError as error:
        print(error)
"""


def test_frameworks_load_only_with_their_retriever_and_name_their_extra() -> None:
    run = subprocess.run([sys.executable, "-c", _IMPORTS], capture_output=True, text=True, timeout=120)
    assert run.stdout.splitlines() == [
        "loaded: []",
        "colretrieve's LangChain retriever needs langchain-core: pip install 'colretrieve[langchain]'",
        "colretrieve's LlamaIndex retriever needs llama-index-core: pip install 'colretrieve[llamaindex]'",
    ], run.stdout + run.stderr
