"""The published rollup's hot path: ``GET /v1/rollups/{programme}/{year}`` without filters,
answered below FastAPI's routing and dependency solving.

Readers poll this one route far more than all others together, and its answer comes from
memory (published.py). Measured under 50 connections, FastAPI's routing, dependency solving
and the inner middleware cost about three times what the answer itself does. This layer
answers the plain case with the same checks (bearer token, ``rollups:read``, the path's
rules) and the same caches, and hands everything else to the application unchanged: a
query, an ``Accept`` other than JSON, a bad or unknown token, a caller without the
permission, and every error (the application then answers it as a problem). The edge
middleware (nscl_api.middleware) asks it first, after its own per-request work: its answers
are counted, logged and carry the same headers as the application's.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from types import SimpleNamespace

from starlette.types import Scope

from nscl_api.resources import Resources
from nscl_api.rollups.published import NotModified, accepts_gzip
from nscl_api.rollups.router import REVALIDATE
from nscl_api.types import unstorable
from nscl_domain.identity import Permission
from nscl_domain.rollups.views import Filters

ROUTE = "/v1/rollups/{programme}/{year}"
_PATH = re.compile(r"^/v1/rollups/([^/]+)/(\d{4})$")
_NO_FILTERS = Filters()
_JSON_ACCEPTS = frozenset({b"", b"*/*", b"application/json", b"application/json, */*"})
_MAX_HEADER_LISTS = 1024

Header = tuple[bytes, bytes]


class RollupFastPath:
    """Answers the plain poll from the caches, or says None for the application to answer.

    ``common`` are the headers every answer of a private path carries (the edge
    middleware's); they are put in the cached header lists, so an answer costs the edge one
    list with its request id appended."""

    # What the metrics read of a matched route: its path, the answer's label.
    route = SimpleNamespace(path=ROUTE)

    def __init__(self, common: Sequence[tuple[bytes, bytes]]) -> None:
        self.common = tuple(common)
        self.answered = 0  # requests it answered itself (the rest went to the application)
        # (status, etag, encoding, length) → the answer's headers: polls repeat the same few.
        self._headers: dict[tuple[int, str | None, str | None, int], list[Header]] = {}

    async def answer(self, scope: Scope) -> tuple[int, list[Header], bytes] | None:
        """The answer to a GET without query string, or None for the application to give."""
        found = _PATH.match(scope["path"])
        if found is None:
            return None
        answer = await self._answer(scope, found.group(1), int(found.group(2)))
        if answer is not None:
            self.answered += 1
        return answer

    async def _answer(
        self, scope: Scope, programme: str, year: int
    ) -> tuple[int, list[Header], bytes] | None:
        if not 2000 <= year <= 2100 or unstorable(programme):
            return None
        authorization = if_none_match = accept_encoding = None
        for name, value in scope["headers"]:
            # Anything but JSON (CSV, XLSX) is negotiated by the application.
            if name == b"accept" and value.strip().lower() not in _JSON_ACCEPTS:
                return None
            if name == b"authorization":
                authorization = value.decode("latin-1")
            elif name == b"if-none-match":
                if_none_match = value.decode("latin-1")
            elif name == b"accept-encoding":
                accept_encoding = value.decode("latin-1")
        if authorization is None or (if_none_match is not None and len(if_none_match) > 200):
            return None
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        resources: Resources = scope["app"].state.resources
        try:
            verified = resources.keys.verify(token.strip())
        except Exception:
            return None  # the application says why (and reloads keys when one is unknown)
        caller = resources.callers.get(verified.client_id, verified.scopes)
        if caller is None or not caller.can(Permission.ROLLUPS_READ):
            return None  # not cached yet, or refused: the application's path loads or says so
        encoding = "gzip" if accepts_gzip(accept_encoding) else None
        try:
            found = await resources.rollups.read(
                resources.new_uow, caller, programme, year, _NO_FILTERS, if_none_match, encoding
            )
        except Exception:
            return None  # not found, or a failure: answered as a problem by the application
        if isinstance(found, NotModified):
            return 304, self._headers_of(304, found.etag, None, 0), b""
        return 200, self._headers_of(200, found.etag, found.encoding, len(found.body)), found.body

    def _headers_of(
        self, status: int, etag: str | None, encoding: str | None, length: int
    ) -> list[Header]:
        key = (status, etag, encoding, length)
        cached = self._headers.get(key)
        if cached is not None:
            return cached
        headers: list[Header] = [(b"vary", b"Accept-Encoding")]
        if encoding is not None:
            headers.append((b"content-encoding", encoding.encode()))
        if etag is not None:
            headers += [(b"etag", etag.encode()), (b"cache-control", REVALIDATE.encode())]
        else:
            # As the edge does for every private answer that chose no caching of its own.
            headers.append((b"cache-control", b"no-store"))
        if status != 304:
            headers += [
                (b"content-length", str(length).encode()),
                (b"content-type", b"application/json"),
            ]
        headers += self.common
        if len(self._headers) >= _MAX_HEADER_LISTS:
            self._headers.clear()  # runs come and go: forget the old ones all at once
        self._headers[key] = headers
        return headers
