"""colretrieve: page retrieval over PDFs with late interaction, embedded or on a Qdrant cluster."""

from .errors import ColretrieveError
from .index import Hit, Index, IngestReport

__all__ = ["ColretrieveError", "Hit", "Index", "IngestReport"]
