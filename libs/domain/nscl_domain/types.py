"""Field types shared by the domain's input models and the API's request bodies."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from pydantic import BeforeValidator


def _iso_date(value: Any) -> Any:
    # Pydantic's lax mode reads 0 as 1970-01-01; on the wire a date is ISO 8601 only.
    if isinstance(value, date):
        return value
    if isinstance(value, str) and len(value) == 10:
        return date.fromisoformat(value)
    raise ValueError(f"expected a date as YYYY-MM-DD, got {value!r}")


IsoDate = Annotated[date, BeforeValidator(_iso_date)]
