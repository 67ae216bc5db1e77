"""Sending events: the CloudEvents envelope, the signed POST, and a subscription's drain.

A subscription's delivery job drains its due deliveries: at most ``max_concurrency``
requests at once, one object's events in their order (an event waits while an earlier one
for the same object is pending), each attempt logged and committed on its own, so what an
endpoint was sent is known even when the job's worker dies. Only one drain of a
subscription runs at a time (a PostgreSQL advisory lock that dies with its connection). A
failed attempt is retried with exponential back-off and jitter until the delivery's window
closes; an endpoint failing for days is disabled and operators hear of it.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import random
import time
import uuid
from collections.abc import Awaitable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx
import structlog
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from nscl_domain.audit.repository import AuditRepository
from nscl_domain.clock import utcnow
from nscl_domain.db import new_id
from nscl_domain.events import DeliveryStatus, EventType, signing, targets
from nscl_domain.events.models import (
    WebhookAttempt,
    WebhookDelivery,
    WebhookEvent,
    WebhookSubscription,
)
from nscl_domain.identity import SYSTEM
from nscl_domain.identity.sealing import KeySealer
from nscl_domain.settings import Settings

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class DeliveryConfig:
    """How events are sent (from the settings; tests shorten the delays)."""

    base_url: str = "http://localhost:8000"
    require_https: bool = False
    allowed_networks: tuple[targets.IPNetwork, ...] = ()
    timeout_seconds: float = 10.0
    retry_base_seconds: float = 10.0
    retry_max_delay_seconds: float = 6 * 3600.0
    retry_window_seconds: float = 3 * 86_400.0
    disable_after_seconds: float = 5 * 86_400.0
    max_response_bytes: int = 64 * 1024
    excerpt_chars: int = 1000
    drain_seconds: float = 30.0
    # Seals the subscriptions' signing secrets at rest and opens them to sign.
    sealer: KeySealer = field(default_factory=KeySealer)

    @classmethod
    def of(cls, settings: Settings) -> DeliveryConfig:
        return cls(
            base_url=settings.public_base_url.rstrip("/"),
            require_https=settings.environment == "production",
            allowed_networks=tuple(
                ipaddress.ip_network(str(n)) for n in settings.webhook_allowed_networks
            ),
            timeout_seconds=settings.webhook_timeout_seconds,
            retry_base_seconds=settings.webhook_retry_base_seconds,
            retry_max_delay_seconds=settings.webhook_retry_max_delay_seconds,
            retry_window_seconds=settings.webhook_retry_window_seconds,
            disable_after_seconds=settings.webhook_disable_after_seconds,
            sealer=KeySealer.from_settings(settings),
        )

    def retry_delay(self, attempts: int) -> float:
        """Exponential back-off with ±20 % jitter, so endpoints back from an outage are not
        hit by every retry at the same instant."""
        delay = min(self.retry_max_delay_seconds, self.retry_base_seconds * 2 ** (attempts - 1))
        return float(delay * random.uniform(0.8, 1.2))

    async def check(self, url: str) -> targets.Target:
        return await targets.check(
            url, require_https=self.require_https, allowed=self.allowed_networks
        )


def envelope(event: WebhookEvent, base_url: str) -> bytes:
    """The CloudEvents 1.0 JSON envelope of an event; links in its data made absolute."""
    data = dict(event.data)
    links = data.get("links")
    if isinstance(links, dict):
        data["links"] = {k: base_url + str(v) for k, v in links.items()}
    document = {
        "specversion": "1.0",
        "id": str(event.id),
        "source": base_url + "/v1",
        "type": EventType(event.type).cloudevents_type,
        "time": event.occurred_at.isoformat().replace("+00:00", "Z"),
        "subject": event.subject,
        "datacontenttype": "application/json",
        "data": data,
    }
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()


def live_secrets(sub: WebhookSubscription, now: datetime, sealer: KeySealer) -> list[str]:
    """The secrets that sign now: the current one, and the previous one in its overlap."""
    what = f"webhook subscription {sub.id}"
    found = [sealer.open_secret(what, sub.secret)]
    if (
        sub.previous_secret
        and sub.previous_secret_expires_at
        and now < sub.previous_secret_expires_at
    ):
        found.append(sealer.open_secret(what, sub.previous_secret))
    return found


@dataclass(frozen=True)
class Outcome:
    ok: bool
    status_code: int | None
    latency_ms: int
    error: str | None = None
    excerpt: str | None = None


async def post(
    http: httpx.AsyncClient,
    config: DeliveryConfig,
    url: str,
    body: bytes,
    headers: dict[str, str],
) -> Outcome:
    """POST one signed message to a target checked now, connecting to the checked address;
    redirects are answers (failures), and at most ``max_response_bytes`` are read."""
    started = time.monotonic()

    def took() -> int:
        return int((time.monotonic() - started) * 1000)

    try:
        target = await config.check(url)
    except targets.TargetRefused as exc:
        return Outcome(False, None, took(), error=exc.reason)
    host = f"[{target.address}]" if target.address.version == 6 else str(target.address)
    pinned = httpx.URL(url).copy_with(host=host.strip("[]"))
    default_port = 443 if target.scheme == "https" else 80
    host_header = target.host if target.port == default_port else f"{target.host}:{target.port}"
    extensions: dict[str, Any] = {}
    if target.scheme == "https":
        extensions["sni_hostname"] = target.host
    request_headers = {
        **headers,
        "Host": host_header,
        "Content-Type": "application/json",
        "User-Agent": "nscl-webhooks/1",
    }
    try:
        async with asyncio.timeout(config.timeout_seconds):
            async with http.stream(
                "POST", pinned, content=body, headers=request_headers, extensions=extensions
            ) as response:
                received = bytearray()
                async for chunk in response.aiter_raw():
                    received += chunk
                    if len(received) >= config.max_response_bytes:
                        break
                excerpt = bytes(received[: config.max_response_bytes]).decode(
                    "utf-8", errors="replace"
                )[: config.excerpt_chars]
                status = response.status_code
    except (TimeoutError, httpx.HTTPError, OSError) as exc:
        return Outcome(False, None, took(), error=f"{type(exc).__name__}: {exc}"[:500])
    ok = 200 <= status < 300
    error = None
    if 300 <= status < 400:
        error = "The endpoint redirected; redirects are not followed."
    elif not ok:
        error = f"The endpoint answered {status}."
    return Outcome(ok, status, took(), error=error, excerpt=excerpt or None)


def new_http_client(config: DeliveryConfig) -> httpx.AsyncClient:
    """No redirects, no proxies from the environment, bounded time."""
    return httpx.AsyncClient(
        follow_redirects=False,
        trust_env=False,
        timeout=httpx.Timeout(config.timeout_seconds),
        limits=httpx.Limits(max_connections=50, max_keepalive_connections=20),
    )


_DUE = text(
    """
    SELECT d.id FROM webhook_delivery d
    WHERE d.subscription_id = :s AND d.status = 'pending' AND d.next_attempt_at <= now()
      AND NOT EXISTS (
        SELECT 1 FROM webhook_delivery e
        WHERE e.subscription_id = d.subscription_id AND e.status = 'pending'
          AND e.object_key = d.object_key AND e.seq < d.seq)
    ORDER BY d.seq
    LIMIT :n
    """
)


_SUCCEEDED = text(
    """
    WITH settled AS (
      UPDATE webhook_delivery
      SET status = 'succeeded', attempts = attempts + 1, finished_at = :now,
          last_status_code = :code, last_error = NULL
      WHERE id = :id AND status = 'pending'
      RETURNING id, subscription_id, event_id, attempts
    ), logged AS (
      INSERT INTO webhook_attempt (id, subscription_id, delivery_id, event_id, attempt,
        attempted_at, status_code, latency_ms, succeeded, response_excerpt)
      SELECT :attempt_id, subscription_id, id, event_id, attempts, :now, :code, :latency,
        true, :excerpt
      FROM settled
    )
    UPDATE webhook_subscription SET failing_since = NULL
    WHERE id = (SELECT subscription_id FROM settled) AND failing_since IS NOT NULL
    """
)


@dataclass
class DrainResult:
    sent: int = 0
    failed_attempts: int = 0
    next_attempt_at: datetime | None = None
    more_due: bool = False


async def drain(
    sessionmaker: async_sessionmaker[AsyncSession],
    config: DeliveryConfig,
    subscription_id: uuid.UUID,
) -> DrainResult:
    """Send the subscription's due deliveries for up to ``drain_seconds``."""
    result = DrainResult()
    async with sessionmaker() as lock_session:
        # One drain per subscription at a time; the lock dies with this connection.
        await lock_session.execute(
            text("SELECT pg_advisory_xact_lock(hashtextextended(:k, 0))"),
            {"k": f"webhooks:{subscription_id}"},
        )
        deadline = time.monotonic() + config.drain_seconds
        async with new_http_client(config) as http:
            while True:
                async with sessionmaker() as session:
                    sub = await session.get(WebhookSubscription, subscription_id)
                    if sub is None or not sub.enabled or sub.deleted_at is not None:
                        return result
                    concurrency = max(1, sub.max_concurrency)
                    ids = list(
                        (
                            await session.scalars(
                                _DUE, {"s": subscription_id, "n": concurrency * 10}
                            )
                        ).all()
                    )
                    events = {
                        d.id: e
                        for d, e in (
                            await session.execute(
                                select(WebhookDelivery, WebhookEvent)
                                .join(WebhookEvent, WebhookEvent.id == WebhookDelivery.event_id)
                                .where(WebhookDelivery.id.in_(ids))
                            )
                        ).all()
                    }
                    url, secrets_ = sub.url, live_secrets(sub, utcnow(), config.sealer)
                if not ids:
                    break
                if time.monotonic() >= deadline:
                    result.more_due = True
                    break
                gate = asyncio.Semaphore(concurrency)

                outcomes = await asyncio.gather(
                    *(
                        _gated(
                            gate,
                            deliver(sessionmaker, config, http, i, events[i], url, secrets_),
                        )
                        for i in ids
                        if i in events
                    )
                )
                result.sent += sum(outcomes)
                result.failed_attempts += len(outcomes) - sum(outcomes)
        async with sessionmaker() as session:
            result.next_attempt_at = await session.scalar(
                select(func.min(WebhookDelivery.next_attempt_at)).where(
                    WebhookDelivery.subscription_id == subscription_id,
                    WebhookDelivery.status == DeliveryStatus.PENDING.value,
                )
            )
        await lock_session.rollback()
    return result


