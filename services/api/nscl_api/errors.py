"""Mapping of every error to a problem+json response, and the OpenAPI entries for them."""

from __future__ import annotations

import errno
from types import TracebackType
from typing import Any

import asyncpg  # type: ignore[import-untyped]  # asyncpg ships no type information
import redis.exceptions
import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from sqlalchemy import exc as sa_exc
from sqlalchemy.exc import IntegrityError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from nscl_api.messages import message
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

_HTTP_CODES: dict[int, domain.ProblemCode] = {
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
    503: "The database or the job queue is unreachable for now; retry after `Retry-After` seconds.",
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
            FieldError(
                location=_location(f.location), message=message(f.code, f.message), code=f.code
            )
            for f in exc.fields
        ],
        extra=exc.extra or None,
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
        params={"count": len(problems)},
        errors=[
            FieldError(
                location=_location(p["loc"]),
                message=message(p["type"], p["msg"], _context(p.get("ctx"))),
                code=p["type"],
            )
            for p in problems
        ],
    )


def _context(ctx: dict[str, Any] | None) -> dict[str, object]:
    return {name: str(value) for name, value in (ctx or {}).items()}


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
_INTEGRITY_CODES: dict[str, tuple[int, domain.ProblemCode, str]] = {
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


# Seconds a client should wait before retrying while a dependency is down: long enough not
# to hammer a recovering server, short enough that a restart is barely noticed.
OUTAGE_RETRY_AFTER = 5

# The dependencies whose outage answers 503, and the code and words of each.
_OUTAGES: dict[str, tuple[domain.ProblemCode, str]] = {
    "database": ("database_unavailable", "The database is unreachable; retry shortly."),
    "queue": ("queue_unavailable", "The job queue is unreachable; retry shortly."),
}

# Exceptions that mean "could not reach the server", whoever raised them; which server is
# told by the library that raised it (a refused connect surfaces as a bare OSError).
_CONNECTION_FAILURES: tuple[type[BaseException], ...] = (
    OSError,  # ConnectionRefusedError, ConnectionResetError, "Multiple exceptions: …"
    TimeoutError,  # asyncpg's connect timeout (asyncio.TimeoutError is TimeoutError)
    asyncpg.exceptions.PostgresConnectionError,  # includes CannotConnectNowError (shutdown)
    asyncpg.exceptions.InterfaceError,  # "connection is closed" mid-request
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.CrashShutdownError,
    sa_exc.TimeoutError,  # the pool's wait for a connection ran out
    sa_exc.OperationalError,
    sa_exc.InterfaceError,
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
)
# Exception classes the handlers are registered on (the lookup walks each class's MRO).
OUTAGE_EXCEPTIONS: tuple[type[Exception], ...] = (
    OSError,
    TimeoutError,
    asyncpg.exceptions.PostgresError,
    asyncpg.exceptions.InterfaceError,
    sa_exc.DBAPIError,
    sa_exc.TimeoutError,
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
)


def _frames_modules(tb: TracebackType | None) -> list[str]:
    modules = []
    while tb is not None:
        modules.append(str(tb.tb_frame.f_globals.get("__name__", "")))
        tb = tb.tb_next
    return modules


_CONNECTION_ERRNOS = {
    errno.ECONNREFUSED,
    errno.ECONNRESET,
    errno.ECONNABORTED,
    errno.EHOSTUNREACH,
    errno.ENETUNREACH,
    errno.ETIMEDOUT,
    errno.EADDRNOTAVAIL,
    errno.EPIPE,
}


def _is_connection_oserror(exc: BaseException) -> bool:
    if isinstance(exc, ConnectionError | TimeoutError):
        return True
    if not isinstance(exc, OSError):
        return False
    # asyncio reports a connect that failed on every address as one OSError without errno.
    return exc.errno in _CONNECTION_ERRNOS or str(exc).startswith("Multiple exceptions:")


def outage_of(exc: BaseException) -> str | None:
    """Which dependency's outage the exception shows (``database``/``queue``), or None."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)):
            return "queue"
        if isinstance(current, sa_exc.DBAPIError) and current.connection_invalidated:
            return "database"
        if isinstance(current, _CONNECTION_FAILURES):
            # The innermost library frame names the server that could not be reached.
            for module in reversed(_frames_modules(current.__traceback__)):
                root = module.split(".")[0]
                if root in ("redis", "arq"):
                    return "queue"
                if root in ("asyncpg", "sqlalchemy"):
                    return "database"
            if isinstance(current, sa_exc.DBAPIError | sa_exc.TimeoutError | asyncpg.PostgresError):
                return "database"
            # No library frame left (an exception shared by the waiters of one load keeps
            # only the waiter's frames): redis-py wraps every socket error in its own
            # classes, so a bare connection error can only be the database's.
            if _is_connection_oserror(current):
                return "database"
        current = current.__cause__ or current.__context__
    return None


def outage_response(dependency: str, path: str | None) -> Response:
    """The 503 problem of an unreachable dependency, with Retry-After."""
    code, detail = _OUTAGES[dependency]
    return problem_response(
        503,
        code,
        detail,
        instance=path,
        headers={"Retry-After": str(OUTAGE_RETRY_AFTER)},
    )


async def _on_possible_outage(request: Request, exc: Exception) -> Response:
    dependency = outage_of(exc)
    if dependency is None:
        return await _on_unexpected(request, exc)
    log.warning(
        "request.dependency_unavailable",
        path=request.url.path,
        dependency=dependency,
        error=f"{type(exc).__name__}: {exc}",
    )
    return outage_response(dependency, request.url.path)


async def _on_unexpected(request: Request, exc: Exception) -> Response:
    dependency = outage_of(exc)
    if dependency is not None:
        # Wrapped in something unexpected (an exception group, a framework error).
        return outage_response(dependency, request.url.path)
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
    for outage in OUTAGE_EXCEPTIONS:
        app.add_exception_handler(outage, _on_possible_outage)
    app.add_exception_handler(Exception, _on_unexpected)
