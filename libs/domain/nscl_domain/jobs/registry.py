"""What each job name means: its argument schema and the domain function that runs it."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import InitVar, dataclass, field
from datetime import datetime
from typing import Any, TypedDict

from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from nscl_domain.errors import DomainError
from nscl_domain.identity import SYSTEM
from nscl_domain.jobs import PermanentJobError
from nscl_domain.jobs.repository import JobRepository
from nscl_domain.repositories import R, Repositories, RepositorySource


class Progress(TypedDict):
    """How far a running job has come: the one shape every kind reports, so the job
    resource can publish it as a typed object."""

    stage: str
    done: int
    total: int


ProgressReporter = Callable[[Progress], Awaitable[None]]


@dataclass(frozen=True)
class JobContext:
    """What a handler gets: the transaction its effects belong to, the job and the time.

    ``report_progress`` writes to the job row outside that transaction, so the job resource
    shows how far a long job has come while it runs. The session and the sessionmaker
    only build the context's repositories (``get``); a handler never holds them.
    """

    session: InitVar[AsyncSession]
    job_id: uuid.UUID
    attempt: int
    now: datetime
    report_progress: ProgressReporter | None = None
    # For work that may run on a second connection beside the job's own transaction.
    sessionmaker: InitVar[async_sessionmaker[AsyncSession] | None] = None
    _repositories: Repositories = field(init=False, repr=False, compare=False)
    _sessionmaker: async_sessionmaker[AsyncSession] | None = field(
        init=False, repr=False, compare=False, default=None
    )

    def __post_init__(
        self, session: AsyncSession, sessionmaker: async_sessionmaker[AsyncSession] | None
    ) -> None:
        repositories = Repositories(session, another_session=sessionmaker)
        object.__setattr__(self, "_repositories", repositories)
        object.__setattr__(self, "_sessionmaker", sessionmaker)

    @property
    def sessionmaker_(self) -> async_sessionmaker[AsyncSession] | None:
        """Sessions beside the job's transaction, for work that must commit whatever the
        attempt's fate (what a webhook endpoint was sent cannot be rolled back)."""
        return self._sessionmaker

    def get(self, repository: type[R]) -> R:
        """The job transaction's ``repository``, as ``UnitOfWork.get`` gives a use case."""
        return self._repositories.get(repository)


Handler = Callable[[JobContext, Any], Awaitable[dict[str, Any]]]
Location = tuple[str | int, ...]
Validator = Callable[[RepositorySource, Any, Location], Awaitable[None]]
"""Check parsed arguments against the database (the programme exists, the year is within
its period) through the repositories of the transaction it is given (a use case's unit of
work, a job's context); raise a DomainError naming fields under the location given."""


@dataclass(frozen=True)
class JobKind:
    """A kind of job. ``operator_may_schedule``: may be started over the API by operators.

    ``validate`` is the one check of a job's arguments beyond their shape: scheduling runs
    it (the generic job route and the dedicated routes alike) and so does every attempt,
    where a failure is permanent.
    """

    name: str
    args_model: type[BaseModel]
    handler: Handler
    description: str
    operator_may_schedule: bool = False
    validate: Validator | None = None

    async def check(self, repositories: RepositorySource, args: Any, at: Location) -> None:
        """Run the kind's validator, if it has one."""
        if self.validate is not None:
            await self.validate(repositories, args, at)

    async def run(self, ctx: JobContext, args: Any) -> dict[str, Any]:
        """Check the arguments in the job's transaction, then run the handler; arguments
        that no longer hold (the programme was deleted) fail the job without a retry."""
        try:
            await self.check(ctx, args, ("args",))
        except DomainError as exc:
            raise PermanentJobError(exc.detail, code=exc.code) from exc
        return await self.handler(ctx, args)


JobRegistry = Mapping[str, JobKind]


@dataclass(frozen=True)
class JobActor:
    """The client a job acts for, as its audit events name it: whoever asked for the job
    (or made the change that scheduled it), or "system" for the schedule."""

    client_id: str
    unit_id: uuid.UUID | None = None
    unit_key: str | None = None
    request_id: str | None = None

    @property
    def is_system(self) -> bool:
        return self.client_id == SYSTEM.client_id


# Requesters that name no client: the nightly schedule, jobs written without a requester.
_SCHEDULERS = frozenset({"schedule", SYSTEM.client_id})


def actor_named(requested_by: str | None) -> JobActor:
    """The actor a job's ``requested_by`` names."""
    if requested_by is None or requested_by in _SCHEDULERS:
        return JobActor(SYSTEM.client_id, SYSTEM.unit_id, SYSTEM.unit_key)
    return JobActor(requested_by)


async def requester_of(ctx: JobContext) -> JobActor:
    """Who asked for the running job, read from its row (which the attempt holds locked)."""
    return actor_named(await ctx.get(JobRepository).requester(ctx.job_id))
