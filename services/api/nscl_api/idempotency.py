"""Idempotency-Key on creating POSTs, in one place for every route that honours it.

A route opts in with ``dependencies=[IDEMPOTENT]``. The dependency claims the key before
the route runs (its own short transaction) or, when the key is known, answers for it:
the stored first answer, replayed with ``Idempotent-Replayed: true``; 422 when the key
was used for a different request; 409 ``request_in_progress`` when the first request is
still running after a short wait. The middleware stores the claimant's answer before the
client sees it, or gives the key up when the request failed, so a retry runs afresh.
(Following the IETF draft "The Idempotency-Key HTTP Header Field".)
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import time
from dataclasses import dataclass
from typing import Annotated

import structlog
from fastapi import Depends, FastAPI, Request
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from nscl_api.auth.deps import authorize
from nscl_api.conditional import IdempotencyKey
from nscl_api.problems import problem_response
from nscl_api.resources import Resources
from nscl_domain import idempotency as keys
from nscl_domain.errors import FieldProblem, Invalid
from nscl_domain.identity import Caller

log = structlog.get_logger(__name__)

# How long a retry waits for the first request with its key before answering 409.
WAIT_SECONDS = 10.0
RETRY_AFTER_SECONDS = 1
_SLOT = "nscl.idempotency"
_HEADER = b"idempotency-key"


@dataclass
class _Claim:
    sessionmaker: async_sessionmaker[AsyncSession]
    client_id: str
    key: str


@dataclass
class _Slot:
    """Where the dependency leaves its claim for the middleware (shared through the scope)."""

    claim: _Claim | None = None


class _Replay(Exception):
    def __init__(self, answer: keys.StoredAnswer) -> None:
        self.answer = answer


class _InProgress(Exception):
    pass


def request_fingerprint(method: str, path: str, query: str, body: bytes) -> str:
    """What makes two requests the same: method, target and body (JSON compared by value)."""
    try:
        canonical = json.dumps(json.loads(body), sort_keys=True, separators=(",", ":")).encode()
    except ValueError:
        canonical = body
    hashed = hashlib.sha256(f"{method} {path}?{query}\n".encode())
    hashed.update(canonical)
    return hashed.hexdigest()


async def honour_idempotency_key(
    request: Request,
    idempotency_key: IdempotencyKey = None,
    caller: Caller = Depends(authorize),
) -> None:
    """Claim the request's Idempotency-Key, or answer for it (replay, 409 or 422)."""
    if idempotency_key is None:
        return
    slot = request.scope.get(_SLOT)
    if not isinstance(slot, _Slot):
        raise RuntimeError("IdempotencyMiddleware is not installed")
    resources = request.app.state.resources
    assert isinstance(resources, Resources)
    fingerprint = request_fingerprint(
        request.method, request.url.path, request.url.query, await request.body()
    )
    deadline = time.monotonic() + WAIT_SECONDS
    delay = 0.02
    while True:
        outcome = await keys.claim(
            resources.sessionmaker, caller.client_id, idempotency_key, fingerprint
        )
        match outcome:
            case keys.Claimed():
                slot.claim = _Claim(resources.sessionmaker, caller.client_id, idempotency_key)
                return
            case keys.StoredAnswer():
                raise _Replay(outcome)
            case keys.Reused():
                raise Invalid(
                    "This Idempotency-Key was used for a different request.",
                    code="idempotency_key_reused",
                    fields=[
                        FieldProblem(
                            ("header", "Idempotency-Key"), "Use a new key for a new request."
                        )
                    ],
                )
            case keys.Running():
                if time.monotonic() >= deadline:
                    raise _InProgress
                await asyncio.sleep(delay)
                delay = min(delay * 2, 0.25)


IDEMPOTENT = Depends(honour_idempotency_key)
Idempotent = Annotated[None, IDEMPOTENT]


async def _on_replay(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, _Replay)
    answer = exc.answer
    response = Response(content=answer.body, status_code=answer.status_code)
    for name, value in answer.headers:
        response.headers.append(name, value)
    response.headers["Idempotent-Replayed"] = "true"
    return response


async def _on_in_progress(request: Request, exc: Exception) -> Response:
    return problem_response(
        409,
        "request_in_progress",
        "A request with this Idempotency-Key is still running; retry to get its answer.",
        instance=request.url.path,
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


class IdempotencyMiddleware:
    """Store the answer of a request that claimed its key, or give the key up on failure."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] != "POST"
            or not any(name == _HEADER for name, _ in scope["headers"])
        ):
            await self.app(scope, receive, send)
            return
        slot = _Slot()
        scope[_SLOT] = slot
        start: Message | None = None
        chunks: list[bytes] = []
        answered = False

        async def capture(message: Message) -> None:
            nonlocal start, answered
            claim = slot.claim
            if claim is None:
                await send(message)
                return
            if message["type"] == "http.response.start":
                start = message
                return
            if message["type"] != "http.response.body" or start is None:
                await send(message)
                return
            chunks.append(message.get("body", b""))
            if message.get("more_body", False):
                return
            answered = True
            await _settle(claim, start, b"".join(chunks))
            await send(start)
            await send({"type": "http.response.body", "body": b"".join(chunks)})

        try:
            await self.app(scope, receive, capture)
        finally:
            if slot.claim is not None and not answered:
                # Failed without an answer (an unexpected error, a dropped client): a retry
                # must be able to run, so the key is given up whatever happens to this task.
                with contextlib.suppress(Exception):
                    await asyncio.shield(
                        keys.release(slot.claim.sessionmaker, slot.claim.client_id, slot.claim.key)
                    )


async def _settle(claim: _Claim, start: Message, body: bytes) -> None:
    status = int(start["status"])
    try:
        if 200 <= status < 300:
            answer = keys.StoredAnswer(status, keys.answer_headers(list(start["headers"])), body)
            await keys.complete(claim.sessionmaker, claim.client_id, claim.key, answer)
        else:
            # Errors are not replayed: the client may correct the cause and retry the key.
            await keys.release(claim.sessionmaker, claim.client_id, claim.key)
    except Exception:
        # The answer still goes out; the claim lapses after its lease.
        log.exception("idempotency.store_failed", client_id=claim.client_id, status=status)


def install_idempotency(app: FastAPI) -> None:
    """Answer replays and waits, and store first answers."""
    app.add_exception_handler(_Replay, _on_replay)
    app.add_exception_handler(_InProgress, _on_in_progress)
    app.add_middleware(IdempotencyMiddleware)
