"""Tables of subscriptions, events, deliveries and the log of delivery attempts."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    ForeignKey,
    Identity,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from nscl_domain.db import Base, new_id


class WebhookSubscription(Base):
    __tablename__ = "webhook_subscription"
    __mapper_args__ = {"eager_defaults": True}  # noqa: RUF012 - SQLAlchemy's declarative API

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    # The client whose reading rights bound what the subscription receives.
    owner_client_id: Mapped[str] = mapped_column(String(100), index=True)
    url: Mapped[str] = mapped_column(String(2000))
    description: Mapped[str | None] = mapped_column(String(500))
    event_types: Mapped[list[str]] = mapped_column(ARRAY(String(60)))
    # Only events about objects of this unit or of units below it (None: every unit).
    unit_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("org_unit.id"))
    # Its key, as the subscriber named it (what the subscription shows).
    unit_key: Mapped[str | None] = mapped_column(String(100))
    # Sealed at rest (KeySealer): never the secret itself once a passphrase is set.
    secret: Mapped[str] = mapped_column(Text)
    # The secret before the last rotation keeps signing beside the new one until then.
    previous_secret: Mapped[str | None] = mapped_column(Text)
    previous_secret_expires_at: Mapped[datetime | None]
    max_concurrency: Mapped[int] = mapped_column(Integer, server_default=text("4"))
    enabled: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    disabled_at: Mapped[datetime | None]
    disabled_reason: Mapped[str | None] = mapped_column(Text)
    # Since when every attempt failed (None: the last one succeeded).
    failing_since: Mapped[datetime | None]
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    deleted_at: Mapped[datetime | None]


class WebhookEvent(Base):
    __tablename__ = "webhook_event"
    __table_args__ = (Index("ix_webhook_event_occurred_at", "occurred_at"),)
    __mapper_args__ = {"eager_defaults": True}  # noqa: RUF012 - SQLAlchemy's declarative API

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    type: Mapped[str] = mapped_column(String(60))
    object_type: Mapped[str] = mapped_column(String(50))
    object_id: Mapped[str] = mapped_column(String(100))
    # The unit the object belongs to (None: not any one unit's, e.g. a published rollup).
    unit_id: Mapped[uuid.UUID | None]
    subject: Mapped[str] = mapped_column(String(300))
    data: Mapped[dict[str, Any]] = mapped_column(JSONB)
    occurred_at: Mapped[datetime] = mapped_column(server_default=func.now())


class WebhookDelivery(Base):
    __tablename__ = "webhook_delivery"
    __table_args__ = (
        UniqueConstraint("subscription_id", "event_id"),
        # The delivery job reads a subscription's due deliveries in order.
        Index(
            "ix_webhook_delivery_pending",
            "subscription_id",
            "object_key",
            "seq",
            postgresql_where=text("status = 'pending'"),
        ),
        # What is due, in order, without walking past what was delivered already.
        Index(
            "ix_webhook_delivery_due",
            "subscription_id",
            "seq",
            postgresql_where=text("status = 'pending'"),
        ),
        Index("ix_webhook_delivery_subscription", "subscription_id", "seq"),
    )
    __mapper_args__ = {"eager_defaults": True}  # noqa: RUF012 - SQLAlchemy's declarative API

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    # Delivery order: an event for an object waits for the earlier ones for that object.
    seq: Mapped[int] = mapped_column(BigInteger, Identity(always=False), unique=True)
    subscription_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("webhook_subscription.id", ondelete="CASCADE")
    )
    event_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("webhook_event.id", ondelete="CASCADE"))
    object_key: Mapped[str] = mapped_column(String(160))
    status: Mapped[str] = mapped_column(String(20), server_default=text("'pending'"))
    attempts: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    next_attempt_at: Mapped[datetime] = mapped_column(server_default=func.now())
    # Retries stop (the delivery fails) once this is past.
    give_up_at: Mapped[datetime | None]
    last_status_code: Mapped[int | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    finished_at: Mapped[datetime | None]


class WebhookAttempt(Base):
    """One try of a delivery: the log a subscriber reads to see what its endpoint answered."""

    __tablename__ = "webhook_attempt"
    __table_args__ = (Index("ix_webhook_attempt_subscription", "subscription_id", "id"),)
    __mapper_args__ = {"eager_defaults": True}  # noqa: RUF012 - SQLAlchemy's declarative API

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    subscription_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("webhook_subscription.id", ondelete="CASCADE")
    )
    delivery_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("webhook_delivery.id", ondelete="CASCADE")
    )
    event_id: Mapped[uuid.UUID]
    attempt: Mapped[int] = mapped_column(Integer)
    attempted_at: Mapped[datetime] = mapped_column(server_default=func.now())
    status_code: Mapped[int | None]
    latency_ms: Mapped[int] = mapped_column(Integer)
    succeeded: Mapped[bool] = mapped_column(Boolean)
    error: Mapped[str | None] = mapped_column(Text)
    response_excerpt: Mapped[str | None] = mapped_column(Text)
