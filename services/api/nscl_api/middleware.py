"""The edge: one pure ASGI middleware for what every answer needs.

It does, in one layer and one pass over the request's headers, what five layers did (each
with its own wrapper of ``send``):

- the request id: ``X-Request-ID`` taken when it is a UUID (or 32 hex digits), made
  otherwise; echoed on the answer, in problems (asgi-correlation-id's context variable) and
  on every log line written while answering;
- the language of problems, from ``Accept-Language`` (nscl_api.messages);
- the body size limit: a body declared or streamed over ``max_body_bytes`` is answered 413
  with a problem body (Starlette's own limit answers in text/plain);
- the security headers: no MIME sniffing, no referrer, a content policy (a looser one for
  the documentation pages, which load their viewers from this service), and
  ``Cache-Control: no-store`` on private answers (every /v1 path needs a bearer token or is
  the token endpoint) unless the route chose its own caching;
- metrics and the access log: every answer, the edge's own included (a 413), is counted
  by route template, method and status class, timed, and written as one structured
  access event (see nscl_api.metrics).

Then it asks the published rollup's hot path (nscl_api.rollups.fast) and gives every other
request to the application. The published rollups are polled hard; a profile under wrk
showed five layers of middleware costing more CPU than the answer itself, most of it in
wrappers of ``send`` copying header lists, in building an access event the log level then
dropped, and in generating request ids.
"""

from __future__ import annotations

import contextlib
import logging
import random
import time
from collections.abc import Callable

import structlog
from asgi_correlation_id import correlation_id
from asgi_correlation_id.middleware import FAILED_VALIDATION_MESSAGE, is_valid_uuid4
from prometheus_client import Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from nscl_api.messages import enter_language, leave_language
from nscl_api.metrics import HTTP_DURATION, HTTP_REQUESTS
from nscl_api.problems import problem_response
from nscl_api.rollups.fast import ROUTE as FAST_ROUTE
from nscl_api.rollups.fast import RollupFastPath

Header = tuple[bytes, bytes]

