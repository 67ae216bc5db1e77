"""Use cases of reporting: obligations, drafts, submission, review, corrections, timeliness."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from pydantic import ValidationError

from nscl_domain.audit.repository import snapshot
from nscl_domain.catalogue import models as cm
from nscl_domain.catalogue.service import programme_or_404
from nscl_domain.errors import Conflict, FieldProblem, Invalid, NotFound
from nscl_domain.identity import Caller, Permission
from nscl_domain.reports import models as m
from nscl_domain.reports.content import IndicatorEntry, ReportContent
from nscl_domain.reports.importing import (
    XLSX_MEDIA_TYPE,
    ImportResult,
    IndicatorSpec,
    ObligationScope,
    build_template_csv,
    build_template_xlsx,
    check_rows,
)
from nscl_domain.reports.rules import (
    DEFAULT_RULES,
    CheckContext,
    IndicatorRule,
    RuleSetting,
    final_figures,
    run_checks,
    validate_params,
)
from nscl_domain.rollups.triggers import refresh_later
from nscl_domain.types import STORED
from nscl_domain.uow import UnitOfWork
from nscl_domain.workflow import Action, Edit, Review, ReviewStatus, Submit, load, load_for_change

# Deadlines are days in Vietnam: a report sent at 23:30 on 30 November is on time.
LOCAL_TIME = ZoneInfo("Asia/Ho_Chi_Minh")
# A burst of submissions makes one rollup job.


# --- regimes, rules and obligations ----------------------------------------------------


def due_date_of(regime: m.ReportingRegime, year: int) -> date:
    return date(year, regime.due_month, regime.due_day)


async def list_regimes(
    uow: UnitOfWork, caller: Caller, programme_ref: str
) -> Sequence[m.ReportingRegime]:
    """Reporting regimes of a programme with their deadlines."""
    caller.require(Permission.REPORTS_READ)
    async with uow:
        programme = await programme_or_404(uow, programme_ref)
        return await uow.reports.regimes(programme.id)


async def update_regime(
    uow: UnitOfWork,
    actor: Caller,
    programme_ref: str,
    key: str,
    *,
    due_month: int,
    due_day: int,
    cutoff_days_before_due: int,
) -> m.ReportingRegime:
    """Move a regime's deadline (obligations generated later take the new one)."""
    actor.require(Permission.REPORTS_MANAGE)
    try:
        date(2024, due_month, due_day)  # a leap year: 29 February is a valid deadline
    except ValueError as exc:
        raise Invalid(
            f"{due_day}/{due_month} is not a day of the year.",
            code="invalid_due_date",
            fields=[FieldProblem(("body", "due_day"), "Not a day of that month.")],
        ) from exc
    async with uow:
        programme = await programme_or_404(uow, programme_ref)
        regime = await uow.reports.regime(programme.id, key)
        if regime is None:
            raise NotFound(f"Regime {key!r} does not exist.", code="regime_not_found")
        before = snapshot(regime)
        regime.due_month, regime.due_day = due_month, due_day
        regime.cutoff_days_before_due = cutoff_days_before_due
        uow.audit.record(
            actor,
            "regime.updated",
            "reporting_regime",
            regime.id,
            before=before,
            after=snapshot(regime),
        )
        await uow.commit()
    return regime


async def rule_settings(uow: UnitOfWork) -> list[RuleSetting]:
    """Stored rule settings, defaults for rules never stored."""
    stored = {r.code: r for r in await uow.reports.rules()}
    return [
        RuleSetting(
            code=default.code,
            severity=stored[default.code].severity if default.code in stored else default.severity,
            enabled=stored[default.code].enabled if default.code in stored else default.enabled,
            description=default.description,
            params=stored[default.code].params if default.code in stored else default.params,
        )
        for default in DEFAULT_RULES
    ]


async def list_rules(uow: UnitOfWork, caller: Caller) -> list[RuleSetting]:
    """The validation rules run on submission, with their severity and parameters."""
    caller.require(Permission.CATALOGUE_READ)
    async with uow:
        return await rule_settings(uow)


