"""Image files as one-page (or multi-frame) documents, read by OCR."""

import io
from pathlib import Path

import pytest
from PIL import Image

from colretrieve import Index
from colretrieve.documents import ImageReader, discover_documents
from colretrieve.documents.ocr import get_ocr
from colretrieve.errors import BadDocumentError


def test_png_page_is_read_by_ocr(tmp_path: Path, page_pngs: dict[str, bytes]) -> None:
    path = tmp_path / "pca.png"
    path.write_bytes(page_pngs["pca"])
    with ImageReader(path, "id", dpi=144, ocr=get_ocr("tesseract").words) as reader:
        assert reader.page_count == 1
        page = reader.page(1)
        assert page.image.size == Image.open(path).size  # an image is used at its own resolution
        assert page.width_pt == pytest.approx(page.image.width)  # no dpi recorded: 72, 1 px = 1 pt
        text = page.text.lower()
    assert page.words_source == "ocr" and "barplot" in text and "principal" in text


def test_multi_page_tiff_and_transparency(tmp_path: Path) -> None:
    frames = [Image.new("RGB", (40, 60), "white"), Image.new("RGB", (50, 70), "gray")]
    tiff = tmp_path / "fax.tif"
    frames[0].save(tiff, save_all=True, append_images=frames[1:], dpi=(144, 144))
    with ImageReader(tiff, "id", dpi=144) as reader:
        assert reader.page_count == 2
        second = reader.page(2)
        assert second.image.size == (50, 70) and second.width_pt == pytest.approx(25)
        assert second.words == [] and second.words_source == "none"  # no OCR engine given
        with pytest.raises(BadDocumentError, match="page 3 cannot be read"):
            reader.page(3)
    clear = tmp_path / "clear.png"
    Image.new("RGBA", (8, 8), (0, 0, 0, 0)).save(clear)
    with ImageReader(clear, "id", dpi=144) as reader:
        assert reader.page(1).image.getpixel((0, 0)) == (255, 255, 255)  # transparent shows as paper


@pytest.mark.parametrize(("name", "content", "reason"), [
    ("empty.png", b"", "empty file"),
    ("notes.jpg", b"hello, I am text", r"not an image \(starts with 'hello, I am text'\)"),
])
def test_bad_images_say_why(tmp_path: Path, name: str, content: bytes, reason: str) -> None:
    (tmp_path / name).write_bytes(content)
    with pytest.raises(BadDocumentError, match=reason):
        ImageReader(tmp_path / name, "id", dpi=72)


def test_truncated_image_fails_when_read(tmp_path: Path, page_pngs: dict[str, bytes]) -> None:
    path = tmp_path / "cut.png"
    path.write_bytes(page_pngs["form"][:5000])
    with ImageReader(path, "id", dpi=72) as reader, pytest.raises(BadDocumentError, match="damaged image"):
        _ = reader.page(1).image


def test_folders_give_images_only_when_asked(tmp_path: Path) -> None:
    for name in ("a.pdf", "b.PNG", "c.jpeg", "d.txt"):
        (tmp_path / name).write_bytes(b"x")
    assert [p.name for p in discover_documents([tmp_path])] == ["a.pdf"]
    assert [p.name for p in discover_documents([tmp_path], images=True)] == ["a.pdf", "b.PNG", "c.jpeg"]


def test_index_ingests_and_finds_image_pages(tmp_path: Path, page_pngs: dict[str, bytes], text_encoder) -> None:
    scans = tmp_path / "scans"
    scans.mkdir()
    for key, data in page_pngs.items():
        (scans / f"{key}.png").write_bytes(data)
    (scans / "cut.png").write_bytes(page_pngs["pca"][:5000])  # opens, fails when decoded mid-batch
    with Index.create(tmp_path / "index", model=text_encoder) as index:
        assert index.ingest([scans]).pages == 0  # folder images are opt-in
        report = index.ingest([scans], images=True)  # four one-page documents share one encoder batch
        assert (report.documents, report.pages) == (3, 3)
        assert [(p.name, r.split(" (")[0]) for p, r in report.failed] == [("cut.png", "damaged image")]
        hits = index.search("why should the board grant the requested change", k=3)
    assert Path(hits[0].path).name == "form.png" and hits[0].page == 1
    image = hits[0].image()
    assert image.size == Image.open(io.BytesIO(page_pngs["form"])).size
