"""Field types shared by request and response schemas: one shape per kind of value.

docs/contract.md ("Shapes") states the rules these types implement: a reference to a keyed
catalogue object is its key, in a field named after the object (or its role); quantities,
percentages and money are each written one way.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema

from nscl_domain.text import UNACCEPTABLE_TEXT_MESSAGE, unacceptable
from nscl_domain.types import (
    PERCENT_PATTERN,
    QUANTITY_PATTERN,
    InputModel,
    IsoDateTime,
    Percent,
    Quantity,
)

__all__ = [
    "PERCENT_PATTERN",
    "QUANTITY_PATTERN",
    "UNSTORABLE_MESSAGE",
    "IndicatorKey",
    "IsoDateTime",
    "Money",
    "Percent",
    "PhaseKey",
    "ProgrammeKey",
    "Quantity",
    "Reason",
    "RequestModel",
    "ResponseModel",
    "TaskGroupNumber",
    "TaskKey",
    "UnitKey",
    "unstorable",
]


def unstorable(text: str) -> bool:
    """True when no text field accepts ``text`` (NUL, control characters, lone surrogates)."""
    return unacceptable(text)


UNSTORABLE_MESSAGE = UNACCEPTABLE_TEXT_MESSAGE

# References to keyed catalogue objects: the key, never an id or an embedded object, so a
# client joins every response to the catalogue lists the same way.
UnitKey = Annotated[str, Field(examples=["bk-ba-be"])]
"""An organisation unit's key (see GET /v1/org-units)."""
ProgrammeKey = Annotated[str, Field(examples=["bac-kan-nscl"])]
PhaseKey = Annotated[str, Field(examples=["bk-2021-2025"])]
IndicatorKey = Annotated[str, Field(examples=["experts-certified"])]
TaskKey = Annotated[str, Field(examples=["t-3-2"])]
TaskGroupNumber = Annotated[int, Field(ge=0, examples=[3])]
"""A task group, by its number; 0 where a line or row is tied to no task."""

Money = Annotated[
    int,
    WithJsonSchema(
        {
            "type": "integer",
            "format": "int64",
            "description": "Whole Vietnamese đồng (VND), a JSON integer.",
            "examples": [150000000],
        },
        mode="serialization",
    ),
]
"""An amount of money in whole đồng: a JSON integer (every amount is below 2^53)."""


class RequestModel(InputModel):
    """Base of request bodies: the domain's input rules (unknown fields refused, text NFC
    and storable), so an API schema and a domain content model check text alike."""


class ResponseModel(BaseModel):
    """Base of response bodies. A field with a default is still sent on every answer (as
    null when it has no value), so the contract lists it as required: generated clients
    then type it as always present, nullable where it may be null."""

    model_config = ConfigDict(json_schema_serialization_defaults_required=True)


class Reason(RequestModel):
    """Why a submission is returned or corrected: kept with it."""

    reason: str = Field(min_length=3, max_length=5000)
