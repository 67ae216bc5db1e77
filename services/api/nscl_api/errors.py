"""Mapping of every error to a problem+json response, and the OpenAPI entries for them."""

from __future__ import annotations

from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from sqlalchemy.exc import IntegrityError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from nscl_api.problems import FieldError, Problem, problem_response
from nscl_api.routes import allowed_methods
from nscl_domain import errors as domain

log = structlog.get_logger(__name__)

# The one table from domain errors to HTTP statuses.
STATUS_OF: dict[type[domain.DomainError], int] = {
    domain.Unauthenticated: 401,
    domain.RateLimited: 429,
    domain.Invalid: 422,
    domain.NotFound: 404,
    domain.Forbidden: 403,
    domain.Conflict: 409,
    domain.PreconditionFailed: 412,
    domain.Unavailable: 503,
}

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    412: "precondition_failed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_failed",
    428: "precondition_required",
    429: "too_many_requests",
    503: "unavailable",
}

_DESCRIPTIONS = {
    400: "Malformed request (e.g. a body that is not valid JSON).",
    401: "Missing, invalid or expired bearer token.",
    403: "The caller may not do this.",
    404: "No such resource.",
    409: "The request conflicts with the resource's state.",
    412: "The resource changed since the caller read it (If-Match).",
    413: "The request body is too large.",
    415: "The request body is not JSON.",
    422: "The input is invalid; `errors` lists every field.",
    428: "The request must be conditional (If-Match).",
    503: "A dependency is unavailable.",
}


def status_of(error: domain.DomainError) -> int:
    for cls in type(error).__mro__:
        if cls in STATUS_OF:
            return STATUS_OF[cls]
    return 400


def responses(*errors: type[domain.DomainError] | int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for a route: the statuses of the domain errors it may raise."""
    statuses = sorted({e if isinstance(e, int) else STATUS_OF[e] for e in errors})
    return {status: {"model": Problem, "description": _DESCRIPTIONS[status]} for status in statuses}


def _location(loc: tuple[Any, ...] | list[Any]) -> list[str | int]:
    return [part if isinstance(part, int) else str(part) for part in loc]


async def _on_domain_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, domain.DomainError)
    status = status_of(exc)
    headers: dict[str, str] = {}
    if status == 401:
        headers["WWW-Authenticate"] = f'Bearer realm="nscl", error="{exc.code}"'
    elif status == 403 and exc.code == "insufficient_scope":
        headers["WWW-Authenticate"] = 'Bearer realm="nscl", error="insufficient_scope"'
    elif isinstance(exc, domain.RateLimited):
        headers["Retry-After"] = str(exc.retry_after)
    return problem_response(
        status,
        exc.code,
        exc.detail,
        instance=request.url.path,
        headers=headers,
        errors=[
            FieldError(location=_location(f.location), message=f.message, code=f.code)
            for f in exc.fields
        ],
    )


async def _on_validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    problems = exc.errors()
    if any(p.get("type") == "json_invalid" for p in problems):
        return problem_response(
            400,
            "malformed_json",
            "The request body is not valid JSON.",
            instance=request.url.path,
        )
    return problem_response(
        422,
        "validation_failed",
        f"The request is invalid in {len(problems)} place(s).",
        instance=request.url.path,
        errors=[
            FieldError(location=_location(p["loc"]), message=p["msg"], code=p["type"])
            for p in problems
        ],
    )


async def _on_http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    status = exc.status_code
    code = _HTTP_CODES.get(status, "http_error")
    detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
    headers = dict(exc.headers or {})
    if status == 404 and detail == "Not Found":
        detail = f"There is no resource at {request.url.path}."
    if status == 405:
        allowed = allowed_methods(request.app, request.url.path)
        headers["Allow"] = ", ".join(allowed)
        detail = f"{request.method} is not allowed here; use {' or '.join(allowed)}."
    return problem_response(status, code, detail, instance=request.url.path, headers=headers)


# A concurrent writer can pass a check and lose the race at the constraint: say so, as 409.
_INTEGRITY_CODES = {
    "23505": (409, "conflict", "The change clashes with another made at the same time."),
    "23503": (409, "conflict", "The change refers to something that no longer exists."),
    "23514": (422, "constraint_violated", "The change breaks a rule of the stored data."),
}


async def _on_integrity_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, IntegrityError)
    sqlstate = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
    status, code, detail = _INTEGRITY_CODES.get(
        str(sqlstate), (409, "conflict", "The change clashes with stored data.")
    )
    log.warning("request.integrity_error", path=request.url.path, sqlstate=sqlstate)
    return problem_response(status, code, detail, instance=request.url.path)


async def _on_unexpected(request: Request, exc: Exception) -> Response:
    log.exception("request.failed", path=request.url.path)
    return problem_response(
        500,
        "internal_error",
        "An unexpected error occurred; it has been logged.",
        instance=request.url.path,
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(domain.DomainError, _on_domain_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_error)
    app.add_exception_handler(IntegrityError, _on_integrity_error)
    app.add_exception_handler(Exception, _on_unexpected)
