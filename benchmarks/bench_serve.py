"""Service under load: QPS and search latency of a real `colretrieve serve` process over the dev
index, with `--clients` concurrent clients for `--seconds`, first with searches only, then while an
ingest job (POST /ingest) runs beside them.

    python benchmarks/bench_serve.py ../shared/bench/dev --index /tmp/devidx

The given index (built with `colretrieve ingest` if absent) is not written to: it is copied
to a scratch folder and the copy is served. Each client sends `POST /search` (k=5)
back to back, cycling through the dataset's queries; a non-200 answer or a failed request counts
as an error. The ingest job takes new documents: copies of the dataset's PDFs with bytes appended
after their end, so every page is encoded again; it starts right before the timed window, and its
pages/s over the window is reported.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import re
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import httpx

from colretrieve.evaluation.datasets import load_dataset

CLI = [sys.executable, "-m", "colretrieve"]


def start(index: Path, root: Path, key: str, log: Path) -> tuple[subprocess.Popen, str]:
    """A `colretrieve serve` process for `index` (its stderr to `log`), once /ready answers; and its URL."""
    with log.open("w") as stderr:
        proc = subprocess.Popen([*CLI, "serve", "--index", str(index), "--port", "0", "--root", str(root),
                                 "--device", "cpu"], stdout=subprocess.DEVNULL, stderr=stderr,
                                env={**os.environ, "COLRETRIEVE_API_KEY": key})
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        found = re.search(r" on (http://127\.0\.0\.1:\d+) ", log.read_text())
        try:
            if found and httpx.get(f"{found.group(1)}/ready").status_code == 200:
                return proc, found.group(1)
        except httpx.ConnectError:  # bound, not yet listening
            pass
        time.sleep(0.2)
    proc.kill()
    sys.exit(f"serve did not become ready:\n{log.read_text()}")


async def load(url: str, key: str, queries: list[str], clients: int, seconds: float,
               errors: list[str]) -> list[float]:
    """Latencies (s) of the searches `clients` clients send back to back for `seconds`."""
    latencies: list[float] = []
    turns = itertools.cycle(queries)
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {key}"}, limits=limits,
                                 timeout=120) as client:
        end = time.perf_counter() + seconds

        async def one() -> None:
            while time.perf_counter() < end:
                query = next(turns)
                begin = time.perf_counter()
                try:
                    answer = await client.post("/search", json={"query": query, "k": 5})
                    if answer.status_code == 200 and "hits" in answer.json():
                        latencies.append(time.perf_counter() - begin)
                    else:
                        errors.append(f"{answer.status_code}: {answer.text[:200]}")
                except httpx.HTTPError as exc:
                    errors.append(f"{type(exc).__name__}: {exc}")

        await asyncio.gather(*(one() for _ in range(clients)))
    return latencies


def row(name: str, clients: int, seconds: float, latencies: list[float], errors: list[str]) -> str:
    cuts = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else [float("nan")] * 99
    return (f"| {name} | {clients} | {seconds:.0f} | {len(latencies)} | {len(latencies) / seconds:.2f} | "
            f"{cuts[49] * 1e3:.0f} | {cuts[94] * 1e3:.0f} | {cuts[98] * 1e3:.0f} | {len(errors)} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dataset", type=Path)
    parser.add_argument("--index", type=Path, required=True, help="the dev index (built here if absent; not written)")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=60)
    args = parser.parse_args()
    dataset = load_dataset(args.dataset)
    queries = list(dataset.queries.values())
    if not args.index.exists():
        subprocess.run([*CLI, "ingest", str(dataset.documents), "--index", str(args.index)], check=True)
    key = secrets.token_hex(16)
    with tempfile.TemporaryDirectory(prefix="bench-serve-") as scratch:
        index, root, log = Path(scratch) / "index", Path(scratch) / "root", Path(scratch) / "serve.log"
        shutil.copytree(args.index, index)
        (index / "LOCK").unlink(missing_ok=True)
        (copies := root / "copies").mkdir(parents=True)
        for pdf in (pdfs := sorted(dataset.documents.glob("*.pdf"))):  # new documents: other bytes, the same pages
            (copies / f"copy1__{pdf.name}").write_bytes(pdf.read_bytes() + b"\n% copy 1\n")
        proc, url = start(index, root, key, log)
        try:
            headers = {"Authorization": f"Bearer {key}"}
            for query in queries[:5]:  # warm up
                httpx.post(f"{url}/search", json={"query": query, "k": 5}, headers=headers, timeout=120)
            quiet_errors: list[str] = []
            quiet = asyncio.run(load(url, key, queries, args.clients, args.seconds, quiet_errors))
            started = httpx.post(f"{url}/ingest", json={"paths": [str(copies)]}, headers=headers)
            if started.status_code != 202:
                sys.exit(f"POST /ingest answered {started.status_code}: {started.text}")
            busy_errors: list[str] = []
            busy = asyncio.run(load(url, key, queries, args.clients, args.seconds, busy_errors))
            state = httpx.get(f"{url}/jobs/{started.json()['id']}", headers=headers).json()
        finally:
            proc.terminate()  # serve waits for a running job after a SIGTERM: do not wait for it
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        server_log = log.read_text()
    print(f"machine: {os.cpu_count()} CPUs; {len(queries)} queries; index {args.index} ({len(pdfs)} PDFs)\n")
    print("| load | clients | seconds | searches | QPS | p50 ms | p95 ms | p99 ms | errors |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    print(row("searches only", args.clients, args.seconds, quiet, quiet_errors))
    name = f"searches + ingest job ({state['pages_per_second']:.2f} pages/s)"  # pages done / seconds since its start
    print(row(name, args.clients, args.seconds, busy, busy_errors))
    print(f"\ningest job at the window's end: {state['state']}, {state['pages_done']}/{state['pages_total']} pages "
          f"in {state['seconds']} s, failures {len(state['failures'])}, error {state['error']}")
    if state["state"] != "running":
        print(f"the job ended early: it covered {min(1.0, state['seconds'] / args.seconds):.0%} of the window")
    sys.stdout.flush()
    for error, count in Counter(quiet_errors + busy_errors).most_common(10):
        print(f"error ({count}x): {error}", file=sys.stderr)
    if server_log.count("\n") > 1:  # more than its "serving ... on http://..." line
        print(f"\nserve's stderr:\n{server_log[-5000:]}", file=sys.stderr)


if __name__ == "__main__":
    main()
