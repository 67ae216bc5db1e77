"""Field types shared by the domain's input models and the API's request bodies."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import ROUND_HALF_EVEN, Context, Decimal
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    PlainSerializer,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
)

from nscl_domain.text import clean_text, clean_texts

STORED: dict[str, Any] = {"stored": True}
"""Validation context for content read back from the database: checked when written, and
read without the input checks so a rule tightened later cannot make old rows unreadable."""


def _iso_date(value: Any) -> Any:
    # Pydantic's lax mode reads 0 as 1970-01-01; on the wire a date is ISO 8601 only.
    if isinstance(value, date):
        return value
    if isinstance(value, str) and len(value) == 10:
        return date.fromisoformat(value)
    raise ValueError(f"expected a date as YYYY-MM-DD, got {value!r}")


IsoDate = Annotated[date, BeforeValidator(_iso_date)]


def _iso_datetime(value: Any) -> Any:
    # As for dates: 0.5 is not a time on the wire, and a time without an offset is ambiguous.
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str) and "T" in value:
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            return _reject_time(value)
    else:
        return _reject_time(value)
    if parsed.tzinfo is None:
        return _reject_time(value)
    try:
        # Stored and compared in UTC: 9999-12-31T23:59-14:00 is a valid string whose UTC
        # instant is past year 9999, which neither Python nor the database driver can hold.
        parsed.astimezone(UTC)
    except OverflowError:
        raise ValueError(
            f"{value!r} is outside the times this API stores "
            "(0001-01-01T00:00:00Z to 9999-12-31T23:59:59Z)"
        ) from None
    return parsed


def _reject_time(value: Any) -> Any:
    raise ValueError(f"expected an ISO 8601 time with an offset (…T…Z), got {value!r}")


IsoDateTime = Annotated[datetime, BeforeValidator(_iso_datetime)]


# --- how numbers are written on the wire ------------------------------------------------
# One rule per kind, so a client parses every figure alike (docs/contract.md, "Shapes").

_SCALE = Decimal("0.0001")
# Wide enough for any Numeric(20, 4) sum: quantizing never runs out of digits.
_WIDE = Context(prec=60, rounding=ROUND_HALF_EVEN)

QUANTITY_PATTERN = r"^-?(0|[1-9][0-9]*)(\.[0-9]{0,3}[1-9])?$"
PERCENT_PATTERN = r"^-?(0|[1-9][0-9]*)\.[0-9]{4}$"


def render_quantity(value: Decimal) -> str:
    """Plain decimal notation, rounded to 4 places, trailing zeros dropped: "47", "12.5"."""
    rounded = value.quantize(_SCALE, context=_WIDE)
    if rounded.is_zero():
        return "0"
    text = f"{rounded:f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def render_percent(value: Decimal) -> str:
    """Percentage points with exactly 4 places: "97.5000", "0.0000"."""
    rounded = value.quantize(_SCALE, context=_WIDE)
    return f"{rounded.copy_abs() if rounded.is_zero() else rounded:f}"


Quantity = Annotated[
    Decimal,
    PlainSerializer(render_quantity, return_type=str, when_used="json"),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": QUANTITY_PATTERN,
            "description": "A quantity: plain decimal notation, at most 4 decimal places, "
            "trailing zeros dropped.",
            "examples": ["47", "12.5"],
        },
        mode="serialization",
    ),
]
"""A measured or planned amount (indicator values, targets, planned outputs): read from a JSON
number or string, written as a string in plain notation without trailing zeros."""

Percent = Annotated[
    Decimal,
    PlainSerializer(render_percent, return_type=str, when_used="json"),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": PERCENT_PATTERN,
            "description": "A percentage (100 = the whole): exactly 4 decimal places.",
            "examples": ["97.5000"],
        },
        mode="serialization",
    ),
]
"""A ratio in percent (ratios, growth, thresholds): written as a string with 4 places."""


def _item_text(value: str, info: ValidationInfo) -> str:
    if info.context is not None and info.context.get("stored"):
        return value
    return clean_text(value)


ItemText = Annotated[str, AfterValidator(_item_text)]
"""A text inside a list or a mapping: checked on its own, so a refusal names its index or key
(the model-wide check below would name only the list or the mapping)."""


class InputModel(BaseModel):
    """Base of every model that reads input, in the domain and in the API's request bodies:
    unknown fields refused, text trimmed, in NFC, and free of characters that cannot be
    stored (NUL, control characters but tab and line breaks, DEL, unpaired surrogates)."""

    # A model read from a request is often sent back (a report's content): the answer
    # carries every field, defaults included, so its contract lists them all as required.
    model_config = ConfigDict(
        extra="forbid", str_strip_whitespace=True, json_schema_serialization_defaults_required=True
    )

    @field_validator("*", mode="after")
    @classmethod
    def _clean_text(cls, value: Any, info: ValidationInfo) -> Any:
        if info.context is not None and info.context.get("stored"):
            return value
        if isinstance(value, str):
            return clean_text(value)
        if isinstance(value, dict | list | tuple):
            return clean_texts(value)
        if isinstance(value, BaseModel) and not isinstance(value, InputModel):
            # A nested model of another kind: checked, though not rewritten.
            clean_texts(value.model_dump())
        return value
