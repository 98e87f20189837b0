"""Documents in, pages out: discovery, content hashes, rendering, words with boxes."""

from .discover import content_hash, discover_documents
from .formats import open_document
from .image import ImageReader
from .page import Page, Word
from .pdf import PdfReader
from .reader import DocumentReader, read_words

__all__ = ["DocumentReader", "ImageReader", "Page", "PdfReader", "Word", "content_hash", "discover_documents",
           "open_document", "read_words"]
