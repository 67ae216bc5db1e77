"""Every route × every role × own unit / another unit, read from the application's route table.

A new route joins the matrix by itself; a route that declares no permission fails
`test_every_route_declares_a_permission` unless it is one of the few public ones.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from arq.connections import ArqRedis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from nscl_api.auth.tokens import KeyRing
from nscl_api.main import create_app
from nscl_api.problems import Problem
from nscl_api.routes import route_table
from nscl_domain.budget import dossiers, routing
from nscl_domain.budget import estimates as estimating
from nscl_domain.clock import utcnow
from nscl_domain.db import create_sessionmaker
from nscl_domain.documents import service as documents
from nscl_domain.identity import ROLE_PERMISSIONS, SYSTEM, Caller, Role, permissions_of
from nscl_domain.jobs.registry import JobContext
from nscl_domain.plans import changes
from nscl_domain.plans import service as plans
from nscl_domain.records import service as records
from nscl_domain.reports import obligations
from nscl_domain.reports import service as reports
from nscl_domain.rollups import service as rollups
from nscl_domain.settings import Settings
from nscl_domain.uow import UnitOfWork
from nscl_domain.workflow import Action
from tests.conftest import OTHER_UNIT, OWN_UNIT, REPORTING_TABLES, harness_clock, mint_token

# Public on purpose: liveness, readiness, metrics for the scraper, how to get a token.
PUBLIC = {
    ("GET", "/health"),
    ("GET", "/ready"),
    ("GET", "/metrics"),
    ("POST", "/v1/oauth/token"),
    ("GET", "/.well-known/jwks.json"),
}

_APP = create_app(Settings())
DOCUMENT = _APP.openapi()
ROUTES = sorted(
    (method, route.path, route.required_scopes or frozenset())
    for route in route_table(_APP)
    if route.is_api_route
    for method in route.methods
    if (method, route.path) not in PUBLIC
)
UNITS = {"own": OWN_UNIT, "other": OTHER_UNIT}
CELLS = [
    (method, path, scopes, role, side)
    for method, path, scopes in ROUTES
    for role in Role
    for side in UNITS
]
MATRIX_SIZE = len(CELLS) + len(ROUTES)  # and one anonymous cell per route


def success_status(method: str, path: str) -> int:
    statuses = DOCUMENT["paths"][path][method.lower()]["responses"]
    return min(int(s) for s in statuses if s.startswith("2"))


@dataclass(frozen=True)
class Samples:
    """Objects the routes' paths name, of the caller's own unit and of another unit."""

    job_id: str
    unit_id: dict[str, str]
    reporting_role: dict[str, str]
    report: dict[str, str]  # a submitted 2021 report per unit
    report_obligation: dict[str, str]  # the 2021 obligation each report answers
    open_obligation: dict[str, str]  # a 2022 obligation without a report, per unit
    estimate: dict[str, str]  # a submitted 2021 budget estimate per unit
    dossier: str  # a built 2021 dossier, addressed to Finance
    plan: dict[str, str]  # a submitted 2021–2025 plan per unit
    change_request: dict[str, str]  # a proposed change to an accepted 2021 plan per unit
    run_id: str  # the published 2021 rollup run
    webhook: str  # a subscription of another client ("test-all"): only operators manage it
    record: dict[str, str]  # a submitted 2021 programme record per unit

    def of_other_unit(self) -> dict[str, str]:
        """What the caller's unit must not learn from a refusal: the other unit and its objects."""
        return {
            "unit key": OTHER_UNIT,
            "unit id": self.unit_id[OTHER_UNIT],
            "reporting role": self.reporting_role[OTHER_UNIT],
            "report": self.report[OTHER_UNIT],
            "report's obligation": self.report_obligation[OTHER_UNIT],
            "open obligation": self.open_obligation[OTHER_UNIT],
            "estimate": self.estimate[OTHER_UNIT],
            "plan": self.plan[OTHER_UNIT],
            "change request": self.change_request[OTHER_UNIT],
            "record": self.record[OTHER_UNIT],
        }


