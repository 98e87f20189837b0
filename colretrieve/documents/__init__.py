"""Documents in, pages out: discovery, content hashes, rendering, words with boxes."""

from ..page import Page, Word
from .discover import CHANGED, FileState, content_hash, discover_documents, file_state, path_text, raw_path
from .formats import open_document
from .image import ImageReader
from .pdf import PdfReader
from .reader import DocumentReader, read_words

__all__ = ["CHANGED", "DocumentReader", "FileState", "ImageReader", "Page", "PdfReader", "Word", "content_hash",
           "discover_documents", "file_state", "open_document", "path_text", "raw_path", "read_words"]
