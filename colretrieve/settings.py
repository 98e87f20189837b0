"""Every default and every choice of a new index, written once.

The CLI's options, `Index.create`, `migrate` and the benchmark runner take their defaults from
here. `IndexConfig` is what an index saves of these choices (index.json, and a copy in the
store), so that it reopens the same way and new pages stay comparable with old ones.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from .errors import IndexConfigError, IndexCorruptError
from .files import publish_json, read_json
from .storage.base import StoreSchema

#: Where the CLI keeps its index unless told otherwise, and the variable that overrides it.
DEFAULT_INDEX_DIR = "colretrieve-index"
INDEX_ENV = "COLRETRIEVE_INDEX"

#: The embedded default encoder: works offline on a fresh machine (encoders/text.py).
ENCODER = "text"
#: Render resolution of a new index's pages.
DPI = 144
#: Prompt templates each zero-shot label is put in, averaged (`classify --template` replaces them).
LABEL_TEMPLATES = ("a {}.", "a page with a {}.", "a document page showing a {}.")
#: Share of the score an image query has when it comes with text (`search(image_weight=)`).
IMAGE_WEIGHT = 0.5
#: Margin around a hit's region when it is cropped (`Hit.crop`, `query --crops`), a share of the page.
CROP_MARGIN = 0.01
RENDERER = "pdfium"
#: OCR engines for pages without a text layer ("none": such pages get no words).
OCR_ENGINES = ("tesseract", "rapidocr", "none")
OCR = "tesseract"
#: Token pooling factor (1: every vector kept) and the stored form MaxSim reads.
POOL_FACTOR = 1
VECTORS = "float16"
#: Where a directory index keeps its pages: embedded qdrant-edge, or qdrant-client's local mode.
DIRECTORY_STORES = ("edge", "qdrant")
STORE = "edge"

#: Where models run: "auto" takes CUDA, then Apple's MPS, then the CPU. Not saved with an index.
DEVICE = "auto"
#: Pages per write when `migrate` copies an index.
MIGRATE_BATCH = 32

#: Pages returned by a search.
K = 5
#: Pages the prefilter hands to exact MaxSim: the speed/recall knob of two-stage search.
CANDIDATES = 256
#: With int8 / binary vectors, this many of the best candidates (at least; 4 x k if more) are
#: rescored from their float16 copy, as Qdrant rescores quantized search.
RESCORE = 32
#: Weights of the z-scored parts of hybrid scoring. Measured on the dev set: a wide plateau
#: (dense 0-0.3, BM25 0.2-0.5 all give 88-90 nDCG@5), so the middle of it, not its peak.
HYBRID_WEIGHTS = {"maxsim": 1.0, "dense": 0.2, "bm25": 0.3}
#: Share of MaxSim's trend on page length that hybrid scoring takes out (scoring/lexical.py).
#: Chosen on the dev set, where 0.25-0.75 is a plateau (90.0-89.8 nDCG@5; 89.5 with none,
#: 89.3 with all), so its middle; then measured on the validation set (RESULTS.md).
LENGTH_TREND = 0.5

FORMAT_VERSION = 1
CONFIG_FILE = "index.json"


def default_index_dir() -> Path:
    """`$COLRETRIEVE_INDEX`, else ./colretrieve-index."""
    return Path(os.environ.get(INDEX_ENV, DEFAULT_INDEX_DIR))


def prefilter_for(has_single_vector: bool) -> str:
    """The prefilter of a new index when none is named: the encoder's own single vector where
    it has one, else the mean of the page's multi-vectors."""
    return "native" if has_single_vector else "pooled"


def scoring_for(has_vocabulary: bool) -> str:
    """"hybrid" (IDF-weighted MaxSim + single vector + BM25) needs a text vocabulary; else MaxSim alone."""
    return "hybrid" if has_vocabulary else "maxsim"


