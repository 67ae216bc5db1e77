"""Field types shared by request schemas."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator


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
    return parsed


def _reject_time(value: Any) -> Any:
    raise ValueError(f"expected an ISO 8601 time with an offset (…T…Z), got {value!r}")


IsoDateTime = Annotated[datetime, BeforeValidator(_iso_datetime)]


def unstorable(text: str) -> bool:
    """True when PostgreSQL cannot store the text: NUL, or a UTF-16 surrogate half."""
    return "\x00" in text or any("\ud800" <= ch <= "\udfff" for ch in text)


UNSTORABLE_MESSAGE = "contains a character that cannot be stored (NUL or an unpaired surrogate)"


def _check_storable(value: Any) -> Any:
    if isinstance(value, BaseModel):
        _check_storable(value.model_dump())
    elif isinstance(value, str):
        if unstorable(value):
            raise ValueError(UNSTORABLE_MESSAGE)
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_storable(key)
            _check_storable(item)
    elif isinstance(value, list | tuple):
        for item in value:
            _check_storable(item)
    return value


class RequestModel(BaseModel):
    """Base of request bodies: unknown fields refused, text NFC-safe and storable."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    @field_validator("*", mode="after")
    @classmethod
    def _storable(cls, value: Any) -> Any:
        return _check_storable(value)


class Reason(RequestModel):
    """Why a submission is returned or corrected: kept with it."""

    reason: str = Field(min_length=3, max_length=5000)
