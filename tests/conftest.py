"""Shared fixtures: the shipped sample PDFs, the real MiniLM encoder and a tiny ColPali, each
loaded once per session (tests pass them to `Index.create`/`Index.open` as `model=`), and an
index built once."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

# Pages in float32 on every CPU: in bfloat16 a page's vectors move a little with the batch it is
# encoded in, which may swap near-tied hits, and the fault tests compare rankings across
# re-ingests exactly. bfloat16 is tested on its own (tests/encoders/test_text.py) and measured
# on the dev set (README). Child processes (the CLI) inherit it.
os.environ.setdefault("COLRETRIEVE_PAGE_PRECISION", "float32")

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "samples"
DEV = ROOT.parent / "shared" / "bench" / "dev"


@pytest.fixture(scope="session", autouse=True)
def model_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A cache of exported query graphs for this session only (the CLI processes tests start
    inherit it): tests neither read nor fill the user's ~/.cache."""
    from colretrieve.encoders.exported import CACHE_ENV

    cache = tmp_path_factory.mktemp("model-cache")
    before = os.environ.get(CACHE_ENV)
    os.environ[CACHE_ENV] = str(cache)
    yield cache
    if before is None:
        del os.environ[CACHE_ENV]
    else:
        os.environ[CACHE_ENV] = before


@pytest.fixture(scope="session")
def samples() -> Path:
    return SAMPLES


@pytest.fixture(scope="session")
def dev_pdfs() -> Path:
    """The development benchmark's PDFs (../shared beside the checkout, as in CI)."""
    pdfs = DEV / "pdfs"
    if not pdfs.is_dir():
        pytest.skip(f"the dev benchmark is not at {pdfs}")
    return pdfs


@pytest.fixture(scope="session")
def text_encoder():
    """The real all-MiniLM-L6-v2 encoder, loaded once (loading costs seconds)."""
    from colretrieve.encoders.text import TextGridEncoder

    return TextGridEncoder(device="cpu")


@pytest.fixture(scope="session")
def built_index(tmp_path_factory: pytest.TempPathFactory, text_encoder) -> Path:
    """An index of the five sample PDFs; tests that change it take a copy (`index_copy`)."""
    from colretrieve import Index
    from colretrieve.settings import IndexConfig

    directory = tmp_path_factory.mktemp("built") / "index"
    with Index.create(directory, model=text_encoder) as index:
        report = index.ingest([SAMPLES])
    assert report.failed == [] and report.pages == 23
    assert IndexConfig.load(directory).encoder_id == text_encoder.name
    return directory


@pytest.fixture(scope="session")
def before(built_index: Path, text_encoder):
    """The pages and top-5s of `built_index` (tests.helpers.snapshot), which fault cases compare against."""
    from tests.helpers import snapshot

    return snapshot(built_index, text_encoder)


@pytest.fixture(scope="session")
def edge_top(built_index: Path, text_encoder) -> list[list[tuple[str, int]]]:
    """The top-5 (file, page) of each of tests.helpers.QUESTIONS on `built_index`."""
    from colretrieve import Index
    from tests.helpers import _top

    with Index.open(built_index, model=text_encoder) as index:
        return _top(index)


@pytest.fixture
def index_copy(built_index: Path, tmp_path: Path) -> Path:
    target = tmp_path / "index"
    shutil.copytree(built_index, target)
    (target / "LOCK").unlink(missing_ok=True)
    return target


@pytest.fixture(scope="session")
def bad_pdfs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with one good PDF and the four kinds of bad file users send."""
    import pikepdf

    folder = tmp_path_factory.mktemp("bad")
    good = SAMPLES / "tabula__census_table_12s0324.pdf"
    shutil.copy(good, folder / "good.pdf")
    data = (SAMPLES / "revtex__apssamp.pdf").read_bytes()
    (folder / "truncated.pdf").write_bytes(data[: len(data) // 3])
    with pikepdf.open(good) as pdf:
        pdf.save(folder / "locked.pdf", encryption=pikepdf.Encryption(owner="o", user="secret"))
    (folder / "x.pdf").write_bytes(b"")
    (folder / "y.pdf").write_text("hello, I am a text file\n")
    return folder


#: Sample pages turned into images (as scanners and the ViDoRe corpora deliver them), with a
#: question each page answers.
IMAGE_PAGES = {
    "pca": ("hsaur3__pca.pdf", 8, "barplot showing the variances of the principal components"),
    "form": ("pikepdf__dd_form_293.pdf", 2, "why should the review board grant the requested change of discharge"),
    "paper": ("revtex__apssamp.pdf", 1, "manuscript title with a forced linebreak, authors and institutions"),
}


@pytest.fixture(scope="session")
def page_pngs() -> dict[str, bytes]:
    """PNG bytes of the IMAGE_PAGES, rendered at 100 dpi (Tesseract reads them in ~2 s each)."""
    import io

    from colretrieve.documents import PdfReader

    pngs = {}
    for key, (file, page_no, _) in IMAGE_PAGES.items():
        with PdfReader(SAMPLES / file, "sample", dpi=100) as reader:
            page = reader.page(page_no)
            buffer = io.BytesIO()
            page.image.save(buffer, "PNG")
            page.release()
        pngs[key] = buffer.getvalue()
    return pngs


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Folders of tiny random-weight ColPali, ColQwen2, ColQwen2.5, ColModernVBert, NeoMME, CLIP and SigLIP
    checkpoints."""
    from tests.encoders import tiny

    root = tmp_path_factory.mktemp("models")
    return {name: build(root / name) for name, build in
            (("colpali", tiny.colpali), ("colqwen2", tiny.colqwen2), ("colqwen2.5", tiny.colqwen2_5),
             ("colmodernvbert", tiny.colmodernvbert), ("neomme", tiny.neomme),
             ("clip", tiny.clip), ("siglip", tiny.siglip))}


@pytest.fixture(scope="session")
def tiny_colpali(tiny_models: dict[str, Path]):
    """The tiny ColPali of `tiny_models`, loaded once on the CPU."""
    from colretrieve.encoders import load_encoder

    return load_encoder(str(tiny_models["colpali"]), device="cpu")
