"""`--encoder text:<model>`: a tiny PyLate-style ColBERT saved by sentence-transformers, loaded
through colretrieve's real path, checked against the library's own encode and MaxSim."""

from pathlib import Path

import numpy as np
import pytest
from safetensors.torch import load_file, save_file

from colretrieve.documents import Page, PdfReader, Word
from colretrieve.encoders import load_encoder
from colretrieve.errors import ColretrieveError
from colretrieve.index import Index
from colretrieve.scoring import maxsim, pack

QUERIES = ["the quick brown fox", "census arrests by board", "table"]


def _page(words: list[Word]) -> Page:
    return Page(doc_id="d", path=Path("x.pdf"), page_no=1, page_count=1, width_pt=100, height_pt=100, dpi=72,
                render_at=lambda dpi: None, _read_words=lambda page: words)


def _line(text: str, y: float = 0.5) -> list[Word]:
    return [Word(t, 0.05 + 0.1 * k, y, 0.1 + 0.1 * k, y + 0.02) for k, t in enumerate(text.split())]


@pytest.fixture(scope="module", params=["bert", "modernbert"])
def colbert_dir(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """WordPiece (ColBERTv2, answerai-colbert) and byte-level BPE, whose tokens carry the space
    before their word (GTE-ModernColBERT)."""
    from tests.encoders import tiny

    return tiny.colbert(tmp_path_factory.mktemp("colbert"), request.param)


@pytest.fixture(scope="module")
def encoder(colbert_dir: Path):
    return load_encoder(f"text:{colbert_dir}", device="cpu", batch_size=2)


def test_vectors_and_scores_match_the_library(encoder, colbert_dir: Path) -> None:
    texts = ["the quick brown fox jumps over the lazy dog.", "principal components, variances; barplot table",
             "census arrests form board"]
    pages = [_page(_line(t)) for t in texts]
    encoded = encoder.encode_pages(pages)
    queries = encoder.encode_queries(QUERIES)
    assert encoder.name == f"colbert-grid:{colbert_dir}:32x32" and encoder.dim == 16 and not encoder.reads_images

    library = encoder.model  # the model card's way: encode_query, encode_document, similarity
    expected = library.similarity(library.encode_query(QUERIES), library.encode_document(texts)).numpy()
    flat, offsets = pack([pv.vectors for pv in encoded])
    assert np.abs(maxsim(queries, flat, offsets).numpy() - expected).max() < 1e-5
    assert all(len(q) == 16 for q in queries)  # [CLS] [Q] ... [SEP] and [MASK] expansion to the model's 16

    for text, pv in zip(texts, encoded):
        words = _line(text)
        placed = pv.cells[pv.cells >= 0]
        assert (pv.cells == -1).sum() == 3  # [CLS], [D] and [SEP] belong to no word
        assert len(placed) >= len(words)
        assert set(placed.tolist()) == {16 * 32 + int(w.center[0] * 32) for w in words}  # each word's own cell
    # each token on its own word's cell, in order: the cells never go back along the line
    assert all(np.all(np.diff(pv.cells[pv.cells >= 0]) >= 0) for pv in encoded)
    # "principal components, variances;": punctuation is on the skiplist, so dropped, not placed
    assert len(encoded[1].vectors) == len(library.encode_document(texts[1]))


def test_a_word_lands_in_the_cell_under_it(encoder) -> None:
    words = [Word("fox", 0.0, 0.0, 0.03, 0.02), Word("dog", 0.97, 0.97, 0.99, 0.99)]
    (pv,) = encoder.encode_pages([_page(words)])
    placed = pv.cells[pv.cells >= 0]
    assert set(placed.tolist()) == {0, 32 * 32 - 1} and placed[0] == 0 and placed[-1] == 32 * 32 - 1


def test_long_page_is_read_in_windows_not_cut(encoder) -> None:
    """The model reads 40 tokens at a time: 300 words make several windows, and every word is kept."""
    words = [Word(t, (k % 20) / 20, (k // 20) / 20, (k % 20) / 20 + 0.04, (k // 20) / 20 + 0.01)
             for k, t in enumerate(("quick brown fox lazy dog table census " * 43).split()[:300])]
    (pv,) = encoder.encode_pages([_page(words)])
    placed = pv.cells[pv.cells >= 0]
    assert len(placed) >= 300 and (pv.cells == -1).sum() >= 3 * 8  # 8+ windows, each with its 3 specials
    assert set(placed) == {int(c) for c in (np.array([w.center for w in words]) * 32).astype(int) @ [1, 32]}


def test_empty_page_gives_one_zero_vector(encoder) -> None:
    (pv,) = encoder.encode_pages([_page([])])
    assert pv.vectors.shape == (1, 16) and not pv.vectors.any()


def test_an_index_on_a_colbert_model(encoder, colbert_dir: Path, samples: Path, tmp_path: Path) -> None:
    """Ingest real PDFs and search: MaxSim scoring, the pooled prefilter, hits with regions."""
    with Index.create(tmp_path / "index", f"text:{colbert_dir}", model=encoder, dpi=36) as index:
        report = index.ingest([samples / "hsaur3__pca.pdf", samples / "tabula__census_table_12s0324.pdf"])
        assert report.failed == [] and report.documents == 2
        assert (index.config.scoring, index.config.prefilter) == ("maxsim", "pooled")
        query = "census arrests table"
        hits = index.search(query, k=20, exact=True)
        assert len(hits) == report.pages == 11 and hits[0].regions
        census = next(hit for hit in hits if "tabula" in hit.path)
        with PdfReader(samples / "tabula__census_table_12s0324.pdf", "id", dpi=36) as reader:
            (page,) = encoder.encode_pages([reader.page(1)])
        direct = maxsim(encoder.encode_queries([query]), *pack([page.vectors])).numpy()[0, 0]
        assert census.score == pytest.approx(direct, abs=0.05)  # stored in float16


def test_partial_weights_and_other_models_are_refused(colbert_dir: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    for f in colbert_dir.rglob("*"):
        if f.is_file():
            (broken / f.relative_to(colbert_dir)).parent.mkdir(parents=True, exist_ok=True)
            (broken / f.relative_to(colbert_dir)).write_bytes(f.read_bytes())
    weights = load_file(broken / "model.safetensors")
    del weights[next(k for k in weights if "layer" in k and k.endswith(".weight"))]
    save_file(weights, broken / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(ColretrieveError, match="do not match the model"):
        load_encoder(f"text:{broken}", device="cpu")
    with pytest.raises(ColretrieveError, match="not a sentence-transformers / PyLate multi-vector save"):
        load_encoder(f"text:{colbert_dir.parent / 'backbone'}", device="cpu")


def test_a_single_vector_or_stanford_model_is_refused(colbert_dir: Path, tmp_path: Path) -> None:
    """A dense sentence-transformers save would be converted with a projection of random
    weights; a Stanford save (artifact.metadata) is not read: both are one clear error."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.base.modules import Transformer
    from sentence_transformers.sentence_transformer.modules import Pooling

    backbone = Transformer(str(colbert_dir.parent / "backbone"))
    SentenceTransformer(modules=[backbone, Pooling(32)], device="cpu").save(str(tmp_path / "dense"))
    with pytest.raises(ColretrieveError, match="not a sentence-transformers / PyLate multi-vector save"):
        load_encoder(f"text:{tmp_path / 'dense'}", device="cpu")
    stanford = tmp_path / "stanford"
    stanford.mkdir()
    for name in ("config.json", "model.safetensors"):
        (stanford / name).write_bytes((colbert_dir.parent / "backbone" / name).read_bytes())
    (stanford / "artifact.metadata").write_text("{}")
    with pytest.raises(ColretrieveError, match="Stanford ColBERT save"):
        load_encoder(f"text:{stanford}", device="cpu")
