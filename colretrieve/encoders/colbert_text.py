"""A trained late-interaction text model (ColBERT family) under the words-on-a-grid pipeline.

MiniLM was never trained for MaxSim; a ColBERT model was. `--encoder text:<model>` reads a
page's words as the default does, runs them through a PyLate / sentence-transformers
multi-vector checkpoint with its own API (its [D]/[Q] prompts, query expansion, punctuation
skiplist and projection), and lays every kept token vector on the cell under its word.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import ColretrieveError
from ..page import Page, word_cells
from .base import MultiVectorEncoder, PageVectors
from .loading import complete_weights, pick_device, resolve_model

#: Tokens a window leaves free below the model's document length: a window is cut by our own
#: tokenisation of the words, which can differ by a piece at a window's edges.
SLACK = 4


class ColbertTextEncoder(MultiVectorEncoder):
    """Words with boxes to a ColBERT model's token vectors on a (rows, cols) patch grid.

    Parameters
    ----------
    model
        Hub id (`lightonai/GTE-ModernColBERT-v1`) or folder of a sentence-transformers
        `MultiVectorEncoder` or PyLate checkpoint over text.
    grid
        (rows, cols) of the patch grid, as for the default.
    """

    reads_images = False

    def __init__(self, model: str, grid: tuple[int, int] = (32, 32), device: str = "auto",
                 batch_size: int = 16) -> None:
        from sentence_transformers import MultiVectorEncoder as STMultiVectorEncoder

        path = resolve_model(model)
        if not (path / "modules.json").is_file():
            raise ColretrieveError(f"model {model} is not a sentence-transformers / PyLate checkpoint (no "
                                   "modules.json); text:<model> takes a ColBERT-family model")
        with complete_weights(path):
            self.model = STMultiVectorEncoder(str(path), device=pick_device(device), local_files_only=True)
        if self.model.supports("image"):
            raise ColretrieveError(f"model {model} reads page images; it is passed as --encoder {model}, "
                                   "text:MODEL takes a ColBERT-family text model")
        backbone: Any = self.model[0]
        self.tokenizer = self.model.tokenizer
        self.prompt = self.model.prompts.get("document") or ""
        self.window = int(backbone.document_length or backbone.max_seq_length)
        self.dim = int(self.model.get_embedding_dimension() or 0)
        self.grid = grid
        self.batch_size = batch_size
        self.name = f"colbert-grid:{model}:{grid[0]}x{grid[1]}"

    # ---- pages -------------------------------------------------------------------------
    def _encode_page_batch(self, pages: Sequence[Page]) -> list[PageVectors]:
        texts: list[str] = []
        owners: list[tuple[int, np.ndarray, np.ndarray]] = []  # page, word starts in the text, word cells
        for i, page in enumerate(pages):
            words = page.words
            if not words:
                continue
            cells = word_cells(words, self.grid)
            for first, last in self._windows([w.text for w in words]):
                chunk = [w.text for w in words[first:last]]
                starts = np.cumsum([0] + [len(t) + 1 for t in chunk[:-1]]) + len(self.prompt)
                texts.append(" ".join(chunk))
                owners.append((i, starts, cells[first:last]))
        features: list[dict[str, Any]] = (self.model.encode_document(texts, output_value=None,  # type: ignore[assignment]
                                                                     batch_size=self.batch_size) if texts else [])
        vectors: list[list[np.ndarray]] = [[] for _ in pages]
        placed: list[list[np.ndarray]] = [[] for _ in pages]
        for text, (i, starts, cells), feature in zip(texts, owners, features):
            keep = feature["attention_mask"].bool().cpu().numpy()
            token_cells = self._token_cells(text, feature["input_ids"].cpu().numpy(), starts, cells)
            vectors[i].append(feature["token_embeddings"].float().cpu().numpy()[keep])
            placed[i].append(token_cells[keep])
        out = []
        for i in range(len(pages)):
            if not vectors[i]:
                out.append(PageVectors(np.zeros((1, self.dim), np.float32), np.zeros(1, np.int32)))
            else:
                out.append(PageVectors(np.concatenate(vectors[i]), np.concatenate(placed[i])))
        return out

    def _windows(self, words: list[str]) -> list[tuple[int, int]]:
        """(first, last) word ranges whose tokens, with the prompt and the specials, fit the
        model's document length: a long page is read in windows, never cut short."""
        overhead = len(self.tokenizer(self.prompt + "x")["input_ids"]) - 1  # prompt + specials
        span = max(self.window - overhead - SLACK, 1)
        counts = [len(ids) for ids in self.tokenizer(words, add_special_tokens=False)["input_ids"]]
        windows, first, used = [], 0, 0
        for k, n in enumerate(counts):
            if used + n > span and k > first:
                windows.append((first, k))
                first, used = k, 0
            used += n
        windows.append((first, len(words)))
        return windows

    def _token_cells(self, text: str, ids: np.ndarray, starts: np.ndarray, cells: np.ndarray) -> np.ndarray:
        """The grid cell of each token the model saw (-1 for the prompt and specials), from the
        character offsets of our own tokenisation of the same input, checked id by id up to the
        model's closing token (a single word longer than a window is cut there, as the model cuts it)."""
        encoded: Any = self.tokenizer(self.prompt + text, return_offsets_mapping=True)
        ours = np.asarray(encoded["input_ids"])
        seen = len(ids) - int(np.argmax(ids[::-1] != self.tokenizer.pad_token_id))  # the rest is padding
        body = min(seen, len(ours)) - 1
        if not np.array_equal(ours[:body], ids[:body]):
            raise ColretrieveError(f"model {self.name}: its tokens for a page window differ from its tokenizer's; "
                                   "cannot place its vectors on the page")
        out = np.full(len(ids), -1, dtype=np.int32)
        offsets = np.asarray(encoded["offset_mapping"]).reshape(-1, 2)[:body]
        words = (offsets[:, 1] > offsets[:, 0]) & (offsets[:, 0] >= len(self.prompt))
        out[:body][words] = cells[np.searchsorted(starts, offsets[words, 0], side="right") - 1]
        return out

    # ---- queries -----------------------------------------------------------------------
    def _encode_query_batch(self, texts: Sequence[str]) -> list[np.ndarray]:
        """The model's own query side: its prompt, its [MASK] expansion, its length."""
        return [v.astype(np.float32) for v in self.model.encode_query(list(texts), convert_to_numpy=True,
                                                                       batch_size=len(texts))]
