"""The panel layout the CPU kernel reads: a page's vectors come back exactly, in whole panels
whose padding repeats the last vector (so no maximum can change), and the portable path,
for CPUs without AVX-512, scores panel pages like row pages."""

import numpy as np
import pytest

from colretrieve.scoring import cpu_kernel, maxsim_pages, maxsim_reference
from colretrieve.vectors.layout import PANEL, PanelPage, as_rows, panel_rows, to_panels


@pytest.mark.parametrize("n", [1, 31, 32, 33, 1030])
def test_panels_round_trip_and_pad_with_the_last_vector(n: int) -> None:
    vectors = np.random.default_rng(n).standard_normal((n, 6)).astype(np.float16)
    panels = to_panels(vectors)
    assert panels.shape == (panel_rows(n) // PANEL, 6, PANEL) and panels.flags.c_contiguous
    page = PanelPage(panels, n)
    np.testing.assert_array_equal(as_rows(page), vectors)
    padded = panels.transpose(0, 2, 1).reshape(-1, 6)
    assert (padded[n:] == vectors[-1]).all()


def test_the_portable_path_scores_panel_pages(monkeypatch) -> None:
    rng = np.random.default_rng(3)
    pages = [rng.standard_normal((n, 16)).astype(np.float16) for n in (1, 40, 70)]
    query = rng.standard_normal((5, 16)).astype(np.float32)
    monkeypatch.setattr(cpu_kernel, "available", lambda: False)
    got = maxsim_pages([query], [PanelPage(to_panels(p), len(p)) for p in pages])
    assert isinstance(got, np.ndarray)
    np.testing.assert_allclose(got[0], maxsim_reference([query], pages)[0], rtol=1e-5, atol=1e-3)
