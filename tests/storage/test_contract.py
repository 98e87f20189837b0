"""The Store contract, run against every store: qdrant-edge, qdrant-client local mode (a folder
and ":memory:") and, with QDRANT_URL set, a Qdrant server. Same calls, same answers."""

from __future__ import annotations

import numpy as np
import pytest

from colretrieve.errors import ColretrieveError, IndexConfigError
from colretrieve.storage import Capabilities, StoreSchema


@pytest.fixture
def filled(backend, make_pages):
    """A store holding documents "a" (12 pages, more than one request's batch) and "b" (3)."""
    rng = np.random.default_rng(0)
    a, b = make_pages(rng, "a", 12), make_pages(rng, "b", 3)
    store = backend.create()
    store.upsert(a + b)
    return store, a, b


def test_create_then_open(backend) -> None:
    store = backend.reopen(backend.create())
    assert store.count() == 0


def test_upsert_and_count_with_filters(filled) -> None:
    store, a, b = filled
    assert store.count() == 15
    assert store.count({"doc_id": "a"}) == 12
    assert store.count({"doc_id": ["a", "b"], "page": 2}) == 2
    assert store.count({"doc_id": "missing"}) == 0


def test_ranges_negation_and_presence(filled) -> None:
    store, a, b = filled
    store.set_payload({"doc_id": "a", "page": [1, 2, 3]}, {"year": 2019})
    store.set_payload({"doc_id": "a", "page": [4, 5]}, {"year": 2023.5})
    assert store.count({"page": {"gte": 3, "lt": 6}}) == 3 + 1  # a's 3, 4, 5 and b's 3
    assert store.count({"page": {"gt": 10}}) == 2
    assert store.count({"doc_id": {"not": "a"}}) == 3
    assert store.count({"doc_id": {"not": ["a", "b"]}}) == 0
    assert store.count({"year": {"exists": True}}) == 5
    assert store.count({"year": {"exists": False}}) == 10
    assert store.count({"year": {"gte": 2020}, "doc_id": "a"}) == 2
    assert store.count({"year": {"lt": 2025, "not": 2019}, "page": {"not": [4]}}) == 1
    found = store.candidates(b[0].summary, k=20, filter={"year": {"exists": False}, "doc_id": {"not": "b"}})
    assert {c.id for c in found} == {p.id for p in a[5:]}


def test_indexed_fields_filter_as_before(filled) -> None:
    """Indexes only speed filters up: a value of another kind than its field's index still matches."""
    store, a, b = filled
    store.set_payload({"doc_id": "a", "page": [1, 2, 3]}, {"meta": {"year": 2019, "lang": "en", "draft": True}})
    store.set_payload({"doc_id": "b"}, {"meta": {"year": "unknown", "score": 0.5, "lang": ["en", "fr"]}})
    store.index_fields({"meta.year": "integer", "meta.lang": "keyword", "meta.draft": "bool", "meta.score": "float"})
    store.index_fields({"meta.year": "keyword"})  # already indexed: kept as it is
    assert store.count({"meta.year": {"gte": 2000}}) == 3
    assert store.count({"meta.year": "unknown"}) == 3
    assert store.count({"meta.lang": "fr"}) == 3 and store.count({"meta.lang": "en"}) == 6
    assert store.count({"meta.draft": True}) == 3 and store.count({"meta.score": {"lt": 1}}) == 3
    assert store.count({"meta.draft": {"not": True}}) == 12
    assert store.count({"meta.draft": [False, True]}) == 3 and store.count({"meta.draft": False}) == 0
    assert store.count({"meta.score": 0.5}) == 3 and store.count({"meta.score": [0.25, 0.5, 7]}) == 3
    assert store.count({"meta.score": {"not": [0.5]}}) == 12 and store.count({"meta.year": [2019.0, 3]}) == 3


@pytest.mark.parametrize("condition", [{"between": [1, 2]}, {}, {"gte": "2020"}, {"lt": True}])
def test_an_unknown_or_malformed_condition_is_one_clear_error(filled, condition) -> None:
    store, _, _ = filled
    with pytest.raises(ColretrieveError, match="filter on 'page'"):
        store.count({"page": condition})


