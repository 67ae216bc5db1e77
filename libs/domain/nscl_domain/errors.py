"""Domain errors. They carry no HTTP: the API maps each class to a status in one table."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError


@dataclass(frozen=True)
class FieldProblem:
    """One invalid input, named by its location (e.g. ``("body", "valid_to")``)."""

    location: tuple[str | int, ...]
    message: str
    code: str = "invalid"

    @classmethod
    def all_of(cls, exc: ValidationError, at: tuple[str | int, ...]) -> list[FieldProblem]:
        """Every error of a pydantic validation, placed under ``at`` in the request."""
        return [cls((*at, *err["loc"]), err["msg"], err["type"]) for err in exc.errors()]


@dataclass
class DomainError(Exception):
    """Base of every error the domain raises on purpose."""

    detail: str
    code: str = "domain_error"
    fields: Sequence[FieldProblem] = field(default_factory=tuple)
    # Members the problem carries beside the standard ones (e.g. the unit's period).
    extra: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        return self.detail


class NotFound(DomainError):
    """The object does not exist, or the caller may not know that it does."""


class Conflict(DomainError):
    """The request clashes with the object's current state."""


class PreconditionFailed(DomainError):
    """The caller's copy of the object is stale (``If-Match`` did not match)."""


class Forbidden(DomainError):
    """The caller is known but may not do this."""


class Invalid(DomainError):
    """The input breaks a rule of the domain; ``fields`` names what is wrong."""


class Unavailable(DomainError):
    """A dependency the operation needs is not reachable right now."""


class Unauthenticated(DomainError):
    """No valid credentials: unknown or disabled client, bad secret, bad token."""


class RateLimited(DomainError):
    """Too many attempts; ``retry_after`` seconds until the next is accepted."""

    retry_after: int = 60
