"""Vietnamese text: NFC on input, and a folded form for search with or without diacritics."""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from sqlalchemy import ColumnElement, and_, true


def nfc(text: str) -> str:
    """Return ``text`` in Unicode NFC, the form stored everywhere."""
    return unicodedata.normalize("NFC", text)


def fold(text: str) -> str:
    """Lower-case and strip diacritics, đ → d: "Chợ Đồn" → "cho don"."""
    decomposed = unicodedata.normalize("NFD", text.replace("đ", "d").replace("Đ", "D"))
    stripped = "".join(ch for ch in decomposed if unicodedata.category(ch) != "Mn")
    return " ".join(stripped.lower().split())


def search_terms(query: str) -> list[str]:
    """The folded words of a search: "Chất lượng  BẮC Kạn" → ["chat", "luong", "bac", "kan"]."""
    return fold(query).split()


def _like_escaped(term: str) -> str:
    return term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def matches_all_words(folded_column: Any, query: str) -> ColumnElement[bool]:
    """A condition: every word of ``query`` occurs in ``folded_column``, in any order.

    ``folded_column`` holds :func:`fold` of the searchable text (a ``search_text`` column),
    so "chat luong bac kan" finds "Chi cục Tiêu chuẩn Đo lường Chất lượng tỉnh Bắc Kạn"
    and so does "Bắc Kạn chất". A word matches inside a longer one ("luong" in "luong-gia").
    Folding happens in Python, so no database extension (unaccent, pg_trgm) is needed.
    """
    terms = search_terms(query)
    if not terms:
        return true()
    return and_(*(folded_column.like(f"%{_like_escaped(t)}%", escape="\\") for t in terms))


# NUL and the C0 controls but tab, LF and CR; DEL; UTF-16 surrogate halves (a lone one
# cannot be encoded, PostgreSQL refuses NUL, and the rest break the CSV, XLSX and
# Word outputs and the logs that echo the text).
_UNACCEPTABLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")
UNACCEPTABLE_TEXT_MESSAGE = (
    "contains a character that cannot be stored: NUL, a control character other than "
    "tab or line break, DEL, or an unpaired surrogate"
)


def unacceptable(text: str) -> bool:
    """True when ``text`` holds a character no text field of the programme accepts."""
    return _UNACCEPTABLE.search(text) is not None


def clean_text(text: str) -> str:
    """Return ``text`` in NFC, or raise ``ValueError`` when it cannot be stored."""
    if _UNACCEPTABLE.search(text) is not None:
        raise ValueError(UNACCEPTABLE_TEXT_MESSAGE)
    return text if unicodedata.is_normalized("NFC", text) else unicodedata.normalize("NFC", text)


def clean_texts(value: Any) -> Any:
    """Apply :func:`clean_text` to every string in ``value``, keys of mappings included."""
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, dict):
        return {clean_texts(k): clean_texts(v) for k, v in value.items()}
    if isinstance(value, list):
        return [clean_texts(item) for item in value]
    if isinstance(value, tuple):
        return tuple(clean_texts(item) for item in value)
    return value