# The members a problem may have; a representation's fields (a report's draft, its unit)
# are none of them.
PROBLEM_MEMBERS = set(Problem.model_fields)


def assert_refusal_reveals_nothing(response: httpx.Response, samples: Samples) -> None:
    """A 403 or 404 tells the caller nothing of the other unit beyond what it sent itself.

    ``instance`` echoes the request path, so it is left out of the search; the caller's own
    words may come back elsewhere too (a 404's detail names the id asked for, as it would
    for an id that does not exist), anything else of the other unit may not.
    """
    problem = response.json()
    assert set(problem) <= PROBLEM_MEMBERS, f"members beyond a problem's: {problem}"
    assert problem.get("instance") == response.request.url.path
    del problem["instance"]
    answered = json.dumps(problem, ensure_ascii=False)
    sent = str(response.request.url) + response.request.content.decode()
    for name, value in samples.of_other_unit().items():
        if value not in sent:
            assert value not in answered, f"the other unit's {name} {value} leaks: {problem}"


# Sample reports are submitted: these transitions conflict with that state, as they should.
CONFLICTS_WITH_SUBMITTED = {
    ("PUT", "/v1/reports/{report_id}/draft"),
    ("POST", "/v1/reports/{report_id}/submission"),
    ("POST", "/v1/reports/{report_id}/correction"),
    ("PUT", "/v1/budget-estimates/{estimate_id}/lines"),
    ("POST", "/v1/budget-estimates/{estimate_id}/submission"),
    ("PUT", "/v1/plans/{plan_id}/content"),
    ("POST", "/v1/plans/{plan_id}/submission"),
    ("POST", "/v1/plans/{plan_id}/change-requests"),  # changes are asked of accepted plans
    ("PUT", "/v1/records/{record_id}/content"),
    ("POST", "/v1/records/{record_id}/submission"),
    ("POST", "/v1/records/{record_id}/correction"),
}
# The sample dossier is a draft addressed to Finance: the callers' unit is not Finance.
CONFLICTS_WITH_DRAFT_DOSSIER = {("POST", "/v1/budget-dossiers/{dossier_id}/acknowledgement")}
# The sample job is pending: only failed and cancelled jobs are retried.
CONFLICTS_WITH_PENDING_JOB = {("POST", "/v1/jobs/{job_id}/retry")}
QUERIES = {
    "/v1/programmes/{programme}/timeliness": {"year": "2021"},
    "/v1/programmes/{programme}/budget-totals": {"budget_year": "2021"},
    "/v1/programmes/{programme}/budget-dossiers": {"budget_year": "2021"},
    "/v1/programmes/{programme}/budget-follow-up": {"budget_year": "2021"},
    "/v1/rollups/{programme}/{year}/provenance": {"indicator": "training-courses"},
    "/v1/programmes/{programme}/budget-routing": {"budget_year": "2021"},
}
UPLOAD = ("POST", "/v1/reports/{report_id}/indicator-values/import")
HISTORY_UPLOAD = ("POST", "/v1/programmes/{programme}/report-backfills/import")
UPLOADS = {UPLOAD, HISTORY_UPLOAD}
INTAKE = ("POST", "/v1/national-intake/{programme}/{year}")


def role_has(role: Role, scopes: frozenset[str]) -> bool:
    return scopes <= {p.value for p in ROLE_PERMISSIONS[role]}


