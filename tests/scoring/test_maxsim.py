import importlib
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from colretrieve.scoring import cpu_kernel, maxsim, maxsim_pages, maxsim_reference, pack

impl = importlib.import_module("colretrieve.scoring.maxsim")  # the module; the package exports the function


@pytest.fixture(params=["fused", "portable"])
def cpu_path(request, monkeypatch) -> str:
    """Each test below runs on both CPU paths: the AVX-512 kernel and the blocked matmul."""
    if request.param == "fused" and not cpu_kernel.available():
        pytest.skip(f"CPU MaxSim path here: {cpu_kernel.name()}")
    if request.param == "portable":
        monkeypatch.setattr(cpu_kernel, "available", lambda: False)
    return request.param


def _ragged(rng: np.random.Generator, n: int, dim: int, most: int, dtype=np.float32) -> list[np.ndarray]:
    return [rng.standard_normal((int(rng.integers(1, most)), dim)).astype(dtype) for _ in range(n)]


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
@pytest.mark.parametrize("block", [7, 1 << 14])  # tiny blocks split the page set many times
def test_matches_float64_reference_on_ragged_pages(dtype, block, cpu_path, monkeypatch) -> None:
    rng = np.random.default_rng(7)
    pages = _ragged(rng, 40, 16, 60, dtype)
    queries = _ragged(rng, 5, 16, 12)
    monkeypatch.setattr(impl, "BLOCK_VECTORS", block)
    expected = maxsim_reference(queries, [p.astype(np.float32) for p in pages])
    for got in (maxsim(queries, *pack(pages)).numpy(), maxsim_pages(queries, pages)):
        assert got.shape == (5, 40)
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-4)


def test_padded_and_ragged_pages_score_the_same(cpu_path) -> None:
    """Zero padding would change MaxSim for negative similarities; packing must not pad."""
    rng = np.random.default_rng(1)
    pages = [np.abs(p) for p in _ragged(rng, 6, 8, 10)]
    query = [-np.abs(rng.standard_normal((3, 8))).astype(np.float32)]  # every similarity < 0
    width = max(len(p) for p in pages)
    per_page = [maxsim(query, *pack([p]))[0, 0].item() for p in pages]
    together = maxsim(query, *pack(pages))[0].tolist()
    np.testing.assert_allclose(together, per_page, rtol=1e-6)
    padded = [np.vstack([p, np.zeros((width - len(p), 8), np.float32)]) for p in pages]
    assert not np.allclose(maxsim(query, *pack(padded))[0].numpy(), together)


def test_token_weights_scale_each_tokens_best_match(cpu_path) -> None:
    rng = np.random.default_rng(5)
    pages = _ragged(rng, 12, 8, 20)
    queries = _ragged(rng, 3, 8, 6)
    weights = [rng.uniform(0.1, 3.0, len(q)).astype(np.float32) for q in queries]
    got = maxsim(queries, *pack(pages), weights=weights).numpy()
    np.testing.assert_allclose(got, maxsim_reference(queries, pages, weights), rtol=1e-5, atol=1e-4)


def test_positive_token_weights_can_ride_on_the_query_vectors(cpu_path) -> None:
    """w * max<q, d> = max<w * q, d> for w > 0: IDF weights can be folded into the query's token
    vectors, so a store that only knows plain MaxSim (a Qdrant server) scores as we do."""
    rng = np.random.default_rng(6)
    pages = _ragged(rng, 12, 8, 20)
    queries = _ragged(rng, 3, 8, 6)
    weights = [rng.uniform(0.1, 3.0, len(q)).astype(np.float32) for q in queries]
    scaled = [q * w[:, None] for q, w in zip(queries, weights)]
    np.testing.assert_allclose(maxsim(scaled, *pack(pages)).numpy(), maxsim(queries, *pack(pages), weights=weights),
                               rtol=1e-5, atol=1e-5)
    negative = [-w for w in weights]  # the identity needs w > 0: a negative weight turns max into min
    flipped = [q * w[:, None] for q, w in zip(queries, negative)]
    assert not np.allclose(maxsim(flipped, *pack(pages)).numpy(), maxsim(queries, *pack(pages), weights=negative))


