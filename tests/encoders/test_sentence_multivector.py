"""Multi-vector page models saved by sentence-transformers (>= 6): tiny ColPali and ColQwen2
checkpoints wrapped the library's documented way, saved, loaded through colretrieve's real path
(`load_encoder`) and checked against the library's own encode and MaxSim."""

import re
from pathlib import Path

import numpy as np
import pytest
from safetensors.torch import load_file, save_file

from colretrieve.encoders import load_encoder
from colretrieve.encoders.sentence_multivector import SentenceMultiVectorEncoder, is_sentence_multivector
from colretrieve.errors import ColretrieveError
from colretrieve.scoring import maxsim, pack

QUERIES = ["what are the variances of the principal components", "arrests by sex and age", "fox"]


@pytest.fixture(scope="module")
def st_models(tiny_models: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The tiny ColPali scoring its image patches alone (`keep_only_token_ids`, colpali-engine's
    `mask_non_image_embeddings`), and the tiny ColQwen2 scoring every real token, as its
    processor's `score_retrieval` does; each saved as a sentence-transformers MultiVectorEncoder."""
    from sentence_transformers import MultiVectorEncoder
    from sentence_transformers.base.modules import Transformer
    from sentence_transformers.multi_vector_encoder.modules import MultiVectorMask

    root = tmp_path_factory.mktemp("st-models")
    out = {}
    for family, image_only in (("colpali", True), ("colqwen2", False)):
        backbone = Transformer(str(tiny_models[family]), transformer_task="retrieval")
        processor = backbone.processor
        keep = [processor.tokenizer.convert_tokens_to_ids(processor.image_token)] if image_only else None
        model = MultiVectorEncoder(modules=[backbone, MultiVectorMask(keep_only_token_ids=keep)], device="cpu")
        model.save(str(root / family), create_model_card=False)
        out[family] = root / family
    return out


@pytest.mark.parametrize("family", ["colpali", "colqwen2"])
def test_vectors_and_scores_match_sentence_transformers(family: str, st_models: dict[str, Path], pages) -> None:
    folder = st_models[family]
    encoder = load_encoder(str(folder), device="cpu", batch_size=2)  # 3 pages: two batches
    assert isinstance(encoder, SentenceMultiVectorEncoder) and encoder.kind == family
    assert encoder.name == f"st:{folder}" and encoder.dim == 16 and encoder.source == str(folder)
    encoded = encoder.encode_pages(pages)
    queries = encoder.encode_queries(QUERIES)

    # the model card's way: encode_query, encode_document, similarity
    library, images = encoder.model, [p.image for p in pages]
    documents = library.encode_document(images)
    expected = library.similarity(library.encode_query(QUERIES), documents).numpy()
    flat, offsets = pack([pv.vectors for pv in encoded])
    assert np.abs(maxsim(queries, flat, offsets).numpy() - expected).max() < 1e-5

    features = library.encode_document(images, output_value=None)
    image_token = encoder.processor.image_token_id
    for pv, document, feature in zip(encoded, documents, features):
        assert np.allclose(pv.vectors, document.numpy(), atol=1e-6)  # the vectors the scoring mask keeps, no more
        assert np.allclose(np.linalg.norm(pv.vectors, axis=1), 1, atol=1e-5)
        rows, cols = pv.grid
        image_tokens = int((feature["input_ids"] == image_token).sum())
        placed = pv.cells[pv.cells >= 0]
        assert len(placed) == image_tokens == rows * cols and sorted(placed) == list(range(rows * cols))
        if family == "colpali":  # image patches alone: every vector has its cell
            assert pv.grid == (8, 8) and len(pv.vectors) == 64 and len(placed) == len(pv.cells)
        else:  # the prompt's tokens are scored too, on no cell
            assert (pv.cells == -1).sum() == len(pv.cells) - image_tokens > 0
    for q, expected_q in zip(queries, library.encode_query(QUERIES)):
        assert len(q) == len(expected_q) and np.allclose(np.linalg.norm(q, axis=1), 1, atol=1e-5)
    if family == "colqwen2":
        assert encoded[0].grid != encoded[1].grid  # ColQwen2 keeps aspect ratios


def test_same_vectors_as_the_transformers_path(st_models: dict[str, Path], tiny_models: dict[str, Path],
                                              pages) -> None:
    """Scoring every real token, the sentence-transformers path gives what colretrieve's
    transformers-native encoder gives for the same weights: vectors, cells and queries."""
    ours = load_encoder(str(st_models["colqwen2"]), device="cpu")
    native = load_encoder(str(tiny_models["colqwen2"]), device="cpu")
    assert ours.name != native.name  # different pipelines, never mixed in one index
    for a, b in zip(ours.encode_pages(pages[:2]), native.encode_pages(pages[:2])):
        assert a.grid == b.grid and np.array_equal(a.cells, b.cells) and np.allclose(a.vectors, b.vectors, atol=1e-5)
    for a, b in zip(ours.encode_queries(QUERIES), native.encode_queries(QUERIES)):
        assert np.allclose(a, b, atol=1e-5)


def test_detection_by_the_checkpoints_own_files(st_models: dict[str, Path], tiny_models: dict[str, Path]) -> None:
    assert is_sentence_multivector(st_models["colpali"])
    assert not is_sentence_multivector(tiny_models["colpali"])  # a bare transformers save: ColVisionEncoder's
    with pytest.raises(ColretrieveError, match="not a sentence-transformers multi-vector model"):
        SentenceMultiVectorEncoder(str(tiny_models["colpali"]), device="cpu")


def test_partial_weights_are_refused(st_models: dict[str, Path], tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    for f in st_models["colpali"].rglob("*"):
        if f.is_file():
            (broken / f.relative_to(st_models["colpali"])).parent.mkdir(parents=True, exist_ok=True)
            (broken / f.relative_to(st_models["colpali"])).write_bytes(f.read_bytes())
    weights = load_file(broken / "model.safetensors")
    del weights[next(k for k in weights if "embedding_proj_layer" in k)]
    save_file(weights, broken / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(ColretrieveError, match="do not match the model: .*embedding_proj_layer"):
        load_encoder(str(broken), device="cpu")


def test_a_text_model_is_pointed_to_the_text_encoder(tmp_path: Path) -> None:
    from tests.encoders import tiny

    colbert = tiny.colbert(tmp_path)
    hint = f"reads text, not page images: .* --encoder text:{re.escape(str(colbert))}$"
    with pytest.raises(ColretrieveError, match=hint):
        load_encoder(str(colbert), device="cpu")
