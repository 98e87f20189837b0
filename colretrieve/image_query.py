"""An image as a query (`query --image FILE`, `Index.search(image=...)`): read as a one-page
document, as ingest reads a page, so the encoders see it as they saw the pages.

What the search then does with it depends on the index's models (search.py): a VLM encoder
embeds it as a page and scores it page against page, a CLIP/SigLIP prefilter embeds it as an
image; the text default reads its words (text layer or OCR) and searches with them.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, TypeAlias

from .documents import open_document
from .documents.ocr import ocr_function
from .errors import BadDocumentError, ColretrieveError
from .page import Page
from .settings import IndexConfig

if TYPE_CHECKING:
    from PIL import Image

#: A file (its first page) or a PIL image.
ImageInput: TypeAlias = "str | os.PathLike[str] | Image.Image"


def read_image(image: ImageInput, config: IndexConfig, words: bool) -> Page:
    """The page `image` shows (a file's first page, or a PIL image), rendered with the index's
    dpi and renderer; with `words`, its words read too (text layer, else the index's OCR)."""
    if isinstance(image, (str, os.PathLike)):
        return _first_page(Path(image), config, words)
    with tempfile.TemporaryDirectory(prefix="colretrieve-query-") as folder:  # read as any image file is
        path = Path(folder) / "query.png"
        image.save(path)
        return _first_page(path, config, words)


def _first_page(path: Path, config: IndexConfig, words: bool) -> Page:
    if not path.is_file():
        raise ColretrieveError(f"{path}: no such image file")
    try:
        with open_document(path, "query", dpi=config.dpi, renderer=config.renderer,
                           ocr=ocr_function(config.ocr)) as reader:
            page = reader.page(1)
            page.image.load()  # rendered and read now, while the file is open; the page keeps both
            if words:
                _ = page.words
            return page
    except BadDocumentError as exc:
        raise ColretrieveError(f"{path}: {exc.reason}") from None
