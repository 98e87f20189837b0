"""Zero-shot page labels (labels.py): the probabilities are the models' own (tiny CLIP and
SigLIP against transformers' logits_per_image), prompt ensembling, and labels stored with the
pages so filters find them (ingest --labels, classify)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from colretrieve import Index
from colretrieve.encoders.clip import DualEncoderPrefilter
from colretrieve.errors import ColretrieveError
from colretrieve.labels import Labels
from colretrieve.page import Page
from tests.helpers import cli


def page_of(image: Image.Image) -> Page:
    return Page(doc_id="d", path=Path("d.png"), page_no=1, page_count=1, width_pt=1.0, height_pt=1.0, dpi=72,
                render_at=lambda dpi: image, _read_words=lambda page: [])


@pytest.mark.parametrize(("kind", "padding"), [("clip", True), ("siglip", "max_length")])
def test_probabilities_are_the_models_own(tiny_models: dict[str, Path], kind: str, padding) -> None:
    prefilter = DualEncoderPrefilter(str(tiny_models[kind]), device="cpu")
    rng = np.random.default_rng(0)
    images = [Image.fromarray(rng.integers(0, 256, (48, 40, 3), dtype=np.uint8)) for _ in range(3)]
    labels = Labels(("invoice", "chart", "table", "form"), ("a page with a {}.",))
    ours = prefilter.label_probabilities(prefilter.embed_pages([page_of(i) for i in images]), labels.vectors(prefilter))
    prompts = [f"a page with a {name}." for name in labels.names]
    inputs = prefilter.processor(text=prompts, images=images, padding=padding, truncation=True, return_tensors="pt")
    with torch.inference_mode():
        logits = prefilter.model(**inputs).logits_per_image.double()
    theirs = (logits.sigmoid() if kind == "siglip" else logits.softmax(-1)).numpy()
    assert ours.shape == (3, 4) and np.abs(ours - theirs).max() < 1e-5
    if kind == "clip":
        assert np.allclose(ours.sum(axis=1), 1)


def test_templates_are_averaged_per_label(tiny_models: dict[str, Path]) -> None:
    prefilter = DualEncoderPrefilter(str(tiny_models["clip"]), device="cpu")
    templates = ("a page with a {}.", "a scan of a {}.")
    vectors = Labels(("chart", "table"), templates).vectors(prefilter)
    each = [Labels(("chart", "table"), (t,)).vectors(prefilter) for t in templates]
    mean = (each[0] + each[1]) / 2
    assert np.allclose(vectors, mean / np.linalg.norm(mean, axis=1, keepdims=True), atol=1e-6)


@pytest.mark.parametrize(("labels", "templates", "message"), [
    ("chart", (), "two or more names"), ("a,,", (), "two or more names"), ("a,b", ("no slot",), "needs one {}"),
    ("a,b", ("a {} {x}",), "no other braces"),
])
def test_bad_labels_are_one_clear_error(labels: str, templates: tuple[str, ...], message: str) -> None:
    with pytest.raises(ColretrieveError, match=message):
        Labels.parse(labels, templates)


def test_ingest_with_labels_then_filter_by_one(samples: Path, tmp_path: Path) -> None:
    index = str(tmp_path / "index")
    run = cli("ingest", str(samples), "--index", index, "--labels", "table,form,chart", "--quiet")
    assert run.returncode == 0, run.stderr
    with Index.open(index, read_only=True) as opened:
        pages = opened.search("table form chart census arrests principal", k=23, exact=True)
        stored = opened.store.payloads([p.id for batch in opened.store.scan() for p in batch],
                                       ["label", "file", "label_scores", "text"])
    assert len(pages) == 23 and {p.get("label") for p in stored} <= {"table", "form", "chart", None}
    assert all(("label" in p) == bool(p["text"]) for p in stored)  # a page without words gets no label
    labelled = [p for p in stored if "label" in p]
    assert all(abs(sum(p["label_scores"].values()) - 1) < 1e-4 for p in labelled)  # the text default: a softmax
    label = labelled[0]["label"]
    expected = sorted(p["file"] for p in labelled if p["label"] == label)
    found = cli("query", "page", "--index", index, "-k", "23", "--exact", "--json", "--filter", f"label={label}")
    assert found.returncode == 0, found.stderr
    assert sorted(Path(json.loads(line)["path"]).name for line in found.stdout.splitlines()) == expected


def test_classify_labels_every_page_of_an_index(index_copy: Path) -> None:
    run = cli("classify", "--index", str(index_copy), "--labels", "table,form,chart", "--template", "a {}",
              "--json", "--quiet")
    assert run.returncode == 0, run.stderr
    pages = [json.loads(line) for line in run.stdout.splitlines()]
    assert len(pages) == 23 and "words only" in run.stderr and "classified 23 pages" in run.stderr
    forms = sorted((Path(p["path"]).name, p["page"]) for p in pages if p["label"] == "form")
    assert forms and all(p["label"] or not p["label_scores"] for p in pages)
    found = cli("query", "form", "--index", str(index_copy), "-k", "23", "--exact", "--json", "--filter", "label=form")
    assert sorted((Path(h["path"]).name, h["page"]) for h in map(json.loads, found.stdout.splitlines())) == forms
    bad = cli("classify", "--index", str(index_copy), "--labels", "one")
    assert bad.returncode == 2 and "two or more names" in bad.stderr


def test_a_prefilter_not_trained_on_text_cannot_label(tiny_colpali) -> None:
    from colretrieve.encoders.prefilters import PooledPrefilter

    with pytest.raises(ColretrieveError, match="not trained to match pages with text"):
        Labels(("chart", "table")).check(PooledPrefilter(tiny_colpali))
