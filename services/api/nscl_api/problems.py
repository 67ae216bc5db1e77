"""RFC 9457 problem details: the one shape of every error response."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from asgi_correlation_id import correlation_id
from pydantic import BaseModel, Field
from pydantic.json_schema import SkipJsonSchema
from starlette.responses import JSONResponse

from nscl_api.messages import current_language, message, title
from nscl_domain.errors import ProblemCode

PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEM_TYPE_PREFIX = "urn:nscl:problem:"


class FieldError(BaseModel):
    """One invalid part of the request."""

    location: list[str | int] = Field(
        description="Where: the request part (body, query, path, header) then the field path, "
        'list indexes as integers. In an uploaded spreadsheet: ["body", row, column], the row '
        "as the spreadsheet numbers it (header: 1) and the column by its header.",
        examples=[["body", "valid_to"], ["body", "lines", 3, "amount"], ["body", 12, "value"]],
    )
    message: str = Field(examples=["must not be before valid_from"])
    code: str = Field(description="Machine-readable reason.", examples=["invalid"])


class ProblemUnit(BaseModel):
    """The unit a refusal is about: when it exists and who succeeded it."""

    key: str = Field(examples=["bk-na-ri"])
    valid_from: str = Field(description="First day it exists (ISO 8601).", examples=["1997-01-01"])
    valid_to: str | None = Field(
        description="First day it no longer exists; null while it exists.",
        examples=["2025-07-01"],
    )
    successors: list[str] = Field(
        description="Keys of the units that succeeded it.", examples=[["tn-ppc"]]
    )


class Problem(BaseModel):
    """An error, as RFC 9457 describes it, with a stable machine code."""

    type: str = Field(
        description="URI naming the kind of problem.", examples=["urn:nscl:problem:not_found"]
    )
    title: str = Field(examples=["Not Found"])
    status: int = Field(ge=400, le=599, examples=[404])
    detail: str = Field(examples=["Job 0190... does not exist."])
    code: ProblemCode = Field(
        description="Stable machine-readable code: one of a closed list, so a client can "
        "handle each; new codes come with a new version of this document.",
        examples=["job_not_found"],
    )
    # Sent only when there is something to say (the body is dumped without nulls): optional
    # in the contract, never null. The one response schema with fields that may be absent.
    instance: str | SkipJsonSchema[None] = Field(default=None, description="The request path.")
    request_id: str | SkipJsonSchema[None] = Field(
        default=None, description="Echo of the X-Request-ID header."
    )
    errors: list[FieldError] | SkipJsonSchema[None] = Field(
        default=None, description="For invalid input: every field that is wrong."
    )
    unit_period: ProblemUnit | None = Field(
        default=None,
        description="When a unit may not act or file for a period: its period and successors.",
    )


class ProblemResponse(JSONResponse):
    media_type = PROBLEM_MEDIA_TYPE


def problem_response(
    status: int,
    code: ProblemCode,
    detail: str,
    *,
    instance: str | None = None,
    errors: Sequence[FieldError] | None = None,
    headers: dict[str, str] | None = None,
    extra: dict[str, Any] | None = None,
    params: Mapping[str, object] | None = None,
) -> ProblemResponse:
    """Build a problem+json response, its words in the request's language (the codes are
    the same in every language; ``params`` fill the catalogue's templates, and ``extra``
    members are offered to them too)."""
    problem = Problem(
        type=PROBLEM_TYPE_PREFIX + code,
        title=title(status),
        status=status,
        detail=message(code, detail, {**(extra or {}), **(params or {})}),
        code=code,
        instance=instance,
        request_id=correlation_id.get(),
        errors=list(errors) if errors else None,
    )
    body = problem.model_dump(mode="json", exclude_none=True)
    if extra:
        body.update(extra)
    headers = {**(headers or {}), "Content-Language": current_language()}
    return ProblemResponse(body, status_code=status, headers=headers)
