"""Use cases of reports: open a draft, write it, submit it (the validation rules run and
the draft is frozen as a version), review, correct, and read the versions."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from nscl_domain.audit.repository import AuditRepository, snapshot
from nscl_domain.catalogue import models as cm
from nscl_domain.catalogue.lifetime import Lifetimes, require_exists_on
from nscl_domain.catalogue.repository import CatalogueRepository
from nscl_domain.catalogue.service import programme_or_404
from nscl_domain.errors import Conflict, FieldProblem, Invalid, NotFound
from nscl_domain.identity import Caller, Permission
from nscl_domain.jobs.models import Job
from nscl_domain.jobs.requests import refresh_later
from nscl_domain.reports import models as m
from nscl_domain.reports.content import ReportContent
from nscl_domain.reports.regimes import rule_settings
from nscl_domain.reports.repository import ReportRepository
from nscl_domain.reports.rules import (
    CheckContext,
    IndicatorRule,
    final_figures,
    run_checks,
)
from nscl_domain.uow import UnitOfWork
from nscl_domain.workflow import (
    Action,
    Edit,
    Review,
    ReviewStatus,
    Submit,
    check_acting,
    check_acting_on,
    unit_work_scope,
)


def _reports(uow: UnitOfWork) -> ReportRepository:
    return uow.get(ReportRepository)


async def create_report(
    uow: UnitOfWork,
    caller: Caller,
    obligation_id: uuid.UUID,
) -> tuple[m.Report, bool]:
    """Open the draft of an obligation's report; return it and whether it was created now."""
    caller.require(Permission.REPORTS_WRITE)
    async with uow:
        # Reporters open drafts for their own unit only, whatever else they may read.
        row = await _reports(uow).obligation(obligation_id, caller.unit_id)
        if row is None:
            raise NotFound(
                f"Obligation {obligation_id} does not exist.", code="obligation_not_found"
            )
        obligation = row[0]
        await check_acting(uow, caller)
        lifetime = await uow.get(Lifetimes).of(obligation.unit_id)
        if lifetime is not None:
            require_exists_on(
                lifetime,
                obligation.due_date,
                f"a report of {obligation.year} due {obligation.due_date}",
                ("body", "obligation_id"),
            )
        if await _reports(uow).report_of(obligation.id) is not None:
            raise Conflict("This obligation already has a report.", code="report_exists")
        report = m.Report(
            obligation_id=obligation.id,
            unit_id=obligation.unit_id,
            status=ReviewStatus.DRAFT,
            draft=ReportContent().model_dump(mode="json"),
            # The service's clock, as every later change: `updated_since` compares them.
            updated_at=uow.now(),
        )
        _reports(uow).add(report)
        await _reports(uow).flush()
        uow.get(AuditRepository).record(
            caller, "report.created", "report", report.id, after=snapshot(report)
        )
        await uow.commit()
    return report, True


async def get_report(uow: UnitOfWork, caller: Caller, report_id: uuid.UUID) -> m.Report:
    """A report, if the caller's unit may see it."""
    caller.require(Permission.REPORTS_READ)
    async with uow:
        # A successor reads its predecessors' reports: it continues their open work.
        scope = None if caller.read_scope is None else await unit_work_scope(uow, caller)
        return await _reports(uow).report(report_id, scope)


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


async def list_reports(
    uow: UnitOfWork,
    caller: Caller,
    *,
    programme: str | None = None,
    unit: str | None = None,
    subtree: bool = False,
    year: int | None = None,
    status: ReviewStatus | None = None,
    regime: str | None = None,
    request_id: uuid.UUID | None = None,
    updated_since: datetime | None = None,
    before_id: uuid.UUID | None = None,
    limit: int = 50,
) -> Sequence[m.Report]:
    """Reports the caller may read, newest first: ``limit`` + 1, so callers see if more follow."""
    caller.require(Permission.REPORTS_READ)
    async with uow:
        programme_id = (await programme_or_404(uow, programme)).id if programme else None
        return await _reports(uow).reports(
            programme_id=programme_id, unit=unit, subtree=subtree, year=year, status=status,
            regime_key=regime, request_id=request_id, updated_since=updated_since,
            unit_scope=caller.read_scope, before_id=before_id, limit=limit,
        )  # fmt: skip


