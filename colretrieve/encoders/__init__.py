"""Page and query encoders behind one interface (base.py), the single-vector prefilters
(prefilters.py); registry.py names them."""

from .base import MultiVectorEncoder, PageVectors
from .prefilters import BUILTIN_PREFILTERS, SingleVectorEncoder
from .registry import load_encoder, load_prefilter

__all__ = ["BUILTIN_PREFILTERS", "MultiVectorEncoder", "PageVectors", "SingleVectorEncoder", "load_encoder",
           "load_prefilter"]