def expected_status(method: str, path: str, scopes: frozenset[str], role: Role, side: str) -> int:
    """The one right answer of a cell."""
    granted = {p.value for p in ROLE_PERMISSIONS[role]}
    if not scopes <= granted:
        return 403
    if "{dossier_id}" in path and "budget.review" not in granted and "audit.read" not in granted:
        return 404  # addressed to Finance, not to the caller's unit
    if (method, path) in CONFLICTS_WITH_DRAFT_DOSSIER | CONFLICTS_WITH_PENDING_JOB:
        return 409
    if (method, path) == INTAKE:
        return 403  # only the unit that owns the provincial programme sends its figures
    if "{allocation_id}" in path:
        return 404  # the sample dossier allocates nothing yet
    if "{webhook_id}" in path and "webhooks.manage" not in granted:
        return 404  # another client's subscription
    unit_owned = (
        "{report_id}" in path
        or "{estimate_id}" in path
        or "{plan_id}" in path
        or "{request_id}" in path
        or "{record_id}" in path
        or (method, path) == ("POST", "/v1/reports")
    )
    # Writers act for their own unit only; readers see others only with read_all.
    writes = bool(scopes & {"reports.write", "budget.write", "plans.write"})
    if unit_owned and side == "other" and (writes or "reports.read_all" not in granted):
        return 404
    if (method, path) in CONFLICTS_WITH_SUBMITTED:
        return 409
    return success_status(method, path)


LINE = {
    "task": "t-3-1",
    "activity": "Hỗ trợ doanh nghiệp áp dụng ISO 9001",
    "amount": 150_000_000,
    "funding_source": "recurrent_science",
}


PLAN = {"activities": [{"task": "t-3-1", "title": "Hỗ trợ áp dụng ISO 9001"}]}


def inspection(unit: str) -> dict[str, Any]:
    """A programme record about ``unit`` (the record itself is the caller's unit's)."""
    return {
        "kind": "inspection",
        "inspected_unit": unit,
        "inspected_on": "2021-09-01",
        "findings": "Chưa có kế hoạch năm",
    }


