"""The small JSON file beside the store that says how an index was built."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .errors import IndexConfigError
from .storage.base import StoreSchema

FORMAT_VERSION = 1
CONFIG_FILE = "index.json"


@dataclass
class IndexConfig:
    """Everything needed to reopen an index and keep new pages comparable with old ones.

    `encoder_id` is the encoder's own full name (model and settings): opening the index with
    an encoder whose id differs is an error, never a silent mix of vector spaces.
    """

    encoder: str = "text"
    encoder_options: dict[str, Any] = field(default_factory=dict)
    encoder_id: str = ""
    dim: int = 0
    #: "native": the encoder's own single vector; "pooled": mean of multi-vectors; else a CLIP/SigLIP model
    prefilter: str = "native"
    prefilter_id: str = ""
    single_dim: int = 0
    #: Token pooling at ingest: about 1/pool_factor of each page's vectors are kept (scoring/pooling.py)
    pool_factor: int = 1
    #: Stored form MaxSim reads: float16, or int8 / binary with the best pages rescored from float16
    vectors: str = "float16"
    scoring: str = "hybrid"  # "hybrid": IDF-weighted MaxSim + single vector + BM25; "maxsim": MaxSim alone
    dpi: int = 144
    renderer: str = "pdfium"
    ocr: str = "tesseract"
    #: "edge" (embedded qdrant-edge) or "qdrant" (a Qdrant server, or qdrant-client's local mode)
    store: str = "edge"
    #: The Qdrant collection, for store "qdrant"
    collection: str = ""
    format_version: int = FORMAT_VERSION

    @property
    def schema(self) -> StoreSchema:
        return StoreSchema(self.dim, self.single_dim, self.encoder_id)

    def save(self, directory: Path) -> None:
        tmp = directory / (CONFIG_FILE + ".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=2) + "\n")
        tmp.replace(directory / CONFIG_FILE)  # atomic: a crash never leaves half a config

    @classmethod
    def load(cls, directory: Path) -> "IndexConfig":
        path = directory / CONFIG_FILE
        if not path.is_file():
            raise IndexConfigError(f"{directory} is not a colretrieve index (no {CONFIG_FILE}); "
                                   "create one with: colretrieve ingest PDFS --index DIR")
        return cls.from_dict(json.loads(path.read_text()), str(path))

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str) -> "IndexConfig":
        """A config saved by this or another colretrieve (`where` names it in errors)."""
        if data.get("format_version") != FORMAT_VERSION:
            raise IndexConfigError(f"{where}: index format {data.get('format_version')}, "
                                   f"this colretrieve reads format {FORMAT_VERSION}; re-ingest")
        return cls(**data)