def test_upsert_again_overwrites(filled) -> None:
    store, a, _ = filled
    store.upsert(a[:2])  # the same ids again: overwritten, not duplicated
    assert store.count() == 15


def test_delete_by_document(filled) -> None:
    store, _, b = filled
    store.delete({"doc_id": "a"})
    assert store.count() == 3
    assert sorted(page.id for batch in store.scan() for page in batch) == sorted(p.id for p in b)


def test_candidates_best_first_with_filters(filled) -> None:
    store, a, b = filled
    best = store.candidates(b[1].summary, k=3)
    assert best[0].id == b[1].id and len(best) == 3
    assert best[0].score == pytest.approx(1.0, abs=1e-5) and best[0].score >= best[1].score >= best[2].score
    assert {c.id for c in store.candidates(b[1].summary, k=20, filter={"doc_id": "a"})} == {p.id for p in a}
    any_of = store.candidates(b[1].summary, k=20, filter={"doc_id": ["a", "b"], "page": 1})
    assert {c.id for c in any_of} == {a[0].id, b[0].id}
    rows = {p.id: len(p.vectors) for p in a + b}
    assert [c.rows for c in best] == [rows[c.id] for c in best]  # read with the candidate: no second lookup


def test_exact_candidates_rank_every_point(filled) -> None:
    store, a, b = filled
    query = a[4].summary
    found = store.candidates(query, k=15, exact=True)
    everything = {p.id: float(p.summary @ query) for p in a + b}
    assert [c.id for c in found] == sorted(everything, key=everything.get, reverse=True)
    np.testing.assert_allclose([c.score for c in found], [everything[c.id] for c in found], atol=1e-5)


def test_pages_round_trip_in_order(filled) -> None:
    store, a, b = filled
    wanted = [p for p in reversed(a + b)]  # not the order they were stored in
    got = store.pages([p.id for p in wanted])
    assert [g.id for g in got] == [p.id for p in wanted]
    assert [g.rows().shape for g in got] == [p.vectors.shape for p in wanted]
    for g, p in zip(got, wanted):
        np.testing.assert_allclose(g.rows(), p.vectors, atol=1e-3)  # float16 in the store


def test_pages_of_candidates_need_nothing_remembered(filled) -> None:
    """Candidates are explicit handles: a search in between changes nothing, and pages come
    back in the order asked, with the payload fields asked for."""
    store, a, b = filled
    found = store.candidates(a[2].summary, k=5)
    store.candidates(b[0].summary, k=5)  # another search between the two calls
    got = store.pages(list(reversed(found)), fields=("page",))
    by_id = {p.id: p for p in a + b}
    assert [g.id for g in got] == [c.id for c in reversed(found)]
    for g in got:
        np.testing.assert_allclose(g.rows(), by_id[g.id].vectors, atol=1e-3)
        assert g.payload == {"page": by_id[g.id].payload["page"]}
    assert isinstance(store.capabilities, Capabilities)


def test_payloads_with_and_without_field_selection(filled) -> None:
    store, a, _ = filled
    ids = [a[1].id, a[0].id]
    assert store.payloads(ids, ["page", "n_vectors"]) == [{"page": 2, "n_vectors": len(a[1].vectors)},
                                                          {"page": 1, "n_vectors": len(a[0].vectors)}]
    full = store.payloads(ids[:1])[0]
    assert full.items() >= {"doc_id": "a", "page": 2, "file": "a.pdf", "state": "partial"}.items()


def test_scan_in_batches(filled) -> None:
    store, a, b = filled
    batches = list(store.scan({"doc_id": "b"}, fields=("page",), batch=2))
    assert [len(batch) for batch in batches] == [2, 1]
    rows = [page for batch in batches for page in batch]
    assert sorted((r.id, r.payload["page"]) for r in rows) == sorted((p.id, p.payload["page"]) for p in b)
    assert all(r.vectors is None and r.payload.keys() == {"page"} for r in rows)

    by_id = {p.id: p for p in a + b}
    with_vectors = [page for batch in store.scan(vectors=True, batch=4) for page in batch]
    assert len(with_vectors) == 15
    for page in with_vectors:
        np.testing.assert_allclose(page.rows(), by_id[page.id].vectors, atol=1e-3)
        assert page.single is None
    singles = [page for batch in store.scan({"doc_id": "a"}, single=True) for page in batch]
    assert len(singles) == 12 and all(page.vectors is None for page in singles)
    for page in singles:
        np.testing.assert_allclose(page.single, by_id[page.id].summary, atol=1e-6)


