"""What the LangChain and LlamaIndex retrievers share, so both hand frameworks the same page:
the source they search, a hit's metadata and id, and its image as an LLM takes it."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import asdict
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from ..settings import IMAGE_SIDE

if TYPE_CHECKING:
    from ..search import Hit

#: The MIME type of `png_base64`'s images.
PNG = "image/png"


@runtime_checkable  # the LangChain retriever is a pydantic model: it checks its source with isinstance
class Source(Protocol):
    """A local `Index` or an HTTP `Client`: the retrievers need nothing else of either."""

    def search(self, text: str, k: int = ..., filter: dict[str, Any] | None = ..., *,
               exact: bool = ...) -> Sequence[Hit]: ...


def page_id(hit: Hit) -> str:
    """The same page keeps its id from search to search, so frameworks can merge duplicates."""
    return f"{hit.doc_id}#{hit.page}"


def metadata(hit: Hit) -> dict[str, Any]:
    """The page's place and score, its document's metadata, and the regions that matched (the
    top one's text is the passage to quote)."""
    return {"path": hit.path, "page": hit.page, "page_count": hit.page_count, "doc_id": hit.doc_id,
            "score": hit.score, "rank": hit.rank, "metadata": hit.metadata,
            "regions": [asdict(region) for region in hit.regions]}


def png_base64(hit: Hit, side: int = IMAGE_SIDE) -> str:
    """The page as a base64 PNG whose long side is at most `side`: an LLM reads ~1,000 pixels
    well, and every pixel more costs its tokens."""
    return base64.b64encode(hit.png(side)).decode("ascii")
