"""Kill -9 at random moments of an ingest, resume it, and compare with a clean index; and the
peak memory of the pages that used to take gigabytes.

    python benchmarks/bench_faults.py [--runs 20] [--corpus samples] [--seed 0]

Each run starts `colretrieve ingest CORPUS` into a fresh index, kills it (SIGKILL) at a moment
drawn uniformly over a clean ingest's duration, runs the same ingest again, and checks that the
resumed index holds the same pages, passes `check --deep`, and gives the same top-5 (and
scores within 1e-3) for a fixed set of queries as the clean index. Prints one table.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
QUERIES = ("arrests by sex and age", "principal components variances", "application for review of discharge",
           "graph layout with dot", "manuscript title and authors", "table of contents")


def ingest(corpus: Path, index: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "colretrieve", "ingest", str(corpus), "--index", str(index),
                             "--quiet", "--batch-size", "4"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def state(index: Path, encoder) -> tuple[set[tuple[str, int]], list[list[tuple[str, int, float]]]]:
    from colretrieve import Index

    with Index.open(index, read_only=True, model=encoder) as opened:
        pages = {(p["doc_id"], p["page"]) for _, p in opened.pages(("doc_id", "page"))}
        tops = [[(h.doc_id, h.page, h.score) for h in opened.search(q)] for q in QUERIES]
    return pages, tops


def same(a, b) -> bool:
    (pages_a, tops_a), (pages_b, tops_b) = a, b
    return pages_a == pages_b and all(
        [(d, p) for d, p, _ in x] == [(d, p) for d, p, _ in y]
        and all(abs(s - t) < 1e-3 for (*_, s), (*_, t) in zip(x, y)) for x, y in zip(tops_a, tops_b))


def peak_rss(args: list[str]) -> tuple[float, int]:
    """(peak RSS in GiB, exit code) of one CLI run."""
    proc = subprocess.Popen([sys.executable, "-m", "colretrieve", *args], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    return usage.ru_maxrss / 2**20, os.waitstatus_to_exitcode(status)


def huge_pages(scratch: Path) -> list[tuple[str, float, int]]:
    import pikepdf

    rows = []
    for name, unit in (("14400 pt blank page", None), ("14400 pt page, /UserUnit 2", 2.0)):
        pdf = pikepdf.new()
        pdf.add_blank_page(page_size=(14400, 14400))
        if unit:
            pdf.pages[0].obj.UserUnit = unit
        path = scratch / f"huge-{bool(unit)}.pdf"
        pdf.save(path)
        for renderer in ("pdfium", "pdf2image"):
            gib, code = peak_rss(["ingest", str(path), "--index", str(scratch / f"ix-{bool(unit)}-{renderer}"),
                                  "--renderer", renderer, "--quiet"])
            rows.append((f"{name}, {renderer}", gib, code))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--corpus", type=Path, default=ROOT / "samples")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    from tqdm import tqdm

    from colretrieve.encoders.text import TextGridEncoder

    encoder = TextGridEncoder(device="cpu")
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        started = time.perf_counter()
        clean = ingest(args.corpus, scratch / "clean")
        clean.wait()
        duration = time.perf_counter() - started
        reference = state(scratch / "clean", encoder)
        rows = []
        for run in tqdm(range(args.runs), desc="kill -9 runs", file=sys.stderr):
            index = scratch / f"run{run}"
            at = rng.uniform(0.5, duration)
            proc = ingest(args.corpus, index)
            time.sleep(at)
            killed = proc.poll() is None
            if killed:
                os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            resumed = subprocess.run([sys.executable, "-m", "colretrieve", "ingest", str(args.corpus), "--index",
                                      str(index), "--quiet"], capture_output=True, text=True)
            check = subprocess.run([sys.executable, "-m", "colretrieve", "check", "--deep", "--index", str(index)],
                                   capture_output=True, text=True)
            got = state(index, encoder)
            rows.append((run, at, killed, resumed.returncode, check.returncode, same(got, reference)))
        memory = huge_pages(scratch)
    print(f"\nclean ingest of {args.corpus.name}: {len(reference[0])} pages in {duration:.1f} s\n")
    print("| run | killed at (s) | killed mid-ingest | resume exit | check --deep exit | same as clean |")
    print("|---|---|---|---|---|---|")
    for run, at, killed, code, check, equal in rows:
        shown = ("yes" if killed else "no (done)", "yes" if equal else "NO")
        print(f"| {run} | {at:.1f} | {shown[0]} | {code} | {check} | {shown[1]} |")
    identical = sum(row[-1] for row in rows)
    print(f"\n{sum(r[2] for r in rows)} of {len(rows)} runs killed mid-ingest; {identical} of {len(rows)} resumed "
          f"identical to the clean index; {sum(r[3] != 0 or r[4] != 0 for r in rows)} with a non-zero exit\n")
    print("| input | peak RSS (GiB) | exit |")
    print("|---|---|---|")
    for name, gib, code in memory:
        print(f"| {name} | {gib:.2f} | {code} |")


if __name__ == "__main__":
    main()
