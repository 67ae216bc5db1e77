"""Request and response bodies of /v1/webhooks."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, Field

from nscl_api.types import RequestModel, UnitKey
from nscl_domain.events import SUBSCRIBABLE, EventType
from nscl_domain.events.models import WebhookAttempt, WebhookSubscription


class WebhookCreate(RequestModel):
    """A subscription: where to send, which events, optionally only a unit's subtree."""

    url: str = Field(
        max_length=2000,
        description="https endpoint (http outside production); internal addresses refused.",
        examples=["https://portal.backan.gov.vn/nscl-events"],
    )
    event_types: list[EventType] = Field(
        min_length=1,
        max_length=len(SUBSCRIBABLE),
        examples=[["report.accepted", "rollup.published"]],
    )
    unit: UnitKey | None = Field(
        default=None, description="Only events about this unit and the units below it."
    )
    description: str | None = Field(default=None, max_length=500, examples=["Provincial portal"])
    max_concurrency: int = Field(
        default=4, ge=1, le=32, description="Requests in flight to the endpoint at once."
    )
    owner: str | None = Field(
        default=None,
        max_length=100,
        description="The client the subscription is for (operators only; default: the caller).",
    )


class SecretRotation(RequestModel):
    """Keep the old secret signing beside the new one for a while."""

    overlap_hours: float = Field(default=24, ge=0, le=168, examples=[24])


class Replay(RequestModel):
    """One event, or a time range of events, to send again."""

    event_id: uuid.UUID | None = Field(
        default=None, description="One event (the webhook-id) to send again."
    )
    since: datetime | None = Field(default=None, examples=["2026-11-29T00:00:00Z"])
    until: datetime | None = Field(default=None, examples=["2026-11-30T00:00:00Z"])


class ReplayAccepted(BaseModel):
    requeued: int = Field(description="Deliveries put back to pending.")


class WebhookRead(BaseModel):
    """A subscription (its secret is shown once, when made or rotated)."""

    id: uuid.UUID
    owner: str
    url: str
    description: str | None
    event_types: list[str]
    unit: UnitKey | None = Field(description="Only events about this unit and those below it.")
    max_concurrency: int
    enabled: bool
    disabled_at: datetime | None
    disabled_reason: str | None
    failing_since: datetime | None
    secret_overlap_until: datetime | None = Field(
        description="Until when the previous secret signs too."
    )
    created_at: datetime

    @classmethod
    def of(cls, sub: WebhookSubscription) -> WebhookRead:
        return cls(
            id=sub.id,
            owner=sub.owner_client_id,
            url=sub.url,
            description=sub.description,
            event_types=list(sub.event_types),
            unit=sub.unit_key,
            max_concurrency=sub.max_concurrency,
            enabled=sub.enabled,
            disabled_at=sub.disabled_at,
            disabled_reason=sub.disabled_reason,
            failing_since=sub.failing_since,
            secret_overlap_until=sub.previous_secret_expires_at if sub.previous_secret else None,
            created_at=sub.created_at,
        )


class WebhookWithSecret(WebhookRead):
    secret: str = Field(
        description="whsec_… signing secret; shown only now.",
        examples=["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"],
    )


class DeliveryAttemptRead(BaseModel):
    """One attempt of sending one event."""

    id: uuid.UUID
    delivery_id: uuid.UUID
    event_id: uuid.UUID = Field(description="The webhook-id header, the same on every attempt.")
    event_type: str
    attempt: int
    attempted_at: datetime
    status_code: int | None
    latency_ms: int
    succeeded: bool
    error: str | None
    response_excerpt: str | None

    @classmethod
    def of(cls, a: WebhookAttempt, event_type: str) -> DeliveryAttemptRead:
        return cls(
            id=a.id,
            delivery_id=a.delivery_id,
            event_id=a.event_id,
            event_type=event_type,
            attempt=a.attempt,
            attempted_at=a.attempted_at,
            status_code=a.status_code,
            latency_ms=a.latency_ms,
            succeeded=a.succeeded,
            error=a.error,
            response_excerpt=a.response_excerpt,
        )
