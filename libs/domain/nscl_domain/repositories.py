"""Repositories of one transaction, fetched by type, so the kernel need not know them.

A repository is a class built from the transaction's session (``Repo(session)``); the
session stays with the unit of work and its repositories, so use cases say what they ask
for and repositories say how. A context
that needs something another context provides may name a *port*: a class of its own,
marked ``is_port``, whose implementation the composition root binds (identity asks for
the units of its clients; the catalogue answers).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar, Protocol, TypeVar, cast

from sqlalchemy.ext.asyncio import AsyncSession

R = TypeVar("R")

AnotherSession = Callable[[], AsyncSession]
"""Opens a second session beside the transaction's (for work that reads committed rows)."""


class RepositorySource(Protocol):
    """What hands out a transaction's repositories by type: a unit of work, a job's context."""

    def get(self, repository: type[R]) -> R:
        """The transaction's instance of ``repository``."""
        ...


class Repositories:
    """Each repository of one session, built on first use and kept for the transaction.

    A repository that declares ``takes_another_session`` is also given ``another_session``
    when there is one (a job's context has one; a use case's transaction has not).
    """

    _bindings: ClassVar[dict[type[Any], type[Any]]] = {}

    def __init__(
        self, session: AsyncSession, *, another_session: AnotherSession | None = None
    ) -> None:
        self._session = session
        self._another_session = another_session
        self._built: dict[type[Any], Any] = {}

    @classmethod
    def bind(cls, port: type[R], implementation: type[R]) -> None:
        """Let ``get(port)`` build ``implementation`` (done once, by the composition root)."""
        cls._bindings[port] = implementation

    def get(self, repository: type[R]) -> R:
        """The transaction's instance of ``repository`` (or of what is bound to it)."""
        found = self._built.get(repository)
        if found is None:
            made = self._bindings.get(repository, repository)
            if made.__dict__.get("is_port", False):
                raise LookupError(
                    f"nothing provides {repository.__name__}: import nscl_domain.composition"
                )
            if self._another_session is not None and made.__dict__.get(
                "takes_another_session", False
            ):
                found = made(self._session, another_session=self._another_session)
            else:
                found = made(self._session)
            self._built[repository] = found
        return cast(R, found)


class SessionRepository:
    """Base of a context's repository: the statements of one transaction's session."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    def add(self, row: object) -> None:
        """Add a new row to the transaction."""
        self.session.add(row)

    async def flush(self) -> None:
        """Write what was added or changed, so ids and defaults are known."""
        await self.session.flush()
