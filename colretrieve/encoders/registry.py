"""Encoder names users type, mapped to the classes that load them."""

from __future__ import annotations

from typing import Any

from .base import MultiVectorEncoder
from .prefilters import BUILTIN_PREFILTERS, NativePrefilter, PooledPrefilter, SingleVectorEncoder


def load_encoder(name: str, **options: Any) -> MultiVectorEncoder:
    """Load encoder `name` ("text"; "text:" and a ColBERT-family hub id or folder, under the
    same words; or a ColPali-family hub id or folder) with `options` (e.g. grid, device, max_pixels)."""
    encoder: MultiVectorEncoder
    if name == "text":
        from .text import TextGridEncoder

        encoder = TextGridEncoder(**options)
    elif name.startswith("text:"):
        from .colbert_text import ColbertTextEncoder

        encoder = ColbertTextEncoder(name.removeprefix("text:"), **options)
    else:
        from .loading import resolve_model
        from .sentence_multivector import SentenceMultiVectorEncoder, is_sentence_multivector

        if is_sentence_multivector(resolve_model(name)):  # saved by sentence-transformers: its own API
            encoder = SentenceMultiVectorEncoder(name, **options)
        else:
            from .colvision import ColVisionEncoder

            encoder = ColVisionEncoder(name, **options)
    encoder.source = name
    return encoder


def load_prefilter(name: str, encoder: MultiVectorEncoder | None = None, **options: Any) -> SingleVectorEncoder:
    """The prefilter `name`: "native" or "pooled" (derived from `encoder`), else a CLIP/SigLIP
    dual encoder (hub id or folder) loaded with `options` (device, batch_size)."""
    if name in BUILTIN_PREFILTERS:
        if encoder is None:
            raise ValueError(f"prefilter {name!r} is derived from an encoder; pass it")
        return NativePrefilter(encoder) if name == "native" else PooledPrefilter(encoder)
    from .clip import DualEncoderPrefilter

    return DualEncoderPrefilter(name, **options)
