"""The single-vector prefilters derived from an encoder: native (its own summary) and pooled
(the normalised mean of its multi-vectors), with the real MiniLM and a tiny ColPali."""

from pathlib import Path

import numpy as np
import pytest

from colretrieve.documents import PdfReader
from colretrieve.encoders import SingleVectorEncoder, load_prefilter
from colretrieve.errors import ColretrieveError

QUERIES = ["arrests by sex and age", "variances of the principal components"]


@pytest.fixture(scope="module")
def pages(samples: Path):
    with PdfReader(samples / "hsaur3__pca.pdf", "id", dpi=36) as reader:  # open while its pages are read
        yield [reader.page(n) for n in (7, 8)]


def test_native_is_the_encoders_own_single_vector_from_one_pass(text_encoder, pages) -> None:
    native = load_prefilter("native", text_encoder)
    assert isinstance(native, SingleVectorEncoder) and (native.name, native.dim) == ("native", text_encoder.summary_dim)
    encoded = text_encoder.encode_pages(pages)
    np.testing.assert_array_equal(native.embed_pages(pages, encoded), np.stack([e.summary for e in encoded]))
    tokens, singles = native.encode_queries(text_encoder, QUERIES)
    for got, want in zip(tokens, text_encoder.encode_queries(QUERIES)):
        np.testing.assert_allclose(got, want, atol=1e-6)
    np.testing.assert_allclose(singles, text_encoder.embed_queries(QUERIES), atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(singles, axis=1), 1.0, atol=1e-5)


def test_pooled_is_the_normalised_mean_of_the_multi_vectors(text_encoder, pages) -> None:
    pooled = load_prefilter("pooled", text_encoder)
    assert (pooled.name, pooled.dim) == ("pooled", text_encoder.dim)
    encoded = text_encoder.encode_pages(pages)
    for got, item in zip(pooled.embed_pages(pages, encoded), encoded):
        mean = item.vectors.astype(np.float64).mean(axis=0)
        np.testing.assert_allclose(got, mean / np.linalg.norm(mean), atol=1e-6)
    tokens, singles = pooled.encode_queries(text_encoder, QUERIES)
    for single, query in zip(singles, tokens):
        mean = query.astype(np.float64).mean(axis=0)
        np.testing.assert_allclose(single, mean / np.linalg.norm(mean), atol=1e-6)
    np.testing.assert_allclose(pooled.embed_queries(QUERIES), singles, atol=1e-6)


def test_native_needs_an_encoder_with_a_single_vector(tiny_colpali) -> None:
    colpali = tiny_colpali
    with pytest.raises(ColretrieveError, match="has no single vector of its own; use prefilter 'pooled'"):
        load_prefilter("native", colpali)
    assert load_prefilter("pooled", colpali).dim == colpali.dim
    with pytest.raises(ValueError, match="derived from an encoder"):
        load_prefilter("pooled")
