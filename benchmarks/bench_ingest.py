"""Ingest speed and memory: pages/s and peak RSS for a corpus, for twice the corpus, and for a re-run.

Each run is a fresh `colretrieve ingest` process, so peak RSS is the whole program's. The
"twice" corpus holds every PDF two times under other names, each copy with a comment line
appended after %%EOF, so its content hash differs and it is really encoded again (identical
bytes would be recognised as the same document and skipped).

    python benchmarks/bench_ingest.py ../shared/bench/dev/pdfs [--json]
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import click


def _run_ingest(corpus: Path, index: Path) -> dict:
    """One ingest in a child process: wall time, its report, and that child's own peak RSS."""
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "colretrieve", "ingest", str(corpus), "--index", str(index),
                             "--json"], stdout=subprocess.PIPE, text=True)
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)  # rusage of this child alone
    proc.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - started
    if proc.returncode not in (0, 1):
        raise SystemExit(f"ingest failed with status {proc.returncode}")
    report = json.loads(out)
    return {"pages": report["pages"], "seconds": round(seconds, 1),
            "pages_per_s": round(report["pages"] / seconds, 2) if report["pages"] else 0.0,
            "peak_rss_mib": round(usage.ru_maxrss / 1024)}


def _doubled(corpus: Path, target: Path) -> Path:
    for pdf in sorted(corpus.rglob("*")):
        if pdf.suffix.lower() == ".pdf":
            for copy in ("a", "b"):
                data = pdf.read_bytes() + f"\n% colretrieve benchmark copy {copy}\n".encode()
                (target / f"{copy}_{pdf.name}").write_bytes(data)
    return target


@click.command()
@click.argument("corpus", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True)
def main(corpus: Path, as_json: bool) -> None:
    work = Path(tempfile.mkdtemp(prefix="bench_ingest_"))
    try:
        rows = {"once": _run_ingest(corpus, work / "once")}
        rows["re-run (unchanged)"] = _run_ingest(corpus, work / "once")
        rows["twice (2x pages)"] = _run_ingest(_doubled(corpus, Path(tempfile.mkdtemp(dir=work))), work / "twice")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    rerun = rows["re-run (unchanged)"]
    rerun["share_of_first_run"] = round(rerun["seconds"] / rows["once"]["seconds"], 3)
    growth = rows["twice (2x pages)"]["peak_rss_mib"] / rows["once"]["peak_rss_mib"] - 1
    if as_json:
        click.echo(json.dumps({"rows": rows, "rss_growth_2x": round(growth, 3)}))
        return
    click.echo(f"{'run':<22}{'pages':>7}{'seconds':>9}{'pages/s':>9}{'peak RSS MiB':>14}")
    for name, row in rows.items():
        click.echo(f"{name:<22}{row['pages']:>7}{row['seconds']:>9}{row['pages_per_s']:>9}{row['peak_rss_mib']:>14}")
    click.echo(f"re-run takes {rows['re-run (unchanged)']['share_of_first_run']:.1%} of the first run; "
               f"peak RSS for 2x the pages: {growth:+.1%}")


if __name__ == "__main__":
    main()
