"""PDFs in, pages out: discovery, content hashes, rendering, words with boxes."""

from .discover import content_hash, discover_pdfs
from .page import Page, Word
from .pdf import PdfReader

__all__ = ["Page", "PdfReader", "Word", "content_hash", "discover_pdfs"]
