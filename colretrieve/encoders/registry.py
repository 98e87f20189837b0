"""Encoder names users type, mapped to the classes that load them."""

from __future__ import annotations

from typing import Any

from .base import MultiVectorEncoder

#: The embedded default: works offline on a fresh machine (see encoders/text.py).
DEFAULT_ENCODER = "text"
#: Encoders known by a short name; any other name is a ColPali-family hub id or model folder.
ENCODERS = ("text",)
#: Prefilters that need no model of their own: the encoder's own single vector, or the mean
#: of the page's multi-vectors. Any other name is a CLIP/SigLIP hub id or model folder.
BUILTIN_PREFILTERS = ("native", "pooled")


def load_encoder(name: str, **options: Any) -> MultiVectorEncoder:
    """Load encoder `name` with `options` (e.g. grid, device, max_pixels)."""
    if name == "text":
        from .text import TextGridEncoder

        return TextGridEncoder(**options)
    from .colvision import ColVisionEncoder

    return ColVisionEncoder(name, **options)


def load_prefilter(name: str, **options: Any) -> Any:
    """A CLIP/SigLIP dual encoder (hub id or folder) for single-vector prefiltering."""
    from .clip import DualEncoderPrefilter

    return DualEncoderPrefilter(name, **options)
