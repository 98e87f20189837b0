"""MaxSim throughput: colretrieve's kernel beside transformers' `ColPaliProcessor.score_retrieval`
on the same vectors, and both as a fraction of what this machine can do.

Shapes: ColPali (1,030 vectors a page) and ColQwen2 (about 750, ragged ±25%), dim 128,
20 tokens a query, 1 and 32 queries, N pages (float16, as stored). The machine's limits are
measured in the same run, at its start and at its end: a large matmul for FLOP/s (float32 on
the CPU; on a GPU the faster of bfloat16 and float16, the kernel's tensor-core type), a large
read for bandwidth (on a GPU the faster of a reduction and a copy, counting bytes read and
written). Speed drifts while a run lasts, so each figure is taken as a fraction of the higher
of the two measurements, the stricter denominator. The run also prints the fraction of the
read limit one query reaches if it runs at the measured matmul rate (it does 20 FLOP per
stored byte): below 100%, the one-query rows are bound by arithmetic on that machine.
"Bytes" are the page vectors read once per pass (the panel layout's padding, each page's last
vector repeated to a whole panel of 32, is not counted); "FLOPs" are 2·tokens·vectors·dim;
"speedup" is colretrieve's pages/s divided by that row's. "colretrieve" scores the pages as
the store keeps them, in the kernel's panel layout (vectors/layout.py); "rows" is the same
kernel on row-major pages (stores made before the panel layout, packed arrays); "portable"
is colretrieve's path for CPUs without AVX-512, run on the same vectors. With `--device cuda`
the pages are resident in GPU memory and "colretrieve" is the fused Triton kernel, timed
from queries on the host to scores on the host (the median of many runs, CUDA events);
"exact top-5" adds the selection of the 5 best pages with their ids, which is what
`Index.search(exact=True)` runs on a GPU (`ResidentPages.best`).

    python benchmarks/bench_maxsim.py [--pages 1000,10000] [--peer-pages 1000] [--json out.json]
    python benchmarks/bench_maxsim.py --device cuda --pages 1000,10000,100000 --peer-pages 100000
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from functools import partial

import numpy as np
import torch
from tqdm import tqdm

from colretrieve.scoring import cpu_kernel, maxsim, maxsim_pages
from colretrieve.scoring.resident import ResidentPages
from colretrieve.vectors.layout import PANEL, PanelPage, panel_rows, to_panels

DIM = 128
TOKENS = 20
SHAPES = {"colpali": (1030, 0), "colqwen2": (750, 190)}  # (mean vectors, ± spread)


def best_of(fn, repeat: int = 5, budget_s: float = 10.0) -> float:
    """Fastest of up to `repeat` timed runs after a warm-up; on a shared VM other tenants only
    ever slow a run down. Slow runs stop after two once `budget_s` is spent."""
    fn()
    times: list[float] = []
    while len(times) < repeat and (len(times) < 2 or sum(times) < budget_s):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times)


def gpu_time(fn) -> float:
    """Median seconds of many runs, timed with CUDA events after a warm-up."""
    import triton.testing

    return triton.testing.do_bench(fn, warmup=100, rep=500, return_mode="median") / 1e3


def machine_limits(device: str) -> dict[str, float]:
    """Measured matmul FLOP/s and streaming read bandwidth, on all cores or on the GPU."""
    if device != "cpu":
        return {"gflops": max(_gpu_matmul(device, dtype) for dtype in (torch.bfloat16, torch.float16)) / 1e9,
                "gbps": _gpu_bandwidth(device) / 1e9}
    a, b = torch.randn(4096, 4096), torch.randn(4096, 4096)
    flops = 2 * 4096**3 / best_of(lambda: a @ b)
    big = torch.ones(1 << 29, dtype=torch.float32)  # 2 GiB, far beyond the caches
    bandwidth = big.numel() * 4 / best_of(lambda: big.sum())
    return {"gflops": flops / 1e9, "gbps": bandwidth / 1e9}


def _gpu_matmul(device: str, dtype: torch.dtype) -> float:
    a, b = (torch.randn(8192, 8192, device=device, dtype=dtype) for _ in range(2))
    return 2 * 8192**3 / gpu_time(lambda: a @ b)


def _gpu_bandwidth(device: str) -> float:
    """The faster of a reduction (bytes read) and a copy (bytes read and written) of 4 GiB."""
    big = torch.randn(1 << 31, device=device, dtype=torch.float16)
    copy = torch.empty_like(big)
    read = big.numel() * 2 / gpu_time(lambda: big.sum(dtype=torch.float32))
    return max(read, 2 * big.numel() * 2 / gpu_time(lambda: copy.copy_(big)))


def corpus(n: int, mean: int, spread: int, device: str = "cpu", seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Random unit vectors in float16, made where they are scored (100k ColPali pages on a GPU
    are 26 GB: made in float16 and normalized a slice at a time)."""
    gen = torch.Generator(device=device).manual_seed(seed)
    lengths = (torch.full((n,), mean, device=device) if not spread
               else torch.randint(mean - spread, mean + spread + 1, (n,), generator=gen, device=device))
    offsets = torch.zeros(n + 1, dtype=torch.long, device=device)
    torch.cumsum(lengths, 0, out=offsets[1:])
    flat = torch.randn(int(offsets[-1]), DIM, generator=gen, device=device, dtype=torch.float16)
    for part in flat.split(1 << 20):
        part /= part.float().norm(dim=1, keepdim=True).to(torch.float16)
    return flat, offsets


