"""Use cases of reporting regimes (what is due when) and of the validation rules run on
submission."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any, Literal

from nscl_domain.audit.repository import AuditRepository, snapshot
from nscl_domain.catalogue.service import programme_or_404
from nscl_domain.errors import FieldProblem, Invalid, NotFound
from nscl_domain.identity import Caller, Permission
from nscl_domain.reports import models as m
from nscl_domain.reports.repository import ReportRepository
from nscl_domain.reports.rules import (
    DEFAULT_RULES,
    RuleSetting,
    validate_params,
)
from nscl_domain.uow import UnitOfWork


def _reports(uow: UnitOfWork) -> ReportRepository:
    return uow.get(ReportRepository)


async def list_regimes(
    uow: UnitOfWork, caller: Caller, programme_ref: str
) -> Sequence[m.ReportingRegime]:
    """Reporting regimes of a programme with their deadlines."""
    caller.require(Permission.REPORTS_READ)
    async with uow:
        programme = await programme_or_404(uow, programme_ref)
        return await _reports(uow).regimes(programme.id)


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
        regime = await _reports(uow).regime(programme.id, key)
        if regime is None:
            raise NotFound(f"Regime {key!r} does not exist.", code="regime_not_found")
        before = snapshot(regime)
        regime.due_month, regime.due_day = due_month, due_day
        regime.cutoff_days_before_due = cutoff_days_before_due
        uow.get(AuditRepository).record(
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
    stored = {r.code: r for r in await _reports(uow).rules()}
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
        row = await _reports(uow).rule_for_update(code)
        if row is None:
            default = defaults[code]
            row = m.ValidationRule(
                code=code,
                severity=default.severity,
                enabled=default.enabled,
                description=default.description,
                params=dict(default.params),
            )
            _reports(uow).add(row)
        before = snapshot(row)
        if severity is not None:
            row.severity = severity
        if enabled is not None:
            row.enabled = enabled
        if params is not None:
            row.params = {**row.params, **params}
        await _reports(uow).flush()
        uow.get(AuditRepository).record(
            actor, "rule.updated", "validation_rule", code, before=before, after=snapshot(row)
        )
        result = next(r for r in await rule_settings(uow) if r.code == code)
        await uow.commit()
    return result