def test_set_payload_by_filter(filled) -> None:
    store, a, _ = filled
    store.set_payload({"doc_id": "a"}, {"state": "complete", "path": "/new/a.pdf"})
    assert store.count({"state": "complete"}) == 12
    assert store.payloads([a[3].id], ["state", "path", "page"]) == [{"state": "complete", "path": "/new/a.pdf",
                                                                     "page": 4}]
    assert store.count({"doc_id": "b", "state": "partial"}) == 3


@pytest.mark.parametrize("other", [StoreSchema(8, 4, "another-encoder"), StoreSchema(16, 4, "test-encoder")])
def test_open_with_another_schema_is_refused(backend, other: StoreSchema) -> None:
    store = backend.create()
    with pytest.raises(IndexConfigError, match="built for encoder 'test-encoder'.*not encoder") as err:
        backend.reopen(store, other)
    assert str(other) in str(err.value) and "\n" not in str(err.value)


def test_reopen_keeps_data(filled, backend) -> None:
    store, a, _ = filled
    reopened = backend.reopen(store)
    assert reopened.count() == 15 and reopened.count({"doc_id": "a", "page": 3}) == 1
    np.testing.assert_allclose(reopened.pages([a[5].id])[0].rows(), a[5].vectors, atol=1e-3)
    assert [c.id for c in reopened.candidates(a[5].summary, k=1)] == [a[5].id]


def test_create_over_an_existing_store_is_refused(backend) -> None:
    store = backend.create()
    with pytest.raises(IndexConfigError, match="already"):
        backend.create_again(store)


def test_export_gives_back_what_was_upserted(filled) -> None:
    """What migrate copies: every point, its two vectors and its payload without store fields."""
    store, a, b = filled
    exported = {p.id: p for batch in store.export(batch=4) for p in batch}
    assert sorted(exported) == sorted(p.id for p in a + b)
    for want in a + b:
        got = exported[want.id]
        np.testing.assert_allclose(got.vectors, want.vectors, atol=1e-3)
        np.testing.assert_allclose(got.summary, want.summary, atol=1e-6)
        assert got.payload == want.payload


def test_pages_quantized_without_a_quantized_copy_are_the_floats(filled) -> None:
    store, a, _ = filled
    ids = [p.id for p in a[:3]]
    assert store.capabilities.quantized is None
    for got, want in zip(store.pages(ids, quantized=True), store.pages(ids)):
        np.testing.assert_array_equal(got.rows(), want.rows())


LEXICAL_SCHEMA = StoreSchema(multi_dim=8, single_dim=4, encoder="test-encoder", lexical=True)
#: Page texts of the lexical cases: "hydrogen" in one page, "table" in three, "the" a stopword.
TEXTS = ["the hydrogen table of tables", "a table of income", "income by state table", "nothing here", "",
         "state of the union"]


def _idf(n: int, df: int) -> float:
    return float(np.log1p((n - df + 0.5) / (df + 0.5)))


@pytest.fixture
def lexical(backend, make_pages):
    """Six complete pages of TEXTS (one has no word at all) and one partial page, with BM25 and
    term vectors (term ids: each word's length, so a test can count them by hand)."""
    from colretrieve.scoring.bm25 import words
    from colretrieve.scoring.lexical import bm25_document, term_set
    from colretrieve.storage.base import BM25, TERMS

    rng = np.random.default_rng(1)
    points = make_pages(rng, "lex", len(TEXTS) + 1)
    for point, text in zip(points, TEXTS + ["hydrogen hydrogen"]):
        point.sparse = {BM25: bm25_document(text), TERMS: term_set(len(w) for w in words(text))}
        point.payload["state"] = "complete"
    points[-1].payload["state"] = "partial"
    store = backend.create(LEXICAL_SCHEMA)
    store.upsert(points)
    return store, points


