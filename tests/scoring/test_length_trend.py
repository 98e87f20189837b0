import numpy as np
import pytest

from colretrieve.scoring.lexical import MIN_TREND_PAGES, length_slope, without_length_trend


def _detrended(scores: np.ndarray, lengths: np.ndarray, share: float) -> np.ndarray:
    return without_length_trend(scores, lengths, share, length_slope(scores, lengths))


def _chance_scores(lengths: np.ndarray, seed: int = 0) -> np.ndarray:
    """MaxSim of one query over pages of random vectors: the best of more vectors is higher."""
    rng = np.random.default_rng(seed)
    query = rng.standard_normal((6, 32))
    query /= np.linalg.norm(query, axis=1, keepdims=True)
    scores = []
    for n in lengths:
        page = rng.standard_normal((int(n), 32))
        page /= np.linalg.norm(page, axis=1, keepdims=True)
        scores.append((query @ page.T).max(axis=1).sum())
    return np.array(scores, dtype=np.float32)


def test_chance_matches_favour_long_pages_and_the_trend_is_taken_out() -> None:
    lengths = np.geomspace(10, 1000, 40).astype(np.int64)
    scores = _chance_scores(lengths)
    x = np.log(lengths)
    assert np.corrcoef(x, scores)[0, 1] > 0.9  # the bias it corrects
    assert abs(np.corrcoef(x, _detrended(scores, lengths, 1.0))[0, 1]) < 1e-4
    half = _detrended(scores, lengths, 0.5)
    assert np.polyfit(x, half, 1)[0] == pytest.approx(np.polyfit(x, scores, 1)[0] / 2, rel=1e-4)


def test_a_short_page_that_matches_better_than_chance_overtakes_long_ones() -> None:
    lengths = np.array([1000] * 20 + [30] * 20)
    scores = _chance_scores(lengths, seed=1)
    scores[20] += 0.2  # one short page matches a little better than its length allows
    assert np.argmax(scores) != 20
    assert np.argmax(_detrended(scores, lengths, 1.0)) == 20


@pytest.mark.parametrize("seed", range(5))
def test_scores_are_left_alone_without_a_rising_trend_or_enough_pages(seed: int) -> None:
    lengths = np.geomspace(10, 1000, 40).astype(np.int64)
    falling = -_chance_scores(lengths, seed)
    assert length_slope(falling, lengths) == 0
    np.testing.assert_array_equal(_detrended(falling, lengths, 0.5), falling)
    equal = _chance_scores(np.full(40, 50), seed)
    assert length_slope(equal, np.full(40, 50)) == 0
    few = _chance_scores(lengths[: MIN_TREND_PAGES - 1], seed)
    assert length_slope(few, lengths[: MIN_TREND_PAGES - 1]) == 0


def test_blank_pages_neither_set_the_trend_nor_move() -> None:
    """A blank page is stored as one zero vector and scores 0 for every query: a third of them
    would otherwise make the trend steep and lift every short page."""
    lengths = np.geomspace(10, 1000, 40).astype(np.int64)
    scores = _chance_scores(lengths)
    with_blanks = _detrended(np.concatenate([scores, np.zeros(20, np.float32)]),
                             np.concatenate([lengths, np.ones(20, np.int64)]), 0.5)
    assert with_blanks[:40] == pytest.approx(_detrended(scores, lengths, 0.5), abs=1e-6)
    assert (with_blanks[40:] == 0).all()
