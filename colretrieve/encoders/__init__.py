"""Page and query encoders behind one interface (base.py); registry.py names them."""

from .base import MultiVectorEncoder, PageVectors
from .registry import (
           BUILTIN_PREFILTERS,
           DEFAULT_ENCODER,
           ENCODERS,
           load_encoder,
           load_prefilter,
)

__all__ = ["BUILTIN_PREFILTERS", "DEFAULT_ENCODER", "ENCODERS", "MultiVectorEncoder", "PageVectors", "load_encoder",
           "load_prefilter"]
