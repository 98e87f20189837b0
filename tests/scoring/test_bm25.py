import pytest

from colretrieve.scoring.bm25 import Bm25


def test_ranks_by_term_overlap_and_ignores_stopwords() -> None:
    bm25 = Bm25(["p1", "p2", "p3"], ["census table of arrests in 2009", "graph layout with dot",
                                     "arrests by age and sex"])
    hits = bm25.search("arrests by sex", k=3)
    assert [pid for pid, _ in hits] == ["p3", "p1", "p2"]
    assert hits[0][1] > hits[1][1] > 0 and hits[2][1] == 0
    assert bm25.scores("the and of").tolist() == pytest.approx([0, 0, 0])  # stopwords only


def test_pages_without_words_match_nothing() -> None:
    """Scans stored without OCR leave no word to index: every query scores 0, no error."""
    bm25 = Bm25(["p1", "p2"], ["", "   "])
    assert bm25.scores("arrests by sex").tolist() == [0, 0]