async def _check_context(
    uow: UnitOfWork, obligation: m.Obligation
) -> tuple[CheckContext, dict[str, cm.Indicator]]:
    programme_indicators = await uow.get(CatalogueRepository).indicators(
        obligation.programme_id, 0, 10_000
    )
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
    tasks = await uow.get(CatalogueRepository).tasks(
        obligation.programme_id, group=None, unit=None, q=None, offset=0, limit=10_000
    )
    request = await _reports(uow).request(obligation.request_id) if obligation.request_id else None
    previous: dict[tuple[str, str], Any] = {}
    if request is None:
        by_id = {i.id: key for key, i in indicators.items()}
        accepted = await _reports(uow).accepted_figures(
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
    obligation = (await _reports(uow).obligation(report.obligation_id, None))[0]
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
    _reports(uow).add(version)
    await _reports(uow).flush()
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
    await _reports(uow).add_figures(
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
        for task, _ in await uow.get(CatalogueRepository).tasks(
            obligation.programme_id, group=None, unit=None, q=None, offset=0, limit=10_000
        )
    }
    await _reports(uow).add_task_progress(
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


async def _schedule_rollup(uow: UnitOfWork, actor: Caller, obligation: m.Obligation) -> Job:
    # The refresh acts for whoever changed the report: its publication is audited as theirs.
    return await refresh_later(
        uow, obligation.programme_id, obligation.year, requested_by=actor.client_id
    )


async def _programme_of(uow: UnitOfWork, report: m.Report) -> uuid.UUID:
    obligation: m.Obligation = (await _reports(uow).obligation(report.obligation_id, None))[0]
    return obligation.programme_id


_review = Review(
    m.Report,
    Permission.REPORTS_REVIEW,
    view=_as_is,
    audited=lambda report, reason: (
        {"version": report.accepted_version_no}
        if report.status == ReviewStatus.ACCEPTED
        else {"reason": reason}
    ),
    programme_of=_programme_of,
)
"""Accept or return a report; ``accept`` adds what an acceptance sets in motion."""


async def return_report(
    uow: UnitOfWork, reviewer: Caller, report_id: uuid.UUID, *, reason: str, expected_revision: int
) -> m.Report:
    """Send a submitted report back to its unit with the reason."""
    return await _review(
        uow, reviewer, report_id, Action.RETURN, expected_revision=expected_revision, reason=reason
    )


async def accept(
    uow: UnitOfWork, reviewer: Caller, report_id: uuid.UUID, *, expected_revision: int
) -> tuple[m.Report, Job]:
    """Accept the latest submitted version; its figures feed the rollups. Return the report
    and the refresh job that will publish a rollup reflecting it."""
    scheduled: list[Job] = []

    async def accepted(uow: UnitOfWork, reviewer: Caller, report: m.Report) -> None:
        obligation = (await _reports(uow).obligation(report.obligation_id, None))[0]
        scheduled.append(await _schedule_rollup(uow, reviewer, obligation))

    report = await replace(_review, accepted=accepted)(
        uow, reviewer, report_id, Action.ACCEPT, expected_revision=expected_revision
    )
    return report, scheduled[0]


async def correct(
    uow: UnitOfWork, caller: Caller, report_id: uuid.UUID, *, reason: str, expected_revision: int
) -> m.Report:
    """Reopen an accepted report as a draft of its next version, with the reason."""
    caller.require(Permission.REPORTS_WRITE)
    async with uow:
        report = await _reports(uow).report_for_change(report_id, caller.unit_id, expected_revision)
        await check_acting_on(uow, caller, report)
        report.correct(reason, uow.now())
        uow.get(AuditRepository).record(
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
        return await _reports(uow).versions(report.id)


async def get_version(
    uow: UnitOfWork, caller: Caller, report_id: uuid.UUID, version_no: int
) -> m.ReportVersion:
    """One submitted version of a report, if the caller's unit may see the report."""
    report = await get_report(uow, caller, report_id)
    async with uow:
        version = await _reports(uow).version(report.id, version_no)
    if version is None:
        raise NotFound(f"Report {report_id} has no version {version_no}.", code="version_not_found")
    return version
