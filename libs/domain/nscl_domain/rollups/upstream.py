"""The upstream push: a province's instance sends each published provincial rollup to the
national instance's intake (``POST /v1/national-intake/{programme}/{year}``), as the
province's client there.

The push is a job written in the publishing transaction (the outbox), one pending per
programme-year; it sends the run published when it runs, so a push never sends a run older
than the one now published. It authenticates by client credentials (the token is kept until
shortly before it expires) and names the run as its ``Idempotency-Key``. Time-outs,
refused connections, 5xx and 429 answers are retried with the jobs' back-off; the national
instance's 409 ``intake_outdated`` (it already holds a later run) ends the push; any other
4xx fails the job at once with the answer in its error, for an operator to read and retry
once the configuration is mended.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, Field

from nscl_domain.jobs import PermanentJobError
from nscl_domain.jobs.registry import JobContext
from nscl_domain.rollups.models import RollupRun
from nscl_domain.rollups.repository import RollupRepository
from nscl_domain.settings import Settings

PUSH_ATTEMPTS = 10
# A token is renewed this long before the national instance says it expires.
TOKEN_MARGIN_SECONDS = 60.0
_ANSWER_CHARS = 500


class PushArgs(BaseModel):
    """Arguments of ``rollups.push_upstream``."""

    model_config = ConfigDict(extra="forbid")

    programme_id: uuid.UUID
    year: int = Field(ge=2000, le=2100)
    run_id: uuid.UUID = Field(description="The run whose publication asked for the push.")


def push_args(programme_id: uuid.UUID, year: int, run_id: uuid.UUID) -> dict[str, Any]:
    """The arguments of a programme-year's push."""
    return {"programme_id": str(programme_id), "year": year, "run_id": str(run_id)}


def push_key(programme_id: uuid.UUID, year: int) -> str:
    """Names a programme-year's push: a later publication joins the pending one."""
    return f"upstream:{programme_id}:{year}"


class UpstreamUnavailable(Exception):
    """The national instance did not answer, or answered that it cannot now: retried."""


@dataclass
class _Token:
    value: str
    renew_at: float


@dataclass(frozen=True)
class UpstreamConfig:
    """Where the national instance is and who this province is there."""

    url: str | None = None
    client_id: str | None = None
    client_secret: str | None = None
    programme: str | None = None
    timeout_seconds: float = 10.0
    # Shared by the pushes of one process: a token serves until shortly before it expires.
    _tokens: dict[str, _Token] = field(default_factory=dict, compare=False, repr=False)
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock, compare=False, repr=False)

    @classmethod
    def of(cls, settings: Settings) -> UpstreamConfig:
        secret = settings.upstream_client_secret
        return cls(
            url=settings.upstream_url.rstrip("/") if settings.upstream_url else None,
            client_id=settings.upstream_client_id,
            client_secret=secret.get_secret_value() if secret is not None else None,
            programme=settings.upstream_programme,
            timeout_seconds=settings.upstream_timeout_seconds,
        )

    @property
    def enabled(self) -> bool:
        return bool(self.url and self.client_id and self.client_secret)

    async def token(self, http: httpx.AsyncClient) -> str:
        """A bearer token of the national instance, from the cache or fetched anew."""
        async with self._lock:
            kept = self._tokens.get("token")
            if kept is not None and time.monotonic() < kept.renew_at:
                return kept.value
            answer = await _send(
                http,
                "POST",
                "/v1/oauth/token",
                data={
                    "grant_type": "client_credentials",
                    "client_id": self.client_id or "",
                    "client_secret": self.client_secret or "",
                },
            )
            if answer.status_code != 200:
                _refuse_or_retry(answer, "the token endpoint")
            body = answer.json()
            lifetime = float(body.get("expires_in", 0))
            renew_at = time.monotonic() + max(0.0, lifetime - TOKEN_MARGIN_SECONDS)
            self._tokens["token"] = _Token(str(body["access_token"]), renew_at)
            return str(body["access_token"])

    def forget_token(self) -> None:
        self._tokens.pop("token", None)


