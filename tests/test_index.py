"""Index end to end on the sample PDFs: real PDFs, real qdrant-edge, real MiniLM, real OCR.

The lock is tests/test_lock.py; refused and repaired index directories are tests/test_location.py."""

from pathlib import Path

import pytest

from colretrieve import ColretrieveError, Index
from colretrieve.documents import PdfReader, content_hash


@pytest.mark.parametrize(("question", "file", "page"), [
    ("How many people were arrested in 2009, broken down by sex and age?", "tabula__census_table_12s0324.pdf", 1),
    ("barplot showing the variances of the principal components", "hsaur3__pca.pdf", 8),
    ("why should the review board grant the requested change of discharge", "pikepdf__dd_form_293.pdf", 2),
])
def test_search_finds_the_answer_page(built_index: Path, question: str, file: str, page: int, text_encoder) -> None:
    with Index.open(built_index, model=text_encoder) as index:
        hits = index.search(question, k=3)
    assert [h.rank for h in hits] == [1, 2, 3]
    assert hits[0].score >= hits[1].score >= hits[2].score
    assert (Path(hits[0].path).name, hits[0].page) == (file, page)
    assert hits[0].text and hits[0].page_count >= page


def test_scanned_brochure_is_found_through_ocr(built_index: Path, text_encoder) -> None:
    with Index.open(built_index, model=text_encoder) as index:
        docs = {Path(d["path"]).name: d for d in index.documents()}
        hits = index.search("loudspeakers and turntable from Linn", k=1,
                            filter={"file": "ocrmypdf__linn_brochure_scan.pdf"})
    assert docs["ocrmypdf__linn_brochure_scan.pdf"]["vectors"] > 50  # OCR found words on the scan
    assert hits[0].page == 1 and "linn" in hits[0].text.lower()


def test_exact_search_agrees_with_two_stage_on_a_small_index(built_index: Path, text_encoder) -> None:
    with Index.open(built_index, model=text_encoder) as index:
        fast = index.search("principal components of the heptathlon results", k=5)
        exact = index.search("principal components of the heptathlon results", k=5, exact=True)
    assert [(h.path, h.page) for h in fast] == [(h.path, h.page) for h in exact]  # 23 pages < candidates
    assert [h.score for h in fast] == pytest.approx([h.score for h in exact], abs=1e-5)


def test_filter_restricts_results(built_index: Path, text_encoder) -> None:
    with Index.open(built_index, model=text_encoder) as index:
        hits = index.search("table of results", k=10, filter={"file": "revtex__apssamp.pdf"})
    assert len(hits) == 7 and {Path(h.path).name for h in hits} == {"revtex__apssamp.pdf"}


def test_a_selective_filter_still_gives_k_hits_and_the_exact_ranking(built_index: Path, text_encoder) -> None:
    """The filter goes into the prefilter's own search, so two pages matching it among 23 are
    both found with only 2 candidates, in the order exact search gives."""
    where = {"file": {"not": ["revtex__apssamp.pdf", "hsaur3__pca.pdf"]}, "page": {"gte": 2, "lte": 3}}
    with Index.open(built_index, model=text_encoder) as index:
        fast = index.search("application for review of discharge", k=3, filter=where, candidates=3)
        exact = index.search("application for review of discharge", k=3, filter=where, exact=True)
        matching = [(Path(p["path"]).name, p["page"]) for _, p in index.pages(("path", "page"))
                    if Path(p["path"]).name not in ("revtex__apssamp.pdf", "hsaur3__pca.pdf") and 2 <= p["page"] <= 3]
    assert len(fast) == min(3, len(matching)) > 0
    assert [(h.path, h.page) for h in fast] == [(h.path, h.page) for h in exact]
    assert {(Path(h.path).name, h.page) for h in fast} <= set(matching)


def test_hit_image_is_rerendered_from_the_pdf(built_index: Path, text_encoder) -> None:
    with Index.open(built_index, model=text_encoder) as index:
        (hit,) = index.search("heptathlon scatterplot matrix", k=1)
    with PdfReader(Path(hit.path), hit.doc_id, dpi=36) as reader:
        expected = reader.page(hit.page).image
    image = hit.image(dpi=36)
    assert image.size == expected.size and image.tobytes() == expected.tobytes()


def test_reingest_adds_nothing_and_reports_unchanged(index_copy: Path, samples: Path, text_encoder) -> None:
    with Index.open(index_copy, model=text_encoder) as index:
        before = index.stats()
        report = index.ingest([samples])
        after = index.stats()
    assert (report.documents, report.pages, report.unchanged, report.failed) == (0, 0, 5, [])
    assert after["pages"] == before["pages"] == 23 and after["vectors"] == before["vectors"]


def test_edited_file_replaces_its_old_pages_and_a_move_keeps_them(index_copy: Path, tmp_path: Path,
                                                                   samples: Path, text_encoder) -> None:
    import pikepdf

    doc = tmp_path / "paper.pdf"

    def write_version(pages: int) -> None:
        with pikepdf.open(samples / "revtex__apssamp.pdf") as pdf:
            del pdf.pages[pages:]
            pdf.save(doc)

    with Index.open(index_copy, model=text_encoder) as index:
        write_version(6)
        assert index.ingest([doc]).pages == 6
        write_version(5)  # edited in place: new content hash, same path
        report = index.ingest([doc])
        docs = {d["doc_id"]: d for d in index.documents()}
        assert report.pages == 5 and docs[content_hash(doc)]["pages"] == 5
        assert index.stats()["pages"] == 23 + 5  # the 6-page version is gone

        moved = doc.rename(tmp_path / "moved.pdf")
        report = index.ingest([moved])
        assert (report.pages, report.unchanged) == (0, 1)
        (hit,) = index.search("wide table spanning two columns", k=1, filter={"doc_id": content_hash(moved)})
    assert hit.path == str(moved.resolve())  # the new place is recorded, so hit.image() still works
    assert hit.image(dpi=20).size[0] > 0


def test_delete_by_path_and_by_doc_id_prefix(index_copy: Path, samples: Path) -> None:
    with Index.open(index_copy) as index:
        assert index.delete(samples / "hsaur3__pca.pdf") == 10
        census = content_hash(samples / "tabula__census_table_12s0324.pdf")
        assert index.delete(census[:10]) == 1
        with pytest.raises(ColretrieveError, match="no such document"):
            index.delete("0000000000")
        assert index.stats()["documents"] == 3 and index.stats()["pages"] == 12


def test_a_page_deleted_while_it_is_searched_is_searched_again(index_copy: Path, text_encoder) -> None:
    """A reader's search answered while the ingest deletes an old version of a file: the pages
    it chose are gone when it reads them; it searches again rather than failing."""
    question = "How many people were arrested in 2009, broken down by sex and age?"
    with Index.open(index_copy, model=text_encoder) as index:
        store = index.store
        choose = store.candidates
        gone: list[str] = []

        def candidates_then_a_delete(*args, **kwargs):
            found = choose(*args, **kwargs)
            store.candidates = choose  # the writer deletes once, between this choice and the reading
            doc_id = store.payloads([found[0].id], ("doc_id",))[0]["doc_id"]
            store.delete({"doc_id": doc_id})
            gone.append(doc_id)
            return found

        store.candidates = candidates_then_a_delete
        hits = index.search(question, k=3)
    assert gone and hits and all(hit.doc_id != gone[0] for hit in hits)
