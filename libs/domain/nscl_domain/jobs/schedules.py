"""Schedules as data: operators say which job runs when; the worker's tick fires them.

A schedule is a job name, its arguments and a cron expression read in Asia/Ho_Chi_Minh.
Each tick (every worker runs one every few seconds) locks the enabled schedules no other
tick holds and writes, for each whose latest fire time has come since it last looked,
one job row keyed by (schedule, fire time). The unique index on that pair makes a firing
exactly once across any number of workers and clocks; the row lock only saves them the
work.

Catch-up rule: a tick fires at most once per schedule, for the most recent fire time not
after its clock, and only within ``catch_up`` of that time. Fire times missed while no
worker ran are dropped, except the latest when a worker is back within the window (a
nightly rebuild missed at 01:30 runs when a worker comes back at 06:00; one missed a
week ago does not run seven times). Fire times that pass while a schedule is paused are
skipped: resuming looks only forward.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import structlog

from nscl_domain.audit.repository import AuditRepository
from nscl_domain.errors import Conflict, FieldProblem, Invalid, NotFound
from nscl_domain.identity import Caller, Permission
from nscl_domain.jobs import JobName, cron
from nscl_domain.jobs.models import Job, JobSchedule
from nscl_domain.jobs.registry import JobRegistry
from nscl_domain.jobs.schedule_repository import ScheduleRepository
from nscl_domain.jobs.service import checked_args
from nscl_domain.uow import UnitOfWork

log = structlog.get_logger(__name__)

KEY_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._:-]{0,99}$")
# Who the jobs a schedule fires act for: the system (see registry.actor_named).
SCHEDULER = "schedule"


# The schedules of a new installation (the migration that introduced schedules wrote the
# same rows into existing ones). The post-deadline rebuild comes one per provincial plan.
NIGHTLY_REBUILD = "nightly-rollups-rebuild"
NIGHTLY_PRUNE = "nightly-jobs-prune"
DAILY_REMINDERS = "daily-deadline-reminders"
POST_DEADLINE_CRON = "0 2 1 12 *"


def post_deadline_key(programme_key: str) -> str:
    """The schedule that rebuilds a programme once its reports are due (30 November)."""
    return f"post-deadline-rebuild:{programme_key}"


def default_schedules(provincial: dict[str, uuid.UUID]) -> list[dict[str, Any]]:
    """Rows of the default schedules, given provincial programmes by key."""
    rows: list[dict[str, Any]] = [
        {
            "key": NIGHTLY_REBUILD,
            "job_name": JobName.REBUILD_ROLLUPS.value,
            "args": {},
            "cron": "30 1 * * *",
            "description": "Rebuild every programme-year whose inputs changed.",
        },
        {
            "key": NIGHTLY_PRUNE,
            "job_name": JobName.PRUNE_JOBS.value,
            "args": {"older_than_days": 30},
            "cron": "15 2 * * *",
            "description": "Delete finished jobs older than 30 days.",
        },
        {
            "key": DAILY_REMINDERS,
            "job_name": JobName.SEND_REMINDERS.value,
            "args": {},
            "cron": "0 8 * * *",
            "description": (
                "Remind units that have not submitted of their approaching or missed deadlines."
            ),
        },
    ]
    for key, programme_id in sorted(provincial.items()):
        rows.append(
            {
                "key": post_deadline_key(key),
                "job_name": JobName.REBUILD_ROLLUPS.value,
                "args": {"programme_id": str(programme_id)},
                "cron": POST_DEADLINE_CRON,
                "description": f"Rebuild {key} after the 30 November reporting deadline.",
            }
        )
    return rows


@dataclass(frozen=True)
class ScheduleView:
    """A schedule, when it fires next, and what its latest runs came to."""

    schedule: JobSchedule
    next_fire_times: list[datetime]
    runs: list[Job] = field(default_factory=list)


@dataclass(frozen=True)
class ScheduleChanges:
    """What an operator changes of a schedule; None leaves a field as it is."""

    job_name: str | None = None
    args: dict[str, Any] | None = None
    cron: str | None = None
    enabled: bool | None = None
    description: str | None = None


def _check_cron(expression: str) -> None:
    if not cron.is_valid(expression):
        raise Invalid(
            f"{expression!r} is not a cron expression.",
            code="invalid_cron",
            fields=[
                FieldProblem(
                    ("body", "cron"),
                    "Five fields: minute hour day-of-month month day-of-week "
                    f"(read in {cron.TIME_ZONE_NAME}), e.g. '0 2 1 12 *'.",
                )
            ],
        )


def _not_found(key: str) -> NotFound:
    return NotFound(f"Schedule {key!r} does not exist.", code="schedule_not_found")


def _views(
    schedules: Sequence[JobSchedule], runs: Sequence[Job], now: datetime, upcoming: int
) -> list[ScheduleView]:
    by_schedule: dict[uuid.UUID, list[Job]] = {}
    for job in runs:
        if job.schedule_id is not None:
            by_schedule.setdefault(job.schedule_id, []).append(job)
    return [
        ScheduleView(
            schedule=s,
            next_fire_times=cron.next_after(s.cron, now, upcoming) if s.enabled else [],
            runs=by_schedule.get(s.id, []),
        )
        for s in schedules
    ]


async def list_schedules(
    uow: UnitOfWork, caller: Caller, *, upcoming: int = 3, last_runs: int = 5
) -> list[ScheduleView]:
    """Every schedule in key order, with its next fire times and latest runs."""
    caller.require(Permission.JOBS_READ)
    async with uow:
        repo = uow.get(ScheduleRepository)
        schedules = await repo.all()
        runs = await repo.runs([s.id for s in schedules], last_runs)
    return _views(schedules, runs, uow.now(), upcoming)


async def get_schedule(
    uow: UnitOfWork, caller: Caller, key: str, *, upcoming: int = 3, last_runs: int = 5
) -> ScheduleView:
    """One schedule with its next fire times and latest runs, or NotFound."""
    caller.require(Permission.JOBS_READ)
    async with uow:
        repo = uow.get(ScheduleRepository)
        schedule = await repo.by_key(key)
        if schedule is None:
            raise _not_found(key)
        runs = await repo.runs([schedule.id], last_runs)
    return _views([schedule], runs, uow.now(), upcoming)[0]


async def create_schedule(
    uow: UnitOfWork,
    caller: Caller,
    registry: JobRegistry,
    *,
    key: str,
    job_name: str,
    args: dict[str, Any],
    cron_expression: str,
    enabled: bool = True,
    description: str = "",
) -> ScheduleView:
    """Add a schedule; its arguments pass the checks of the job's own route."""
    caller.require(Permission.JOBS_RUN)
    if not KEY_PATTERN.match(key):
        raise Invalid(
            f"{key!r} is not a schedule key.",
            code="invalid_schedule_key",
            fields=[FieldProblem(("body", "key"), "Lower-case letters, digits, . _ : -")],
        )
    _check_cron(cron_expression)
    async with uow:
        stored_args = await checked_args(
            uow, registry, job_name, args, at_name=("body", "job_name")
        )
        repo = uow.get(ScheduleRepository)
        if await repo.by_key(key) is not None:
            raise Conflict(f"Schedule {key!r} exists already.", code="schedule_exists")
        now = uow.now()
        schedule = JobSchedule(
            key=key,
            job_name=job_name,
            args=stored_args,
            cron=cron_expression,
            enabled=enabled,
            description=description,
            # Looks forward from its creation: no fire time before it is made up.
            checked_through=now,
            created_by=caller.client_id,
            created_at=now,
            updated_at=now,
        )
        await repo.insert(schedule)
        uow.get(AuditRepository).record(
            caller, "schedule.created", "job_schedule", schedule.id, after=_audited(schedule)
        )
        await uow.commit()
    return _views([schedule], [], now, 3)[0]


