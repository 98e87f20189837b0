"""grounding.py: similarity maps, the share of a page's MaxSim score that each cell of it earns.
The maps written end to end from the CLI are tests/test_vision_index.py."""

import numpy as np
import pytest

from colretrieve.grounding import contribution_map, token_maps
from colretrieve.scoring import maxsim, pack


def test_contribution_map_adds_up_to_the_maxsim_score() -> None:
    rng = np.random.default_rng(0)
    query = rng.normal(size=(5, 8)).astype(np.float32)
    vectors = rng.normal(size=(30, 8)).astype(np.float32)
    cells = rng.integers(0, 12, size=30)
    flat, offsets = pack([vectors])
    score = float(maxsim([query], flat, offsets)[0, 0])
    assert contribution_map(query, vectors, cells, (3, 4)).sum() == pytest.approx(score, abs=1e-4)
    per_token = token_maps(query, vectors, cells, (3, 4))
    assert per_token.shape == (5, 3, 4) and per_token.min() >= 0
    assert per_token.reshape(5, -1).max(axis=1) == pytest.approx(np.clip((query @ vectors.T).max(axis=1), 0, None))
