"""Which audit actions other systems hear of, and whose they are (the access matrix's
rules, applied to events): the catalogue the event hook works from."""

from __future__ import annotations

from nscl_domain.events import EventType
from nscl_domain.events.hook import EventSpec
from nscl_domain.identity import Permission as P


def _unit_of(table: str, column: str = "unit_id") -> str:
    return (
        f"SELECT x.{column}, u.key FROM {table} x JOIN org_unit u ON u.id = x.{column} "
        "WHERE x.id = CAST(:id AS uuid)"
    )


_REPORT = {
    "read": P.REPORTS_READ,
    "read_all": frozenset({P.REPORTS_READ_ALL}),
    "unit_sql": _unit_of("report"),
    "link": "/v1/reports/{id}",
    "id_field": "report_id",
}
_PLAN = {
    "read": P.PLANS_READ,
    "read_all": frozenset({P.REPORTS_READ_ALL}),
    "unit_sql": _unit_of("plan"),
    "link": "/v1/plans/{id}",
    "id_field": "plan_id",
}
_ESTIMATE = {
    "read": P.BUDGET_READ,
    "read_all": frozenset({P.BUDGET_REVIEW, P.AUDIT_READ}),
    "unit_sql": _unit_of("budget_estimate"),
    "link": "/v1/budget-estimates/{id}",
    "id_field": "estimate_id",
}
_DOSSIER = {
    "read": P.DOSSIERS_READ,
    "read_all": frozenset({P.BUDGET_REVIEW, P.AUDIT_READ}),
    "unit_sql": _unit_of("budget_dossier", "destination_unit_id"),
    "link": "/v1/budget-dossiers/{id}",
    "id_field": "dossier_id",
    "fields": ("budget_year", "version_no", "fingerprint"),
}
_CHANGE = {
    "read": P.PLANS_READ,
    "read_all": frozenset({P.REPORTS_READ_ALL}),
    "unit_sql": (
        "SELECT p.unit_id, u.key FROM plan_change_request c JOIN plan p ON p.id = c.plan_id "
        "JOIN org_unit u ON u.id = p.unit_id WHERE c.id = CAST(:id AS uuid)"
    ),
    "link": "/v1/plan-change-requests/{id}",
    "id_field": "change_request_id",
    "fields": ("version",),
}
_OBLIGATION = {
    "read": P.REPORTS_READ,
    "read_all": frozenset({P.REPORTS_READ_ALL}),
    "unit_sql": _unit_of("reporting_obligation"),
    "id_field": "obligation_id",
    "fields": ("due_date", "days", "regime"),
}

EVENT_SPECS: dict[str, EventSpec] = {
    "report.submitted": EventSpec(EventType.REPORT_SUBMITTED, **_REPORT),  # type: ignore[arg-type]
    "report.resubmitted": EventSpec(EventType.REPORT_SUBMITTED, **_REPORT),  # type: ignore[arg-type]
    "report.returned": EventSpec(EventType.REPORT_RETURNED, **_REPORT),  # type: ignore[arg-type]
    "report.accepted": EventSpec(EventType.REPORT_ACCEPTED, **_REPORT),  # type: ignore[arg-type]
    "report.correction_opened": EventSpec(EventType.REPORT_CORRECTED, **_REPORT),  # type: ignore[arg-type]
    "plan.submitted": EventSpec(EventType.PLAN_SUBMITTED, **_PLAN),  # type: ignore[arg-type]
    "plan.resubmitted": EventSpec(EventType.PLAN_SUBMITTED, **_PLAN),  # type: ignore[arg-type]
    "plan.returned": EventSpec(EventType.PLAN_RETURNED, **_PLAN),  # type: ignore[arg-type]
    "plan.accepted": EventSpec(EventType.PLAN_ACCEPTED, **_PLAN),  # type: ignore[arg-type]
    "plan.change_approved": EventSpec(EventType.PLAN_CHANGE_DECIDED, **_CHANGE),  # type: ignore[arg-type]
    "plan.change_rejected": EventSpec(EventType.PLAN_CHANGE_DECIDED, **_CHANGE),  # type: ignore[arg-type]
    "estimate.submitted": EventSpec(EventType.ESTIMATE_SUBMITTED, **_ESTIMATE),  # type: ignore[arg-type]
    "estimate.resubmitted": EventSpec(EventType.ESTIMATE_SUBMITTED, **_ESTIMATE),  # type: ignore[arg-type]
    "estimate.returned": EventSpec(EventType.ESTIMATE_RETURNED, **_ESTIMATE),  # type: ignore[arg-type]
    "estimate.accepted": EventSpec(EventType.ESTIMATE_ACCEPTED, **_ESTIMATE),  # type: ignore[arg-type]
    "dossier.built": EventSpec(EventType.DOSSIER_BUILT, **_DOSSIER),  # type: ignore[arg-type]
    "dossier.sent": EventSpec(EventType.DOSSIER_SENT, **_DOSSIER),  # type: ignore[arg-type]
    "dossier.acknowledged": EventSpec(EventType.DOSSIER_ACKNOWLEDGED, **_DOSSIER),  # type: ignore[arg-type]
    "rollup.published": EventSpec(
        EventType.ROLLUP_PUBLISHED,
        read=P.ROLLUPS_READ,
        link="/v1/rollups/{programme}/{year}/runs/{id}",
        id_field="run_id",
        fields=("programme", "year", "seq", "fingerprint", "job_id"),
        order_by=("programme", "year"),
    ),
    "job.failed": EventSpec(
        EventType.JOB_FAILED,
        read=P.JOBS_READ,
        link="/v1/jobs/{id}",
        id_field="job_id",
        fields=("name", "attempts"),
    ),
    # Written by the reminders (a daily job), one audit event per unit and reminder.
    "obligation.deadline_approaching": EventSpec(EventType.DEADLINE_APPROACHING, **_OBLIGATION),  # type: ignore[arg-type]
    "obligation.deadline_missed": EventSpec(EventType.DEADLINE_MISSED, **_OBLIGATION),  # type: ignore[arg-type]
    "webhook.disabled": EventSpec(
        EventType.WEBHOOK_DISABLED,
        read=P.WEBHOOKS_MANAGE,
        link="/v1/webhooks/{id}",
        id_field="subscription_id",
        fields=("owner",),
    ),
}
