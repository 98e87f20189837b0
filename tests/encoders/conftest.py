"""Fixtures the page-image encoder tests share."""

from pathlib import Path

import pytest

from colretrieve.documents import PdfReader


@pytest.fixture(scope="module")
def pages(samples: Path):
    """Three real pages of different shapes (portrait, landscape table, scan)."""
    out = []
    for file, page_no in (("hsaur3__pca.pdf", 8), ("tabula__census_table_12s0324.pdf", 1),
                          ("ocrmypdf__linn_brochure_scan.pdf", 1)):
        with PdfReader(samples / file, "id", dpi=36) as reader:
            page = reader.page(page_no)
            _ = page.image
            out.append(page)
    return out
