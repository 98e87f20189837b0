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
from .sentence_multivector import is_sentence_multivector

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
        if (path / "artifact.metadata").is_file() and not (path / "modules.json").is_file():
            raise ColretrieveError(f"model {model} is a Stanford ColBERT save (artifact.metadata), which "
                                   "text:MODEL does not read; use its PyLate / sentence-transformers version")
        if not is_sentence_multivector(path):  # a dense model would get a projection of random weights
            raise ColretrieveError(f"model {model} is not a sentence-transformers / PyLate multi-vector save "
                                   "(modules.json and config_sentence_transformers.json of model type "
                                   "MultiVectorEncoder); text:MODEL takes a ColBERT-family model")
        with complete_weights(path):
            self.model = STMultiVectorEncoder(str(path), device=pick_device(device), local_files_only=True)
        if self.model.supports("image"):
            raise ColretrieveError(f"model {model} reads page images; it is passed as --encoder {model}, "
                                   "text:MODEL takes a ColBERT-family text model")
        backbone: Any = self.model[0]
        self.tokenizer = self.model.tokenizer
        prompts = self.model.prompts
        self.prompt: str = next((prompts[name] for name in ("document", "passage", "corpus") if prompts.get(name)),
                                None) or ""
        overhead = len(self.tokenizer(self.prompt)["input_ids"])  # the prompt and the specials
        #: Tokens of words a window holds: the model's document length less the prompt, the
        #: specials and SLACK.
        self.span = max(int(backbone.document_length or backbone.max_seq_length) - overhead - SLACK, 1)
        self.dim = int(self.model.get_embedding_dimension() or 0)
        if not self.dim:
            raise ColretrieveError(f"model {model} does not say the width of its vectors")
        self.grid = grid
        self.batch_size = batch_size
        self.name = f"colbert-grid:{model}:{grid[0]}x{grid[1]}"

    # ---- pages -------------------------------------------------------------------------
    def _encode_page_batch(self, pages: Sequence[Page]) -> list[PageVectors]:
        windows: list[list[str]] = []
        owners: list[tuple[int, np.ndarray]] = []  # page, cells of the window's words
        for i, page in enumerate(pages):
            words = page.words
            if not words:
                continue
            cells = word_cells(words, self.grid)
            for first, last in self._windows([w.text for w in words]):
                windows.append([w.text for w in words[first:last]])
                owners.append((i, cells[first:last]))
        texts = [" ".join(window) for window in windows]
        features: list[dict[str, Any]] = (self.model.encode_document(  # type: ignore[assignment]
            texts, prompt=self.prompt, output_value=None, batch_size=self.batch_size, show_progress_bar=False)
            if texts else [])
        vectors: list[list[np.ndarray]] = [[] for _ in pages]
        placed: list[list[np.ndarray]] = [[] for _ in pages]
        for window, (i, cells), feature in zip(windows, owners, features):
            keep = feature["attention_mask"].bool().cpu().numpy()
            token_cells = self._token_cells(window, feature["input_ids"].cpu().numpy(), cells)
            vectors[i].append(feature["token_embeddings"].float().cpu().numpy()[keep])
            placed[i].append(token_cells[keep])
        out = []
        for i in range(len(pages)):
            if not vectors[i]:
                out.append(PageVectors(np.zeros((1, self.dim), np.float32), np.zeros(1, np.int32)))
            else:
                out.append(PageVectors(np.concatenate(vectors[i]), np.concatenate(placed[i])))
        return out

    def _word_of_tokens(self, words: list[str], prompt: str) -> tuple[np.ndarray, np.ndarray]:
        """Token ids of `prompt` and the `words` joined by spaces (specials included), and the
        index of the word each token belongs to, -1 for the prompt and specials.

        A token is placed by where it ends: a byte-level token carries the space before its
        word ("Ġquick"), so where it starts is the word before.
        """
        encoded: Any = self.tokenizer(prompt + " ".join(words), return_offsets_mapping=True)
        lengths = np.array([len(word) + 1 for word in words])
        starts = len(prompt) + np.concatenate([[0], np.cumsum(lengths)[:-1]])
        starting, ends = np.asarray(encoded["offset_mapping"], dtype=np.int64).reshape(-1, 2).T
        word = np.searchsorted(starts, ends, side="right") - 1
        word[(ends <= starting) | (ends <= len(prompt))] = -1
        return np.asarray(encoded["input_ids"]), word

    def _windows(self, words: list[str]) -> list[tuple[int, int]]:
        """(first, last) word ranges whose tokens, with the prompt and the specials, fit the
        model's document length: a long page is read in windows, never cut short. Counted on
        the page's own tokens in context (byte-level tokenizers give a word in a sentence a
        token more than alone); a window's first word may differ by a token, hence SLACK."""
        _, word = self._word_of_tokens(words, "")
        counts = np.bincount(word[word >= 0], minlength=len(words))
        windows, first, used = [], 0, 0
        for k, n in enumerate(counts.tolist()):
            if used + n > self.span and k > first:
                windows.append((first, k))
                first, used = k, 0
            used += n
        windows.append((first, len(words)))
        return windows

    def _token_cells(self, words: list[str], ids: np.ndarray, cells: np.ndarray) -> np.ndarray:
        """The grid cell of each token the model saw (-1 for the prompt, the specials and the
        padding), checked id by id against our own tokenisation of the same input. Only a
        window of one word longer than the model's length is cut (as the model cuts it)."""
        ours, word = self._word_of_tokens(words, self.prompt)
        n = len(ours)
        if n > len(ids) and len(words) == 1:  # one overlong word: the model kept its head and [SEP]
            n = len(ids) - 1
        if n > len(ids) or not np.array_equal(ours[:n], ids[:n]):
            raise ColretrieveError(f"model {self.name}: its tokens for a page window differ from its tokenizer's; "
                                   "cannot place its vectors on the page")
        out = np.full(len(ids), -1, dtype=np.int32)
        placed = word[:n] >= 0
        out[:n][placed] = cells[word[:n][placed]]
        return out

    # ---- queries -----------------------------------------------------------------------
    def _encode_query_batch(self, texts: Sequence[str]) -> list[np.ndarray]:
        """The model's own query side: its prompt, its [MASK] expansion, its length."""
        return [v.astype(np.float32) for v in self.model.encode_query(list(texts), convert_to_numpy=True,
                                                                       batch_size=len(texts), show_progress_bar=False)]
