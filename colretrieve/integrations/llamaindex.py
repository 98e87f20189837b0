"""colretrieve as a LlamaIndex retriever: `ColretrieveRetriever(Index.open(...))`.

With `with_images` a page is an `ImageNode` (a TextNode, so its text is still there), with the
image in its `image` field rather than in metadata: metadata is text an LLM and an embedder
read, and LlamaIndex's multimodal engines find images by `ImageNode` and take them from there."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

try:
    from llama_index.core.callbacks import CallbackManager
    from llama_index.core.retrievers import BaseRetriever
    from llama_index.core.schema import ImageNode, NodeWithScore, QueryBundle, TextNode
except ImportError as exc:
    raise ImportError("colretrieve's LlamaIndex retriever needs llama-index-core: "
                      "pip install 'colretrieve[llamaindex]'") from exc

from ..settings import K
from .pages import PNG, Source, metadata, page_id, png_base64

if TYPE_CHECKING:
    from ..search import Hit


class ColretrieveRetriever(BaseRetriever):
    """The `k` best pages for a query as nodes scored by colretrieve, each with the page text,
    where it is, and with `with_images` the page as a PNG for a multimodal LLM."""

    def __init__(self, source: Source, k: int = K, filter: dict[str, Any] | None = None, *, exact: bool = False,
                 with_images: bool = False, callback_manager: CallbackManager | None = None,
                 verbose: bool = False) -> None:
        super().__init__(callback_manager=callback_manager, verbose=verbose)
        self.source = source
        self.k = k
        self.filter = filter
        self.exact = exact
        self.with_images = with_images

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        hits = self.source.search(query_bundle.query_str, k=self.k, filter=self.filter, exact=self.exact)
        return [NodeWithScore(node=self._node(hit), score=hit.score) for hit in hits]

    async def _aretrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        """In a thread: the default calls `_retrieve` on the event loop, which a search blocks."""
        return await asyncio.to_thread(self._retrieve, query_bundle)

    def _node(self, hit: Hit) -> TextNode:
        # the regions' boxes are for programs: LlamaIndex would write them into prompts
        hidden = {"excluded_llm_metadata_keys": ["regions"], "excluded_embed_metadata_keys": ["regions"]}
        if self.with_images:
            return ImageNode(id_=page_id(hit), text=hit.text, metadata=metadata(hit), image=png_base64(hit),
                             image_mimetype=PNG, **hidden)
        return TextNode(id_=page_id(hit), text=hit.text, metadata=metadata(hit), **hidden)
