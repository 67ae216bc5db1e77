"""Use case of backfill: DOST enters reports of past years as they were received.

A province that starts using the system in the middle of the programme holds the reports
its units sent on paper or by e-mail. Each is entered as an accepted version that records
the official letter that carried it (number, date, issuing unit) and the day DOST received
it. Such a version goes through the same validation rules, versions, figures and rollups as
a submitted one; it is marked ``backfilled``, its ``submitted_by`` and ``submitted_at`` are
who entered it and when, and an audit event ``report.backfilled`` names the letter.

Timeliness of a backfilled report is judged on the day DOST received its first version
(``received_on``), never on the day it was entered. A unit whose report never arrived has
no entry: its obligation (generated for the whole year here) reads ``missing``.

A second letter for a report already accepted (a correction the unit sent later) is
entered the same way, with a reason, and becomes the next version (kind ``correction``);
the report's timeliness stays that of its first version. A report under way in the system
(a draft, or submitted and not yet reviewed) is not overwritten: the entry is refused.

Years before the programme are not reporting years: their figures are baselines
(:mod:`nscl_domain.catalogue.baselines`), and an entry for one is refused.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta

from sqlalchemy import select

from nscl_domain.audit.repository import AuditRepository
from nscl_domain.catalogue import models as cm
from nscl_domain.catalogue.service import programme_or_404
from nscl_domain.errors import FieldProblem, Invalid
from nscl_domain.identity import Caller, Permission
from nscl_domain.reports import models as m
from nscl_domain.reports.content import ReportContent
from nscl_domain.reports.obligations import due_date_of
from nscl_domain.reports.regimes import rule_settings
from nscl_domain.reports.repository import ReportRepository
from nscl_domain.reports.rules import run_checks
from nscl_domain.reports.service import _check_context, _freeze_figures, _schedule_rollup
from nscl_domain.reports.timeliness import local_day
from nscl_domain.repositories import SessionRepository
from nscl_domain.uow import UnitOfWork
from nscl_domain.workflow import ReviewStatus

Location = tuple[str | int, ...]


@dataclass(frozen=True)
class Letter:
    """The official letter (công văn) that carried a report: số và ngày văn bản."""

    number: str
    date: date
    issuer: str | None = None
    """The issuing unit as printed on the letter; absent: the reporting unit's name."""


@dataclass(frozen=True)
class BackfillEntry:
    """One report of a past year as DOST received it."""

    unit: str
    year: int
    letter: Letter
    received_on: date
    content: ReportContent = field(default_factory=ReportContent)
    reason: str | None = None
    """Why a further version is entered for a report already accepted (a correction)."""


@dataclass(frozen=True)
class EntryProblem:
    """Why one entry cannot be entered, and where in the entry (``("letter", "date")``)."""

    entry: int
    location: Location
    code: str
    message: str


@dataclass(frozen=True)
class Entered:
    """A report as entered: the report, the version written, the unit's key."""

    report: m.Report
    version: m.ReportVersion
    unit: str
    year: int


@dataclass(frozen=True)
class BackfillOutcome:
    """Every problem found; when none and not a dry run, what was entered."""

    dry_run: bool
    problems: tuple[EntryProblem, ...]
    entered: tuple[Entered, ...] = ()
    obligations_created: int = 0

    @property
    def ok(self) -> bool:
        """Tell whether no entry had a problem."""
        return not self.problems


class BackfillRepository(SessionRepository):
    async def units(self, keys: Sequence[str]) -> dict[str, cm.OrgUnit]:
        stmt = select(cm.OrgUnit).where(cm.OrgUnit.key.in_(list(keys)))
        return {u.key: u for u in (await self.session.scalars(stmt)).all()}

    async def obligation_of(
        self, regime_id: uuid.UUID, unit_id: uuid.UUID, year: int
    ) -> m.Obligation | None:
        stmt = select(m.Obligation).where(
            m.Obligation.regime_id == regime_id,
            m.Obligation.unit_id == unit_id,
            m.Obligation.year == year,
        )
        return (await self.session.scalars(stmt)).one_or_none()

    async def report_for_update(self, obligation_id: uuid.UUID) -> m.Report | None:
        stmt = select(m.Report).where(m.Report.obligation_id == obligation_id).with_for_update()
        return (await self.session.scalars(stmt)).one_or_none()


@dataclass
class _Found:
    """The problems of the entry being checked."""

    entry: int
    problems: list[EntryProblem] = field(default_factory=list)

    def __call__(self, location: Location, code: str, message: str) -> None:
        self.problems.append(EntryProblem(self.entry, location, code, message))


@dataclass
class _Plan:
    """What checking found out about an entry, for writing it."""

    entry: BackfillEntry
    unit: cm.OrgUnit
    due: date
    report: m.Report | None
    obligation: m.Obligation | None


