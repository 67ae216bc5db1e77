"""Cursor pagination: opaque cursors, `items` and `next_cursor`."""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import Callable, Sequence
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Query
from pydantic import Field

from nscl_api.types import ResponseModel
from nscl_domain.errors import FieldProblem, Invalid
from nscl_domain.text import unacceptable
from nscl_domain.types import IsoDateTime

T = TypeVar("T")
Limit = Annotated[int, Query(ge=1, le=500, description="Page size.")]
Cursor = Annotated[str | None, Query(max_length=200, description="A next_cursor, unchanged.")]
UnitFilter = Annotated[
    str | None,
    Query(
        max_length=100, description="Only this unit's (a key or an id); none match an unknown one."
    ),
]
Subtree = Annotated[bool, Query(description="With `unit`: also the units under it, at any depth.")]
UpdatedSince = Annotated[
    IsoDateTime | None,
    Query(description="Only those changed at or after this instant (ISO 8601 with offset)."),
]

MAX_OFFSET = 1_000_000
"""Deepest offset a cursor may carry: offset cursors page short collections (a programme's
indicators, a year's obligations), far below it."""
MAX_KEY_LENGTH = 200


class Page(ResponseModel, Generic[T]):
    """One page of a list. Pass ``next_cursor`` back as ``cursor`` for the next page."""

    items: list[T]
    next_cursor: str | None = Field(
        default=None, description="Opaque; pass it back as `cursor`. Null on the last page."
    )

    @classmethod
    def model_parametrized_name(cls, params: tuple[Any, ...]) -> str:
        """Name ``Page[TaskRead]`` ``TaskReadPage``: the contract's schema name for clients."""
        return f"{getattr(params[0], '__name__', 'Item')}Page"


def encode_cursor(position: dict[str, Any]) -> str:
    raw = json.dumps(position, separators=(",", ":"), default=str).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> dict[str, Any]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        value = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (binascii.Error, ValueError, UnicodeDecodeError) as exc:
        raise bad_cursor() from exc
    if not isinstance(value, dict):
        raise bad_cursor()
    return value


def bad_cursor() -> Invalid:
    return Invalid(
        "The cursor is not one this API issued.",
        code="invalid_cursor",
        fields=[FieldProblem(("query", "cursor"), "Pass back a next_cursor unchanged.")],
    )


def split_page(rows: Sequence[T], limit: int) -> tuple[Sequence[T], bool]:
    """Rows were fetched with ``limit + 1``: return the page and whether more follow."""
    return rows[:limit], len(rows) > limit


def before_id_of(cursor: str | None) -> uuid.UUID | None:
    """The id a newest-first page continues before (keyset on time-ordered ids)."""
    if cursor is None:
        return None
    try:
        return uuid.UUID(str(decode_cursor(cursor)["before"]))
    except (KeyError, ValueError) as exc:
        raise bad_cursor() from exc


def keyset_page(
    rows: Sequence[T], limit: int, id_of: Callable[[T], uuid.UUID]
) -> tuple[list[T], str | None]:
    """Rows were fetched newest first with ``limit + 1``: the page and the next cursor, which
    names the last id shown (ids are time-ordered, so rows created meanwhile never shift a
    page as an offset would)."""
    page, more = split_page(rows, limit)
    return list(page), encode_cursor({"before": str(id_of(page[-1]))}) if more else None


def after_key_of(cursor: str | None) -> str | None:
    """The key a key-ordered page continues after."""
    if cursor is None:
        return None
    after = decode_cursor(cursor).get("after")
    # Keys are short printable strings; anything else was not issued here and would only
    # reach the database to fail there.
    if not isinstance(after, str) or len(after) > MAX_KEY_LENGTH or unacceptable(after):
        raise bad_cursor()
    return after


def offset_of(cursor: str | None) -> int:
    """Position encoded in a cursor of a short, ordered collection (0 without one)."""
    if cursor is None:
        return 0
    offset = decode_cursor(cursor).get("offset")
    # A bool is an int to Python, and an offset past BIGINT is a database error, not a page.
    if not isinstance(offset, int) or isinstance(offset, bool) or not 0 <= offset <= MAX_OFFSET:
        raise bad_cursor()
    return offset


def offset_page(rows: Sequence[T], offset: int, limit: int) -> tuple[list[T], str | None]:
    """Rows were fetched with ``limit + 1`` from ``offset``: the page and the next cursor."""
    page, more = split_page(rows, limit)
    return list(page), encode_cursor({"offset": offset + limit}) if more else None
