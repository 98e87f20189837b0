"""Page and query encoders behind one interface (base.py); registry.py names them."""

from .base import MultiVectorEncoder, PageVectors
from .registry import DEFAULT_ENCODER, ENCODERS, load_encoder

__all__ = ["DEFAULT_ENCODER", "ENCODERS", "MultiVectorEncoder", "PageVectors", "load_encoder"]