async def update_rule(
    uow: UnitOfWork,
    actor: Caller,
    code: str,
    *,
    severity: Literal["error", "warning"] | None,
    enabled: bool | None,
    params: dict[str, Any] | None,
) -> RuleSetting:
    """Change a rule's severity, switch it off or on, or set its parameters."""
    actor.require(Permission.REPORTS_MANAGE)
    defaults = {r.code: r for r in DEFAULT_RULES}
    if code not in defaults:
        raise NotFound(f"No validation rule {code!r}.", code="rule_not_found")
    if params is not None:
        params = validate_params(code, params)
    async with uow:
        row = await uow.reports.rule_for_update(code)
        if row is None:
            default = defaults[code]
            row = m.ValidationRule(
                code=code,
                severity=default.severity,
                enabled=default.enabled,
                description=default.description,
                params=dict(default.params),
            )
            uow.reports.add(row)
        before = snapshot(row)
        if severity is not None:
            row.severity = severity
        if enabled is not None:
            row.enabled = enabled
        if params is not None:
            row.params = {**row.params, **params}
        await uow.reports.flush()
        uow.audit.record(
            actor, "rule.updated", "validation_rule", code, before=before, after=snapshot(row)
        )
        result = next(r for r in await rule_settings(uow) if r.code == code)
        await uow.commit()
    return result


