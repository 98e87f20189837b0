"""Corpus statistics kept by the store (BM25 and term IDF as sparse vectors the store weighs by
IDF): what a search reads instead of rebuilding them from every page's text."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from colretrieve import Index, catalog
from colretrieve.scoring.lexical import Lexicon
from colretrieve.search import StoredStatistics
from colretrieve.storage.base import unseen_idf

QUERY = "principal components of the heptathlon results by country"


def _rebuilt(index: Index) -> Lexicon:
    """The statistics as a process would build them from the stored texts (indexes made before
    the store kept them)."""
    pages = list(catalog.searchable_pages(index.store, ("text",)))
    return Lexicon([pid for pid, _ in pages], [p.get("text", "") for _, p in pages], index.encoder.page_terms)


def test_the_store_keeps_what_a_process_would_rebuild(built_index: Path, text_encoder) -> None:
    with Index.open(built_index, model=text_encoder) as index:
        assert index.config.lexical and index.store.capabilities.lexical
        stored, rebuilt = StoredStatistics(index.store), _rebuilt(index)
        terms = text_encoder.query_terms([QUERY])[0]
        np.testing.assert_allclose(stored.idf(terms), rebuilt.idf(terms), rtol=1e-5)  # the same N and df
        ids = rebuilt.ids
        ours, theirs = stored.bm25(QUERY, ids), rebuilt.bm25(QUERY, ids)
    # BM25 normalises by a fixed page length (AVG_LEN) where bm25s takes the corpus mean:
    # the same pages score, in nearly the same order
    assert set(np.flatnonzero(ours)) == set(np.flatnonzero(theirs))
    assert np.corrcoef(ours, theirs)[0, 1] > 0.98
    assert np.argmax(ours) == np.argmax(theirs)


def test_statistics_follow_a_delete_without_a_rebuild(index_copy: Path, text_encoder) -> None:
    with Index.open(index_copy, model=text_encoder) as index:
        stored = StoredStatistics(index.store)
        (term,) = text_encoder.query_terms(["heptathlon"])[0][:1]
        before = stored.idf([term])[0]
        holders = {p.payload["doc_id"] for batch in index.store.scan(catalog.searchable_only(None), ("doc_id", "text"))
                   for p in batch if term in text_encoder.page_terms(p.payload["text"])}
        for doc_id in holders:
            index.delete(doc_id)
        after = stored.idf([term])[0]
        pages = index.store.count(catalog.searchable_only(None))
    assert holders and after > before
    assert after == np.float32(unseen_idf(pages))  # no page holds it now
