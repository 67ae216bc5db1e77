"""The published rollup's hot path: ``GET /v1/rollups/{programme}/{year}`` without filters,
answered below FastAPI's routing and dependency solving.

Readers poll this one route far more than all others together, and its answer comes from
memory (published.py). Measured under 50 connections, FastAPI's routing, dependency solving
and the inner middleware cost about three times what the answer itself does. This layer
answers the plain case with the same checks (bearer token, ``rollups:read``, the path's
rules) and the same caches, and hands everything else to the application unchanged: a
query, an ``Accept`` other than JSON, a bad or unknown token, a caller without the
permission, and every error (the application then answers it as a problem). It sits inside
every middleware (metrics, language, request id, security headers), so its answers are
counted and carry the same headers.
"""

from __future__ import annotations

import re
from types import SimpleNamespace

from starlette.types import ASGIApp, Receive, Scope, Send

from nscl_api.resources import Resources
from nscl_api.rollups.published import NotModified, accepts_gzip
from nscl_api.rollups.router import REVALIDATE
from nscl_api.types import unstorable
from nscl_domain.identity import Permission
from nscl_domain.rollups.views import Filters

_PATH = re.compile(r"^/v1/rollups/([^/]+)/(\d{4})$")
_NO_FILTERS = Filters()
_JSON_ACCEPTS = frozenset({b"", b"*/*", b"application/json", b"application/json, */*"})


class RollupFastPath:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        # What the metrics read of a matched route: its path, the answer's label.
        self.route = SimpleNamespace(path="/v1/rollups/{programme}/{year}")
        self.answered = 0  # requests it answered itself (the rest went to the application)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] != "GET"
            or scope["query_string"]
            or (found := _PATH.match(scope["path"])) is None
        ):
            await self.app(scope, receive, send)
            return
        answer = await self._answer(scope, found.group(1), int(found.group(2)))
        if answer is None:
            await self.app(scope, receive, send)
            return
        status, headers, body = answer
        scope["route"] = self.route
        self.answered += 1
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def _answer(
        self, scope: Scope, programme: str, year: int
    ) -> tuple[int, list[tuple[bytes, bytes]], bytes] | None:
        """The answer, or None for the application to give it."""
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
        headers = [(b"vary", b"Accept-Encoding")]
        if isinstance(found, NotModified):
            headers += [(b"etag", found.etag.encode()), (b"cache-control", REVALIDATE.encode())]
            return 304, headers, b""
        if found.encoding is not None:
            headers.append((b"content-encoding", found.encoding.encode()))
        if found.etag is not None:
            headers += [(b"etag", found.etag.encode()), (b"cache-control", REVALIDATE.encode())]
        headers += [
            (b"content-length", str(len(found.body)).encode()),
            (b"content-type", b"application/json"),
        ]
        return 200, headers, found.body
