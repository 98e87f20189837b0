"""Fused MaxSim for CUDA in Triton: page vectors stream from memory once per block of query
tokens, the running maximum stays in registers, pages are ragged (offsets, no padding).

One program scores one page against up to BLOCK_T query tokens (the tokens of many queries
side by side, so a batch of queries shares each read of the page). Programs of the same page
run next to each other, so a batch wider than BLOCK_T finds the page in L2. The sum over each
query's tokens (and any token weights) is left to one small torch op afterwards.

Runs on the CPU under the Triton interpreter (TRITON_INTERPRET=1), which is how CI tests it.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl


@triton.jit
def _token_maxima(q_ptr, p_ptr, offsets_ptr, out_ptr, n_tokens, n_token_blocks, dim,
                  stride_q, stride_p, stride_out,
                  BLOCK_T: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr):
    pid = tl.program_id(0)
    page = pid // n_token_blocks
    t = (pid % n_token_blocks) * BLOCK_T + tl.arange(0, BLOCK_T)
    d = tl.arange(0, BLOCK_D)
    start = tl.load(offsets_ptr + page)
    end = tl.load(offsets_ptr + page + 1)
    q = tl.load(q_ptr + t[:, None] * stride_q + d[None, :], mask=(t[:, None] < n_tokens) & (d[None, :] < dim),
                other=0.0)
    best = tl.full((BLOCK_T,), float("-inf"), tl.float32)
    for n0 in range(start, end, BLOCK_N):
        n = n0 + tl.arange(0, BLOCK_N)
        p = tl.load(p_ptr + n[:, None] * stride_p + d[None, :], mask=(n[:, None] < end) & (d[None, :] < dim),
                    other=0.0)
        s = tl.dot(q, tl.trans(p))  # (BLOCK_T, BLOCK_N), float32 accumulation
        s = tl.where(n[None, :] < end, s, float("-inf"))
        best = tl.maximum(best, tl.max(s, axis=1))
    tl.store(out_ptr + t * stride_out + page, best, mask=t < n_tokens)


def token_maxima(q: torch.Tensor, flat: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
    """(n_tokens, n_pages) float32: each query token's best similarity on each page.

    `q` (tokens, dim) is cast to the pages' dtype (float16 or bfloat16) for the tensor cores;
    products accumulate in float32.
    """
    n_tokens, dim = q.shape
    n_pages = len(offsets) - 1
    out = torch.empty(n_tokens, n_pages, dtype=torch.float32, device=flat.device)
    if n_pages == 0 or n_tokens == 0:
        return out
    block_t = min(64, max(16, triton.next_power_of_2(n_tokens)))
    block_d = max(16, triton.next_power_of_2(dim))
    n_token_blocks = triton.cdiv(n_tokens, block_t)
    q = q.to(flat.dtype).contiguous()
    flat = flat.contiguous()
    offsets = offsets.to(device=flat.device, dtype=torch.int64).contiguous()
    _token_maxima[(n_pages * n_token_blocks,)](
        q, flat, offsets, out, n_tokens, n_token_blocks, dim,
        q.stride(0), flat.stride(0), out.stride(0),
        BLOCK_T=block_t, BLOCK_N=64, BLOCK_D=block_d)
    return out
