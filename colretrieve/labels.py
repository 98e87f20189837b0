"""Zero-shot page labels (`colretrieve classify`, `ingest --labels`), CLIP's way: each label is
put in prompt templates ("a page with a {}."), the prompts embedded by the single-vector
encoder's text side and averaged per label (prompt ensembling), and each page's single vector
scored against them as the model was trained: softmax over the labels for CLIP and the text
default, a sigmoid per label for SigLIP (encoders: `label_probabilities`).

A page keeps `label` (its most likely one, for `--filter label=chart`) and `label_scores`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .catalog import LABEL, LABEL_SCORES
from .encoders import SingleVectorEncoder
from .errors import ColretrieveError
from .settings import LABEL_TEMPLATES
from .vectors.norms import l2_normalize

_LABEL = re.compile(r"[^,{}]{1,64}")


@dataclass(frozen=True)
class Labels:
    """The labels to choose from and the templates each is put in."""

    names: tuple[str, ...]
    templates: tuple[str, ...] = LABEL_TEMPLATES

    @classmethod
    def parse(cls, labels: str, templates: Sequence[str] = ()) -> Labels:
        """`labels` as typed ("invoice,chart,table"); a template holds one `{}`."""
        names = tuple(dict.fromkeys(name.strip() for name in labels.split(",") if name.strip()))
        if len(names) < 2 or not all(_LABEL.fullmatch(name) for name in names):
            raise ColretrieveError(f"--labels {labels!r}: two or more names, separated by commas")
        for template in templates:
            try:
                whole = template.format("x")
            except (KeyError, IndexError, ValueError):
                whole = None
            if template.count("{}") != 1 or whole is None:
                raise ColretrieveError(f"--template {template!r}: needs one {{}} where the label goes, and no "
                                       "other braces")
        return cls(names, tuple(templates) or LABEL_TEMPLATES)

    def vectors(self, encoder: SingleVectorEncoder) -> np.ndarray:
        """(labels, dim): each label's prompts embedded, averaged, normalised again (CLIP's
        prompt ensembling)."""
        prompts = [template.format(name) for name in self.names for template in self.templates]
        embedded = l2_normalize(encoder.embed_queries(prompts)).reshape(len(self.names), len(self.templates), -1)
        return l2_normalize(embedded.mean(axis=1))


    def check(self, encoder: SingleVectorEncoder) -> None:
        """A ColretrieveError, before any page is read, where `encoder` cannot give labels."""
        if not encoder.can_label:
            encoder.label_probabilities(np.zeros((0, encoder.dim)), np.zeros((0, encoder.dim)))


def page_labels(encoder: SingleVectorEncoder, names: Sequence[str], vectors: np.ndarray,
                singles: np.ndarray) -> list[dict[str, Any]]:
    """The payload of each page's labels (`vectors`: `Labels.vectors`); a page with nothing to
    compare (no words for the text default: a zero vector) gets none, not the first label."""
    probabilities = encoder.label_probabilities(singles, vectors)
    blank = np.linalg.norm(singles, axis=1) == 0
    return [{} if empty else {LABEL: names[int(row.argmax())],
                              LABEL_SCORES: {n: round(float(p), 6) for n, p in zip(names, row)}}
            for row, empty in zip(probabilities, blank)]
