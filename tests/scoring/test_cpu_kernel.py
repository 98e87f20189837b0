"""The fused AVX-512 kernel against the float64 reference, on the shapes that stress its tiling:
pages shorter and longer than a 32-vector panel, dimensions that are not a multiple of 16,
token counts that split into several register tiles, and pages read in place from a file."""

import numpy as np
import pytest
import torch

from colretrieve.scoring import cpu_kernel, maxsim, maxsim_pages, maxsim_reference, pack
from colretrieve.vectors.layout import PanelPage, to_panels

pytestmark = pytest.mark.skipif(not cpu_kernel.available(), reason=f"CPU MaxSim path here: {cpu_kernel.name()}")

# Around the tile sizes: 16 vectors a register, 32 a panel; 12 tokens a register tile.
LENGTHS = [1, 2, 15, 16, 17, 31, 32, 33, 63, 64, 65, 1030]


def _pages(rng: np.random.Generator, dim: int, dtype, lengths=LENGTHS) -> list[np.ndarray]:
    return [rng.standard_normal((n, dim)).astype(dtype) for n in lengths]


@pytest.mark.parametrize("dtype", [np.float16, np.float32])
@pytest.mark.parametrize("dim", [1, 16, 20, 128, 384])
@pytest.mark.parametrize("n_tokens", [1, 12, 13, 20, 95])
def test_every_tile_shape_matches_the_reference(dtype, dim: int, n_tokens: int) -> None:
    rng = np.random.default_rng(dim * 100 + n_tokens)
    pages = _pages(rng, dim, dtype)
    query = rng.standard_normal((n_tokens, dim)).astype(np.float32)
    best = cpu_kernel.token_maxima(query, *cpu_kernel.page_addresses(pages), pages[0].dtype)
    expected = np.stack([(query.astype(np.float64) @ p.astype(np.float64).T).max(axis=1) for p in pages], axis=1)
    np.testing.assert_allclose(best, expected, rtol=1e-5, atol=1e-4 * np.sqrt(dim))


@pytest.mark.parametrize("dim", [1, 16, 20, 128, 384])
@pytest.mark.parametrize("n_tokens", [1, 10, 11, 20, 95])
def test_pages_in_the_panel_layout_match_the_reference(dim: int, n_tokens: int) -> None:
    rng = np.random.default_rng(dim * 100 + n_tokens + 1)
    pages = _pages(rng, dim, np.float16)
    query = rng.standard_normal((n_tokens, dim)).astype(np.float32)
    panels = [PanelPage(to_panels(p), len(p)) for p in pages]
    assert cpu_kernel.accepts(panels, dim)
    got = maxsim_pages([query], panels)[0]
    np.testing.assert_allclose(got, maxsim_reference([query], pages)[0], rtol=1e-5, atol=1e-4 * np.sqrt(dim) * n_tokens)


def test_negative_similarities_are_not_lifted_by_the_tail_fill() -> None:
    """A short last panel is filled with the page's last vector, never with zeros."""
    rng = np.random.default_rng(2)
    pages = [np.abs(p) for p in _pages(rng, 24, np.float16)]
    query = -np.abs(rng.standard_normal((3, 24))).astype(np.float32)  # every similarity < 0
    got = maxsim_pages([query], pages)[0]
    assert (got < 0).all()
    np.testing.assert_allclose(got, maxsim_reference([query], pages)[0], rtol=1e-5)


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_threads_split_the_pages_without_changing_scores(threads: int) -> None:
    rng = np.random.default_rng(4)
    pages = _pages(rng, 32, np.float16, lengths=rng.integers(1, 90, 41))
    queries = [rng.standard_normal((n, 32)).astype(np.float32) for n in (4, 20)]
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        got = maxsim(queries, *pack(pages)).numpy()
    finally:
        torch.set_num_threads(before)
    np.testing.assert_allclose(got, maxsim_reference(queries, pages), rtol=1e-5, atol=1e-3)


def test_rows_scattered_in_a_memory_mapped_file(tmp_path) -> None:
    """The query path's case: candidate pages are runs of rows of the vector file, in any order."""
    rng = np.random.default_rng(6)
    rows = rng.standard_normal((700, 128)).astype(np.float16)
    rows.tofile(tmp_path / "vectors.f16")
    mapped = np.memmap(tmp_path / "vectors.f16", dtype=np.float16, mode="r").reshape(-1, 128)
    runs = [(600, 700), (0, 1), (5, 260), (300, 301), (260, 300)]
    query = rng.standard_normal((20, 128)).astype(np.float32)
    got = maxsim_pages([query], [mapped[a:b] for a, b in runs])[0]
    np.testing.assert_allclose(got, maxsim_reference([query], [rows[a:b] for a, b in runs])[0], rtol=1e-5, atol=1e-3)


def test_pages_it_cannot_read_in_place_go_to_the_portable_path() -> None:
    rng = np.random.default_rng(8)
    strided = rng.standard_normal((40, 64)).astype(np.float32)[:, ::2]  # rows not contiguous
    doubles = rng.standard_normal((10, 32))  # float64
    assert not cpu_kernel.accepts([strided], 32) and not cpu_kernel.accepts([doubles], 32)
    query = rng.standard_normal((5, 32)).astype(np.float32)
    np.testing.assert_allclose(maxsim_pages([query], [strided, doubles])[0],
                               maxsim_reference([query], [strided, doubles])[0], rtol=1e-5, atol=1e-4)


def test_threads_while_another_thread_is_still_importing_torch(monkeypatch: pytest.MonkeyPatch) -> None:
    """A service's search ran while its ingest thread imported torch: sys.modules held a torch
    without get_num_threads yet, and the search failed."""
    import os
    import sys
    import types

    monkeypatch.setitem(sys.modules, "torch", types.ModuleType("torch"))  # what an import in progress leaves
    assert cpu_kernel.threads() == len(os.sched_getaffinity(0))
    monkeypatch.undo()
    assert cpu_kernel.threads() == torch.get_num_threads()
