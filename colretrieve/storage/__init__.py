"""Where pages live: the Store contract (base.py), the embedded qdrant-edge store (edge.py) and
the qdrant-client store for a Qdrant server or local mode (qdrant.py, needs qdrant-client)."""

from .base import Filter, PagePoint, Store, StoreSchema, point_id

__all__ = ["Filter", "PagePoint", "Store", "StoreSchema", "point_id"]
