"""Model loading that never guesses: local files only, complete weights, a chosen device."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ..errors import ColretrieveError


def pick_device(device: str = "auto") -> str:
    """"auto" takes CUDA, then Apple's MPS, then the CPU."""
    if device != "auto":
        return device
    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def load_pretrained(model_class: Any, path: Path, **kwargs: Any) -> Any:
    """Load weights from a local folder, refusing any that load only in part.

    transformers fills missing weights with random values and only logs a warning; a
    retrieval model with random layers returns confident nonsense, so that is an error here.
    """
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # colretrieve shows its own progress; a per-load bar is noise
    if not path.is_dir():
        raise ColretrieveError(f"model folder {path} does not exist")
    model, info = model_class.from_pretrained(str(path), local_files_only=True,
                                              output_loading_info=True, **kwargs)
    missing = sorted(map(str, info.get("missing_keys") or ()))
    unexpected = sorted(map(str, info.get("unexpected_keys") or ()))
    mismatched = sorted(map(str, info.get("mismatched_keys") or ()))
    if missing or unexpected or mismatched:
        parts = [f"{label} {', '.join(keys[:3])}{' ...' if len(keys) > 3 else ''}"
                 for label, keys in (("missing", missing), ("unexpected", unexpected),
                                     ("mismatched", mismatched)) if keys]
        raise ColretrieveError(f"weights in {path} do not match the model: {'; '.join(parts)}")
    return model
