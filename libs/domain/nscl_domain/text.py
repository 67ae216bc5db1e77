"""Vietnamese text: NFC on input, and a folded form for search with or without diacritics."""

from __future__ import annotations

import unicodedata


def nfc(text: str) -> str:
    """Return ``text`` in Unicode NFC, the form stored everywhere."""
    return unicodedata.normalize("NFC", text)


def fold(text: str) -> str:
    """Lower-case and strip diacritics, đ → d: "Chợ Đồn" → "cho don"."""
    decomposed = unicodedata.normalize("NFD", text.replace("đ", "d").replace("Đ", "D"))
    stripped = "".join(ch for ch in decomposed if unicodedata.category(ch) != "Mn")
    return " ".join(stripped.lower().split())
