"""ASGI middleware: request body size limit."""

from __future__ import annotations

import contextlib

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from nscl_api.problems import problem_response


class _BodyTooLarge(Exception):
    pass


class BodySizeLimitMiddleware:
    """Refuse request bodies over ``max_bytes`` with 413, whether declared or streamed."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(scope, receive, send)
            return

        received = 0
        too_large = False
        response_started = False

        async def limited_receive() -> Message:
            nonlocal received, too_large
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    too_large = True
                    raise _BodyTooLarge
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal response_started
            # The framework turns a failed body read into its own 400; the 413 replaces it.
            if too_large and not response_started:
                return
            response_started = response_started or message["type"] == "http.response.start"
            await send(message)

        with contextlib.suppress(_BodyTooLarge):
            await self.app(scope, limited_receive, guarded_send)
        if too_large and not response_started:
            await self._refuse(scope, receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = problem_response(
            413,
            "payload_too_large",
            f"The request body is larger than {self.max_bytes} bytes.",
            instance=scope.get("path"),
            headers={"Connection": "close"},
        )
        await response(scope, receive, send)


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


class SecurityHeadersMiddleware:
    """Add the headers every answer carries: no MIME sniffing, no referrer, a content policy,
    and ``Cache-Control: no-store`` on private answers (every /v1 path needs a bearer token
    or is the token endpoint) unless the route chose its own caching.

    A raw ASGI wrapper of ``send``: the published rollups are polled hard, and this adds a
    few header tuples, not a request object and a response copy."""

    def __init__(
        self, app: ASGIApp, *, docs_paths: frozenset[str], private_prefix: str = "/v1/"
    ) -> None:
        self.app = app
        self.docs_paths = docs_paths
        self.private_prefix = private_prefix
        common = [(b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"no-referrer")]
        self._json = [*common, (b"content-security-policy", JSON_CSP.encode())]
        self._docs = [*common, (b"content-security-policy", DOCS_CSP.encode())]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        extra = self._docs if path in self.docs_paths else self._json
        private = path.startswith(self.private_prefix)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                present = {name.lower() for name, _ in headers}
                headers += [header for header in extra if header[0] not in present]
                if private and b"cache-control" not in present:
                    headers.append((b"cache-control", b"no-store"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)
