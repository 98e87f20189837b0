"""Fused MaxSim for CUDA in Triton: page vectors stream from memory once per block of query
tokens, the running maximum stays in registers, pages are ragged (offsets, no padding).

One program scores one page against up to BLOCK_T query tokens (the tokens of many queries
side by side, so a batch of queries shares each read of the page). Programs of the same page
run next to each other, so a batch wider than BLOCK_T finds the page in L2. Each step is one
tensor-core product of BLOCK_N page vectors by the token block, folded into a running
elementwise maximum; the reduction across page vectors happens once, at the end. A page's
last block repeats its last vector instead of masking (a repeat cannot change a maximum), so
the loop has no masks and no selects. The sum over each query's tokens (and any token
weights) is left to one small torch op afterwards, on the device.

Block shapes were chosen from a sweep on an H100 (README, "MaxSim kernel"): one query is
bound by HBM reads, a batch of queries by tensor-core work.

Runs on the CPU under the Triton interpreter (TRITON_INTERPRET=1), which is how CI tests it.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

#: Shared memory a program may fill with its pipeline stages and query block: under the H100's
#: 227 KiB, and leaves room for two programs a multiprocessor at dim 128.
SHARED_BYTES = 160 * 1024


@triton.jit
def _token_maxima(q_ptr, p_ptr, offsets_ptr, out_ptr, n_tokens, n_token_blocks, dim, stride_q, stride_p,
                  BLOCK_T: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr, EVEN_D: tl.constexpr):
    pid = tl.program_id(0)
    page = pid // n_token_blocks
    t = (pid % n_token_blocks) * BLOCK_T + tl.arange(0, BLOCK_T)
    d = tl.arange(0, BLOCK_D)
    start = tl.load(offsets_ptr + page)
    end = tl.load(offsets_ptr + page + 1)
    qt = tl.load(q_ptr + t[None, :] * stride_q + d[:, None], mask=(t[None, :] < n_tokens) & (d[:, None] < dim),
                 other=0.0)  # (BLOCK_D, BLOCK_T)
    best = tl.full((BLOCK_N, BLOCK_T), float("-inf"), tl.float32)
    for n0 in range(start, end, BLOCK_N):
        n = tl.minimum(n0 + tl.arange(0, BLOCK_N), end - 1)
        if EVEN_D:
            p = tl.load(p_ptr + n[:, None] * stride_p + d[None, :])
        else:
            p = tl.load(p_ptr + n[:, None] * stride_p + d[None, :], mask=d[None, :] < dim, other=0.0)
        best = tl.maximum(best, tl.dot(p, qt))  # (BLOCK_N, BLOCK_T), float32 accumulation
    tl.store(out_ptr + page * n_tokens + t, tl.max(best, axis=0), mask=t < n_tokens)


def block_shapes(n_tokens: int, dim: int) -> dict[str, int]:
    """Tile sizes: a short query streams long page blocks deep in flight (HBM-bound); a batch of
    queries takes 128 tokens by 64 page vectors, the fastest tensor-core tile measured. Wide
    vectors (dim 384, say) get fewer stages and shorter blocks to fit in shared memory."""
    block_t = min(128, max(16, triton.next_power_of_2(n_tokens)))
    block_d = max(16, triton.next_power_of_2(dim))
    block_n, stages = (128, 4) if block_t <= 32 else (64, 3)
    while (stages * block_n + block_t) * block_d * 2 > SHARED_BYTES and (stages > 2 or block_n > 32 or block_t > 16):
        if stages > 2:
            stages -= 1
        elif block_n > 32:
            block_n //= 2
        else:
            block_t //= 2
    return {"BLOCK_T": block_t, "BLOCK_N": block_n, "BLOCK_D": block_d, "num_stages": stages, "num_warps": 4}


def token_maxima(q: torch.Tensor, flat: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
    """(n_tokens, n_pages) float32 on the pages' device: each query token's best similarity on
    each page (a page with no vectors gets -inf).

    `q` (tokens, dim) is cast to the pages' dtype (float16 or bfloat16) for the tensor cores;
    products accumulate in float32.
    """
    n_tokens, dim = q.shape
    n_pages = len(offsets) - 1
    out = torch.empty(n_pages, n_tokens, dtype=torch.float32, device=flat.device)
    if n_pages == 0 or n_tokens == 0:
        return out.T
    shapes = block_shapes(n_tokens, dim)
    n_token_blocks = triton.cdiv(n_tokens, shapes["BLOCK_T"])
    q = q.to(flat.dtype).contiguous()
    flat = flat.contiguous()
    offsets = offsets.to(device=flat.device, dtype=torch.int64).contiguous()
    _token_maxima[(n_pages * n_token_blocks,)](q, flat, offsets, out, n_tokens, n_token_blocks, dim, q.stride(0),
                                                flat.stride(0), EVEN_D=shapes["BLOCK_D"] == dim, **shapes)
    return out.T
