"""What a text query must hold to be searched at all: checked by search and, before any model
loads, by the CLI."""

from __future__ import annotations


def searchable(text: str) -> bool:
    """True if `text` has a letter or a digit (any script). A blank, punctuation-only or
    emoji-only query matches nothing on a page; scoring it would rank arbitrary pages.

    >>> searchable("arrests in 2009"), searchable("  ?!  "), searchable("\\U0001F600"), searchable("東京")
    (True, False, False, True)
    """
    return any(ch.isalnum() for ch in text)