def body_for(method: str, path: str, unit: str) -> dict[str, Any] | None:
    """A valid body for each writing route, about ``unit`` where the route takes one."""
    bodies: dict[tuple[str, str], dict[str, Any]] = {
        ("POST", "/v1/org-units"): {
            "key": f"matrix-{unit}",
            "kind": "office",
            "name_vi": "Phòng thử nghiệm",
            "name_en": "Test office",
            "parent": unit,
            "valid_from": "2021-01-01",
            "valid_to": "2025-03-01",
        },
        ("PATCH", "/v1/org-units/{unit}"): {"abbreviation": "MX"},
        ("POST", "/v1/org-units/{unit}/successions"): {
            "successor": "tn-ppc",
            "kind": "split_into",
            "effective": "2025-07-01",
        },
        ("POST", "/v1/programmes/{programme}/roles"): {
            "role": "cooperating_unit",
            "unit": unit,
            "valid_from": "2021-01-01",
            "valid_to": "2025-03-01",
        },
        ("PATCH", "/v1/programmes/{programme}/roles/{role_id}"): {"valid_to": "2025-06-30"},
        ("POST", "/v1/programmes/{programme}/task-extensions"): {
            "key": f"matrix-ext-{unit}",
            "title_vi": "Nhiệm vụ gia hạn",
            "title_en": "Extended task",
            "unit": unit,
            "decided_by": unit,
            "decision_no": "1/QĐ",
            "decision_date": "2021-02-01",
            "extended_to_year": 2022,
        },
        ("PUT", "/v1/programmes/{programme}/four-eyes"): {
            "required": True,
            "reason": "Hai người: một nộp, một duyệt",
        },
        ("POST", "/v1/jobs"): {"name": "jobs.prune"},
        ("POST", "/v1/jobs/{job_id}/cancellation"): None,
        ("POST", "/v1/jobs/{job_id}/retry"): None,
        ("POST", "/v1/rollups"): {"programme": "bac-kan-nscl", "year": 2021},
        INTAKE: {
            "run_id": str(uuid.UUID(int=7)),
            "seq": 1,
            "fingerprint": "ab" * 32,
            "computed_at": "2021-12-01T00:00:00Z",
            "cells": [],
        },
        ("POST", "/v1/schedules"): {
            "key": f"matrix-{unit}",
            "job_name": "jobs.prune",
            "cron": "0 3 * * *",
        },
        ("PATCH", "/v1/schedules/{schedule}"): {"enabled": False},
        ("POST", "/v1/schedules/{schedule}/runs"): None,
        ("POST", "/v1/programmes/{programme}/annual-reports"): {"year": 2021},
        ("POST", "/v1/programmes/{programme}/reviews"): {"phase": "bk-2021-2025"},
        ("PATCH", "/v1/programmes/{programme}/reporting-regimes/{key}"): {
            "due_month": 11,
            "due_day": 30,
        },
        ("PATCH", "/v1/validation-rules/{code}"): {"params": {"factor": 4}},
        ("POST", "/v1/programmes/{programme}/obligations/generation"): {
            "year": 2023,
            "regime": "bk-annual",
        },
        ("POST", "/v1/programmes/{programme}/reporting-requests"): {
            "title_vi": "Báo cáo đột xuất",
            "title_en": "Ad hoc report",
            "year": 2024,
            "due_date": "2024-12-15",
            "units": [unit],
            "indicators": ["training-courses"],
            "questions": ["Khó khăn?"],
        },
        ("PUT", "/v1/reports/{report_id}/draft"): {},
        ("POST", "/v1/reports"): {},  # the call names the open obligation of the unit
        ("POST", "/v1/reports/{report_id}/submission"): None,
        ("POST", "/v1/reports/{report_id}/return"): {"reason": "Thiếu số liệu"},
        ("POST", "/v1/reports/{report_id}/acceptance"): None,
        ("POST", "/v1/reports/{report_id}/correction"): {"reason": "Sửa số liệu"},
        ("POST", "/v1/programmes/{programme}/budget-estimates"): {"budget_year": 2022},
        ("PUT", "/v1/budget-estimates/{estimate_id}/lines"): {"lines": [LINE]},
        ("POST", "/v1/budget-estimates/{estimate_id}/submission"): None,
        ("POST", "/v1/budget-estimates/{estimate_id}/acceptance"): None,
        ("POST", "/v1/budget-estimates/{estimate_id}/return"): {"reason": "Thiếu thuyết minh"},
        ("POST", "/v1/programmes/{programme}/budget-dossiers/builds"): {"budget_year": 2021},
        ("POST", "/v1/budget-dossiers/{dossier_id}/sending"): None,
        ("POST", "/v1/budget-dossiers/{dossier_id}/acknowledgement"): {"allocations": {}},
        ("POST", "/v1/programmes/{programme}/plans"): {"kind": "annual", "start_year": 2022},
        ("PUT", "/v1/plans/{plan_id}/content"): {"content": PLAN},
        ("POST", "/v1/plans/{plan_id}/submission"): None,
        ("POST", "/v1/plans/{plan_id}/acceptance"): None,
        ("POST", "/v1/plans/{plan_id}/return"): {"reason": "Bổ sung hoạt động"},
        ("POST", "/v1/plans/{plan_id}/change-requests"): {"reason": "Điều chỉnh", "content": PLAN},
        ("POST", "/v1/plan-change-requests/{request_id}/decision"): {
            "decision": "approve",
            "note": "Đồng ý",
        },
        ("POST", "/v1/plan-change-requests/{request_id}/withdrawal"): None,
        # Loopback is allowed in the tests' settings; nothing listens there (the ping fails).
        ("POST", "/v1/webhooks"): {
            "url": "http://127.0.0.1:9/matrix",
            "event_types": ["rollup.published"],
        },
        ("POST", "/v1/webhooks/{webhook_id}/secret-rotation"): {"overlap_hours": 1},
        ("POST", "/v1/webhooks/{webhook_id}/enablement"): None,
        ("POST", "/v1/webhooks/{webhook_id}/replay"): {
            "since": "2021-01-01T00:00:00Z",
            "until": "2021-01-02T00:00:00Z",
        },
        ("POST", "/v1/programmes/{programme}/records"): {"content": inspection(unit)},
        ("PUT", "/v1/records/{record_id}/content"): {"content": inspection(unit)},
        ("POST", "/v1/records/{record_id}/submission"): None,
        ("POST", "/v1/records/{record_id}/acceptance"): None,
        ("POST", "/v1/records/{record_id}/return"): {"reason": "Thiếu kiến nghị"},
        ("POST", "/v1/records/{record_id}/correction"): {"reason": "Cập nhật khắc phục"},
        ("POST", "/v1/budget-allocations/{allocation_id}/spending"): {
            "amount": 1000,
            "spent_on": "2021-05-01",
        },
        ("POST", "/v1/programmes/{programme}/report-backfills"): {
            "unit": unit,
            "year": 2023,
            "letter": {"number": "1/BC", "date": "2023-11-25"},
            "received_on": "2023-11-28",
        },
        ("POST", "/v1/programmes/{programme}/baselines"): {
            "figures": [
                {
                    "indicator": "iso-9001-certificates",
                    "period": "bp-2011-2020",
                    "unit": unit,
                    "value": "3",
                    "source_document": "Báo cáo số 1/BC",
                    "source_date": "2021-01-15",
                }
            ]
        },
    }
    if (method, path) in bodies:
        return bodies[(method, path)]
    if method in {"POST", "PATCH", "PUT"} and (method, path) not in UPLOADS:
        raise KeyError(f"the access matrix needs a body for {method} {path}")
    return None


