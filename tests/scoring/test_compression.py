"""Token pooling and the int8 / binary vector forms, against float64 MaxSim."""

import numpy as np
import pytest

from colretrieve.scoring import maxsim_reference
from colretrieve.scoring.pooling import pool_tokens
from colretrieve.vectors.forms import VectorFormat
from colretrieve.vectors.norms import l2_normalize


def _unit(rng: np.random.Generator, *shape: int) -> np.ndarray:
    return l2_normalize(rng.standard_normal(shape).astype(np.float32))


def test_pooling_keeps_about_one_vector_in_factor() -> None:
    rng = np.random.default_rng(0)
    vectors, cells = _unit(rng, 1030, 128), np.arange(1030, dtype=np.int32)
    for factor, expected in ((2, 515), (3, 344)):
        pooled, pooled_cells = pool_tokens(vectors, cells, factor)
        assert pooled.shape == (expected, 128) and pooled_cells.shape == (expected,)
        np.testing.assert_allclose(np.linalg.norm(pooled, axis=1), 1.0, atol=1e-5)
        assert set(pooled_cells) <= set(cells)
    same, same_cells = pool_tokens(vectors, cells, 1)
    assert same is vectors and same_cells is cells


def test_pooling_merges_near_duplicates_first() -> None:
    """Ten distinct patches, each seen four times with a little noise: factor 4 finds the ten,
    means are the ten, and each cluster keeps the cell of one of its own members."""
    rng = np.random.default_rng(1)
    distinct = _unit(rng, 10, 64)
    vectors = l2_normalize(np.repeat(distinct, 4, axis=0) + 0.003 * rng.standard_normal((40, 64)).astype(np.float32))
    cells = np.repeat(np.arange(10, dtype=np.int32) * 7, 4)
    pooled, pooled_cells = pool_tokens(vectors, cells, 4)
    assert len(pooled) == 10
    owner = (pooled @ distinct.T).argmax(axis=1)
    assert sorted(owner) == list(range(10))
    np.testing.assert_array_equal(pooled_cells, owner * 7)
    queries = [_unit(rng, 12, 64)]
    truth, after = maxsim_reference(queries, [distinct]), maxsim_reference(queries, [pooled])
    assert after[0, 0] == pytest.approx(truth[0, 0], abs=0.01)


def test_pooling_rejects_factor_zero() -> None:
    with pytest.raises(ValueError, match="factor"):
        pool_tokens(np.ones((4, 2), dtype=np.float32), np.zeros(4, dtype=np.int32), 0)


@pytest.mark.parametrize("name,row_bytes", [("float16", 256), ("int8", 132), ("binary", 16)])
def test_formats_round_trip(name: str, row_bytes: int) -> None:
    rng = np.random.default_rng(2)
    vectors = _unit(rng, 50, 128)
    fmt = VectorFormat(name, 128)
    rows = fmt.encode(vectors)
    assert rows.dtype == np.uint8 and rows.shape == (50, row_bytes) == (50, fmt.row_bytes)
    back = fmt.decode(rows).astype(np.float32)
    assert back.shape == vectors.shape
    if name == "binary":
        np.testing.assert_array_equal(np.sign(back), np.where(vectors > 0, 1.0, -1.0))
        np.testing.assert_allclose(np.linalg.norm(back, axis=1), 1.0, atol=1e-6)
    else:
        step = np.abs(vectors).max(axis=1, keepdims=True) / 127 if name == "int8" else 1e-3
        assert np.all(np.abs(back - vectors) <= step / 2 + 1e-6)


def test_int8_scores_track_float_and_binary_ranks_roughly() -> None:
    """What the forms are for: int8 MaxSim within 1% of float; binary a first pass whose best
    pages still hold the true best page."""
    rng = np.random.default_rng(3)
    pages = [_unit(rng, int(rng.integers(20, 200)), 128) for _ in range(40)]
    target = pages[17]
    query = [l2_normalize(target[:8] + 0.3 * rng.standard_normal((8, 128)).astype(np.float32))]
    exact = maxsim_reference(query, pages)[0]
    int8 = VectorFormat("int8", 128)
    binary = VectorFormat("binary", 128)
    np.testing.assert_allclose(maxsim_reference(query, [int8.decode(int8.encode(p)) for p in pages])[0],
                               exact, rtol=0.01)
    coarse = maxsim_reference(query, [binary.decode(binary.encode(p)) for p in pages])[0]
    assert exact.argmax() == 17 and 17 in np.argsort(-coarse)[:5]


def test_unknown_format_is_named() -> None:
    with pytest.raises(ValueError, match="int4"):
        VectorFormat("int4", 128)
