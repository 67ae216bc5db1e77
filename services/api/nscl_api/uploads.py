"""Spreadsheet uploads (a report's indicator values, a province's report history): the rows
of a CSV or XLSX body, read in a parser process, or the problem the caller is answered with
when the file cannot be read; and the answers such a route documents for it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Concatenate, ParamSpec, TypeVar

from fastapi import Request
from fastapi.responses import Response as RawResponse

from nscl_api.errors import responses
from nscl_api.problems import Problem, problem_response
from nscl_api.resources import Resources
from nscl_domain.offload import PoolBusy, WorkerLost, WorkTimedOut
from nscl_domain.reports.importing import (
    CSV_MEDIA_TYPE,
    REQUIRED_COLUMNS,
    XLSX_MEDIA_TYPE,
    ImportFormatError,
    ImportLimitError,
    Row,
    UploadLimits,
    read_rows,
)

ZIP_SIGNATURE = b"PK\x03\x04"

P = ParamSpec("P")
T = TypeVar("T")

# The answers an upload route gives about the file itself, beside its own.
UPLOAD_PROBLEMS: dict[int | str, dict[str, Any]] = {
    413: {
        "model": Problem,
        "description": "The file is over a limit of the reader (bytes, inflated bytes, rows, "
        "columns, cells, shared strings); `code` names it, `limit` and `value` give it.",
    },
    **responses(415),
    422: {"description": "The file cannot be read, or (not a dry run) rows have errors."},
    503: {
        "model": Problem,
        "description": "Every parser stayed busy; retry after `Retry-After` seconds.",
        "headers": {
            "Retry-After": {
                "description": "Seconds after which a parser is sure to be free.",
                "schema": {"type": "integer"},
            }
        },
    },
}


async def read_upload(
    request: Request, resources: Resources, required: Sequence[str] = REQUIRED_COLUMNS
) -> list[Row] | RawResponse:
    """The rows of the uploaded file (each with the ``required`` columns), or the problem to
    answer (see :func:`parse_upload`)."""
    return await parse_upload(request, resources, read_rows, required)


async def parse_upload(
    request: Request,
    resources: Resources,
    parse: Callable[Concatenate[bytes, str, UploadLimits, P], T],
    *args: P.args,
    **kwargs: P.kwargs,
) -> T | RawResponse:
    """What ``parse`` makes of the uploaded file in a parser process, or the problem to
    answer: 415 for another media type, 413/422 for a file over a reader's limit or
    unreadable, 422 when parsing outlasts its time or its process, 503 when every parser
    stays busy."""
    path = request.url.path
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type not in {XLSX_MEDIA_TYPE, CSV_MEDIA_TYPE, "application/csv"}:
        return problem_response(
            415, "unsupported_media_type",
            f"Upload text/csv or {XLSX_MEDIA_TYPE}, not {media_type or 'unspecified'}.",
            instance=path,
        )  # fmt: skip
    body = await request.body()
    if body.startswith(ZIP_SIGNATURE):
        # Every workbook is a ZIP, which no CSV file can be. Generated clients that label every
        # raw upload with the one media type (openapi-python-client sends text/csv) still
        # have their workbook read as one.
        media_type = XLSX_MEDIA_TYPE
    limits = UploadLimits(seconds=resources.settings.upload_parse_seconds)
    try:
        # In a worker process: parsing is CPU-bound and must never hold up the event loop.
        return await resources.parsers.run(parse, body, media_type, limits, *args, **kwargs)
    except ImportLimitError as exc:
        extra = {"limit": exc.limit, "value": exc.value}
        return problem_response(
            413 if exc.too_large else 422, exc.code, exc.detail, instance=path, extra=extra
        )
    except ImportFormatError as exc:
        return problem_response(
            422, "unreadable_file", str(exc), instance=path, params={"reason": str(exc)}
        )
    except WorkTimedOut as exc:
        detail = f"Reading the file took more than {limits.seconds:g} s; split it."
        extra = {"limit": limits.seconds, "value": exc.seconds}
        return problem_response(422, "upload_parse_timeout", detail, instance=path, extra=extra)
    except WorkerLost:
        detail = "Reading the file used more resources than a parser has; split it."
        return problem_response(422, "upload_parse_failed", detail, instance=path)
    except PoolBusy as exc:
        return problem_response(
            503, "upload_parsers_busy", str(exc), instance=path,
            headers={"Retry-After": str(exc.retry_after)},
        )  # fmt: skip
