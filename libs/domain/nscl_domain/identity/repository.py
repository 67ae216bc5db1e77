"""SQL of identity: clients and signing keys."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import String, any_, func, literal, select

from nscl_domain.identity.models import ApiClient, SigningKey
from nscl_domain.repositories import SessionRepository


class IdentityRepository(SessionRepository):
    async def client(self, client_id: str, *, for_update: bool = False) -> ApiClient | None:
        stmt = select(ApiClient).where(ApiClient.client_id == client_id)
        if for_update:
            stmt = stmt.with_for_update()
        return (await self.session.scalars(stmt)).one_or_none()

    async def clients(self) -> Sequence[ApiClient]:
        stmt = select(ApiClient).order_by(ApiClient.client_id)
        return (await self.session.scalars(stmt)).all()

    async def client_page(
        self,
        *,
        unit_id: uuid.UUID | None,
        role: str | None,
        enabled: bool | None,
        after: str | None,
        limit: int,
    ) -> Sequence[ApiClient]:
        """Clients in client-id order after ``after``, ``limit`` + 1 of them."""
        stmt = select(ApiClient)
        if unit_id is not None:
            stmt = stmt.where(ApiClient.unit_id == unit_id)
        if role is not None:
            stmt = stmt.where(literal(role, String) == any_(ApiClient.roles))
        if enabled is not None:
            stmt = stmt.where(ApiClient.enabled.is_(enabled))
        if after is not None:
            stmt = stmt.where(ApiClient.client_id > after)
        stmt = stmt.order_by(ApiClient.client_id).limit(limit + 1)
        return (await self.session.scalars(stmt)).all()

    async def signing_keys(self) -> Sequence[SigningKey]:
        """Keys not retired, newest first: the first signs, all verify."""
        stmt = (
            select(SigningKey)
            .where(SigningKey.retired_at.is_(None))
            .order_by(SigningKey.created_at.desc(), SigningKey.kid)
        )
        return (await self.session.scalars(stmt)).all()

    async def signing_key_version(self) -> tuple[object, ...]:
        """Counts of keys and of retired keys, and the latest change: cheap to poll."""
        stmt = select(
            func.count(),
            func.count(SigningKey.retired_at),
            func.max(SigningKey.created_at),
            func.max(SigningKey.retired_at),
        )
        return tuple((await self.session.execute(stmt)).one())

    async def signing_key(self, kid: str) -> SigningKey | None:
        return await self.session.get(SigningKey, kid, with_for_update=True)
