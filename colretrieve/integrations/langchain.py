"""colretrieve as a LangChain retriever: `ColretrieveRetriever(source=Index.open(...))`.

Only the synchronous search is written: BaseRetriever's async default runs it in an executor,
which is all an async one could do, since both sources block (the encoder, or HTTP)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

try:
    from langchain_core.callbacks import CallbackManagerForRetrieverRun
    from langchain_core.documents import Document
    from langchain_core.retrievers import BaseRetriever
except ImportError as exc:
    raise ImportError("colretrieve's LangChain retriever needs langchain-core: "
                      "pip install 'colretrieve[langchain]'") from exc

from ..settings import K
from .pages import PNG, Source, metadata, page_id, png_base64

if TYPE_CHECKING:
    from ..search import Hit


class ColretrieveRetriever(BaseRetriever):
    """The `k` best pages for a query as Documents: the page text, where it is, and with
    `with_images` the page as a PNG (base64, in "image_base64") for a multimodal LLM."""

    source: Source
    k: int = K
    filter: dict[str, Any] | None = None
    exact: bool = False
    with_images: bool = False

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun) -> list[Document]:
        hits = self.source.search(query, k=self.k, filter=self.filter, exact=self.exact)
        return [Document(page_content=hit.text, metadata=self._metadata(hit), id=page_id(hit)) for hit in hits]

    def _metadata(self, hit: Hit) -> dict[str, Any]:
        found = metadata(hit)
        if self.with_images:
            found |= {"image_base64": png_base64(hit), "image_mime_type": PNG}
        return found
