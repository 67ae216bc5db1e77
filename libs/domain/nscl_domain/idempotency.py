"""Idempotency keys of creating requests: the claim of a key, and the answer to replay.

A request with an ``Idempotency-Key`` first claims the key in a short transaction of its
own; only the claimant runs. A concurrent or later request with the same key finds the
claim: it waits while the first runs and then replays the stored answer. Keys are scoped
to the client that sent them.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import LargeBinary, String, delete, func, select, update
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Mapped, mapped_column

from nscl_domain.db import Base
from nscl_domain.repositories import SessionRepository

# A claim older than this is taken to belong to a process that died mid-request; a new
# request with the same key may take it over.
CLAIM_LEASE = timedelta(minutes=5)


class KeyState(enum.StrEnum):
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"


class IdempotencyKey(Base):
    """A client's Idempotency-Key: the request it was first used for, and its answer."""

    __tablename__ = "idempotency_key"

    client_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(20))
    status_code: Mapped[int | None]
    headers: Mapped[list[list[str]] | None] = mapped_column(JSONB)
    body: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    completed_at: Mapped[datetime | None]


@dataclass(frozen=True)
class StoredAnswer:
    """The first answer given to a key, to replay."""

    status_code: int
    headers: list[tuple[str, str]]
    body: bytes


@dataclass(frozen=True)
class Claimed:
    """This request holds the key: it runs, then completes or releases the key."""


@dataclass(frozen=True)
class Running:
    """Another request holds the key and has not answered yet."""


@dataclass(frozen=True)
class Reused:
    """The key was first used for a different request."""


Outcome = Claimed | Running | Reused | StoredAnswer


class IdempotencyKeys(SessionRepository):
    """The keys of every client."""

    async def claim(self, client_id: str, key: str, fingerprint: str) -> bool:
        """Claim the key (or take over an abandoned claim of the same request)."""
        new = insert(IdempotencyKey).values(
            client_id=client_id, key=key, fingerprint=fingerprint, state=KeyState.IN_PROGRESS
        )
        stmt = new.on_conflict_do_update(
            index_elements=[IdempotencyKey.client_id, IdempotencyKey.key],
            set_={"created_at": func.now()},
            where=(IdempotencyKey.state == KeyState.IN_PROGRESS)
            & (IdempotencyKey.fingerprint == new.excluded.fingerprint)
            & (IdempotencyKey.created_at < func.now() - CLAIM_LEASE),
        ).returning(IdempotencyKey.key)
        return (await self.session.scalar(stmt)) is not None

    async def get(self, client_id: str, key: str) -> IdempotencyKey | None:
        stmt = select(IdempotencyKey).where(
            IdempotencyKey.client_id == client_id, IdempotencyKey.key == key
        )
        return (await self.session.scalars(stmt)).one_or_none()

    async def complete(self, client_id: str, key: str, answer: StoredAnswer) -> None:
        await self.session.execute(
            update(IdempotencyKey)
            .where(IdempotencyKey.client_id == client_id, IdempotencyKey.key == key)
            .values(
                state=KeyState.COMPLETED,
                status_code=answer.status_code,
                headers=[list(h) for h in answer.headers],
                body=answer.body,
                completed_at=func.now(),
            )
        )

    async def release(self, client_id: str, key: str) -> None:
        await self.session.execute(
            delete(IdempotencyKey).where(
                IdempotencyKey.client_id == client_id,
                IdempotencyKey.key == key,
                IdempotencyKey.state == KeyState.IN_PROGRESS,
            )
        )


async def claim(
    sessionmaker: async_sessionmaker[AsyncSession], client_id: str, key: str, fingerprint: str
) -> Outcome:
    """Claim a key for a request, or say why not: running, reused, or its stored answer."""
    async with sessionmaker() as session:
        keys = IdempotencyKeys(session)
        claimed = await keys.claim(client_id, key, fingerprint)
        await session.commit()
        if claimed:
            return Claimed()
        found = await keys.get(client_id, key)
        await session.commit()
    if found is None:  # released between the two statements: try again
        return Running()
    if found.fingerprint != fingerprint:
        return Reused()
    if found.state != KeyState.COMPLETED or found.status_code is None:
        return Running()
    return StoredAnswer(
        found.status_code,
        [(name, value) for name, value in found.headers or []],
        found.body or b"",
    )


async def complete(
    sessionmaker: async_sessionmaker[AsyncSession],
    client_id: str,
    key: str,
    answer: StoredAnswer,
) -> None:
    """Store the answer of the request that holds the key, for replays."""
    async with sessionmaker() as session:
        await IdempotencyKeys(session).complete(client_id, key, answer)
        await session.commit()


async def release(sessionmaker: async_sessionmaker[AsyncSession], client_id: str, key: str) -> None:
    """Give the key up (the request failed): a retry with it runs afresh."""
    async with sessionmaker() as session:
        await IdempotencyKeys(session).release(client_id, key)
        await session.commit()


def answer_headers(raw: list[tuple[bytes, bytes]]) -> list[tuple[str, str]]:
    """The headers of an answer worth replaying (not those of the connection or the moment)."""
    skipped = {b"content-length", b"date", b"server", b"x-request-id", b"connection"}
    return [(n.decode("latin-1"), v.decode("latin-1")) for n, v in raw if n.lower() not in skipped]
