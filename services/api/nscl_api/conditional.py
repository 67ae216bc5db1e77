"""ETag / If-Match for drafts, and Idempotency-Key for creating POSTs."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from fastapi import Header, HTTPException

from nscl_domain.errors import PreconditionFailed

IfMatch = Annotated[
    str | None,
    Header(
        alias="If-Match",
        max_length=100,
        description="The ETag as last read; required to change the resource.",
    ),
]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=8,
        max_length=200,
        description="Unique per intended creation: a repeated request gets the first answer "
        "again (with `Idempotent-Replayed: true`); the same key for another request is "
        "refused with 422, and 409 `request_in_progress` asks to retry while the first runs.",
    ),
]
RESPONSE_HEADERS = "x-nscl-response-headers"
"""Operation key, read and removed when the document is built, naming the headers a route's
success sets by hand (``response.headers[...]``): FastAPI cannot see them in the code."""


def sends(*headers: Literal["ETag", "Location", "Link"]) -> dict[str, Any]:
    """``openapi_extra`` saying which headers the route's success answer carries."""
    return {RESPONSE_HEADERS: list(headers)}


def monitor_link(job_id: object) -> str:
    """A ``Link`` to the job a change queued (RFC 8288; rel ``monitor``, RFC 5989): the
    caller follows it to learn when the work the change set going is done."""
    return f'</v1/jobs/{job_id}>; rel="monitor"'


# If-Match compares strongly (RFC 9110 §13.1.1): a weak tag names no exact revision, and
# neither does "*"; both are refused.
_ETAG = re.compile(r'^"(\d{1,18})"$')


def etag(revision: int) -> str:
    return f'"{revision}"'


def expected_revision(if_match: str | None, noun: str) -> int:
    """The revision a strong If-Match names; 428 without one, 412 when it names none.

    ``noun`` names what is changed ("plan"), so the message speaks of it.
    """
    if if_match is None:
        raise HTTPException(428, f"Send If-Match with the {noun}'s ETag to change it.")
    found = _ETAG.match(if_match.strip())
    if found is None and if_match.strip().startswith("W/"):
        raise PreconditionFailed(
            f"If-Match {if_match!r} is a weak ETag; send the strong ETag as read.",
            code="stale_revision",
        )
    if found is None:
        raise PreconditionFailed(
            f"If-Match {if_match!r} is not an ETag of this {noun}.", code="stale_revision"
        )
    return int(found.group(1))