def test_stores_weigh_terms_by_idf_over_the_corpus(lexical, backend) -> None:
    from colretrieve.storage.base import TERMS

    store, points = lexical
    assert store.capabilities.lexical
    complete = {"state": "complete"}
    # term 8: "hydrogen" (page 1, and the partial page); 5: "table", "state" or "union" (pages
    # 1, 2, 3, 6); 99: nowhere. N: the six complete pages (the corpus filter's); local mode
    # counts all seven points of the collection, the partial one among them.
    got = store.idf(TERMS, [8, 5, 99, 8], complete)
    n = 6 if backend.corpus_filters else 7
    df8 = 1 if backend.corpus_filters else 2
    expected_unseen = np.log1p((store.count(complete) + 0.5) / 0.5)
    np.testing.assert_allclose(got, [_idf(n, df8), _idf(n, 4), expected_unseen, _idf(n, df8)], rtol=1e-5)
    assert len(store.idf(TERMS, [], complete)) == 0


def test_bm25_scores_of_chosen_pages(lexical, backend) -> None:
    from colretrieve.scoring.lexical import AVG_LEN, K1, B, bm25_query
    from colretrieve.storage.base import BM25

    store, points = lexical
    ids = [p.id for p in points[:4]]
    got = store.sparse_scores(BM25, bm25_query("Which table of hydrogen?"), ids, {"state": "complete"})
    n = 6 if backend.corpus_filters else 7

    def weight(tf: int, length: int) -> float:
        return tf * (K1 + 1) / (tf + K1 * (1 - B + B * length / AVG_LEN))

    idf_table, idf_hydrogen = _idf(n, 3), _idf(n, 1 if backend.corpus_filters else 2)
    # "tables" is its own word, "of" a stopword, "which" on no page
    expected = [idf_hydrogen * weight(1, 3) + idf_table * weight(1, 3), idf_table * weight(1, 2),
                idf_table * weight(1, 3), 0.0]
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    assert not store.sparse_scores(BM25, ([], []), ids).any()  # a query of stopwords only matches nothing
    reopened = backend.reopen(store, LEXICAL_SCHEMA)  # the statistics are the store's, kept on disk
    np.testing.assert_allclose(reopened.sparse_scores(BM25, bm25_query("Which table of hydrogen?"), ids,
                                                      {"state": "complete"}), expected, rtol=1e-5)


def test_export_carries_the_sparse_vectors(lexical) -> None:
    store, points = lexical
    exported = {p.id: p for batch in store.export() for p in batch}
    for point in points:
        for name, (ids, weights) in point.sparse.items():
            got_ids, got_weights = exported[point.id].sparse[name]
            order = np.argsort(got_ids)
            assert list(np.asarray(got_ids)[order]) == sorted(ids)
            np.testing.assert_allclose(np.asarray(got_weights)[order], np.asarray(weights)[np.argsort(ids)],
                                       rtol=1e-6)


def test_tenants_never_see_each_others_pages(backend, make_pages) -> None:
    """Two teams in one store, the same document stored by both: each sees, finds, marks and
    deletes its own copy only (tenancy.TenantView over the store)."""
    from dataclasses import replace

    from colretrieve.errors import ColretrieveError
    from colretrieve.tenancy import TenantView

    rng = np.random.default_rng(2)
    store = backend.create()
    shared = make_pages(rng, "shared", 3)
    a, b = TenantView(store, "team-a"), TenantView(store, "team.b")
    a.upsert(shared + make_pages(rng, "a-only", 2))
    b.upsert([replace(p, payload={**p.payload, "file": "b.pdf"}) for p in shared])
    ids_a = {p.id for batch in a.scan() for p in batch}
    ids_b = {p.id for batch in b.scan(fields=("file",)) for p in batch}
    assert store.count() == 8 and a.count() == 5 and b.count() == 3
    assert not ids_a & ids_b  # the same pages, stored twice under ids of their own
    for query in (shared[0].summary, -shared[0].summary):
        assert {c.id for c in a.candidates(query, k=20, exact=True)} == ids_a
        assert {c.id for c in b.candidates(query, k=20)} == ids_b
    a.set_payload({"doc_id": "shared"}, {"state": "complete"})
    assert a.count({"state": "complete"}) == 3 and b.count({"state": "complete"}) == 0
    b.delete({"doc_id": "shared"})
    assert b.count() == 0 and a.count({"doc_id": "shared"}) == 3
    with pytest.raises(ColretrieveError, match="tenant"):
        TenantView(store, "../other")
