"""The small JSON file beside the store that says how an index was built."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from .errors import IndexConfigError, IndexCorruptError
from .files import publish_json, read_json
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
        publish_json(directory / CONFIG_FILE, asdict(self))  # a crash never leaves half a config

    @classmethod
    def load(cls, directory: Path, repair: str = "colretrieve check --repair") -> "IndexConfig | None":
        """The config saved in `directory`, None if there is none; one that cannot be read is an
        IndexCorruptError naming `repair`, the command that rebuilds it."""
        path = directory / CONFIG_FILE
        data = read_json(path, repair)
        return None if data is None else cls.from_dict(data, str(path), repair)

    @classmethod
    def from_dict(cls, data: Any, where: str, repair: str = "colretrieve check --repair") -> "IndexConfig":
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
