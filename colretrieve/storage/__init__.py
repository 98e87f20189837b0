"""Where pages live: the Store contract (base.py) and its embedded qdrant-edge implementation."""

from .base import Filter, PagePoint, Store, StoreSchema, point_id

__all__ = ["Filter", "PagePoint", "Store", "StoreSchema", "point_id"]
