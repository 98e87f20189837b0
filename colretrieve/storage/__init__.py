"""Where pages live: the Store contract (base.py), the embedded qdrant-edge store (edge.py) and
the qdrant-client store for a Qdrant server or local mode (qdrant.py)."""

from .base import (
    Candidate,
    Capabilities,
    Filter,
    Indexes,
    PagePoint,
    ScoringStore,
    Store,
    StoredPage,
    StoreSchema,
    StoreScores,
)

__all__ = ["Candidate", "Capabilities", "Filter", "Indexes", "PagePoint", "ScoringStore", "Store", "StoredPage",
           "StoreSchema", "StoreScores"]
