"""Use case of timeliness: who reported on time, late (by how many days) or not at all."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Literal
from zoneinfo import ZoneInfo

from nscl_domain.catalogue import models as cm
from nscl_domain.catalogue.service import programme_or_404
from nscl_domain.identity import Caller, Permission
from nscl_domain.reports import models as m
from nscl_domain.reports.repository import ReportRepository
from nscl_domain.uow import UnitOfWork


def _reports(uow: UnitOfWork) -> ReportRepository:
    return uow.get(ReportRepository)


# Deadlines are days in Vietnam: a report sent at 23:30 on 30 November is on time.
LOCAL_TIME = ZoneInfo("Asia/Ho_Chi_Minh")

TimelinessState = Literal["on_time", "late", "missing", "not_due"]


@dataclass(frozen=True)
class Timeliness:
    unit: cm.OrgUnit
    obligation: m.Obligation
    report: m.Report | None
    state: TimelinessState
    days_late: int | None


def local_day(moment: datetime) -> date:
    """The day in Vietnam at ``moment``."""
    return moment.astimezone(LOCAL_TIME).date()


def judge_timeliness(
    obligation: m.Obligation, report: m.Report | None, today: date
) -> tuple[TimelinessState, int | None]:
    """On time, late by how many days, missing (due and not sent), or not due yet.

    A report entered from the past (backfilled) is judged on the day DOST received its first
    version by official letter; any other on the day it was first submitted, in Vietnam."""
    received = received_on(report)
    if received is None:
        return ("missing", None) if today > obligation.due_date else ("not_due", None)
    days = (received - obligation.due_date).days
    return ("late", days) if days > 0 else ("on_time", None)


def received_on(report: m.Report | None) -> date | None:
    """The day the report's first version reached DOST, or None if none did."""
    if report is None:
        return None
    if report.received_on is not None:
        return report.received_on
    return local_day(report.first_submitted_at) if report.first_submitted_at else None


async def timeliness(
    uow: UnitOfWork, caller: Caller, programme_ref: str, *, year: int, regime: str
) -> Sequence[Timeliness]:
    """Who reported on time, late (by how many days) or not at all, for a year."""
    caller.require(Permission.REPORTS_READ)
    today = local_day(uow.now())
    async with uow:
        programme = await programme_or_404(uow, programme_ref)
        rows = await _reports(uow).timeliness(programme.id, year, regime, caller.read_scope)
    result = []
    for obligation, unit, report, _, _ in rows:
        state, days = judge_timeliness(obligation, report, today)
        result.append(Timeliness(unit, obligation, report, state, days))
    return result