def _audited(schedule: JobSchedule) -> dict[str, Any]:
    return {
        "key": schedule.key,
        "job_name": schedule.job_name,
        "args": schedule.args,
        "cron": schedule.cron,
        "enabled": schedule.enabled,
    }


async def update_schedule(
    uow: UnitOfWork, caller: Caller, registry: JobRegistry, key: str, changes: ScheduleChanges
) -> ScheduleView:
    """Change a schedule; pausing stops its firings, resuming looks forward from now."""
    caller.require(Permission.JOBS_RUN)
    if changes.cron is not None:
        _check_cron(changes.cron)
    async with uow:
        repo = uow.get(ScheduleRepository)
        schedule = await repo.by_key(key, lock=True)
        if schedule is None:
            raise _not_found(key)
        before = _audited(schedule)
        now = uow.now()
        if changes.job_name is not None or changes.args is not None:
            # A new name takes its arguments from the request: another job's would not do.
            job_name = changes.job_name or schedule.job_name
            args = changes.args if changes.args is not None else schedule.args
            schedule.args = await checked_args(
                uow, registry, job_name, args, at_name=("body", "job_name")
            )
            schedule.job_name = job_name
        if changes.cron is not None and changes.cron != schedule.cron:
            schedule.cron = changes.cron
            # The new expression's past fire times are not made up.
            schedule.checked_through = max(schedule.checked_through, now)
        if changes.enabled is not None and changes.enabled != schedule.enabled:
            schedule.enabled = changes.enabled
            if changes.enabled:
                # Fire times that passed while paused stay skipped.
                schedule.checked_through = max(schedule.checked_through, now)
        if changes.description is not None:
            schedule.description = changes.description
        schedule.updated_at = now
        uow.get(AuditRepository).record(
            caller,
            "schedule.updated",
            "job_schedule",
            schedule.id,
            before=before,
            after=_audited(schedule),
        )
        runs = await repo.runs([schedule.id], 5)
        await uow.commit()
    return _views([schedule], runs, now, 3)[0]


