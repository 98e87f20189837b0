"""The fault suite: bad input, bad disks and bad indexes, one case each, through the real CLI.

Every case asserts the exit code, the one line the user reads, and that every page stored
before is still there with the same top-5 for a fixed set of queries. The cases of the index
directory itself (never delete what colretrieve did not create; section 1) are in
tests/test_location.py; the helpers are tests/helpers.py.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from colretrieve import Index
from colretrieve.documents import content_hash
from colretrieve.errors import DiskFullError
from colretrieve.storage import vectorfile
from colretrieve.storage.edge import PANEL_FILE, SCHEMA_FILE, SHARD_DIR
from tests.helpers import CENSUS, cli, one_line, snapshot


def vector_file(index: Path) -> Path:
    return index / "store" / PANEL_FILE


# ---- 2. integrity: lengths on open, checksums on a deep check ------------------------------

@pytest.mark.slow
def test_a_truncated_vector_file_is_named_and_repaired(index_copy: Path, samples: Path, before, text_encoder) -> None:
    file = vector_file(index_copy)
    os.truncate(file, file.stat().st_size // 2)
    size = file.stat().st_size
    query = cli("query", "arrests by sex and age", "--index", str(index_copy), "--exact")
    assert query.returncode == 2  # not a segmentation fault
    assert f"{file} is shorter than the pages stored in it" in one_line(query)
    assert "run colretrieve check --repair" in one_line(query)
    ingest = cli("ingest", str(samples), "--index", str(index_copy), "--quiet")
    assert ingest.returncode == 2 and "is shorter than the pages stored in it" in one_line(ingest)
    assert file.stat().st_size == size  # nothing written over rows that payloads point to
    check = cli("check", "--index", str(index_copy), "--json")
    assert check.returncode == 2
    found = json.loads(check.stdout)
    assert found["damaged"] and not found["healthy"]
    assert cli("check", "--repair", "--index", str(index_copy)).returncode == 0
    again = cli("ingest", str(samples), "--index", str(index_copy), "--json")
    assert again.returncode == 0
    assert json.loads(again.stdout)["pages"] == len({d["id"] for d in found["damaged"]})  # only what was dropped
    assert snapshot(index_copy, text_encoder) == before


@pytest.mark.slow
def test_random_bytes_over_the_vectors_are_found_by_a_deep_check(index_copy: Path, samples: Path, before,
                                                                  text_encoder) -> None:
    file = vector_file(index_copy)
    with open(file, "r+b") as fh:
        fh.seek(file.stat().st_size // 3)
        fh.write(np.random.default_rng(0).bytes(4096))
    assert cli("check", "--index", str(index_copy)).returncode == 0  # lengths cannot see it
    deep = cli("check", "--deep", "--index", str(index_copy))
    assert deep.returncode == 2 and "do not match their checksum" in deep.stdout
    assert cli("check", "--deep", "--repair", "--index", str(index_copy)).returncode == 0
    assert cli("ingest", str(samples), "--index", str(index_copy), "--quiet").returncode == 0
    assert cli("check", "--deep", "--index", str(index_copy)).returncode == 0
    assert snapshot(index_copy, text_encoder) == before


# ---- 3. write failures -------------------------------------------------------------------

@pytest.mark.slow
def test_a_write_error_mid_ingest_loses_nothing_and_the_rerun_finishes(samples: Path, tmp_path: Path,
                                                                        built_index: Path, text_encoder,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    real, calls = os.pwrite, []

    def failing(fd: int, data, offset: int) -> int:
        calls.append(offset)
        if len(calls) == 9:  # a few pages in: half a page is written, then the disk says no
            real(fd, bytes(data)[: len(data) // 2], offset)
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(fd, data, offset)

    index = tmp_path / "index"
    monkeypatch.setattr(vectorfile.os, "pwrite", failing)
    with Index.create(index, model=text_encoder) as created:
        with pytest.raises(DiskFullError, match="No space left on device; the pages stored before are kept"):
            created.ingest([samples])
        stored = created.stats()["pages"]
    monkeypatch.setattr(vectorfile.os, "pwrite", real)
    assert vector_file(index).stat().st_size % (2 * 384 * 32) == 0  # the torn page was cut back
    with Index.open(index, model=text_encoder) as opened:
        report = opened.ingest([samples])
    assert report.failed == [] and report.pages + stored <= 23
    assert snapshot(index, text_encoder) == snapshot(built_index, text_encoder)
    assert cli("check", "--deep", "--index", str(index)).returncode == 0


@pytest.fixture
def small_disk(tmp_path: Path):
    """A real 400 MiB tmpfs, where the machine lets the tests mount one."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=400m", "tmpfs", str(mount)],
                      capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