JSON_CSP = "default-src 'none'; frame-ancestors 'none'"
# Swagger UI and ReDoc load every script and style sheet from this service (docs.py), so
# no other host is named. Styles stay 'unsafe-inline': both viewers set style elements at
# run time (ReDoc through styled-components); scripts need no such exception.
DOCS_CSP = (
    "default-src 'none'; "
    "script-src 'self'; "
    "style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; "
    "connect-src 'self'; worker-src 'self' blob:; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
_COMMON: tuple[Header, ...] = (
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
)
_NO_STORE: Header = (b"cache-control", b"no-store")
# What the edge adds when the answer has none of its own.
_ADDED = frozenset({b"x-content-type-options", b"referrer-policy", b"content-security-policy"})

access_log = structlog.get_logger("nscl.access")
# The standard library logger the access events go through: asked before an event is built,
# so a level above INFO costs nothing per request.
_access_logger = logging.getLogger("nscl.access")
_correlation_log = logging.getLogger("asgi_correlation_id")


class _BodyTooLarge(Exception):
    pass


class _Answered:
    """What the metrics and the access event need of an answer."""

    __slots__ = ("route", "size", "status")

    def __init__(self) -> None:
        self.status = 500  # until an answer starts: a failure
        self.size = 0
        self.route: str | None = None  # the template of an answer given by the edge itself


# A UUID4's version (4) and variant (10) bits, as a 128-bit integer sets them.
_UUID4_CLEAR = ~((0xF000 << 64) | (0xC000 << 48))
_UUID4_SET = (0x4000 << 64) | (0x8000 << 48)


def new_request_id() -> str:
    """A random UUID4 as 32 hex digits, as asgi-correlation-id makes them. An id needs to be
    unique, not secret: from the process's random generator (seeded from the system's,
    reseeded in forked processes), without a system call and a UUID object per request."""
    return f"{random.getrandbits(128) & _UUID4_CLEAR | _UUID4_SET:032x}"


class EdgeMiddleware:
    """Request id, language, body limit, security headers, metrics and access log (see the
    module's docstring). Added last, so it is outside every other middleware."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body_bytes: int,
        docs_paths: frozenset[str],
        templates: Callable[[Scope], str],
        private_prefix: str = "/v1/",
        unmeasured: frozenset[str] = frozenset({"/metrics"}),
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.docs_paths = docs_paths
        self.template_of = templates
        self.private_prefix = private_prefix
        self.unmeasured = unmeasured
        self._json = [*_COMMON, (b"content-security-policy", JSON_CSP.encode())]
        self._docs = [*_COMMON, (b"content-security-policy", DOCS_CSP.encode())]
        self.fast = RollupFastPath(self._json)
        # (handler, method, status class) → the counter's and the histogram's series.
        self._series: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = language = declared = None
        has_body = scope.get("http_version", "1.1") not in ("1.1", "1.0")
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                if request_id is None:
                    request_id = value
            elif name == b"accept-language":
                if language is None:
                    language = value
            elif name == b"content-length":
                declared = value
                has_body = True
            elif name == b"transfer-encoding":
                has_body = True
        if not request_id:
            rid = new_request_id()
        else:
            rid = request_id.decode("latin-1")
            if not is_valid_uuid4(rid):
                rid = new_request_id()
                _correlation_log.warning(FAILED_VALIDATION_MESSAGE, rid)
        # Not reset afterwards, as asgi-correlation-id does not: the server's last-resort
        # 500, written outside every middleware, still names the request.
        correlation_id.set(rid)
        language_token = enter_language(language)
        path: str = scope["path"]
        sent = _Answered()
        try:
            if declared is not None and declared.isdigit() and int(declared) > self.max_body_bytes:
                await self._refuse(scope, receive, self._sender(send, sent, rid, path))
                return
            if scope["method"] == "GET" and not scope["query_string"]:
                answer = await self.fast.answer(scope)
                if answer is not None:
                    status, headers, body = answer
                    sent.status, sent.size, sent.route = status, len(body), FAST_ROUTE
                    await send(
                        {
                            "type": "http.response.start",
                            "status": status,
                            "headers": [*headers, (b"x-request-id", rid.encode())],
                        }
                    )
                    await send({"type": "http.response.body", "body": body})
                    return
            if has_body:
                await self._limited(scope, receive, send, sent, rid, path)
            else:
                await self.app(scope, receive, self._sender(send, sent, rid, path))
        finally:
            leave_language(language_token)
            self._measure(scope, started, sent, rid)

    def _sender(self, send: Send, sent: _Answered, rid: str, path: str) -> Send:
        """``send`` with the edge's headers added to the answer and its size counted."""
        extra = self._docs if path in self.docs_paths else self._json
        private = path.startswith(self.private_prefix)
        request_id: Header = (b"x-request-id", rid.encode())

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                sent.status = message["status"]
                headers = list(message.get("headers", ()))
                present = {name.lower() for name, _ in headers}
                headers.append(request_id)
                if present.isdisjoint(_ADDED):
                    headers += extra
                else:
                    headers += [header for header in extra if header[0] not in present]
                if private and b"cache-control" not in present:
                    headers.append(_NO_STORE)
                message["headers"] = headers
            elif message["type"] == "http.response.body":
                sent.size += len(message.get("body", b""))
            await send(message)

        return send_with_headers

    async def _limited(
        self, scope: Scope, receive: Receive, send: Send, sent: _Answered, rid: str, path: str
    ) -> None:
        """The application reading a body that may be streamed over the limit."""
        received = 0
        too_large = False
        response_started = False
        outer = self._sender(send, sent, rid, path)

        async def limited_receive() -> Message:
            nonlocal received, too_large
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    too_large = True
                    raise _BodyTooLarge
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal response_started
            # The framework turns a failed body read into its own 400; the 413 replaces it.
            if too_large and not response_started:
                return
            response_started = response_started or message["type"] == "http.response.start"
            await outer(message)

        with contextlib.suppress(_BodyTooLarge):
            await self.app(scope, limited_receive, guarded_send)
        if too_large and not response_started:
            await self._refuse(scope, receive, outer)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = problem_response(
            413,
            "payload_too_large",
            f"The request body is larger than {self.max_body_bytes} bytes.",
            instance=scope.get("path"),
            headers={"Connection": "close"},
        )
        await response(scope, receive, send)

    def _measure(self, scope: Scope, started: float, sent: _Answered, rid: str) -> None:
        elapsed = time.perf_counter() - started
        status = sent.status
        handler = sent.route or self.template_of(scope)
        method: str = scope["method"]
        if handler not in self.unmeasured:
            key = (handler, method, status // 100)
            series = self._series.get(key)
            if series is None:
                series = self._series[key] = (
                    HTTP_REQUESTS.labels(handler, method, f"{status // 100}xx"),
                    HTTP_DURATION.labels(handler, method),
                )
            series[0].inc()
            series[1].observe(elapsed)
        if _access_logger.isEnabledFor(logging.INFO):
            state = scope.get("state") or {}
            access_log.info(
                "http.access",
                method=method,
                route=handler,
                status=status,
                duration_ms=round(elapsed * 1000, 3),
                bytes=sent.size,
                client_id=state.get("client_id"),
                request_id=rid,
                client_host=(scope.get("client") or (None,))[0],
            )