async def delete_schedule(uow: UnitOfWork, caller: Caller, key: str) -> None:
    """Remove a schedule; the jobs it fired stay in the record."""
    caller.require(Permission.JOBS_RUN)
    async with uow:
        repo = uow.get(ScheduleRepository)
        schedule = await repo.by_key(key, lock=True)
        if schedule is None:
            raise _not_found(key)
        uow.get(AuditRepository).record(
            caller, "schedule.deleted", "job_schedule", schedule.id, before=_audited(schedule)
        )
        await repo.delete(schedule)
        await uow.commit()


async def run_now(uow: UnitOfWork, caller: Caller, registry: JobRegistry, key: str) -> Job:
    """Fire the schedule's job now, as an operator asks; it is listed among its runs."""
    caller.require(Permission.JOBS_RUN)
    async with uow:
        repo = uow.get(ScheduleRepository)
        schedule = await repo.by_key(key, lock=True)
        if schedule is None:
            raise _not_found(key)
        # Checked again: the programme named when the schedule was made may be gone.
        args = await checked_args(
            uow, registry, schedule.job_name, schedule.args, at_name=("path", "schedule")
        )
        job = await repo.add_firing(
            schedule=schedule,
            fire_at=uow.now(),
            max_attempts=uow.job_max_attempts,
            requested_by=caller.client_id,
            args=args,
        )
        if job is None:
            raise Conflict(
                f"Schedule {key!r} was fired at this very moment already.",
                code="schedule_fired",
            )
        uow.hand_over(job)
        uow.get(AuditRepository).record(
            caller, "schedule.run", "job", job.id, after={"schedule": key, "name": job.name}
        )
        await uow.commit()
    return job


async def fire_due(uow: UnitOfWork, *, catch_up: timedelta) -> list[Job]:
    """One tick of the scheduler at the unit of work's clock: write the job of every enabled
    schedule whose latest fire time came since it last looked (see the catch-up rule)."""
    fired: list[Job] = []
    async with uow:
        now = uow.now()
        repo = uow.get(ScheduleRepository)
        for schedule in await repo.lock_enabled():
            if not cron.is_valid(schedule.cron):
                log.warning("schedule.invalid_cron", schedule=schedule.key, cron=schedule.cron)
                continue
            latest = cron.latest_at_or_before(schedule.cron, now)
            if latest <= schedule.checked_through:
                continue
            schedule.checked_through = latest
            if now - latest > catch_up:
                log.warning(
                    "schedule.missed",
                    schedule=schedule.key,
                    fire_at=latest.isoformat(),
                    late_seconds=round((now - latest).total_seconds()),
                )
                continue
            job = await repo.add_firing(
                schedule=schedule,
                fire_at=latest,
                max_attempts=uow.job_max_attempts,
                requested_by=SCHEDULER,
            )
            if job is not None:
                uow.hand_over(job)
                fired.append(job)
                log.info(
                    "schedule.fired",
                    schedule=schedule.key,
                    job_id=str(job.id),
                    fire_at=latest.isoformat(),
                )
        await uow.commit()
    return fired