async def backfill(
    uow: UnitOfWork,
    actor: Caller,
    programme_ref: str,
    entries: Sequence[BackfillEntry],
    *,
    regime_key: str,
    dry_run: bool,
    regime_at: Location = ("query", "regime"),
) -> BackfillOutcome:
    """Check every entry; unless a dry run, and only if all pass, enter them all as accepted
    backfilled versions (generating the years' obligations) and schedule the rollups."""
    actor.require(Permission.REPORTS_MANAGE)
    async with uow:
        reports = uow.get(ReportRepository)
        history = uow.get(BackfillRepository)
        programme = await programme_or_404(uow, programme_ref)
        regime = await reports.regime(programme.id, regime_key)
        if regime is None or regime.kind == "ad_hoc":
            raise Invalid(
                f"No periodic regime {regime_key!r}.",
                code="regime_not_found",
                fields=[FieldProblem(regime_at, "Name a periodic regime.")],
            )
        today = local_day(uow.now())
        units = await history.units(sorted({e.unit for e in entries}))
        reporting: dict[int, set[uuid.UUID]] = {}
        problems: list[EntryProblem] = []
        plans: list[_Plan] = []
        seen: dict[tuple[str, int], int] = {}
        settings = await rule_settings(uow)
        for position, entry in enumerate(entries):
            problem = _Found(position)
            earlier = seen.setdefault((entry.unit, entry.year), position)
            if earlier != position:
                problem(("unit",), "duplicate_entry",
                        f"{entry.unit} {entry.year} is already in entry {earlier}.")  # fmt: skip
            in_programme = programme.start_year <= entry.year <= programme.end_year
            in_regime = in_programme and (regime.years is None or entry.year in regime.years)
            if not in_regime:
                before = entry.year < programme.start_year
                problem(("year",), "year_outside_regime",
                        f"The {regime.key} regime has no report for {entry.year}"
                        + (f": years before {programme.start_year} are baselines, recorded "
                           f"with POST /v1/programmes/{programme.key}/baselines." if before
                           else "."))  # fmt: skip
            _check_dates(entry, today, problem)
            unit = units.get(entry.unit)
            if unit is None:
                problem(("unit",), "unit_not_found", f"No organisation unit {entry.unit!r}.")
            # Without a unit and a year of the regime there is no obligation to check against;
            # otherwise every check runs, so that one dry run lists every problem.
            if not in_regime or unit is None:
                problems += problem.problems
                continue
            due = due_date_of(regime, entry.year)
            if entry.year not in reporting:
                reporting[entry.year] = set(await reports.reporting_units_on(programme.id, due))
            if unit.id not in reporting[entry.year]:
                problems += problem.problems
                problems.append(
                    EntryProblem(
                        position, ("unit",), "not_a_reporting_unit",
                        f"{unit.key} is not a reporting unit of {programme.key} on {due} "
                        f"(it exists {unit.valid_from} to {unit.valid_to or 'now'}); "
                        "the unit that reported then enters that year.",
                    )
                )  # fmt: skip
                continue
            obligation = await history.obligation_of(regime.id, unit.id, entry.year)
            report = (
                await history.report_for_update(obligation.id) if obligation is not None else None
            )
            if report is not None and report.status != ReviewStatus.ACCEPTED:
                problem(("unit",), "report_in_progress",
                        f"The {entry.year} report of {unit.key} is {report.status} in the system; "
                        "finish its review before entering a letter for it.")  # fmt: skip
            elif report is not None and not entry.reason:
                problem(("reason",), "reason_required",
                        f"The {entry.year} report of {unit.key} is already accepted: say why "
                        "this letter makes a further version (a correction).")  # fmt: skip
            elif report is None and entry.reason:
                problem(("reason",), "reason_not_applicable",
                        "A reason is for a correction; this is the first version.")  # fmt: skip
            # The same rules as a submission, on the same context.
            probe = obligation or m.Obligation(
                programme_id=programme.id, regime_id=regime.id, unit_id=unit.id,
                year=entry.year, due_date=due, request_id=None,
            )  # fmt: skip
            context, _ = await _check_context(uow, probe)
            for finding in run_checks(entry.content, context, settings):
                if finding.severity == "error":
                    problem(("content", *finding.location), finding.code, finding.message)
            problems += problem.problems
            if not problem.problems:
                plans.append(_Plan(entry, unit, due, report, obligation))
        if problems or dry_run:
            return BackfillOutcome(dry_run, tuple(problems))
        created = 0
        entered = []
        for plan in sorted(plans, key=lambda p: (p.entry.year, p.unit.key)):
            if plan.obligation is None:
                created += await _generate_year(uow, actor, programme, regime, plan.entry.year)
                plan.obligation = await history.obligation_of(
                    regime.id, plan.unit.id, plan.entry.year
                )
                assert plan.obligation is not None
                plan.report = await history.report_for_update(plan.obligation.id)
            entered.append(await _enter(uow, actor, plan))
        await uow.commit()
    return BackfillOutcome(dry_run, (), tuple(entered), created)