def test_empty_candidate_list() -> None:
    flat, offsets = pack([])
    assert maxsim([np.ones((2, 4), np.float32)], flat, offsets).shape == (1, 0)


def test_query_order_is_kept() -> None:
    page = [torch.eye(4)]
    queries = [np.eye(4, dtype=np.float32)[:1], np.eye(4, dtype=np.float32)[:3]]
    assert maxsim(queries, *pack(page))[:, 0].tolist() == [1.0, 3.0]



TRITON_CHECK = """
import numpy as np, torch
from colretrieve.scoring import maxsim, maxsim_reference, pack
from colretrieve.scoring.triton_maxsim import token_maxima
rng = np.random.default_rng(3)
pages = [rng.standard_normal((int(rng.integers(1, 150)), {dim})).astype(np.float16) for _ in range(9)]
queries = [rng.standard_normal((n, {dim})).astype(np.float32) for n in (5, 20, 150)]  # 175: two token blocks
weights = [rng.uniform(0.5, 2, len(q)).astype(np.float32) for q in queries]
flat, offsets = pack(pages)
flat, offsets = flat.to("{device}"), offsets.to("{device}")
expected = maxsim_reference([q.astype(np.float16) for q in queries], pages, weights)  # kernel multiplies in float16
best = token_maxima(torch.cat([torch.from_numpy(q) for q in queries]).to(flat.device), flat, offsets).cpu()
best *= torch.from_numpy(np.concatenate(weights))[:, None]
got = torch.zeros(3, 9).index_add_(0, torch.repeat_interleave(torch.arange(3), torch.tensor([5, 20, 150])), best)
np.testing.assert_allclose(got.numpy(), expected, rtol=1e-4, atol=5e-3)
if flat.is_cuda:  # and maxsim itself sends CUDA pages there
    np.testing.assert_allclose(maxsim(queries, flat, offsets, weights).numpy(), expected, rtol=1e-4, atol=5e-3)
print("ok")
"""


@pytest.mark.parametrize("dim", [128, 384])
def test_triton_kernel_under_the_interpreter(dim: int) -> None:
    """The CUDA kernel's own code, run by Triton's CPU interpreter: how CI checks it without a GPU."""
    pytest.importorskip("triton", reason="triton is not installed")
    run = subprocess.run([sys.executable, "-c", TRITON_CHECK.format(dim=dim, device="cpu")], capture_output=True,
                         text=True, timeout=600, env={**os.environ, "TRITON_INTERPRET": "1"})
    assert run.returncode == 0 and run.stdout.strip() == "ok", run.stderr[-2000:]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
@pytest.mark.parametrize("dim", [128, 384])
def test_triton_kernel_on_the_gpu(dim: int) -> None:
    pytest.importorskip("triton")
    run = subprocess.run([sys.executable, "-c", TRITON_CHECK.format(dim=dim, device="cuda")], capture_output=True,
                         text=True, timeout=600)
    assert run.returncode == 0 and run.stdout.strip() == "ok", run.stderr[-2000:]


@pytest.mark.parametrize("dim", [64, 128, 384, 768])
def test_triton_blocks_fit_in_shared_memory(dim: int) -> None:
    """A GPU refuses a program whose pipeline stages outgrow shared memory (dim 384 once did)."""
    triton_maxsim = pytest.importorskip("colretrieve.scoring.triton_maxsim", reason="triton is not installed")
    for n_tokens in (1, 20, 33, 175, 640):
        shapes = triton_maxsim.block_shapes(n_tokens, dim)
        stages = (shapes["num_stages"] * shapes["BLOCK_N"] + shapes["BLOCK_T"]) * shapes["BLOCK_D"] * 2
        assert stages <= triton_maxsim.SHARED_BYTES and shapes["BLOCK_D"] >= dim
        assert shapes["BLOCK_T"] >= min(n_tokens, 16) and shapes["BLOCK_N"] >= 16