async def _send(http: httpx.AsyncClient, method: str, path: str, **kwargs: Any) -> httpx.Response:
    try:
        return await http.request(method, path, **kwargs)
    except httpx.TransportError as exc:  # time-outs, refused connections, broken answers
        raise UpstreamUnavailable(f"{method} {path}: {type(exc).__name__}: {exc}") from exc


def _problem_code(answer: httpx.Response) -> str | None:
    try:
        body = answer.json()
    except ValueError:
        return None
    code = body.get("code") if isinstance(body, dict) else None
    return str(code) if code is not None else None


def _refuse_or_retry(answer: httpx.Response, what: str) -> None:
    """Raise for an answer that is not a success: retried (5xx, 429, a 409 other than
    ``intake_outdated``) or final (any other 4xx: the configuration needs mending)."""
    text = answer.text[:_ANSWER_CHARS]
    message = f"{what} answered {answer.status_code}: {text}"
    status = answer.status_code
    if status >= 500 or status in (408, 409, 429):
        raise UpstreamUnavailable(message)
    raise PermanentJobError(f"The national instance refused the push: {message}")


async def push(ctx: JobContext, args: PushArgs, config: UpstreamConfig) -> dict[str, Any]:
    """Send the run published for the programme-year to the national instance's intake."""
    if not config.enabled:
        raise PermanentJobError(
            "No national instance is configured (NSCL_UPSTREAM_URL, NSCL_UPSTREAM_CLIENT_ID, "
            "NSCL_UPSTREAM_CLIENT_SECRET)."
        )
    # The reads end before the national instance is called: no transaction of this
    # instance stays open while the network is slow (the call may take its whole timeout).
    if ctx.sessionmaker_ is None:
        found = await _published(ctx.get(RollupRepository), args)
    else:
        async with ctx.sessionmaker_() as session:
            found = await _published(RollupRepository(session), args)
    if isinstance(found, str):
        return {"pushed": False, "reason": found}
    run, programme_key, cells = found
    body = {
        "run_id": str(run.id),
        "seq": run.seq,
        "fingerprint": run.fingerprint,
        "computed_at": run.computed_at.isoformat(),
        "cells": cells,
    }
    remote = config.programme or programme_key
    path = f"/v1/national-intake/{remote}/{args.year}"
    result: dict[str, Any] = {
        "run_id": str(run.id),
        "seq": run.seq,
        "requested_run_id": str(args.run_id),
        "programme": remote,
    }
    async with httpx.AsyncClient(
        base_url=config.url or "", timeout=config.timeout_seconds, trust_env=False
    ) as http:
        answer = None
        for _ in range(2):
            token = await config.token(http)
            answer = await _send(
                http,
                "POST",
                path,
                json=body,
                headers={"Authorization": f"Bearer {token}", "Idempotency-Key": str(run.id)},
            )
            if answer.status_code != 401:
                break
            # The national instance rotated its keys or the token lapsed early: once more.
            config.forget_token()
    assert answer is not None
    if answer.status_code in (200, 201):
        intake = answer.json()
        return result | {"pushed": True, "status": answer.status_code, "intake_id": intake["id"]}
    if answer.status_code == 409 and _problem_code(answer) == "intake_outdated":
        return result | {"pushed": False, "reason": "the national instance holds a later run"}
    _refuse_or_retry(answer, f"POST {path}")
    raise AssertionError("unreachable")  # pragma: no cover


async def _published(
    repo: RollupRepository, args: PushArgs
) -> tuple[RollupRun, str, list[dict[str, Any]]] | str:
    """The run published for the programme-year, its programme's key and its total cells;
    or why there is nothing to send."""
    programme = await repo.programme(args.programme_id)
    if programme is None:
        raise PermanentJobError(f"Programme {args.programme_id} does not exist.")
    found = await repo.publication(args.programme_id, args.year)
    if found is None:
        return "nothing is published for the year"
    run, _ = found
    if run.kind == "pushed":
        # A run this instance received is the province's own instance's to send.
        return "the published run was itself received"
    return run, programme.key, await repo.total_cells(run.id)
