"""Model loading that never guesses: local files only, complete weights, a chosen device."""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import re
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from ..errors import ColretrieveError


def pick_device(device: str = "auto") -> str:
    """"auto" takes CUDA, then Apple's MPS, then the CPU."""
    if device != "auto":
        return device
    import torch

    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def native_bf16() -> bool:
    """Whether this CPU computes bfloat16 itself (AVX-512 BF16 or AMX), read at run time: the
    project's machines differ between sessions, and elsewhere torch emulates it, slower."""
    try:
        flags = Path("/proc/cpuinfo").read_text(errors="replace").split()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


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


class _LoadReports(logging.Handler):
    """Collects transformers' LOAD REPORT: what a `from_pretrained` inside a library we call
    (sentence-transformers) found missing, unexpected or mismatched, in this thread only."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.thread = threading.get_ident()
        self.reports: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if record.thread == self.thread and "LOAD REPORT" in message:
            self.reports.append(_ANSI.sub("", message))  # coloured where stdout is a terminal


_ANSI = re.compile(r"\x1b\[[0-9;]*m")
#: One load watched at a time: the logger's level is shared by the process.
_WATCHING = threading.Lock()


@contextlib.contextmanager
def complete_weights(path: Path) -> Iterator[None]:
    """Refuse weights loaded only in part by a library that loads them itself (as
    `load_pretrained` does for ours): transformers reports missing keys in a log record only."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    logger = logging.getLogger("transformers.modeling_utils")
    handler = _LoadReports()
    with _WATCHING:
        level = logger.level
        if logger.getEffectiveLevel() > logging.WARNING:
            logger.setLevel(logging.WARNING)  # a user's quieter setting must not hide the report from us
        logger.addHandler(handler)
        try:
            yield
        finally:
            logger.removeHandler(handler)
            logger.setLevel(level)
    found: dict[str, list[str]] = {}
    for report in handler.reports:  # the report's table: key | status | ...
        for row in ([cell.strip() for cell in line.split("|")] for line in report.splitlines()):
            if len(row) > 1 and row[1] in ("MISSING", "UNEXPECTED", "MISMATCH"):
                found.setdefault(row[1].lower(), []).append(row[0])
    if handler.reports:
        raise ColretrieveError(f"weights in {path} do not match the model: " + ("; ".join(
            f"{label} {', '.join(keys[:3])}{' ...' if len(keys) > 3 else ''}" for label, keys in found.items())
            or "see transformers' load report above"))


#: Files a retrieval checkpoint needs; the hub repos also carry duplicates (pickles, adapters).
_MODEL_FILES = ["*.json", "*.safetensors", "*.model", "*.txt", "*.jinja"]


def resolve_model(name: str) -> Path:
    """The local folder of model `name`: a folder as given, or a hub id's snapshot.

    A hub id is downloaded into the Hugging Face cache when the hub can be reached, and read
    from the cache alone when it cannot or when HF_HUB_OFFLINE=1; a model in neither place is
    one error that says how to get it there.
    """
    path = Path(name).expanduser()
    return path if path.is_dir() else _snapshot(name)


@functools.cache
def _snapshot(name: str) -> Path:
    """Hub id `name`'s snapshot folder, asked of the hub once per process: the registry and the
    encoder it picks both resolve the name."""
    from huggingface_hub import constants, snapshot_download
    from huggingface_hub.errors import HFValidationError

    offline = constants.HF_HUB_OFFLINE or os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")
    attempts = [True] if offline else [False, True]  # online, then the cache alone
    reason = ""
    for local_only in attempts:
        try:
            return Path(snapshot_download(name, local_files_only=local_only, allow_patterns=_MODEL_FILES,
                                          cache_dir=os.environ.get("HF_HUB_CACHE") or None))
        except HFValidationError:
            raise ColretrieveError(f"model {name}: no such folder, and not a hub id (org/name)") from None
        except Exception as exc:  # connection, auth, missing repo: all end in the same advice
            reason = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    where = "offline (HF_HUB_OFFLINE=1)" if offline else f"the hub cannot be reached ({reason})"
    raise ColretrieveError(
        f"model {name} is not a local folder and not in the Hugging Face cache, and {where}; "
        f"fetch it on a machine with internet (huggingface-cli download {name}) and copy the cache "
        f"({constants.HF_HUB_CACHE}), or pass the model's folder")


def model_type(path: Path) -> str:
    config = path / "config.json"
    if not config.is_file():
        raise ColretrieveError(f"{path}: no config.json, not a transformers model folder")
    return json.loads(config.read_text()).get("model_type", "")


def load_checkpoint(model: str, families: Mapping[str, str], role: str,
                    device: str) -> tuple[str, Any, Path, str]:
    """Resolve `model`, check its model_type is one of `families` (model_type -> transformers
    class name), and load it complete on `device`: bf16 on CUDA (what the checkpoints were
    trained in, half the memory), float32 elsewhere (CPUs run it faster).

    Returns (model_type, model in eval mode, local folder, device). `role` names what the
    families are for in the error, e.g. "page encoders are colpali, ... (ColPali, ...)".
    """
    import transformers

    path = resolve_model(model)
    kind = model_type(path)
    if kind not in families:
        raise ColretrieveError(f"model {model} is a {kind or 'unknown'!r} model; {role}")
    device = pick_device(device)
    import torch

    dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    loaded = load_pretrained(getattr(transformers, families[kind]), path, dtype=dtype).to(device).eval()
    return kind, loaded, path, device
