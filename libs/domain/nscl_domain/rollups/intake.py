"""The national intake: what a province's instance pushes becomes a published run here.

A province's instance sends its published provincial rollup (the run's totals over every
unit, its id, seq and fingerprint) as the province's client. The submission is kept, and
its figures become a frozen run of kind ``pushed`` of the provincial programme, published
in the same transaction, with the province's run id as its id: the national refresh, which
it schedules at once, combines it like any published provincial run, and the national
provenance names the province's run.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from nscl_domain.audit.repository import AuditRepository
from nscl_domain.catalogue import models as cm
from nscl_domain.catalogue.service import check_programme_year, programme_or_404
from nscl_domain.errors import Conflict, FieldProblem, Forbidden, Invalid
from nscl_domain.identity import Caller, Permission
from nscl_domain.jobs import JobName
from nscl_domain.jobs.models import Job
from nscl_domain.jobs.requests import refresh_args, refresh_key
from nscl_domain.rollups.models import NationalIntake
from nscl_domain.rollups.repository import RollupRepository
from nscl_domain.uow import UnitOfWork


@dataclass(frozen=True)
class IntakeCell:
    """One total of the province's run: an indicator (and disaggregation) over every unit."""

    indicator: str
    disaggregation: str
    value: Decimal
    value_sum: Decimal
    value_count: int
    value_min: Decimal
    value_max: Decimal


@dataclass(frozen=True)
class Submission:
    """What a province's instance sends: its published run and that run's totals."""

    run_id: uuid.UUID
    seq: int
    fingerprint: str
    computed_at: datetime
    cells: Sequence[IntakeCell]


@dataclass(frozen=True)
class Received:
    """A stored submission, whether this request stored it, whether its run is the one
    published here now, and the national refresh it scheduled (None on a repeat)."""

    intake: NationalIntake
    created: bool
    current: bool
    programme_key: str
    refresh_job: Job | None = None


@dataclass(frozen=True)
class IntakeView:
    intake: NationalIntake
    current: bool
    programme_key: str


async def _provincial(uow: UnitOfWork, programme_ref: str) -> cm.Programme:
    programme = await programme_or_404(uow, programme_ref)
    if programme.level != "provincial" or programme.parent_id is None:
        raise Invalid(
            f"{programme.key} is not a provincial programme under a national one.",
            code="intake_not_provincial",
            fields=[FieldProblem(("path", "programme"), "Not a provincial programme.")],
        )
    return programme


async def receive(
    uow: UnitOfWork, caller: Caller, programme_ref: str, year: int, submission: Submission
) -> Received:
    """Keep a province's submission and publish its figures as the programme-year's run.

    Only the client of the unit that owns the provincial programme may send it. A run
    already received answers with its stored submission; a run not later (by seq) than
    the latest received is refused (409 ``intake_outdated``)."""
    caller.require(Permission.REPORTS_WRITE)
    async with uow:
        repo = uow.get(RollupRepository)
        programme = await _provincial(uow, programme_ref)
        if caller.unit_id != programme.owner_unit_id:
            raise Forbidden(
                f"Only the unit that owns {programme.key} sends its figures.", code="forbidden"
            )
        check_programme_year(programme, year, ("path", "year"))
        # Submissions of a programme-year queue behind each other and behind its refreshes.
        await repo.lock([(programme.id, year)])
        published = await repo.published_run_id(programme.id, year)
        known = await repo.intake_of(programme.id, submission.run_id)
        if known is not None:
            if known.year != year:
                raise Conflict(
                    f"Run {submission.run_id} was received for {known.year}.", code="conflict"
                )
            return Received(known, False, known.run_id == published, programme.key)
        latest = await repo.latest_intake(programme.id, year)
        if latest is not None and submission.seq <= latest.seq:
            raise Conflict(
                f"Run {latest.run_id} (seq {latest.seq}) of {programme.key} {year} was received "
                f"already; seq {submission.seq} is not later.",
                code="intake_outdated",
                extra={"latest_run_id": str(latest.run_id), "latest_seq": latest.seq},
            )
        if await repo.run_exists(submission.run_id):
            raise Conflict(
                f"A run {submission.run_id} exists here already: the province's instance and "
                "this one are the same.",
                code="conflict",
            )
        indicators = await repo.indicator_ids(programme.id)
        unknown = [
            FieldProblem(("body", "cells", i, "indicator"), f"No indicator {c.indicator!r}.")
            for i, c in enumerate(submission.cells)
            if c.indicator not in indicators
        ]
        if unknown:
            raise Invalid(
                f"Some indicators are not indicators of {programme.key}.",
                code="unknown_indicator",
                fields=unknown,
            )
        seen: set[tuple[str, str]] = set()
        for i, cell in enumerate(submission.cells):
            if (cell.indicator, cell.disaggregation) in seen:
                raise Invalid(
                    "A cell is sent twice.",
                    code="validation_failed",
                    fields=[FieldProblem(("body", "cells", i), "Sent twice.")],
                )
            seen.add((cell.indicator, cell.disaggregation))
        now = uow.now()
        intake = NationalIntake(
            programme_id=programme.id,
            year=year,
            run_id=submission.run_id,
            seq=submission.seq,
            fingerprint=submission.fingerprint,
            computed_at=submission.computed_at,
            cells=len(submission.cells),
            received_at=now,
            received_by=caller.client_id,
        )
        run = await repo.write_pushed_run(
            intake,
            [
                {
                    "indicator_id": indicators[c.indicator],
                    "disaggregation": c.disaggregation,
                    "breakdown": "",
                    "value": c.value,
                    "value_sum": c.value_sum,
                    "value_count": c.value_count,
                    "value_min": c.value_min,
                    "value_max": c.value_max,
                }
                for c in submission.cells
            ],
            now=now,
        )
        audit = uow.get(AuditRepository)
        audit.record(
            caller,
            "rollup.received",
            "rollup_run",
            run.run_id,
            after={
                "intake_id": str(intake.id),
                "programme": programme.key,
                "year": year,
                "seq": submission.seq,
                "fingerprint": submission.fingerprint,
            },
        )
        # The national run follows at once, as after a provincial publication here.
        assert programme.parent_id is not None
        job = await uow.schedule(
            JobName.REFRESH_ROLLUP,
            refresh_args(programme.parent_id, year),
            dedup_key=refresh_key(programme.parent_id, year),
            requested_by=caller.client_id,
        )
        await uow.commit()
    return Received(intake, True, True, programme.key, job)


async def list_intakes(
    uow: UnitOfWork, caller: Caller, programme_ref: str, year: int
) -> list[IntakeView]:
    """The submissions of a programme-year, the latest first, and which one is published."""
    caller.require(Permission.JOBS_READ)
    async with uow:
        repo = uow.get(RollupRepository)
        programme = await _provincial(uow, programme_ref)
        published = await repo.published_run_id(programme.id, year)
        return [
            IntakeView(intake, intake.run_id == published, programme.key)
            for intake in await repo.intakes(programme.id, year)
        ]