async def generate_obligations(
    uow: UnitOfWork, actor: Caller, programme_ref: str, *, year: int, regime_key: str
) -> int:
    """Create the year's obligations for every unit reporting on the due date; idempotent."""
    actor.require(Permission.REPORTS_MANAGE)
    async with uow:
        programme = await programme_or_404(uow, programme_ref)
        regime = await uow.reports.regime(programme.id, regime_key)
        if regime is None or regime.kind == "ad_hoc":
            raise Invalid(
                f"No periodic regime {regime_key!r}.",
                code="regime_not_found",
                fields=[
                    FieldProblem(("body", "regime"), "Name a periodic regime of the programme.")
                ],
            )
        if not programme.start_year <= year <= programme.end_year or (
            regime.years is not None and year not in regime.years
        ):
            raise Invalid(
                f"The {regime.key} regime has no report for {year}.",
                code="year_outside_regime",
                fields=[FieldProblem(("body", "year"), "Outside the programme or the regime.")],
            )
        due = due_date_of(regime, year)
        # Who reports follows the structure of the due date: successors report after a merger.
        units = await uow.reports.reporting_units_on(programme.id, due)
        created = await uow.reports.add_obligations(
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
        uow.audit.record(
            actor,
            "obligations.generated",
            "programme",
            programme.id,
            after={"year": year, "regime": regime.key, "created": created},
        )
        await uow.commit()
    return created


async def create_request(
    uow: UnitOfWork,
    actor: Caller,
    programme_ref: str,
    *,
    title_vi: str,
    title_en: str,
    year: int,
    due_date: date,
    units: Sequence[str],
    indicators: Sequence[str],
    questions: Sequence[str],
) -> tuple[m.ReportingRequest, int]:
    """Issue an ad hoc request to some units, with its own indicators, questions and deadline."""
    actor.require(Permission.REPORTS_MANAGE)
    async with uow:
        programme = await programme_or_404(uow, programme_ref)
        found_units = await uow.reports.units_existing_on(units, due_date)
        missing = sorted(set(units) - {u.key for u in found_units})
        if missing:
            raise Invalid(
                f"Units that do not exist on {due_date}: {', '.join(missing)}.",
                code="unit_not_found",
                fields=[FieldProblem(("body", "units"), "Every unit must exist on the due date.")],
            )
        known = {i.key for i in await uow.catalogue.indicators(programme.id, 0, 10_000)}
        unknown = sorted(set(indicators) - known)
        if unknown:
            raise Invalid(
                f"Indicators not in the programme: {', '.join(unknown)}.",
                code="unknown_indicator",
                fields=[FieldProblem(("body", "indicators"), "Name indicators of the programme.")],
            )
        request = m.ReportingRequest(
            programme_id=programme.id,
            title_vi=title_vi,
            title_en=title_en,
            year=year,
            due_date=due_date,
            indicator_keys=list(indicators),
            questions=list(questions),
            requested_by=actor.client_id,
        )
        uow.reports.add(request)
        await uow.reports.flush()
        created = await uow.reports.add_obligations(
            [
                {
                    "id": uuid.uuid4(),
                    "programme_id": programme.id,
                    "request_id": request.id,
                    "unit_id": unit.id,
                    "year": year,
                    "due_date": due_date,
                    "cutoff_date": due_date,
                }
                for unit in found_units
            ]
        )
        uow.audit.record(
            actor, "request.created", "reporting_request", request.id, after=snapshot(request)
        )
        await uow.commit()
    return request, created


@dataclass(frozen=True)
class ObligationView:
    obligation: m.Obligation
    unit: cm.OrgUnit
    report: m.Report | None
    regime: m.ReportingRegime | None
    request: m.ReportingRequest | None


async def list_obligations(
    uow: UnitOfWork,
    caller: Caller,
    programme_ref: str,
    *,
    year: int | None,
    regime: str | None,
    request_id: uuid.UUID | None,
    offset: int,
    limit: int,
) -> Sequence[ObligationView]:
    """Obligations with their report's status; a reporting unit sees its own only."""
    caller.require(Permission.REPORTS_READ)
    async with uow:
        programme = await programme_or_404(uow, programme_ref)
        rows = await uow.reports.obligations(
            programme.id,
            year=year,
            regime_key=regime,
            request_id=request_id,
            unit_scope=caller.read_scope,
            offset=offset,
            limit=limit,
        )
    return [ObligationView(*row) for row in rows]


# --- reports -------------------------------------------------------------------------------


async def create_report(
    uow: UnitOfWork,
    caller: Caller,
    obligation_id: uuid.UUID,
) -> tuple[m.Report, bool]:
    """Open the draft of an obligation's report; return it and whether it was created now."""
    caller.require(Permission.REPORTS_WRITE)
    async with uow:
        # Reporters open drafts for their own unit only, whatever else they may read.
        row = await uow.reports.obligation(obligation_id, caller.unit_id)
        if row is None:
            raise NotFound(
                f"Obligation {obligation_id} does not exist.", code="obligation_not_found"
            )
        obligation = row[0]
        if await uow.reports.report_of(obligation.id) is not None:
            raise Conflict("This obligation already has a report.", code="report_exists")
        report = m.Report(
            obligation_id=obligation.id,
            unit_id=obligation.unit_id,
            status=ReviewStatus.DRAFT,
            draft=ReportContent().model_dump(mode="json"),
        )
        uow.reports.add(report)
        await uow.reports.flush()
        uow.audit.record(caller, "report.created", "report", report.id, after=snapshot(report))
        await uow.commit()
    return report, True


async def get_report(uow: UnitOfWork, caller: Caller, report_id: uuid.UUID) -> m.Report:
    """A report, if the caller's unit may see it."""
    caller.require(Permission.REPORTS_READ)
    async with uow:
        return await load(uow.session, m.Report, report_id, caller.read_scope)


def _parse_content(content: dict[str, Any]) -> ReportContent:
    try:
        return ReportContent.model_validate(content)
    except ValidationError as exc:
        raise Invalid(
            f"The report content is invalid in {exc.error_count()} place(s).",
            code="invalid_content",
            fields=FieldProblem.all_of(exc, ("body", "content")),
        ) from exc


async def _write_draft(uow: UnitOfWork, report: m.Report, content: ReportContent) -> None:
    report.draft = content.model_dump(mode="json")


async def _as_is(uow: UnitOfWork, report: m.Report) -> m.Report:
    return report


update_draft = Edit(
    m.Report,
    Permission.REPORTS_WRITE,
    "report.draft_updated",
    parse=_parse_content,
    write=_write_draft,
    audited=lambda report, _: {"revision": report.revision},
    view=_as_is,
)
"""Replace the draft's content (If-Match: the revision the caller last read)."""


async def _check_context(
    uow: UnitOfWork, obligation: m.Obligation
) -> tuple[CheckContext, dict[str, cm.Indicator]]:
    programme_indicators = await uow.catalogue.indicators(obligation.programme_id, 0, 10_000)
    indicators = {i.key: i for i in programme_indicators}
    rules = {
        key: IndicatorRule(
            key=key,
            unit=i.unit,
            derived_from=i.derived_from,
            disaggregations={d["dimension"]: d["values"] for d in i.disaggregations},
        )
        for key, i in indicators.items()
    }
    tasks = await uow.catalogue.tasks(
        obligation.programme_id, group=None, unit=None, q=None, offset=0, limit=10_000
    )
    request = await uow.reports.request(obligation.request_id) if obligation.request_id else None
    previous: dict[tuple[str, str], Any] = {}
    if request is None:
        by_id = {i.id: key for key, i in indicators.items()}
        accepted = await uow.reports.accepted_figures(
            obligation.unit_id, obligation.year - 1, list(by_id)
        )
        previous = {(by_id[i], d): v for (i, d), v in accepted.items()}
    context = CheckContext(
        year=obligation.year,
        indicators=rules,
        task_keys=frozenset(task.key for task, _ in tasks),
        requested_indicators=frozenset(request.indicator_keys) if request else None,
        questions=tuple(request.questions) if request else (),
        previous_year=previous,
    )
    return context, indicators


async def _freeze(
    uow: UnitOfWork, caller: Caller, report: m.Report, now: datetime
) -> m.ReportVersion:
    """Run the validation rules; if they pass, freeze the draft and its figures as a version."""
    obligation = (await uow.reports.obligation(report.obligation_id, None))[0]
    content = _parse_content(report.draft)
    context, indicators = await _check_context(uow, obligation)
    findings = run_checks(content, context, await rule_settings(uow))
    errors = [f for f in findings if f.severity == "error"]
    if errors:
        raise Invalid(
            f"The report breaks {len(errors)} validation rule(s); nothing was submitted.",
            code="report_invalid",
            fields=[
                FieldProblem(("body", "draft", *f.location), f.message, f.code) for f in errors
            ],
        )
    kind: m.VersionKind = (
        "correction"
        if report.correction_reason
        else ("resubmission" if report.status == ReviewStatus.RETURNED else "submission")
    )
    version = m.ReportVersion(
        report_id=report.id,
        version_no=report.latest_version_no + 1,
        kind=kind,
        content=content.model_dump(mode="json"),
        warnings=[f.as_json() for f in findings],
        reason=report.correction_reason,
        submitted_at=now,
        submitted_by=caller.client_id,
    )
    uow.reports.add(version)
    await uow.reports.flush()
    await _freeze_figures(uow, version, obligation, content, context, indicators)
    report.latest_version_no = version.version_no
    await _schedule_rollup(uow, caller, obligation)
    return version


async def _with_version(
    uow: UnitOfWork, report: m.Report, version: m.ReportVersion
) -> tuple[m.Report, m.ReportVersion]:
    return report, version


submit = Submit(
    m.Report,
    Permission.REPORTS_WRITE,
    prepare=_freeze,
    audited=lambda _, v: {"version": v.version_no, "kind": v.kind, "warnings": len(v.warnings)},
    view=_with_version,
)
"""Freeze the draft as a new version after the validation rules pass; schedule rollups."""


async def _freeze_figures(
    uow: UnitOfWork,
    version: m.ReportVersion,
    obligation: m.Obligation,
    content: ReportContent,
    context: CheckContext,
    indicators: dict[str, cm.Indicator],
) -> None:
    figures = final_figures(content, context.indicators)
    await uow.reports.add_figures(
        [
            {
                "version_id": version.id,
                "indicator_id": indicators[key].id,
                "disaggregation": parts,
                "unit_id": obligation.unit_id,
                "year": obligation.year,
                "value": value,
                "derived": indicators[key].derived_from is not None,
            }
            for (key, parts), value in figures.items()
        ]
    )
    tasks = {
        task.key: task.id
        for task, _ in await uow.catalogue.tasks(
            obligation.programme_id, group=None, unit=None, q=None, offset=0, limit=10_000
        )
    }
    await uow.reports.add_task_progress(
        [
            {
                "version_id": version.id,
                "task_id": tasks[p.task],
                "status": p.status,
                "narrative": p.narrative,
            }
            for p in content.task_progress
        ]
    )


async def _schedule_rollup(uow: UnitOfWork, actor: Caller, obligation: m.Obligation) -> None:
    # The refresh acts for whoever changed the report: its publication is audited as theirs.
    await refresh_later(uow, obligation.programme_id, obligation.year, requested_by=actor.client_id)


async def _report_accepted(uow: UnitOfWork, reviewer: Caller, report: m.Report) -> None:
    obligation = (await uow.reports.obligation(report.obligation_id, None))[0]
    await _schedule_rollup(uow, reviewer, obligation)


_review = Review(
    m.Report,
    Permission.REPORTS_REVIEW,
    view=_as_is,
    audited=lambda report, reason: (
        {"version": report.accepted_version_no}
        if report.status == ReviewStatus.ACCEPTED
        else {"reason": reason}
    ),
    accepted=_report_accepted,
)


async def return_report(
    uow: UnitOfWork, reviewer: Caller, report_id: uuid.UUID, *, reason: str, expected_revision: int
) -> m.Report:
    """Send a submitted report back to its unit with the reason."""
    return await _review(
        uow, reviewer, report_id, Action.RETURN, expected_revision=expected_revision, reason=reason
    )


async def accept(
    uow: UnitOfWork, reviewer: Caller, report_id: uuid.UUID, *, expected_revision: int
) -> m.Report:
    """Accept the latest submitted version; its figures feed the rollups."""
    return await _review(
        uow, reviewer, report_id, Action.ACCEPT, expected_revision=expected_revision
    )


async def correct(
    uow: UnitOfWork, caller: Caller, report_id: uuid.UUID, *, reason: str, expected_revision: int
) -> m.Report:
    """Reopen an accepted report as a draft of its next version, with the reason."""
    caller.require(Permission.REPORTS_WRITE)
    async with uow:
        report = await load_for_change(
            uow.session, m.Report, report_id, caller.unit_id, expected_revision
        )
        report.correct(reason, uow.now())
        uow.audit.record(
            caller, "report.correction_opened", "report", report.id, after={"reason": reason}
        )
        await uow.commit()
    return report


async def list_versions(
    uow: UnitOfWork, caller: Caller, report_id: uuid.UUID
) -> Sequence[m.ReportVersion]:
    """Every submitted version of a report, oldest first."""
    report = await get_report(uow, caller, report_id)
    async with uow:
        return await uow.reports.versions(report.id)


async def get_version(
    uow: UnitOfWork, caller: Caller, report_id: uuid.UUID, version_no: int
) -> m.ReportVersion:
    report = await get_report(uow, caller, report_id)
    async with uow:
        version = await uow.reports.version(report.id, version_no)
    if version is None:
        raise NotFound(f"Report {report_id} has no version {version_no}.", code="version_not_found")
    return version


# --- timeliness and completeness -----------------------------------------------------------

TimelinessState = Literal["on_time", "late", "missing", "not_due"]


@dataclass(frozen=True)
class Timeliness:
    unit: cm.OrgUnit
    obligation: m.Obligation
    report: m.Report | None
    state: TimelinessState
    days_late: int | None


def local_day(moment: datetime) -> date:
    return moment.astimezone(LOCAL_TIME).date()


def judge_timeliness(
    obligation: m.Obligation, report: m.Report | None, today: date
) -> tuple[TimelinessState, int | None]:
    """On time, late by how many days, missing (due and not sent), or not due yet."""
    submitted = report.first_submitted_at if report else None
    if submitted is None:
        return ("missing", None) if today > obligation.due_date else ("not_due", None)
    days = (local_day(submitted) - obligation.due_date).days
    return ("late", days) if days > 0 else ("on_time", None)


async def timeliness(
    uow: UnitOfWork, caller: Caller, programme_ref: str, *, year: int, regime: str
) -> Sequence[Timeliness]:
    """Who reported on time, late (by how many days) or not at all, for a year."""
    caller.require(Permission.REPORTS_READ)
    today = local_day(uow.now())
    async with uow:
        programme = await programme_or_404(uow, programme_ref)
        rows = await uow.reports.timeliness(programme.id, year, regime, caller.read_scope)
    result = []
    for obligation, unit, report, _, _ in rows:
        state, days = judge_timeliness(obligation, report, today)
        result.append(Timeliness(unit, obligation, report, state, days))
    return result


# --- spreadsheet import --------------------------------------------------------------------


async def _import_target(
    uow: UnitOfWork, caller: Caller, report_id: uuid.UUID
) -> tuple[m.Report, m.Obligation, str, dict[str, IndicatorSpec]]:
    report = await load(uow.session, m.Report, report_id, caller.unit_id, for_update=True)
    obligation, unit, *_ = await uow.reports.obligation(report.obligation_id, None)
    specs = {
        i.key: IndicatorSpec(
            key=i.key,
            name_vi=i.name_vi,
            name_en=i.name_en,
            unit=i.unit,
            derived=i.derived_from is not None,
            disaggregations={d["dimension"]: d["values"] for d in i.disaggregations},
        )
        for i in await uow.catalogue.indicators(obligation.programme_id, 0, 10_000)
    }
    return report, obligation, unit.key, specs


async def indicator_template(
    uow: UnitOfWork, caller: Caller, report_id: uuid.UUID, media_type: str
) -> tuple[bytes, str]:
    """A spreadsheet for the report's typed indicator values, and a file name for it."""
    caller.require(Permission.REPORTS_WRITE)
    async with uow:
        _, obligation, unit_key, specs = await _import_target(uow, caller, report_id)
    scope = ObligationScope(unit_key=unit_key, year=obligation.year)
    indicators = sorted(specs.values(), key=lambda s: s.key)
    if media_type == XLSX_MEDIA_TYPE:
        return build_template_xlsx(indicators, scope), f"{unit_key}-{obligation.year}.xlsx"
    return build_template_csv(indicators, scope), f"{unit_key}-{obligation.year}.csv"


async def import_values(
    uow: UnitOfWork,
    caller: Caller,
    report_id: uuid.UUID,
    rows: Sequence[tuple[int, dict[str, str | None]]],
    *,
    dry_run: bool,
    expected_revision: int | None,
) -> tuple[ImportResult, m.Report | None]:
    """Check every row of an upload; unless a dry run, and only if all pass, put the values
    into the draft in place of the typed ones it had."""
    caller.require(Permission.REPORTS_WRITE)
    async with uow:
        report, obligation, unit_key, specs = await _import_target(uow, caller, report_id)
        result = check_rows(rows, specs, ObligationScope(unit_key=unit_key, year=obligation.year))
        if dry_run or not result.ok:
            return result, None
        report.check_revision(expected_revision)
        report.check_editable()
        draft = ReportContent.model_validate(report.draft, context=STORED)
        draft.indicator_values = [
            IndicatorEntry(
                indicator=v.indicator_key, disaggregation=dict(v.disaggregation), value=v.value
            )
            for v in result.values
        ]
        report.draft = draft.model_dump(mode="json")
        report.changed(uow.now())
        uow.audit.record(
            caller, "report.values_imported", "report", report.id,
            after={"values": len(result.values), "revision": report.revision},
        )  # fmt: skip
        await uow.commit()
    return result, report