@pytest.mark.slow
def test_a_full_disk_stops_the_ingest_and_reads_go_on(small_disk: Path, samples: Path, tmp_path: Path,
                                                       built_index: Path, text_encoder) -> None:
    index = small_disk / "index"
    first = cli("ingest", str(samples / CENSUS), "--index", str(index), "--quiet")
    assert first.returncode == 0, first.stderr
    stored = snapshot(index, text_encoder)
    filler = small_disk / "filler"
    subprocess.run(["dd", "if=/dev/zero", f"of={filler}", "bs=1M", "count=500"], capture_output=True)
    full = cli("ingest", str(samples), "--index", str(index), "--quiet")
    assert full.returncode == 2
    assert f"the disk at {small_disk} is full" in one_line(full)
    stats = cli("stats", "--index", str(index), "--json")  # read-only commands answer on a full disk
    assert stats.returncode == 0 and json.loads(stats.stdout)["pages"] == 1
    query = cli("query", "arrests by sex and age", "--index", str(index), "--json")
    assert query.returncode == 0 and json.loads(query.stdout.splitlines()[0])["page"] == 1
    filler.unlink()
    assert snapshot(index, text_encoder) == stored
    resumed = cli("ingest", str(samples), "--index", str(index), "--json")
    assert resumed.returncode == 0, resumed.stderr
    assert snapshot(index, text_encoder) == snapshot(built_index, text_encoder)


# ---- 4. bounded memory ------------------------------------------------------------------