def _check_dates(entry: BackfillEntry, today: date, problem: _Found) -> None:
    letter = entry.letter
    if not letter.number.strip():
        problem(("letter", "number"), "missing_letter_number", "The letter's number is missing.")
    if letter.date > today:
        problem(
            ("letter", "date"), "future_date", f"The letter is dated {letter.date}, after today."
        )
    if letter.date < date(entry.year, 1, 1):
        problem(("letter", "date"), "letter_before_year",
                f"A report on {entry.year} cannot be sent on {letter.date}.")  # fmt: skip
    if entry.received_on > today:
        problem(("received_on",), "future_date",
                f"DOST cannot have received it on {entry.received_on}, after today.")  # fmt: skip
    if entry.received_on < letter.date:
        problem(("received_on",), "received_before_sent",
                f"Received {entry.received_on}, before the letter's {letter.date}.")  # fmt: skip


async def _generate_year(
    uow: UnitOfWork,
    actor: Caller,
    programme: cm.Programme,
    regime: m.ReportingRegime,
    year: int,
) -> int:
    """The year's obligations for every unit reporting on the due date, as generation makes
    them: a unit whose report never arrived then reads ``missing``."""
    reports = uow.get(ReportRepository)
    due = due_date_of(regime, year)
    units = await reports.reporting_units_on(programme.id, due)
    created = await reports.add_obligations(
        [
            {
                "id": uuid.uuid4(),
                "programme_id": programme.id,
                "regime_id": regime.id,
                "unit_id": unit_id,
                "year": year,
                "due_date": due,
                "cutoff_date": due - timedelta(days=regime.cutoff_days_before_due),
            }
            for unit_id in units
        ]
    )
    if created:
        uow.get(AuditRepository).record(
            actor, "obligations.generated", "programme", programme.id,
            after={"year": year, "regime": regime.key, "created": created, "by": "backfill"},
        )  # fmt: skip
    return created


async def _enter(uow: UnitOfWork, actor: Caller, plan: _Plan) -> Entered:
    reports = uow.get(ReportRepository)
    entry, obligation = plan.entry, plan.obligation
    assert obligation is not None
    now = uow.now()
    report = plan.report
    if report is None:
        report = m.Report(
            obligation_id=obligation.id,
            unit_id=obligation.unit_id,
            status=ReviewStatus.ACCEPTED,
            draft=entry.content.model_dump(mode="json"),
        )
        reports.add(report)
        await reports.flush()
    context, indicators = await _check_context(uow, obligation)
    findings = run_checks(entry.content, context, await rule_settings(uow))
    version = m.ReportVersion(
        report_id=report.id,
        version_no=report.latest_version_no + 1,
        kind="correction" if entry.reason else "submission",
        content=entry.content.model_dump(mode="json"),
        warnings=[f.as_json() for f in findings],
        reason=entry.reason,
        submitted_at=now,
        submitted_by=actor.client_id,
        backfilled=True,
        letter_number=entry.letter.number,
        letter_date=entry.letter.date,
        letter_issuer=entry.letter.issuer or plan.unit.name_vi,
        received_on=entry.received_on,
    )
    reports.add(version)
    await reports.flush()
    await _freeze_figures(uow, version, obligation, entry.content, context, indicators)
    report.draft = entry.content.model_dump(mode="json")
    report.latest_version_no = report.accepted_version_no = version.version_no
    report.first_submitted_at = report.first_submitted_at or now
    # Timeliness is that of the first version: a later letter corrects, it does not resend.
    report.received_on = report.received_on or entry.received_on
    report.correction_reason = report.returned_reason = None
    report.status = ReviewStatus.ACCEPTED
    report.accepted_at = now
    report.changed(now)
    await reports.flush()
    uow.get(AuditRepository).record(
        actor,
        "report.backfilled",
        "report",
        report.id,
        after={
            "unit": plan.unit.key,
            "year": entry.year,
            "version": version.version_no,
            "kind": version.kind,
            "letter": {
                "number": version.letter_number,
                "date": str(version.letter_date),
                "issuer": version.letter_issuer,
            },
            "received_on": str(entry.received_on),
            "days_after_due": (entry.received_on - obligation.due_date).days,
            "warnings": len(findings),
        },
    )
    await _schedule_rollup(uow, actor, obligation)
    return Entered(report, version, plan.unit.key, entry.year)


def as_invalid(outcome: BackfillOutcome, at: Location) -> Invalid:
    """The problems of a refused backfill as a validation problem, located under ``at``."""
    return Invalid(
        f"{len(outcome.problems)} problem(s) in the entries; nothing was entered.",
        code="backfill_invalid",
        fields=[FieldProblem((*at, *p.location), p.message, p.code) for p in outcome.problems],
    )
