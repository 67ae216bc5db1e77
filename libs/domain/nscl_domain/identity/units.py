"""What identity needs of organisation units, which live in the catalogue above it.

Identity names the port; the catalogue implements it and the composition root binds the
two, so identity imports nothing of the catalogue.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Mapping
from typing import ClassVar, Protocol

from nscl_domain.repositories import SessionRepository


class ClientUnit(Protocol):
    """The unit a client belongs to, as far as identity cares."""

    @property
    def id(self) -> uuid.UUID: ...

    @property
    def key(self) -> str: ...


class ClientUnits(SessionRepository):
    """Port: look up the units of clients (``uow.get(ClientUnits)``)."""

    is_port: ClassVar[bool] = True

    async def by_ref(self, ref: str) -> ClientUnit | None:
        """The unit a key or an id names, or None."""
        raise NotImplementedError

    async def by_ids(self, ids: Collection[uuid.UUID]) -> Mapping[uuid.UUID, ClientUnit]:
        """The units of these ids (missing ones left out)."""
        raise NotImplementedError
