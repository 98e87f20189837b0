"""MaxSim throughput: colretrieve's kernel beside transformers' `ColPaliProcessor.score_retrieval`
on the same vectors, and both as a fraction of what this machine can do.

Shapes: ColPali (1,030 vectors a page) and ColQwen2 (about 750, ragged ±25%), dim 128,
20 tokens a query, 1 and 32 queries, N pages (float16, as stored). The machine's limits are
measured in the same run: a large float32 matmul for FLOP/s, a large read for bandwidth.
"Bytes" are the stored page vectors read once per pass; "FLOPs" are 2·tokens·vectors·dim;
"speedup" is colretrieve's pages/s divided by that row's ("portable" is colretrieve's own
path for CPUs without AVX-512, run on the same inputs).

    python benchmarks/bench_maxsim.py [--pages 1000,10000] [--peer-pages 1000] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import time

import torch

from colretrieve.scoring import cpu_kernel, maxsim

DIM = 128
TOKENS = 20
SHAPES = {"colpali": (1030, 0), "colqwen2": (750, 190)}  # (mean vectors, ± spread)


def best_of(fn, repeat: int = 3) -> float:
    fn()
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times)


def machine_limits() -> dict[str, float]:
    """Measured float32 matmul FLOP/s and streaming read bandwidth, on all cores."""
    a, b = torch.randn(4096, 4096), torch.randn(4096, 4096)
    flops = 2 * 4096**3 / best_of(lambda: a @ b, repeat=5)
    big = torch.ones(1 << 29, dtype=torch.float32)  # 2 GiB, far beyond the caches
    bandwidth = big.numel() * 4 / best_of(lambda: big.sum(), repeat=5)
    return {"gflops": flops / 1e9, "gbps": bandwidth / 1e9}


def corpus(n: int, mean: int, spread: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    lengths = (torch.full((n,), mean) if not spread
               else torch.randint(mean - spread, mean + spread + 1, (n,), generator=gen))
    offsets = torch.zeros(n + 1, dtype=torch.long)
    torch.cumsum(lengths, 0, out=offsets[1:])
    flat = torch.randn(int(offsets[-1]), DIM, generator=gen).to(torch.float16)
    flat /= flat.float().norm(dim=1, keepdim=True).to(torch.float16)
    return flat, offsets


def peer_score(queries: list[torch.Tensor], flat: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
    """transformers' own MaxSim (pads each batch of 128 pages, einsum, max, sum) in float32,
    its fast dtype on a CPU. `score_retrieval` reads no processor state, so an instance made
    without a tokenizer or image processor runs the real method."""
    from transformers import ColPaliProcessor

    pages = [flat[offsets[i]:offsets[i + 1]].float() for i in range(len(offsets) - 1)]
    processor = object.__new__(ColPaliProcessor)
    return processor.score_retrieval([q.float() for q in queries], pages)


def portable_score(queries: list[torch.Tensor], flat: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
    """colretrieve's portable path (blocked matmul), which CPUs without AVX-512 run."""
    fused = cpu_kernel.available
    cpu_kernel.available = lambda: False
    try:
        return maxsim(queries, flat, offsets)
    finally:
        cpu_kernel.available = fused


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", default="1000,10000")
    parser.add_argument("--peer-pages", type=int, default=1000, help="largest N the peer is run at (it is slow)")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()

    limits = machine_limits()
    print(f"machine: {os.cpu_count()} cores, torch {torch.__version__}, {torch.get_num_threads()} threads; "
          f"measured {limits['gflops']:.0f} GFLOP/s (fp32 matmul), {limits['gbps']:.1f} GB/s (read); "
          f"colretrieve's CPU path: {cpu_kernel.name()}\n")
    header = f"{'shape':<9}{'pages':>7}{'queries':>8}  {'impl':<13}{'pages/s':>11}{'GB/s':>7}{'% bw':>6}" \
             f"{'GFLOP/s':>9}{'% flop':>7}{'speedup':>8}"
    print(header)
    rows = []
    gen = torch.Generator().manual_seed(1)
    for shape, (mean, spread) in SHAPES.items():
        for n in (int(x) for x in args.pages.split(",")):
            flat, offsets = corpus(n, mean, spread)
            nbytes = flat.numel() * 2
            for n_queries in (1, 32):
                queries = [torch.nn.functional.normalize(torch.randn(TOKENS, DIM, generator=gen), dim=1)
                           for _ in range(n_queries)]
                flops = 2 * TOKENS * n_queries * flat.shape[0] * DIM
                impls = {"colretrieve": lambda: maxsim(queries, flat, offsets)}
                if cpu_kernel.available():
                    impls["portable"] = lambda: portable_score(queries, flat, offsets)
                if n <= args.peer_pages:
                    impls["peer (hf)"] = lambda: peer_score(queries, flat, offsets)
                results = {}
                for name, fn in impls.items():
                    seconds = best_of(fn, repeat=5 if n <= 1000 else 2)  # a shared VM: best of several
                    results[name] = seconds
                    row = {"shape": shape, "pages": n, "queries": n_queries, "impl": name, "seconds": seconds,
                           "pages_per_s": n / seconds, "gbps": nbytes / seconds / 1e9, "gflops": flops / seconds / 1e9}
                    row["pct_bw"] = 100 * row["gbps"] / limits["gbps"]
                    row["pct_flops"] = 100 * row["gflops"] / limits["gflops"]
                    row["speedup"] = seconds / results["colretrieve"] if name != "colretrieve" else None
                    rows.append(row)
                    vs = f"{seconds / results['colretrieve']:.1f}x" if name != "colretrieve" else ""
                    print(f"{shape:<9}{n:>7}{n_queries:>8}  {name:<13}{row['pages_per_s']:>11,.0f}{row['gbps']:>7.2f}"
                          f"{row['pct_bw']:>6.0f}{row['gflops']:>9.1f}{row['pct_flops']:>7.0f}{vs:>8}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"limits": limits, "rows": rows}, fh, indent=2)


if __name__ == "__main__":
    main()