def url_for(path: str, unit: str, samples: Samples) -> str:
    return path.format(
        unit=unit,
        programme="bac-kan-nscl",
        job_id=samples.job_id,
        role_id=samples.reporting_role[unit],
        report_id=samples.report[unit],
        estimate_id=samples.estimate[unit],
        plan_id=samples.plan[unit],
        request_id=samples.change_request[unit],
        record_id=samples.record[unit],
        dossier_id=samples.dossier,
        allocation_id=uuid.UUID(int=1),
        version_no=1,
        key="bk-annual",
        phase="bk-2021-2025",
        code="yearly_jump",
        year=2021,
        budget_year=2021,
        run_id=samples.run_id,
        webhook_id=samples.webhook,
        schedule="nightly-jobs-prune",
    )


@pytest.fixture(scope="module")
async def samples(
    engine: AsyncEngine, owner_engine: AsyncEngine, settings: Settings, redis: ArqRedis
) -> AsyncIterator[Samples]:
    """Committed once for the module (the cells roll their own changes back): a job, and per
    unit a submitted 2021 report, a 2022 obligation without a report, a 2021 rollup."""
    sessionmaker = create_sessionmaker(engine)

    def uow() -> UnitOfWork:
        # The sample units are Bắc Kạn's: they act in the harness's 2024 season.
        return UnitOfWork(sessionmaker, clock=harness_clock)

    job_uow = uow()
    async with job_uow:
        job = await job_uow.schedule("jobs.prune", {"older_than_days": 30})
        await job_uow.commit()
    for year in (2021, 2022):
        await obligations.generate_obligations(
            uow(), SYSTEM, "bac-kan-nscl", year=year, regime_key="bk-annual"
        )
    unit_ids, roles, submitted, answered, open_obligations = {}, {}, {}, {}, {}
    for unit in UNITS.values():
        async with sessionmaker() as session:
            roles[unit] = str(
                await session.scalar(
                    text(
                        "SELECT r.id FROM programme_role r JOIN org_unit u ON u.id = r.unit_id "
                        "JOIN programme p ON p.id = r.programme_id WHERE u.key = :unit "
                        "AND r.role = 'reporting_unit' AND p.key = 'bac-kan-nscl'"
                    ),
                    {"unit": unit},
                )
            )
        reporter = await reporter_of(sessionmaker, unit)
        unit_ids[unit] = str(reporter.unit_id)
        by_year = {
            o.obligation.year: o.obligation
            for o in await obligations.list_obligations(
                uow(), reporter, "bac-kan-nscl", year=None, regime="bk-annual",
                request_id=None, offset=0, limit=100,
            )
        }  # fmt: skip
        report, _ = await reports.create_report(uow(), reporter, by_year[2021].id)
        await reports.submit(uow(), reporter, report.id, expected_revision=1)
        submitted[unit] = str(report.id)
        answered[unit] = str(by_year[2021].id)
        open_obligations[unit] = str(by_year[2022].id)
    estimates = {}
    for unit in [*UNITS.values(), "bk-ba-be"]:
        reporter = await reporter_of(sessionmaker, unit)
        view = await estimating.create_estimate(uow(), reporter, "bac-kan-nscl", budget_year=2021)
        lined = await estimating.replace_lines(
            uow(), reporter, view.estimate.id, [LINE], expected_revision=1
        )
        await routing.submit_estimate(uow(), reporter, lined.estimate.id, expected_revision=2)
        estimates[unit] = str(view.estimate.id)
    await estimating.review_estimate(
        uow(), SYSTEM, uuid.UUID(estimates["bk-ba-be"]), Action.ACCEPT, expected_revision=3
    )
    submitted_plans, change_requests = {}, {}
    for unit in UNITS.values():
        reporter = await reporter_of(sessionmaker, unit)
        for kind, year in (("five_year", 2021), ("annual", 2021)):
            plan = (
                await plans.create_plan(uow(), reporter, "bac-kan-nscl", kind=kind, start_year=year)
            ).plan
            await plans.write_content(uow(), reporter, plan.id, PLAN, expected_revision=1)
            await plans.submit_plan(uow(), reporter, plan.id, expected_revision=2)
            if kind == "five_year":
                submitted_plans[unit] = str(plan.id)
                continue
            await plans.review_plan(uow(), SYSTEM, plan.id, Action.ACCEPT, expected_revision=3)
            request = await changes.propose_change(
                uow(), reporter, plan.id, reason="Điều chỉnh", raw=PLAN
            )
            change_requests[unit] = str(request.id)
    filed_records = {}
    for unit in UNITS.values():
        reporter = await reporter_of(sessionmaker, unit)
        view = await records.create_record(uow(), reporter, "bac-kan-nscl", inspection(unit))
        await records.submit(uow(), reporter, view.record.id, expected_revision=1)
        filed_records[unit] = str(view.record.id)
    async with sessionmaker() as session:
        programme_id = await session.scalar(
            text("SELECT id FROM programme WHERE key = 'bac-kan-nscl'")
        )
        built = await dossiers.build_dossiers(
            JobContext(session=session, job_id=uuid.uuid4(), attempt=1, now=utcnow()),
            dossiers.BuildDossiersArgs(programme_id=programme_id, budget_year=2021),
        )
        await session.commit()
    async with sessionmaker() as session:
        refreshed = await rollups.refresh(
            JobContext(session=session, job_id=uuid.uuid4(), attempt=1, now=utcnow()),
            rollups.RefreshRollupArgs(programme_id=programme_id, year=2021),
        )
        await session.commit()
    async with sessionmaker() as session:
        webhook = await session.scalar(
            text(
                "INSERT INTO webhook_subscription (id, owner_client_id, url, event_types, "
                "secret, created_by) VALUES (gen_random_uuid(), 'test-all', "
                "'https://portal.example/hook', ARRAY['rollup.published'], "
                "'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', 'test-all') RETURNING id"
            )
        )
        await session.commit()
    # The documents routes read the 2021 report and the 2021–2025 review.
    for kind, period in (("annual_report", "2021"), ("mid_term_review", "bk-2021-2025")):
        async with sessionmaker() as session:
            await documents.build(
                JobContext(session=session, job_id=uuid.uuid4(), attempt=1, now=utcnow()),
                documents.BuildDocumentArgs(programme_id=programme_id, kind=kind, period=period),
            )
            await session.commit()
    yield Samples(
        job_id=str(job.id),
        unit_id=unit_ids,
        reporting_role=roles,
        report=submitted,
        report_obligation=answered,
        open_obligation=open_obligations,
        estimate=estimates,
        dossier=built["built"][0],
        plan=submitted_plans,
        change_request=change_requests,
        run_id=refreshed["run_id"],
        webhook=str(webhook),
        record=filed_records,
    )
    async with owner_engine.begin() as conn:
        await conn.execute(text(f"TRUNCATE {', '.join(REPORTING_TABLES)} CASCADE"))


