"""Encoder names users type, mapped to the classes that load them."""

from __future__ import annotations

from typing import Any

from ..errors import ColretrieveError
from .base import MultiVectorEncoder

#: The embedded default: works offline on a fresh machine (see encoders/text.py).
DEFAULT_ENCODER = "text"
ENCODERS = ("text",)


def load_encoder(name: str, **options: Any) -> MultiVectorEncoder:
    """Load encoder `name` with `options` (e.g. grid, device); unknown names are an error."""
    if name == "text":
        from .text import TextGridEncoder

        return TextGridEncoder(**options)
    raise ColretrieveError(f"unknown encoder {name!r}: expected one of {', '.join(ENCODERS)}")