def peak_rss(*args: str) -> tuple[int, str]:
    """(peak resident memory in bytes, stderr) of one CLI run."""
    proc = subprocess.Popen([sys.executable, "-m", "colretrieve", *args], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    stderr = proc.stderr.read()  # type: ignore[union-attr]
    _, status, usage = os.wait4(proc.pid, 0)
    assert os.waitstatus_to_exitcode(status) in (0, 1), stderr
    return usage.ru_maxrss * 1024, stderr


@pytest.mark.slow
@pytest.mark.parametrize("user_unit", [None, 2.0])
def test_a_huge_blank_page_renders_within_the_pixel_cap(tmp_path: Path, user_unit: float | None) -> None:
    import pikepdf

    pdf = pikepdf.new()
    pdf.add_blank_page(page_size=(14400, 14400))
    if user_unit:
        pdf.pages[0].obj.UserUnit = user_unit
    pdf.save(tmp_path / "poster.pdf")
    assert (tmp_path / "poster.pdf").stat().st_size < 1000
    rss, stderr = peak_rss("ingest", str(tmp_path / "poster.pdf"), "--index", str(tmp_path / "index"), "--quiet")
    assert rss < 2 * 2**30
    assert "page 1 is 14,400 x 14,400 pt: rendered at 32 dpi, not 144, to stay within 40 megapixels" in stderr


def test_an_oversized_image_is_refused_without_library_warnings(tmp_path: Path) -> None:
    from PIL import Image

    Image.new("1", (13000, 13000), 1).save(tmp_path / "big.png")
    run = cli("ingest", str(tmp_path / "big.png"), "--index", str(tmp_path / "index"), "--quiet")
    assert run.returncode == 1
    assert [line for line in run.stderr.splitlines() if "Warning" in line] == []
    assert "image too large to read (13000 x 13000 pixels; the limit is 100 megapixels)" in run.stderr


def test_dpi_zero_is_a_usage_error(samples: Path, tmp_path: Path) -> None:
    run = cli("ingest", str(samples / CENSUS), "--index", str(tmp_path / "index"), "--dpi", "0")
    assert run.returncode == 2 and "0 is not in the range 36<=x<=600" in run.stderr
    assert not (tmp_path / "index").exists()


# ---- 5. inputs that are not plain files -----------------------------------------------------

def test_a_fifo_and_a_device_are_not_regular_files(samples: Path, tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.pdf"
    os.mkfifo(fifo)
    run = cli("ingest", str(fifo), "/dev/zero", str(samples / CENSUS), "--index", str(tmp_path / "index"),
              "--quiet", timeout=300)  # it used to hang here forever, holding the lock
    assert run.returncode == 1
    assert f"skipped {fifo}: not a regular file (a named pipe)" in run.stderr
    assert "skipped /dev/zero: not a regular file (a device)" in run.stderr
    assert "ingested 1 documents" in run.stderr


@pytest.mark.slow
def test_linked_folders_are_followed_once_and_odd_names_are_shown_escaped(samples: Path, tmp_path: Path,
                                                                          text_encoder) -> None:
    docs = tmp_path / "docs"
    (docs / "sub").mkdir(parents=True)
    odd = os.fsdecode(b"caf\xe9.pdf")
    shutil.copy(samples / CENSUS, docs / "sub" / odd)
    (docs / "sub" / "loop").symlink_to(docs)  # a link back up
    (tmp_path / "elsewhere").mkdir()
    shutil.copy(samples / "hsaur3__pca.pdf", tmp_path / "elsewhere" / "pca.pdf")
    (docs / "linked").symlink_to(tmp_path / "elsewhere")
    index = tmp_path / "index"
    run = cli("ingest", str(docs), "--index", str(index), "--json", timeout=300)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["documents"] == 2
    query = cli("query", "arrests by sex and age", "--index", str(index), "-k", "1", "--json")
    hit = json.loads(query.stdout)
    assert hit["path"].endswith("sub/caf\\xe9.pdf") and hit["page"] == 1
    with Index.open(index, read_only=True, model=text_encoder) as opened:
        (found,) = opened.search("arrests by sex and age", k=1)
        assert found.image().size[0] > 100  # the real name still opens the file


def test_an_unreadable_folder_is_reported(samples: Path, tmp_path: Path, text_encoder,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    docs = tmp_path / "docs"
    (docs / "locked").mkdir(parents=True)
    shutil.copy(samples / CENSUS, docs / "ok.pdf")
    os.chmod(docs / "locked", 0)
    if os.getuid() == 0:  # root reads every folder: the refusal a user would get is injected
        real = os.scandir

        def refusing(path=".", *args):
            if Path(path) == docs / "locked":
                raise PermissionError(errno.EACCES, "Permission denied", str(path))
            return real(path, *args)

        monkeypatch.setattr(os, "scandir", refusing)
    lines: list[str] = []
    try:
        with Index.create(tmp_path / "index", model=text_encoder) as index:
            report = index.ingest([docs], echo=lines.append)
    finally:
        os.chmod(docs / "locked", 0o755)
    assert lines == [f"skipped {docs / 'locked'}: cannot read this folder (Permission denied)"]
    assert report.documents == 1 and len(report.failed) == 1


def test_a_pdf_without_pages_says_so(tmp_path: Path) -> None:
    import pikepdf

    pikepdf.new().save(tmp_path / "empty.pdf")
    run = cli("ingest", str(tmp_path / "empty.pdf"), "--index", str(tmp_path / "index"), "--quiet")
    assert run.returncode == 1 and f"skipped {tmp_path / 'empty.pdf'}: PDF has no pages" in run.stderr


def test_a_file_rewritten_between_planning_and_reading_fails(samples: Path, tmp_path: Path, text_encoder,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    from colretrieve import ingest as ingest_module

    target = tmp_path / "report.pdf"
    shutil.copy(samples / "pikepdf__dd_form_293.pdf", target)  # 4 pages
    real, opened = ingest_module.open_document, []

    def rewritten_after_planning(path: Path, *args, **kwargs):
        opened.append(path)
        if len(opened) == 2:  # the plan counted its pages; now another program rewrites it
            shutil.copy(samples / CENSUS, target)  # 1 page
        return real(path, *args, **kwargs)

    monkeypatch.setattr(ingest_module, "open_document", rewritten_after_planning)
    with Index.create(tmp_path / "index", model=text_encoder) as index:
        report = index.ingest([target])
        assert [(p, r) for p, r in report.failed] == [(target, "changed while it was read; run the ingest again "
                                                               "once it is written")]
        assert index.stats()["pages"] == 0 and index.store.count() == 0
    monkeypatch.setattr(ingest_module, "open_document", real)
    with Index.open(tmp_path / "index", model=text_encoder) as index:
        assert index.ingest([target]).documents == 1
        assert index.documents()[0]["doc_id"] == content_hash(target)


# ---- 6. corrupt index files ---------------------------------------------------------------

def _garble(path: Path) -> None:
    """Random bytes over the file's first MiB: all of a small index's payloads (the engine lays
    them out differently from run to run, so a few KiB might hit only superseded records)."""
    with open(path, "r+b") as fh:
        fh.write(np.random.default_rng(1).bytes(min(path.stat().st_size, 1 << 20)))


@pytest.mark.parametrize("name", ["index.json", f"store/{SCHEMA_FILE}", f"store/{SHARD_DIR}/edge_config.json",
                                  "payload"])
def test_a_garbled_index_file_is_one_line_and_nothing_is_written(index_copy: Path, samples: Path, name: str) -> None:
    if name == "payload":
        (target,) = (index_copy / "store" / SHARD_DIR).glob("segments/*/payload_storage/page_0.dat")
    else:
        target = index_copy / name
    _garble(target)
    size = vector_file(index_copy).stat().st_size
    for args in (("stats",), ("query", "arrests by sex and age"), ("ingest", str(samples), "--quiet")):
        run = cli(*args, "--index", str(index_copy))
        line = one_line(run)
        assert run.returncode == 2, (args, run.stderr)
        named = index_copy / ("index.json" if name == "index.json" else "store")
        assert line.startswith("error: ") and str(named) in line
    assert vector_file(index_copy).stat().st_size == size


# ---- 7. queries ----------------------------------------------------------------------------

@pytest.mark.parametrize("text", ["", "   ", "?!...", "\U0001F680\U0001F525"])
def test_a_query_without_letters_or_digits_is_a_usage_error(built_index: Path, text: str, text_encoder) -> None:
    run = cli("query", text, "--index", str(built_index))
    assert run.returncode == 2 and "has no letter or digit to search for" in one_line(run)
    with Index.open(built_index, read_only=True, model=text_encoder) as index:
        assert index.search(text) == []


def test_k_above_the_candidates_widens_them(built_index: Path) -> None:
    run = cli("query", "table", "--index", str(built_index), "-k", "10", "--candidates", "3", "--json")
    assert run.returncode == 0 and len(run.stdout.splitlines()) == 10


def test_failing_maps_still_print_the_hits(index_copy: Path, tmp_path: Path) -> None:
    (tmp_path / "maps").write_text("a file where a folder of the maps folder should go")
    run = cli("query", "arrests by sex and age", "--index", str(index_copy), "--maps", str(tmp_path / "maps" / "q1"))
    assert run.returncode == 1 and "error: --maps:" in run.stderr
    assert run.stdout.splitlines()[0].endswith(f"{CENSUS}  page 1/1")


def test_delete_takes_a_bare_file_name_and_a_short_id_prefix(index_copy: Path, samples: Path) -> None:
    by_name = cli("delete", CENSUS, "--index", str(index_copy))
    assert by_name.returncode == 0 and "1 pages" in by_name.stdout
    prefix = content_hash(samples / "hsaur3__pca.pdf")[:4].upper()
    by_id = cli("delete", prefix, "--index", str(index_copy))
    assert by_id.returncode == 0, by_id.stderr


def test_an_index_without_words_answers_queries(page_pngs: dict[str, bytes], tmp_path: Path) -> None:
    (tmp_path / "scan.png").write_bytes(page_pngs["pca"])
    index = tmp_path / "index"
    assert cli("ingest", str(tmp_path / "scan.png"), "--index", str(index), "--ocr", "none", "--quiet").returncode == 0
    run = cli("query", "principal components", "--index", str(index))
    assert run.returncode == 0 and "Traceback" not in run.stderr


def test_skip_lines_go_to_stderr_with_the_progress_bar_on(bad_pdfs: Path, tmp_path: Path) -> None:
    run = cli("ingest", str(bad_pdfs), "--index", str(tmp_path / "index"))
    assert run.returncode == 1 and run.stdout == ""
    assert sum(line.startswith("skipped") for line in run.stderr.splitlines()) == 4