async def _gated(gate: asyncio.Semaphore, attempt: Awaitable[bool]) -> bool:
    async with gate:
        return await attempt


async def deliver(
    sessionmaker: async_sessionmaker[AsyncSession],
    config: DeliveryConfig,
    http: httpx.AsyncClient,
    delivery_id: uuid.UUID,
    event: WebhookEvent,
    url: str,
    secrets_: list[str],
) -> bool:
    """One attempt of one delivery, logged and settled in a transaction of its own."""
    body = envelope(event, config.base_url)
    timestamp = int(time.time())
    outcome = await post(
        http, config, url, body, signing.headers(secrets_, str(event.id), timestamp, body)
    )
    await _settle(sessionmaker, config, delivery_id, outcome)
    return outcome.ok


async def _settle(
    sessionmaker: async_sessionmaker[AsyncSession],
    config: DeliveryConfig,
    delivery_id: uuid.UUID,
    outcome: Outcome,
) -> None:
    now = utcnow()
    if outcome.ok:
        # The common case in one statement (and one round trip): settle, log, and clear the
        # subscription's failing mark only when it has one (so concurrent successes do not
        # queue on its row).
        async with sessionmaker() as session:
            await session.execute(
                _SUCCEEDED,
                {
                    "id": delivery_id,
                    "now": now,
                    "attempt_id": new_id(),
                    "code": outcome.status_code,
                    "latency": outcome.latency_ms,
                    "excerpt": outcome.excerpt,
                },
            )
            await session.commit()
        return
    async with sessionmaker() as session:
        delivery = (
            await session.scalars(
                select(WebhookDelivery).where(WebhookDelivery.id == delivery_id).with_for_update()
            )
        ).one()
        if delivery.status != DeliveryStatus.PENDING.value:
            return
        delivery.attempts += 1
        delivery.last_status_code = outcome.status_code
        delivery.last_error = outcome.error
        session.add(
            WebhookAttempt(
                subscription_id=delivery.subscription_id,
                delivery_id=delivery.id,
                event_id=delivery.event_id,
                attempt=delivery.attempts,
                attempted_at=now,
                status_code=outcome.status_code,
                latency_ms=outcome.latency_ms,
                succeeded=outcome.ok,
                error=outcome.error,
                response_excerpt=outcome.excerpt,
            )
        )
        sub = (
            await session.scalars(
                select(WebhookSubscription)
                .where(WebhookSubscription.id == delivery.subscription_id)
                .with_for_update()
            )
        ).one()
        if delivery.give_up_at is None:
            delivery.give_up_at = delivery.created_at + timedelta(
                seconds=config.retry_window_seconds
            )
        retry_at = now + timedelta(seconds=config.retry_delay(delivery.attempts))
        if retry_at > delivery.give_up_at:
            delivery.status = DeliveryStatus.FAILED.value
            delivery.finished_at = now
        else:
            delivery.next_attempt_at = retry_at
        if sub.failing_since is None:
            sub.failing_since = now
        elif sub.enabled and now - sub.failing_since >= timedelta(
            seconds=config.disable_after_seconds
        ):
            _disable(session, sub, now)
        await session.commit()


def _disable(session: AsyncSession, sub: WebhookSubscription, now: datetime) -> None:
    """Stop sending to an endpoint that has failed for days; the audit event is the
    ``webhook.disabled`` event operators subscribe to."""
    sub.enabled = False
    sub.disabled_at = now
    sub.disabled_reason = (
        f"Every delivery failed since {sub.failing_since:%Y-%m-%d %H:%M} UTC; "
        "enable it again once the endpoint answers."
    )
    AuditRepository(session).record(
        SYSTEM,
        "webhook.disabled",
        "webhook_subscription",
        sub.id,
        after={"url": sub.url, "owner": sub.owner_client_id, "reason": sub.disabled_reason},
    )
    log.warning("webhook.disabled", subscription_id=str(sub.id), url=sub.url)