async def reporter_of(sessionmaker: async_sessionmaker[AsyncSession], unit_key: str) -> Caller:
    """A reporter of ``unit_key``, as the domain sees one."""
    async with sessionmaker() as session:
        found = await session.scalar(
            text("SELECT id FROM org_unit WHERE key = :key"), {"key": unit_key}
        )
    roles = frozenset({Role.REPORTER})
    return Caller("matrix-reporter", found, unit_key, roles, permissions_of(roles))


async def call(
    http: httpx.AsyncClient, method: str, path: str, unit: str, samples: Samples, token: str | None
) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    # The samples' revisions once submitted: a report's or a record's second, an
    # estimate's third.
    headers["If-Match"] = '"2"' if "{report_id}" in path or "{record_id}" in path else '"3"'
    if (method, path) == UPLOAD:
        headers["Content-Type"] = "text/csv"
        return await http.request(
            method, url_for(path, unit, samples), content=b"indicator,value\ntraining-courses,3\n",
            headers=headers,
        )  # fmt: skip
    if (method, path) == HISTORY_UPLOAD:
        headers["Content-Type"] = "text/csv"
        history = (
            "unit,year,letter_number,letter_date,received_on,record\n"
            f"{unit},2023,1/BC,2023-11-25,2023-11-28,letter\n"
        )
        return await http.request(
            method, url_for(path, unit, samples), content=history.encode(), headers=headers
        )
    body = body_for(method, path, unit)
    if (method, path) == ("POST", "/v1/reports"):
        body = {"obligation_id": samples.open_obligation[unit]}
    return await http.request(
        method, url_for(path, unit, samples), json=body, headers=headers,
        params=QUERIES.get(path),
    )  # fmt: skip


