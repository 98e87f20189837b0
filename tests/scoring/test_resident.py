"""Exact search from device-resident vectors: the packing on the CPU, the search on a GPU."""

from pathlib import Path

import numpy as np
import pytest
import torch

from colretrieve import Index
from colretrieve.scoring import maxsim_reference
from colretrieve.scoring.resident import ResidentPages
from colretrieve.storage import PagePoint, StoreSchema, point_id
from colretrieve.storage.edge import EdgeStore


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def test_resident_pages_score_like_the_reference(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    store = EdgeStore.create(tmp_path / "store", StoreSchema(16, 4))
    points = [PagePoint(point_id("d", n), _unit(rng.standard_normal((int(rng.integers(1, 40)), 16))),
                        _unit(rng.standard_normal(4)), {"doc_id": "d", "page": n, "state": "complete" if n % 4 else "partial"})
              for n in range(1, 30)]
    store.upsert(points)
    resident = ResidentPages.load(store, "cpu", {"state": "complete"})
    complete = [p for p in points if p.payload["state"] == "complete"]
    assert sorted(resident.slot) == sorted(p.id for p in complete) and resident.flat.dtype == torch.float16
    query, weights = _unit(rng.standard_normal((7, 16))), rng.uniform(0.5, 2.0, 7)
    wanted = list(reversed(complete[::2]))
    want = maxsim_reference([query], [p.vectors.astype(np.float16) for p in wanted], [weights])[0]
    np.testing.assert_allclose(resident.scores(query, [p.id for p in wanted], weights), want, atol=1e-4)
    empty = ResidentPages.load(store, "cpu", {"state": "missing"}, dim=16)
    assert empty.flat.shape == (0, 16) and empty.slot == {}
    store.close()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_exact_search_on_the_gpu_matches_the_cpu(built_index: Path) -> None:
    question = "barplot showing the variances of the principal components"
    with Index.open(built_index, device="cpu") as index:
        cpu = index.search(question, k=5, exact=True)
    with Index.open(built_index, device="cuda") as index:
        gpu = index.search(question, k=5, exact=True)
        assert index._resident is not None and index._resident.flat.is_cuda
    assert [(h.path, h.page) for h in gpu] == [(h.path, h.page) for h in cpu]
    assert [h.score for h in gpu] == pytest.approx([h.score for h in cpu], abs=1e-3)
