"""The models an index was built with: chosen once at create, loaded on first use after.

A model that now loads under another name than the one saved would put new pages (and
queries) in another vector space: that is an error, never a silent mix.
"""

from __future__ import annotations

import threading
from typing import Any

from .encoders import MultiVectorEncoder, SingleVectorEncoder, load_encoder, load_prefilter
from .errors import ColretrieveError, IndexConfigError
from .settings import DEVICE, IndexConfig, prefilter_for, scoring_for


class Models:
    """The encoder and prefilter of `config`, loaded when first asked for, on `device`
    ("auto", "cpu", "cuda", ...: each process picks its own). `where` names the index in errors.

    An `encoder` already loaded (one model shared by several indexes in a process, or by a
    test session) is taken instead of loading one; it must be the model the index was built with.
    """

    def __init__(self, config: IndexConfig, where: str, device: str = DEVICE,
                 encoder: MultiVectorEncoder | None = None, prefilter: SingleVectorEncoder | None = None) -> None:
        self.config = config
        self.where = where
        self.device = device
        if encoder is not None:
            self._same(config.encoder_id, encoder.name)
        self._encoder = encoder
        self._prefilter = prefilter
        self._loading = threading.RLock()

    @staticmethod
    def choose(encoder: str, prefilter: str | None, device: str, options: dict[str, Any],
               model: MultiVectorEncoder | None = None, **settings: Any
               ) -> tuple[IndexConfig, MultiVectorEncoder, SingleVectorEncoder]:
        """Load `encoder` (with its `options`; `model` if it is loaded already) and the prefilter
        (`prefilter`, or the settings' choice for it) for a new index: its config (`settings`
        are the rest of it) and the two models."""
        if model is not None and model.source not in (None, encoder):
            raise ColretrieveError(f"model {model.name} was loaded as {model.source!r}, not as encoder {encoder!r}")
        model = model or load_encoder(encoder, device=device, **options)
        kind = prefilter or prefilter_for(model.summary_dim is not None)
        single = load_prefilter(kind, model, device=device)
        config = IndexConfig(encoder=encoder, encoder_options=options, encoder_id=model.name, dim=model.dim,
                             prefilter=kind, prefilter_id=single.name, single_dim=single.dim,
                             scoring=scoring_for(model.has_vocabulary), lexical=model.has_vocabulary, **settings)
        return config, model, single

    @property
    def encoder(self) -> MultiVectorEncoder:
        with self._loading:  # an ingest and a reader's search may both ask first (sharing.py)
            if self._encoder is None:
                model = load_encoder(self.config.encoder, device=self.device, **self.config.encoder_options)
                self._same(self.config.encoder_id, model.name)
                self._encoder = model
            return self._encoder

    @property
    def prefilter(self) -> SingleVectorEncoder:
        with self._loading:
            if self._prefilter is None:
                single = load_prefilter(self.config.prefilter, self.encoder, device=self.device)
                self._same(self.config.prefilter_id, single.name)
                self._prefilter = single
            return self._prefilter

    def load(self) -> None:
        """Load both models now (an ingest with pages to encode: a model that cannot load stops
        it before any file is blamed)."""
        _ = self.encoder, self.prefilter

    def _same(self, saved: str, loaded: str) -> None:
        if saved != loaded:
            raise IndexConfigError(f"index {self.where} was built with {saved}, but the model now loads as "
                                   f"{loaded}; re-ingest into a new index")
