"""Bases and field types shared by request and response schemas."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from nscl_domain.text import UNACCEPTABLE_TEXT_MESSAGE, unacceptable
from nscl_domain.types import InputModel, IsoDateTime

__all__ = [
    "UNSTORABLE_MESSAGE",
    "IsoDateTime",
    "Reason",
    "RequestModel",
    "ResponseModel",
    "unstorable",
]


def unstorable(text: str) -> bool:
    """True when no text field accepts ``text`` (NUL, control characters, lone surrogates)."""
    return unacceptable(text)


UNSTORABLE_MESSAGE = UNACCEPTABLE_TEXT_MESSAGE


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
