"""Repositories of one transaction, fetched by type, so the kernel need not know them.

A repository is a class built from the transaction's session (``Repo(session)``). A context
that needs something another context provides may name a *port*: a class of its own,
marked ``is_port``, whose implementation the composition root binds (identity asks for
the units of its clients; the catalogue answers).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar, TypeVar, cast

from sqlalchemy.ext.asyncio import AsyncSession

R = TypeVar("R")


class Repositories:
    """Each repository of one session, built on first use and kept for the transaction."""

    _bindings: ClassVar[dict[type[Any], type[Any]]] = {}

    def __init__(self, session: AsyncSession) -> None:
        self.session = session
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
            found = self._built[repository] = cast(Callable[[AsyncSession], R], made)(self.session)
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
