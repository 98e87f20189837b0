"""Query → token vectors + single vector → candidates → MaxSim or hybrid scores → ranked hits.

Two stages: the store's single-vector prefilter picks candidates (with the caller's payload
filter), then exact MaxSim ranks them; `exact` scores every page. With hybrid scoring (the
text default), MaxSim weighs each query token by its IDF in the corpus and is fused with the
single-vector and BM25 scores. The store keeps the corpus statistics (`StoredStatistics`);
for an index made before it did, they are built in memory on first use (`Lexicon`). Those and
GPU-resident pages are dropped when the index changes (`Searcher.changed`).
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from . import catalog
from .documents import content_hash, open_document
from .encoders.loading import pick_device
from .errors import ColretrieveError
from .image_query import ImageInput, read_image
from .models import Models
from .queries import searchable
from .regions import BOXES, Region, credits, find_regions, unpack_words
from .scoring import maxsim_pages
from .scoring.lexical import Lexicon, bm25_query, fuse, length_slope, without_length_trend
from .scoring.ranking import best_first
from .settings import CANDIDATES, CROP_MARGIN, DPI, HYBRID_WEIGHTS, IMAGE_SIDE, IMAGE_WEIGHT, LENGTH_TREND, RESCORE
from .storage import Candidate, Filter, ScoringStore, Store, StoredPage
from .storage.base import BM25, TERMS

if TYPE_CHECKING:
    from PIL import Image

    from .scoring.resident import ResidentPages

#: Candidates scored per step: quantized pages are decoded to float32 a step at a time.
SCORE_STEP = 512


@dataclass
class Hit:
    """One ranked page. `image()` re-renders it from the source file: images are never stored."""

    rank: int
    score: float
    doc_id: str
    path: str
    page: int
    page_count: int
    text: str
    dpi: int = field(default=DPI, repr=False)
    #: The file name's bytes in hex where they are not UTF-8 (`path` shows them escaped).
    path_raw: str | None = field(default=None, repr=False)
    #: The metadata of the page's document (`ingest --meta`, a `<file>.json` beside it).
    metadata: dict[str, Any] = field(default_factory=dict)
    #: Where on the page the query matched, best first (regions.py).
    regions: list[Region] = field(default_factory=list)

    def __post_init__(self) -> None:  # a hit rebuilt from JSON (another process's, a service's)
        self.regions = [r if isinstance(r, Region) else Region(**r) for r in self.regions]

    def image(self, dpi: int | None = None) -> Image.Image:
        """The page rendered again at `dpi` (the index's by default), within MAX_PIXELS."""
        path = Path(os.fsdecode(bytes.fromhex(self.path_raw))) if self.path_raw else Path(self.path)
        if not path.is_file():
            raise ColretrieveError(f"{path}: the source file of this hit is gone")
        if content_hash(path) != self.doc_id:
            raise ColretrieveError(f"{path}: changed since it was ingested; re-ingest it")
        with open_document(path, self.doc_id, dpi=dpi or self.dpi) as reader:
            page = reader.page(self.page)
            image = page.image
            page.release()
        return image

    def crop(self, region: Region, margin: float = CROP_MARGIN, dpi: int | None = None,
             page: Image.Image | None = None) -> Image.Image:
        """The part of the page under `region`, `margin` (a share of the page) wider each way;
        cut from `page` where it is this hit's page already rendered."""
        image = page if page is not None else self.image(dpi)
        x0, y0, x1, y1 = region.box
        return image.crop((max(0, round((x0 - margin) * image.width)), max(0, round((y0 - margin) * image.height)),
                           min(image.width, round((x1 + margin) * image.width)),
                           min(image.height, round((y1 + margin) * image.height))))

    def png(self, max_side: int = IMAGE_SIDE) -> bytes:
        """The page image as PNG bytes, its long side at most `max_side`: what a service sends
        (an LLM reads ~1,000 pixels well, and every pixel more costs its tokens)."""
        image = self.image()
        image.thumbnail((max_side, max_side))
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        return buffer.getvalue()

    @classmethod
    def from_payload(cls, payload: dict[str, Any], rank: int, score: float, dpi: int,
                     regions: list[Region] | None = None) -> Hit:
        """The hit for a stored page, from its payload's HIT_FIELDS."""
        return cls(rank=rank, score=score, doc_id=payload["doc_id"], path=payload["path"], page=payload["page"],
                   page_count=payload["page_count"], text=payload["text"], dpi=dpi,
                   path_raw=payload.get("path_raw"), metadata=payload.get(catalog.META) or {}, regions=regions or [])

    def to_dict(self) -> dict[str, Any]:
        return {"rank": self.rank, "score": self.score, "path": self.path, "page": self.page,
                "page_count": self.page_count, "doc_id": self.doc_id, "text": self.text, "metadata": self.metadata,
                "regions": [asdict(region) for region in self.regions]}


@dataclass
class Query:
    """What pages are compared with: token vectors, the weight MaxSim gives each (None: all
    alike), the prefilter's single vector, and the words BM25 reads."""

    tokens: np.ndarray
    single: np.ndarray
    weights: np.ndarray | None
    text: str


class Searcher:
    """Searches one index's `store` with its `models`."""

    def __init__(self, store: Store, models: Models) -> None:
        self.store = store
        self.config = models.config
        self.models = models
        self._lexicon: Lexicon | StoredStatistics | None = None  # set on the first hybrid search
        self._resident: ResidentPages | None = None  # built on the first exact search on a GPU

    def changed(self) -> None:
        """The index's pages changed: corpus statistics and resident pages are built again."""
        self._lexicon = self._resident = None

    def search(self, text: str, k: int, filter: Filter | None = None, *, exact: bool = False,
               candidates: int = CANDIDATES, regions: bool = True, image: ImageInput | None = None,
               image_weight: float = IMAGE_WEIGHT, explain: Callable[[str], None] | None = None) -> list[Hit]:
        """See `Index.search`. A page deleted between its choice and its reading (a re-ingested
        file's old version, by an ingest in this process while another's read is answered)
        makes the search run again, once."""
        if image is None and not searchable(text):
            return []
        query = self._query(text, image, image_weight, explain or (lambda line: None))
        try:
            return self._search(query, k, filter, exact, candidates, regions)
        except KeyError:  # a store found no page under an id it had just given
            return self._search(query, k, filter, exact, candidates, regions)

    def _search(self, query: Query, k: int, filter: Filter | None, exact: bool, candidates: int,
                regions: bool) -> list[Hit]:
        where = catalog.searchable_only(filter)
        in_store = self.store.capabilities.scores_in_store
        plain = self.config.scoring == "maxsim" and query.weights is None  # MaxSim alone, tokens alike
        resident = self._resident_pages() if exact and not filter and plain and not in_store else None
        if resident is not None:  # every page is on the GPU: no need to list them from the store
            top, best = resident.best(query.tokens, k)
        else:
            limit = max(self.store.count(where), 1) if exact else max(candidates, k)
            if in_store:
                ids, scores = self._scored_in_store(query, limit, where, exact)
            else:
                found = self.store.candidates(query.single, limit, where, exact=exact)
                scores = self._score(query, found, k, exact)
                ids = [c.id for c in found]
            order = best_first(scores, ids, k)
            top, best = [ids[j] for j in order], scores[order]
        if not regions:
            return [Hit.from_payload(p, r + 1, float(score), self.config.dpi)
                    for r, (score, p) in enumerate(zip(best, self.store.payloads(top, catalog.HIT_FIELDS)))]
        pages = self.store.pages(top, (*catalog.HIT_FIELDS, *catalog.REGION_FIELDS))
        return [Hit.from_payload(page.payload, r + 1, float(score), self.config.dpi,
                                 page_regions(query.tokens, query.weights, page, self.models.encoder.grid))
                for r, (score, page) in enumerate(zip(best, pages))]

    def _query(self, text: str, image: ImageInput | None, image_weight: float, explain: Callable[[str], None]) -> Query:
        """What the pages are compared with. An image comes as its words (the text default) or
        as a page (a VLM encoder); with text too, the two scores mix as `image_weight` says: each
        side's tokens weigh its share over its token count (MaxSim is a sum over tokens), and
        the single vectors mix in the same shares."""
        if image is None:
            return self._text_query(text)
        reads_images = self.models.encoder.reads_images
        prefilter = self.models.prefilter
        page = read_image(image, self.config, words=not reads_images)
        if reads_images:
            encoded = self.models.encoder.encode_pages([page])[0]
            seen = Query(encoded.vectors, self.models.prefilter.embed_pages([page], [encoded])[0], None, "")
            how = (f"the image is embedded as a page by {self.models.encoder.name} and compared page against page; "
                   f"the prefilter ({self.models.prefilter.name}) embeds it as "
                   f"{'an image' if self.models.prefilter.embeds_images else 'a page'}")
        else:
            if not searchable(page.text):
                raise ColretrieveError(f"the image holds no words to search for ({page.words_source}); the text "
                                       "default reads words, not pictures: search images with a VLM encoder")
            seen = self._text_query(page.text)
            how = (f"read {len(page.words)} words from the image ({page.words_source}) and searched with them: "
                   "the text default reads words, not pictures")
            if prefilter.embeds_images:  # its candidates come from the picture itself
                seen.single = prefilter.embed_pages([page], [])[0]
                how += f"; the prefilter ({prefilter.name}) embeds it as an image"
        if not searchable(text):
            explain(f"image query: {how}")
            return seen
        if not 0 < image_weight < 1:
            raise ColretrieveError(f"image weight {image_weight}: a share of the score between 0 and 1, both ends out")
        said = self._text_query(text)
        explain(f"image query: {how}; mixed with the text, the image weighing {image_weight:g}")
        parts = ((said, 1 - image_weight), (seen, image_weight))
        weights = np.concatenate([share / len(q.tokens) * (q.weights if q.weights is not None else 1.0)
                                  * np.ones(len(q.tokens), dtype=np.float32) for q, share in parts])
        return Query(np.concatenate([said.tokens, seen.tokens]), (1 - image_weight) * said.single
                     + image_weight * seen.single, weights.astype(np.float32), f"{said.text} {seen.text}".strip())

    def _text_query(self, text: str) -> Query:
        tokens, singles = self.models.prefilter.encode_queries(self.models.encoder, [text])
        weights = None
        if self.config.scoring == "hybrid":  # MaxSim weighs each query token by its IDF
            weights = self._corpus_lexicon().idf(self.models.encoder.query_terms([text])[0])
        return Query(tokens[0], singles[0], weights, text)

    def _score(self, query: Query, found: Sequence[Candidate], k: int, exact: bool) -> np.ndarray:
        """Final scores of the candidates: MaxSim alone, or the hybrid of HYBRID_WEIGHTS.

        Where the store keeps a compressed copy, MaxSim runs on it first; the best candidates
        are then rescored from float16 and the scores fused again, with MaxSim's length trend
        as measured on the compressed scores of all of them. Exact search on a GPU scores the
        float16 vectors held in GPU memory (`ResidentPages`).
        """
        if not found:
            return np.zeros(0, dtype=np.float32)
        ids = [c.id for c in found]
        resident = self._resident_pages() if exact else None
        quantized = self.store.capabilities.quantized is not None and resident is None
        tokens, weights = query.tokens, query.weights
        late = resident.scores(tokens, ids, weights) if resident else self._maxsim(tokens, found, weights, quantized)
        parts: tuple[np.ndarray, np.ndarray, np.ndarray, float] | None = None  # dense, BM25, lengths, trend
        if self.config.scoring == "hybrid":
            lengths = np.array([c.rows for c in found], dtype=np.int64)
            parts = (np.array([c.score for c in found], dtype=np.float32), self._corpus_lexicon().bm25(query.text, ids),
                     lengths, length_slope(late, lengths))

        def final() -> np.ndarray:
            return late if parts is None else hybrid_scores(late, *parts)

        if quantized:
            best = np.argsort(-final(), kind="stable")[: max(RESCORE, 4 * k)]
            late[best] = self._maxsim(tokens, [found[j] for j in best], weights, quantized=False)
        return final()

    def _scored_in_store(self, query: Query, limit: int, where: Filter, exact: bool) -> tuple[list[str], np.ndarray]:
        """Candidates and their final scores from a store that scores them itself: the IDF
        weights ride on the query vectors (positive, so w * max<q,d> = max<w * q,d>), and only
        scores come back; fused here, since z-scores need every candidate's score."""
        store = cast(ScoringStore, self.store)
        is_hybrid = self.config.scoring == "hybrid"
        lexicon = self._corpus_lexicon() if is_hybrid else None
        tokens = query.tokens if query.weights is None else query.tokens * query.weights[:, None]
        lexical = is_hybrid and self.store.capabilities.lexical
        result = store.score_in_store(tokens, query.single, limit, where, exact,
                                      bm25_query(query.text) if lexical else None, catalog.searchable_only(None))
        if lexicon is None or not result.ids:
            return result.ids, result.maxsim
        bm25 = result.bm25 if result.bm25 is not None else lexicon.bm25(query.text, result.ids)
        slope = length_slope(result.maxsim, result.rows)
        return result.ids, hybrid_scores(result.maxsim, result.dense, bm25, result.rows, slope)

    def _maxsim(self, query: np.ndarray, found: Sequence[Candidate], weights: np.ndarray | None,
                quantized: bool) -> np.ndarray:
        scores = []
        for start in range(0, len(found), SCORE_STEP):
            pages = self.store.pages(found[start : start + SCORE_STEP], quantized=quantized)
            scores.append(maxsim_pages([query], [p.array() for p in pages],
                                       weights=None if weights is None else [weights])[0])
        return np.concatenate(scores)

    def _resident_pages(self) -> ResidentPages | None:
        """All searchable pages in GPU memory, loaded on the first exact search on a GPU and
        kept until the index changes; None on other devices (there the memory map is as fast)."""
        if self._resident is None:
            device = pick_device(self.models.device)
            if not device.startswith("cuda"):
                return None
            self._resident = resident_pages(self.store, self.config.dim, device)
        return self._resident

    def _corpus_lexicon(self) -> Lexicon | StoredStatistics:
        """BM25 and term statistics over every complete page's text: the store's own, else built
        from the stored texts and kept until the index changes."""
        if self._lexicon is None and self.store.capabilities.lexical:
            self._lexicon = StoredStatistics(self.store)
        if self._lexicon is None:
            pages = list(catalog.searchable_pages(self.store, ("text",)))
            self._lexicon = Lexicon([pid for pid, _ in pages], [p.get("text", "") for _, p in pages],
                                    self.models.encoder.page_terms)
        return self._lexicon


class StoredStatistics:
    """Corpus statistics the store keeps and weighs by IDF itself, over the complete pages
    (scoring/lexical.py): a query costs two small store requests, whatever the corpus size."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.corpus = catalog.searchable_only(None)

    def idf(self, terms: Sequence[int]) -> np.ndarray:
        return self.store.idf(TERMS, terms, self.corpus)

    def bm25(self, query: str, ids: Sequence[str]) -> np.ndarray:
        return self.store.sparse_scores(BM25, bm25_query(query), ids, self.corpus)


def hybrid_scores(maxsim: np.ndarray, dense: np.ndarray, bm25: np.ndarray, lengths: np.ndarray,
                  slope: float) -> np.ndarray:
    """The hybrid score of each candidate: MaxSim less part of its length trend `slope`, fused
    with the single-vector and BM25 scores."""
    return fuse({"maxsim": without_length_trend(maxsim, lengths, LENGTH_TREND, slope), "dense": dense,
                 "bm25": bm25}, HYBRID_WEIGHTS)


def resident_pages(store: Store, dim: int, device: str) -> ResidentPages:
    """Every searchable page of `store` packed on `device`."""
    from .scoring.resident import ResidentPages

    where = catalog.searchable_only(None)
    sizes = [(pid, p[catalog.ROWS]) for pid, p in catalog.searchable_pages(store, (catalog.ROWS,))]
    rows = ((page.id, page.rows()) for batch in store.scan(where, vectors=True) for page in batch)
    return ResidentPages.load(sizes, rows, dim, device)


def page_regions(query: np.ndarray, weights: np.ndarray | None, page: StoredPage,
                 grid: tuple[int, int]) -> list[Region]:
    """Where `query` matched on a stored `page` (regions.py)."""
    payload = page.payload
    rows, cols = payload.get("grid") or grid
    heat, total = credits(query, page.rows(), np.asarray(payload.get("cells", []), dtype=np.int64), rows * cols,
                          weights)
    words = unpack_words(payload.get("text", ""), payload.get(BOXES))
    return find_regions(heat, total, (rows, cols), words, (payload.get("width_pt", 0.0), payload.get("height_pt", 0.0)))