def test_every_route_declares_a_permission() -> None:
    undeclared = [
        (method, route.path)
        for route in route_table(_APP)
        if route.is_api_route
        for method in route.methods
        if (method, route.path) not in PUBLIC and not route.required_scopes
    ]
    assert undeclared == [], "routes without a declared permission (deny by default)"
    assert len(ROUTES) >= 20


@pytest.mark.parametrize(
    ("method", "path", "scopes", "role", "side"),
    CELLS,
    ids=[f"{m} {p} {r.value} {s}" for m, p, _, r, s in CELLS],
)
async def test_cell(
    anonymous: httpx.AsyncClient,
    keys: KeyRing,
    samples: Samples,
    method: str,
    path: str,
    scopes: frozenset[str],
    role: Role,
    side: str,
) -> None:
    # The caller acts for OWN_UNIT; the path and body name its own objects or another unit's.
    token = mint_token(keys, f"test-{role.value}")
    unit = OWN_UNIT if side == "own" else OTHER_UNIT
    response = await call(anonymous, method, path, unit, samples, token)
    expected = expected_status(method, path, scopes, role, side)
    assert response.status_code == expected, response.text
    if expected == 403:
        wanted = "forbidden" if (method, path) == INTAKE and role_has(role, scopes) else None
        assert response.json()["code"] == (wanted or "insufficient_scope")
    if expected in {403, 404}:
        assert_refusal_reveals_nothing(response, samples)


@pytest.mark.parametrize(
    ("method", "path", "scopes"), ROUTES, ids=[f"{m} {p}" for m, p, _ in ROUTES]
)
async def test_anonymous_cell(
    anonymous: httpx.AsyncClient, samples: Samples, method: str, path: str, scopes: frozenset[str]
) -> None:
    response = await call(anonymous, method, path, OWN_UNIT, samples, None)
    assert response.status_code == 401
    assert response.json()["code"] == "missing_token"