@dataclass
class IndexConfig:
    """Everything needed to reopen an index and keep new pages comparable with old ones.

    `encoder_id` is the encoder's own full name (model and settings): opening the index with
    an encoder whose id differs is an error, never a silent mix of vector spaces.
    """

    encoder: str = ENCODER
    encoder_options: dict[str, Any] = field(default_factory=dict)
    encoder_id: str = ""
    dim: int = 0
    #: "native": the encoder's own single vector; "pooled": mean of multi-vectors; else a CLIP/SigLIP model
    prefilter: str = "native"
    prefilter_id: str = ""
    single_dim: int = 0
    #: Token pooling at ingest: about 1/pool_factor of each page's vectors are kept (scoring/pooling.py)
    pool_factor: int = POOL_FACTOR
    #: Stored form MaxSim reads: float16, or int8 / binary with the best pages rescored from float16
    vectors: str = VECTORS
    scoring: str = "hybrid"  # see scoring_for
    #: The store keeps corpus statistics (BM25 and term IDF, scoring/lexical.py); indexes made
    #: before it rebuild them in each process that searches
    lexical: bool = False
    #: Several teams share the index (tenancy.py): every page belongs to one, every write names it
    tenants: bool = False
    dpi: int = DPI
    renderer: str = RENDERER
    ocr: str = OCR
    #: "edge" (embedded qdrant-edge) or "qdrant" (a Qdrant server, or qdrant-client's local mode)
    store: str = STORE
    #: The Qdrant collection, for store "qdrant"
    collection: str = ""
    format_version: int = FORMAT_VERSION

    @property
    def schema(self) -> StoreSchema:
        return StoreSchema(self.dim, self.single_dim, self.encoder_id, self.lexical)

    def save(self, directory: Path) -> None:
        publish_json(directory / CONFIG_FILE, asdict(self))  # a crash never leaves half a config

    @classmethod
    def load(cls, directory: Path, repair: str = "colretrieve check --repair") -> IndexConfig | None:
        """The config saved in `directory`, None if there is none; one that cannot be read is an
        IndexCorruptError naming `repair`, the command that rebuilds it."""
        path = directory / CONFIG_FILE
        data = read_json(path, repair)
        return None if data is None else cls.from_dict(data, str(path), repair)

    @classmethod
    def from_dict(cls, data: Any, where: str, repair: str = "colretrieve check --repair") -> IndexConfig:
        """A config saved by this or another colretrieve (`where` names it in errors)."""
        names = {f.name for f in fields(cls)}
        if not isinstance(data, dict) or not set(data) <= names:
            raise IndexCorruptError(f"{where} is not an index config; run {repair}")
        if data.get("format_version") != FORMAT_VERSION:
            raise IndexConfigError(f"{where}: index format {data.get('format_version')}, "
                                   f"this colretrieve reads format {FORMAT_VERSION}; re-ingest")
        config = cls(**data)
        if not (isinstance(config.dim, int) and isinstance(config.single_dim, int) and config.dim > 0
                and config.single_dim > 0 and isinstance(config.dpi, int) and config.dpi > 0):
            raise IndexCorruptError(f"{where} is not an index config (dim {config.dim!r}, dpi {config.dpi!r}); "
                                    f"run {repair}")
        return config

# ---- the service (`colretrieve serve`, `colretrieve mcp`) ------------------------------
HOST, PORT = "127.0.0.1", 8000
#: The API key's environment variable (or `serve --api-key-file`).
API_KEY_ENV = "COLRETRIEVE_API_KEY"
#: What one request may ask: pages per search, characters per query, bytes of a JSON body,
#: bytes of one upload request, pixels on the long side of a page image.
MAX_K = 100
MAX_QUERY_CHARS = 2_000
MAX_BODY_BYTES = 1 << 20
MAX_UPLOAD_BYTES = 200 << 20
MAX_IMAGE_SIDE = 2_048
#: Long side of a page image when the request names none (an LLM reads ~1,000 pixels well).
IMAGE_SIDE = 1_024
