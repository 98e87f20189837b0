"""Exact search from device-resident vectors: the packing on the CPU, the search on a GPU."""

from pathlib import Path

import numpy as np
import pytest
import torch

from colretrieve.catalog import point_id
from colretrieve.scoring import maxsim_reference
from colretrieve.scoring.resident import ResidentPages
from colretrieve.search import resident_pages
from colretrieve.storage import PagePoint, StoreSchema
from colretrieve.storage.edge import EdgeStore


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=CUDA)])
def test_resident_pages_score_like_the_reference(tmp_path: Path, device: str) -> None:
    rng = np.random.default_rng(4)
    store = EdgeStore.create(tmp_path / "store", StoreSchema(16, 4))
    points = [PagePoint(point_id("d", n), _unit(rng.standard_normal((int(rng.integers(1, 40)), 16))),
                        _unit(rng.standard_normal(4)),
                        {"doc_id": "d", "page": n, "state": "complete" if n % 4 else "partial"})
              for n in range(1, 30)]
    store.upsert(points)
    resident = resident_pages(store, 16, device)
    complete = [p for p in points if p.payload["state"] == "complete"]
    assert sorted(resident.slot) == sorted(p.id for p in complete) and resident.flat.dtype == torch.float16
    assert resident.flat.device.type == device
    query, weights = _unit(rng.standard_normal((7, 16))), rng.uniform(0.5, 2.0, 7)
    wanted = list(reversed(complete[::2]))
    multiplied = query.astype(np.float16) if device == "cuda" else query  # tensor cores take float16
    want = maxsim_reference([multiplied], [p.vectors.astype(np.float16) for p in wanted], [weights])[0]
    np.testing.assert_allclose(resident.scores(query, [p.id for p in wanted], weights), want, atol=1e-4)
    empty = ResidentPages.load([], [], 16, device)
    assert empty.flat.shape == (0, 16) and empty.slot == {}
    store.close()


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=CUDA)])
def test_best_pages_are_exact_with_ties_cut_by_page_id(tmp_path: Path, device: str) -> None:
    rng = np.random.default_rng(5)
    store = EdgeStore.create(tmp_path / "store", StoreSchema(16, 4))
    copies = _unit(rng.standard_normal((5, 16)))  # four pages share these vectors: one tie across the cut
    points = [PagePoint(point_id("d", n),
                        copies if n % 3 == 0 else _unit(rng.standard_normal((int(rng.integers(1, 9)), 16))),
                        _unit(rng.standard_normal(4)), {"doc_id": "d", "page": n, "state": "complete"})
              for n in range(1, 13)]
    store.upsert(points)
    resident = resident_pages(store, 16, device)
    query = copies[:3] + 0.01 * rng.standard_normal((3, 16)).astype(np.float32)  # the copies score best
    every = {pid: s for pid, s in zip(resident.ids, resident.scores(query, resident.ids))}
    want = sorted(every, key=lambda pid: (-every[pid], pid))
    ids, scores = resident.best(query, 2)
    assert ids == want[:2] and ids == sorted(p.id for p in points if p.payload["page"] % 3 == 0)[:2]
    np.testing.assert_array_equal(scores, [every[pid] for pid in ids])
    assert resident.best(query, 50)[0] == want
    store.close()
