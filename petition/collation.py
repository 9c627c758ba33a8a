"""Sorting names as readers expect, without ICU: Unicode-folded keys.

`str.casefold` plus NFKD with combining marks dropped puts "Ärzte" beside "Arzte"
and sorts Latin before Greek before Cyrillic; ties fall back to the exact string so
the order is total and stable.
"""

from __future__ import annotations

import unicodedata


def sort_key(text: str, language: str = "en") -> tuple[str, str]:
    folded = unicodedata.normalize("NFKD", text.casefold())
    base = "".join(ch for ch in folded if not unicodedata.combining(ch))
    return base.strip(), text