def stored(flat: torch.Tensor, offsets: torch.Tensor) -> list[PanelPage]:
    """The pages as the store keeps them (storage/vectorfile.py): in panels, one after another
    in one buffer, each page starting on a cache line as in the memory-mapped file."""
    bounds = offsets.tolist()
    starts = np.cumsum([0] + [panel_rows(b - a) // PANEL for a, b in zip(bounds, bounds[1:])])
    buffer = torch.empty(int(starts[-1]), flat.shape[1], PANEL, dtype=torch.float16).numpy()  # 64-byte aligned
    pages = []
    for (a, b), first, end in zip(zip(bounds, bounds[1:]), starts, starts[1:]):
        buffer[first:end] = to_panels(flat[a:b].numpy())
        pages.append(PanelPage(buffer[first:end], b - a))
    return pages


def peer_inputs(flat: torch.Tensor, offsets: torch.Tensor) -> list[torch.Tensor]:
    """The pages as transformers' scorer takes them, a list of tensors in its fast dtype
    (float32 on a CPU, the stored float16 on a GPU), made once outside the timing."""
    dtype = torch.float16 if flat.is_cuda else torch.float32
    bounds = offsets.tolist()
    return [flat[a:b].to(dtype) for a, b in zip(bounds, bounds[1:])]


def peer_score(queries: list[torch.Tensor], pages: list[torch.Tensor]) -> torch.Tensor:
    """transformers' own MaxSim (pads each batch of 128 pages, einsum, max, sum).
    `score_retrieval` reads no processor state, so an instance made without a tokenizer or
    image processor runs the real method."""
    from transformers import ColPaliProcessor

    processor = object.__new__(ColPaliProcessor)
    return processor.score_retrieval([q.to(pages[0].device, pages[0].dtype) for q in queries], pages)


def portable_score(queries: list[torch.Tensor], flat: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
    """colretrieve's portable path (blocked matmul), which CPUs without AVX-512 run."""
    fused = cpu_kernel.available
    cpu_kernel.available = lambda: False
    try:
        return maxsim(queries, flat, offsets)
    finally:
        cpu_kernel.available = fused


def measure(pages: list[int], peer_pages: int, device: str) -> list[dict]:
    """Seconds per pass of every implementation on every shape, N and query count."""
    cases = [(shape, n, q) for shape in SHAPES for n in pages for q in (1, 32)]
    rows = []
    gen = torch.Generator().manual_seed(1)
    made = None
    flat = peer_pages_list = resident = None
    fused_cpu = device == "cpu" and cpu_kernel.available()
    for shape, n, n_queries in tqdm(cases, desc="bench_maxsim", unit="case", file=sys.stderr):
        if made != (shape, n):  # one corpus in memory at a time
            del flat, peer_pages_list, resident
            made, (flat, offsets) = (shape, n), corpus(n, *SHAPES[shape], device=device)
            panels = stored(flat, offsets) if fused_cpu else None
            peer_pages_list = peer_inputs(flat, offsets) if n <= peer_pages else None
            resident = ResidentPages([f"page-{j}" for j in range(n)], flat, offsets) if flat.is_cuda else None
        queries = [torch.nn.functional.normalize(torch.randn(TOKENS, DIM, generator=gen), dim=1)
                   for _ in range(n_queries)]
        # Each call is bound to this case's arrays now, not to the loop's variables.
        impls: dict[str, Callable[[], object]] = {"colretrieve": partial(maxsim, queries, flat, offsets)}
        if fused_cpu:
            impls = {"colretrieve": partial(maxsim_pages, queries, panels),
                     "rows": partial(maxsim, queries, flat, offsets),
                     "portable": partial(portable_score, queries, flat, offsets)}
        if resident is not None and n_queries == 1:
            impls["exact top-5"] = lambda resident=resident, query=queries[0]: resident.best(query.numpy(), 5)
        if n <= peer_pages:
            impls["peer (hf)"] = partial(peer_score, queries, peer_pages_list)
        timer = best_of if device == "cpu" else gpu_time
        for name, fn in impls.items():
            rows.append({"shape": shape, "pages": n, "queries": n_queries, "impl": name, "seconds": timer(fn),
                         "bytes": flat.numel() * 2, "flops": 2 * TOKENS * n_queries * flat.shape[0] * DIM})
        del impls, fn  # they hold this corpus: drop them, so the next one replaces it rather than joining it
    return rows


def roofline(limits: dict[str, float]) -> float:
    """The fraction of the read limit a one-query kernel running at the measured matmul rate
    reaches: it does 2·tokens·dim FLOP on 2·dim stored bytes a vector (`TOKENS` FLOP a byte),
    so where the matmul rate is below TOKENS × the read bandwidth, arithmetic bounds it, not
    the read."""
    return min(1.0, limits["gflops"] / (TOKENS * limits["gbps"]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", default="1000,10000")
    parser.add_argument("--peer-pages", type=int, default=1000, help="largest N the peer is run at (it is slow)")
    parser.add_argument("--device", default="cpu", help="cpu, or cuda: pages resident on the GPU")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()

    before = machine_limits(args.device)
    rows = measure([int(x) for x in args.pages.split(",")], args.peer_pages, args.device)
    after = machine_limits(args.device)
    limits = {key: max(before[key], after[key]) for key in before}
    if args.device == "cpu":
        machine = (f"{os.cpu_count()} cores, torch {torch.__version__}, {torch.get_num_threads()} threads; "
                   f"colretrieve's CPU path: {cpu_kernel.name()}")
        kinds = "fp32 matmul", "read"
    else:
        import triton

        machine = f"{torch.cuda.get_device_name(args.device)}, torch {torch.__version__}, triton {triton.__version__}"
        kinds = "bf16/fp16 matmul", "HBM read or copy"
    print(f"machine: {machine}\n"
          f"limits at start / end: {before['gflops']:,.0f} / {after['gflops']:,.0f} GFLOP/s ({kinds[0]}), "
          f"{before['gbps']:,.1f} / {after['gbps']:,.1f} GB/s ({kinds[1]}); fractions below are of the higher")
    ceiling = roofline(limits)
    print(f"one query does {TOKENS} FLOP per stored float16 byte: at the measured matmul rate that reads "
          f"{100 * ceiling:.0f}% of the read limit\n")
    print(f"{'shape':<9}{'pages':>7}{'queries':>8}  {'impl':<13}{'pages/s':>12}{'GB/s':>8}{'% bw':>6}"
          f"{'GFLOP/s':>10}{'% flop':>7}{'ms':>9}{'speedup':>8}")
    ours: dict[tuple, float] = {}
    for row in rows:
        case = (row["shape"], row["pages"], row["queries"])
        seconds = row["seconds"]
        if row["impl"] == "colretrieve":
            ours[case] = seconds
        row["pages_per_s"] = row["pages"] / seconds
        row["gbps"] = row["bytes"] / seconds / 1e9
        row["gflops"] = row["flops"] / seconds / 1e9
        row["pct_bw"] = 100 * row["gbps"] / limits["gbps"]
        row["pct_flops"] = 100 * row["gflops"] / limits["gflops"]
        row["speedup"] = seconds / ours[case] if row["impl"] not in {"colretrieve", "exact top-5"} else None
        vs = f"{row['speedup']:.1f}x" if row["speedup"] else ""
        print(f"{row['shape']:<9}{row['pages']:>7}{row['queries']:>8}  {row['impl']:<13}{row['pages_per_s']:>12,.0f}"
              f"{row['gbps']:>8,.1f}{row['pct_bw']:>6.0f}{row['gflops']:>10,.0f}{row['pct_flops']:>7.0f}"
              f"{seconds * 1e3:>9.2f}{vs:>8}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"limits": limits, "limits_at_start": before, "limits_at_end": after,
                       "one_query_read_ceiling": ceiling, "rows": rows}, fh, indent=2)


if __name__ == "__main__":
    main()
