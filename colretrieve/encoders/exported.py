"""A text encoder's forward pass exported to ONNX, so a query runs without torch.

A one-shot query pays for its imports: torch and transformers take 3–7 s to import, ONNX
Runtime 0.2 s. The page side (ingest) keeps running in torch; the query side runs the same
weights in ONNX Runtime once a graph has been exported for them. The export happens where
torch is loaded anyway (the first ingest with a model), is checked against torch on probe
inputs before it is published, and lives in a cache of colretrieve's own, keyed by the
weights file, so every index built with that model shares it. A missing or stale graph only
means the query loads torch: it is the same model either way, never another.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import os
import shutil
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ..files import fsync_tree

#: Where exported graphs are kept: $COLRETRIEVE_CACHE, else ~/.cache/colretrieve (XDG).
CACHE_ENV = "COLRETRIEVE_CACHE"
#: Bump when the exported graph's inputs or outputs change, so old graphs are not read.
GRAPH_VERSION = 1
#: Largest difference from torch's hidden states a published graph may show on the probes.
TOLERANCE = 1e-4
GRAPH_FILE = "model.onnx"

log = logging.getLogger(__name__)

Forward = Callable[[np.ndarray, np.ndarray], np.ndarray]


def cache_root() -> Path:
    configured = os.environ.get(CACHE_ENV)
    if configured:
        return Path(configured)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "colretrieve"


def graph_dir(weights: Path) -> Path:
    """The cache folder for the graph of `weights` (a model file): its resolved path, size and
    modification time name it, so a replaced or edited weights file gets a new graph."""
    stat = weights.stat()
    key = f"{weights.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{GRAPH_VERSION}"
    return cache_root() / "onnx" / hashlib.sha256(key.encode()).hexdigest()[:32]


def load_graph(weights: Path) -> Forward | None:
    """`forward(input_ids, attention_mask) -> hidden states` in ONNX Runtime, or None when no
    graph has been exported for `weights` (or ONNX Runtime is not installed)."""
    graph = graph_dir(weights) / GRAPH_FILE
    if not graph.is_file():
        return None
    try:
        return _session(graph)
    except ImportError:
        return None
    except Exception as exc:  # damaged, or written by an exporter this onnxruntime cannot read
        log.warning("cannot load the exported query graph %s (%s); queries run in torch", graph, exc)
        return None


def export_graph(model: Any, weights: Path, probes: list[tuple[np.ndarray, np.ndarray]]) -> bool:
    """Export `model` (a torch module taking input_ids and attention_mask) for `weights`, check
    it against torch on `probes` and publish it: written to a temporary folder beside its
    place, synced, then renamed. False (and a log line) when it cannot be made or disagrees."""
    target = graph_dir(weights)
    if (target / GRAPH_FILE).is_file():
        return True
    try:
        import onnxruntime  # noqa: F401  (a graph nobody can run is not worth exporting)
        import torch
    except ImportError:
        return False
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=".export-", dir=target.parent))
    except OSError as exc:  # a read-only or full cache: queries keep running in torch
        log.warning("cannot write the query graph cache %s (%s); queries run in torch", target.parent, exc)
        return False
    try:
        _export(model, probes[0], work / GRAPH_FILE)
        forward = _session(work / GRAPH_FILE)
        for probe_ids, probe_mask in probes:
            with torch.inference_mode():
                expected = model(input_ids=torch.from_numpy(probe_ids), attention_mask=torch.from_numpy(probe_mask)
                                 ).last_hidden_state.float().numpy()
            got = forward(probe_ids, probe_mask)
            if got.shape != expected.shape or np.abs((got - expected) * probe_mask[..., None]).max() > TOLERANCE:
                log.warning("the ONNX export of %s disagrees with torch; queries keep running in torch", weights)
                return False
        fsync_tree(work)
        try:
            os.rename(work, target)
        except OSError:  # another process published it first
            return (target / GRAPH_FILE).is_file()
        return True
    except Exception as exc:  # an exporter that cannot trace this model costs speed, never results
        log.warning("could not export %s to ONNX (%s); queries keep running in torch", weights, exc)
        return False
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _export(model: Any, probe: tuple[np.ndarray, np.ndarray], graph: Path) -> None:
    """TorchScript's exporter (2 s for MiniLM here, against 10-19 s for the dynamo one, which is
    paid in the middle of a first ingest); the dynamo one where TorchScript's cannot trace it."""
    import torch

    class Hidden(torch.nn.Module):  # keyword inputs, one output: the signature both exporters take
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            return self.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state

    inputs = tuple(torch.from_numpy(a.astype(np.int64)) for a in probe)
    axes = {name: {0: "batch", 1: "tokens"} for name in ("input_ids", "attention_mask", "hidden")}
    for dynamo in (False, True):
        try:
            with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings(), torch.inference_mode(False):
                warnings.simplefilter("ignore")  # the exporters' notes on their own internals
                torch.onnx.export(Hidden().eval(), inputs, str(graph), input_names=["input_ids", "attention_mask"],
                                  output_names=["hidden"], dynamo=dynamo, verbose=False, dynamic_axes=axes)
            return
        except Exception:
            if dynamo:
                raise
            log.info("TorchScript's ONNX exporter failed on this model; trying the dynamo exporter")


def _session(graph: Path) -> Forward:
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3  # the CLI's stderr is for the user's messages
    session = onnxruntime.InferenceSession(str(graph), options, providers=["CPUExecutionProvider"])

    def forward(ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        return session.run(None, {"input_ids": ids.astype(np.int64), "attention_mask": mask.astype(np.int64)})[0]

    return forward
