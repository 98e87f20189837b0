"""ColPali-family encoders and CLIP/SigLIP prefilters: tiny random-weight checkpoints, saved to
folders, loaded through colretrieve's real path and checked against transformers' own scoring."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file
from transformers.utils import is_torchvision_available

from colretrieve.documents import PdfReader
from colretrieve.encoders import load_encoder, load_prefilter
from colretrieve.encoders.memory import halve_on_oom
from colretrieve.errors import ColretrieveError
from colretrieve.scoring import maxsim, pack

QUERIES = ["what are the variances of the principal components", "arrests by sex and age", "fox"]


def _neomme_chat(processor, conversations: list, task: str):
    """NeoMME's model-card inputs: its retrieval chat template (no process_images/process_queries)."""
    return processor.apply_chat_template(conversations, task=task, tokenize=True, return_dict=True,
                                         return_tensors="pt", processor_kwargs={"padding": True})


@pytest.mark.parametrize("family", ["colpali", "colqwen2", "colqwen2.5", "colmodernvbert", "neomme"])
def test_vectors_and_scores_match_transformers(family: str, tiny_models: dict[str, Path], pages) -> None:
    if family == "neomme" and not is_torchvision_available():  # its image processor has no PIL version
        with pytest.raises(ColretrieveError, match="NeoMME's image processor needs torchvision"):
            load_encoder(str(tiny_models[family]), device="cpu")
        pytest.skip("NeoMME needs torchvision")
    encoder = load_encoder(str(tiny_models[family]), device="cpu", batch_size=2)  # 3 pages: two batches
    kind = family.split(".")[0]  # ColQwen2.5 checkpoints are ColQwen2 ones over Qwen2.5-VL
    assert encoder.name == f"{kind}:{tiny_models[family]}" and encoder.dim == 16
    encoded = encoder.encode_pages(pages)
    queries = encoder.encode_queries(QUERIES)

    # the model card's way: the processor, the model, the processor's own MaxSim
    processor, model = encoder.processor, encoder.model
    with torch.no_grad():
        if family == "neomme":
            page_inputs = _neomme_chat(processor, [[{"role": "user", "content": [{"type": "image", "image": p.image}]}]
                                                   for p in pages], "document")
            query_inputs = _neomme_chat(processor, [[{"role": "user", "content": q}] for q in QUERIES], "query")
        else:
            page_inputs = processor.process_images(images=[p.image for p in pages])
            query_inputs = processor.process_queries(text=QUERIES)
        page_emb = model(**page_inputs).embeddings
        query_emb = model(**query_inputs).embeddings
    if family == "neomme":
        from sentence_transformers.util import mean_maxsim  # the model card's: MaxSim / query tokens

        expected = mean_maxsim(query_emb, page_emb, a_mask=query_inputs["attention_mask"],
                               b_mask=page_inputs["attention_mask"]).numpy()
        expected *= query_inputs["attention_mask"].sum(1, keepdim=True).numpy()
    else:
        expected = processor.score_retrieval(query_emb, page_emb).numpy()
    flat, offsets = pack([pv.vectors for pv in encoded])
    assert np.abs(maxsim(queries, flat, offsets).numpy() - expected).max() < 1e-5

    for i, pv in enumerate(encoded):
        assert len(pv.vectors) == int(page_inputs["attention_mask"][i].sum())  # padding dropped, nothing else
        assert np.allclose(np.linalg.norm(pv.vectors, axis=1), 1, atol=1e-5)
        rows, cols = pv.grid
        image_tokens = int((page_inputs["input_ids"][i] == processor.image_token_id).sum())
        placed = pv.cells[pv.cells >= 0]
        if family == "colmodernvbert":  # tiles cover the grid once; the thumbnail lies over them again
            assert len(placed) == image_tokens == rows * cols + 4 and set(placed) == set(range(rows * cols))
        elif family == "neomme":  # one <img> opens the page; each patch lies where the processor's 2-D positions say
            assert len(placed) + 1 == image_tokens == rows * cols + 1 and sorted(placed) == list(range(rows * cols))
            positions = page_inputs["position_ids"][:, i, page_inputs["attention_mask"][i].bool()].numpy() - 2
            assert (positions[:, pv.cells >= 0] == [placed // cols, placed % cols]).all()
        else:
            assert len(placed) == image_tokens == rows * cols and sorted(placed) == list(range(rows * cols))
    for q, inputs in zip(queries, query_inputs["attention_mask"]):
        assert len(q) == int(inputs.sum()) and np.allclose(np.linalg.norm(q, axis=1), 1, atol=1e-5)
    if family == "colpali":
        assert all(pv.grid == (8, 8) and len(pv.vectors) > 64 for pv in encoded)  # 64 patches + prompt tokens
    else:
        assert family == "colmodernvbert" or encoded[0].grid != encoded[1].grid  # ColQwen2, NeoMME keep aspect ratios
    if family == "colqwen2.5":
        assert type(encoder.model.vlm).__name__ == "Qwen2_5_VLModel"


@pytest.mark.parametrize("family", ["clip", "siglip"])
def test_dual_encoder_prefilter(family: str, tiny_models: dict[str, Path], pages) -> None:
    prefilter = load_prefilter(str(tiny_models[family]), device="cpu", batch_size=2)
    page_vectors = prefilter.embed_pages(pages)
    query_vectors = prefilter.embed_queries(QUERIES)
    assert page_vectors.shape == (3, prefilter.dim) and query_vectors.shape == (3, prefilter.dim)
    assert np.allclose(np.linalg.norm(page_vectors, axis=1), 1, atol=1e-5)
    with torch.no_grad():  # the same numbers as the model's own feature functions
        direct = prefilter.model.get_image_features(**prefilter.processor(images=[pages[0].image], return_tensors="pt"))
    direct = direct.pooler_output[0].numpy()
    assert np.allclose(page_vectors[0], direct / np.linalg.norm(direct), atol=1e-5)


def test_missing_model_is_one_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    with pytest.raises(ColretrieveError, match=r"model vidore/colpali-v1.3-hf is not a local folder and not in the "
                                               r"Hugging Face cache, and offline .*huggingface-cli download "
                                               r"vidore/colpali-v1.3-hf"):
        load_encoder("vidore/colpali-v1.3-hf")
    with pytest.raises(ColretrieveError, match="not a hub id"):
        load_encoder("no/such/folder")


def test_partial_weights_are_refused(tiny_models: dict[str, Path], tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    for f in tiny_models["colpali"].iterdir():
        (broken / f.name).write_bytes(f.read_bytes())
    weights = load_file(broken / "model.safetensors")
    dropped = next(k for k in weights if "embedding_proj_layer" in k)
    del weights[dropped]
    save_file(weights, broken / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(ColretrieveError, match="do not match the model: missing .*embedding_proj_layer"):
        load_encoder(str(broken), device="cpu")


def test_other_model_types_are_named(tiny_models: dict[str, Path]) -> None:
    with pytest.raises(ColretrieveError, match="is a 'clip' model; page encoders are colpali, colqwen2"):
        load_encoder(str(tiny_models["clip"]), device="cpu")
    with pytest.raises(ColretrieveError, match="is a 'colpali' model; prefilter models are clip, siglip"):
        load_prefilter(str(tiny_models["colpali"]), device="cpu")


def test_out_of_memory_halves_the_batch() -> None:
    seen: list[int] = []
    sizes: list[int] = []

    def step(items: list[int]) -> list[int]:
        seen.append(len(items))
        if len(items) > 2:
            raise torch.OutOfMemoryError("CUDA out of memory")
        return [x * 10 for x in items]

    assert halve_on_oom(step, [1, 2, 3, 4, 5], sizes.append) == [10, 20, 30, 40, 50]
    assert seen == [5, 2, 3, 1, 2] and sizes == [2, 1]
    with pytest.raises(torch.OutOfMemoryError):
        halve_on_oom(lambda items: (_ for _ in ()).throw(torch.OutOfMemoryError("x")), [1])


def test_hub_id_resolves_from_the_local_cache_offline(tiny_models: dict[str, Path], tmp_path: Path,
                                                      samples: Path) -> None:
    """A hub id loads from a Hugging Face cache with HF_HUB_OFFLINE=1, as on an air-gapped machine."""
    snapshot = tmp_path / "hub" / "models--tiny-org--colpali" / "snapshots" / ("0" * 40)
    snapshot.mkdir(parents=True)
    for f in tiny_models["colpali"].iterdir():
        (snapshot / f.name).symlink_to(f)
    (tmp_path / "hub" / "models--tiny-org--colpali" / "refs").mkdir()
    (tmp_path / "hub" / "models--tiny-org--colpali" / "refs" / "main").write_text("0" * 40)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(tmp_path / "hub")}
    run = subprocess.run([sys.executable, "-m", "colretrieve", "ingest", str(samples / "hsaur3__pca.pdf"),
                          "--index", str(tmp_path / "index"), "--encoder", "tiny-org/colpali", "--ocr", "none",
                          "--json"], capture_output=True, text=True, env=env, timeout=600)
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    with PdfReader(samples / "hsaur3__pca.pdf", "id", dpi=36) as reader:
        assert (report["pages"], report["failed"]) == (reader.page_count, [])
    config = json.loads((tmp_path / "index" / "index.json").read_text())
    assert (config["encoder_id"], config["prefilter"], config["scoring"]) == ("colpali:tiny-org/colpali", "pooled",
                                                                               "maxsim")
