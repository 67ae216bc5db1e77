"""SQLAlchemy base, engine and session factories."""

from __future__ import annotations

import secrets
import time
import uuid
from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import DateTime, MetaData, event
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.pool import NullPool

# Constraint names are part of the schema migrations refer to: make them predictable.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base of every table; its metadata carries the naming convention."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: DateTime(timezone=True)}


def new_id() -> uuid.UUID:
    """Return a time-ordered UUID (version 7, RFC 9562) so keys index well and sort by creation."""
    millis = time.time_ns() // 1_000_000
    rand_a = secrets.randbits(12)
    rand_b = secrets.randbits(62)
    value = (millis & ((1 << 48) - 1)) << 80 | 0x7 << 76 | rand_a << 64 | 0b10 << 62 | rand_b
    return uuid.UUID(int=value)


# During an outage a request must fail fast (and answer 503) rather than hang: asyncpg
# waits 60 s for a connection by default and the pool 30 s for a free one.
CONNECT_TIMEOUT_SECONDS = 5.0
POOL_TIMEOUT_SECONDS = 10.0


def create_engine(
    url: str,
    *,
    pool_size: int = 10,
    max_overflow: int = 10,
    pooled: bool = True,
    connect_timeout: float = CONNECT_TIMEOUT_SECONDS,
) -> AsyncEngine:
    """Create the async engine; `pooled=False` opens a connection per checkout (CLI, tests)."""
    connect_args = {"timeout": connect_timeout}
    if not pooled:
        return create_async_engine(url, poolclass=NullPool, connect_args=connect_args)
    engine = create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_timeout=POOL_TIMEOUT_SECONDS,
        connect_args=connect_args,
    )
    event.listen(engine.sync_engine.pool, "checkout", _replace_if_closed)
    return engine


def _replace_if_closed(dbapi_connection: Any, record: Any, proxy: Any) -> None:
    """Connections pooled before a database restart are dead: found at checkout, the pool
    replaces them, so the first request after recovery succeeds.

    The server closes its connections when it stops, and the driver marks them closed as
    soon as the event loop reads that. SQLAlchemy's pre-ping would ask the server instead,
    three round trips (begin, select, rollback) on every checkout: on a draft save under
    load that was a fifth of the server's CPU.
    """
    if record.driver_connection is None or record.driver_connection.is_closed():
        raise DisconnectionError("the pooled connection was closed")


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions that keep loaded objects usable after commit (async code cannot lazy-load)."""
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)
