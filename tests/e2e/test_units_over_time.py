"""Units act only while they exist, and file only for periods they exist in; a client never
decides on what it submitted itself (four eyes).

Na Rì district and the Bắc Kạn departments ended on 2025-07-01 (the district level was
abolished and Bắc Kạn merged into Thái Nguyên); their successors file from then on.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from nscl_api.auth.tokens import KeyRing
from nscl_api.resources import Resources
from nscl_domain.identity import SYSTEM, Role, permissions_of
from nscl_domain.identity import service as identity
from nscl_domain.identity.service import Grant
from tests.api.test_problems import assert_problem
from tests.e2e.test_reporting_year import content_for as content_of_2024

BK = "/v1/programmes/bac-kan-nscl"
NA_RI = {"key": "bk-na-ri", "valid_from": "1997-01-01", "valid_to": "2025-07-01"}


class Clock:
    """The day the service believes it is; the test moves it."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def set(self, year: int, month: int, day: int) -> None:
        self.now = datetime(year, month, day, 3, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


class Office:
    """Clients of named units with named roles, and the HTTP client they share."""

    def __init__(self, http: httpx.AsyncClient, resources: Resources, keys: KeyRing) -> None:
        self.http = http
        self.resources = resources
        self.keys = keys
        self.clock = Clock(datetime(2026, 3, 2, 3, 0, tzinfo=UTC))
        resources.clock = self.clock
        self.headers: dict[str, dict[str, str]] = {}

    async def client(self, client_id: str, unit: str, *roles: Role) -> dict[str, str]:
        if client_id not in self.headers:
            await identity.create_client(
                self.resources.new_uow(),
                SYSTEM,
                client_id=client_id,
                name=client_id,
                unit=unit,
                roles=[r.value for r in roles],
            )
            grant = Grant(client_id, unit, frozenset(roles), permissions_of(frozenset(roles)))
            token = self.keys.issue(grant, now=datetime.now(UTC), ttl_seconds=900).access_token
            self.headers[client_id] = {"Authorization": f"Bearer {token}"}
        return self.headers[client_id]

    async def reporter(self, unit: str) -> dict[str, str]:
        return await self.client(f"reporter-{unit}", unit, Role.REPORTER)

    async def reviewer(self, unit: str) -> dict[str, str]:
        return await self.client(f"reviewer-{unit}", unit, Role.REVIEWER)

    async def post(
        self, url: str, who: dict[str, str], etag: str | None = None, **kw: Any
    ) -> httpx.Response:
        headers = {**who, **({"If-Match": etag} if etag else {})}
        return await self.http.post(url, headers=headers, **kw)

    async def put(self, url: str, who: dict[str, str], etag: str, **kw: Any) -> httpx.Response:
        return await self.http.put(url, headers={**who, "If-Match": etag}, **kw)

    async def report_of(self, year: int, unit: str, manager: dict[str, str]) -> str:
        """The id of the unit's obligation for the year's annual report."""
        await self.post(
            f"{BK}/obligations/generation", manager, json={"year": year, "regime": "bk-annual"}
        )
        listed = await self.http.get(f"{BK}/obligations?year={year}&limit=100", headers=manager)
        return next(o["id"] for o in listed.json()["items"] if o["unit"] == unit)

    async def filed_report(
        self, year: int, unit: str, reporter: dict[str, str], manager: dict[str, str]
    ) -> httpx.Response:
        """The unit's report of the year, written and submitted by ``reporter``."""
        obligation = await self.report_of(year, unit, manager)
        created = await self.post("/v1/reports", reporter, json={"obligation_id": obligation})
        assert created.status_code == 201, created.text
        url = f"/v1/reports/{created.json()['id']}"
        written = await self.put(
            f"{url}/draft", reporter, created.headers["etag"], json=content_for(unit, year)
        )
        assert written.status_code == 200, written.text
        submitted = await self.post(f"{url}/submission", reporter, written.headers["etag"])
        assert submitted.status_code == 200, submitted.text
        return submitted


@pytest.fixture
async def office(anonymous: httpx.AsyncClient, resources: Resources, keys: KeyRing) -> Office:
    return Office(anonymous, resources, keys)


def content_for(unit: str, year: int = 2025) -> dict[str, Any]:
    content = content_of_2024(unit)
    content["enterprises"][0]["certified_on"] = f"{year}-06-15"
    return content


def estimate_lines() -> dict[str, Any]:
    return {
        "lines": [
            {
                "task": "t-2-1",
                "activity": "Truyền thông năng suất",
                "amount": 35_000_000,
                "funding_source": "recurrent_sector",
            }
        ]
    }


def plan_content(year: int) -> dict[str, Any]:
    return {
        "content": {
            "summary": "Kế hoạch năm",
            "activities": [
                {
                    "task": "t-3-1",
                    "title": "Hỗ trợ doanh nghiệp áp dụng ISO 9001",
                    "planned_outputs": [
                        {"indicator": "enterprises-supported", "year": year, "value": "2"}
                    ],
                }
            ],
        }
    }


def assert_names_period(body: dict[str, Any], unit: dict[str, str], successors: list[str]) -> None:
    assert body["unit_period"] == {**unit, "successors": successors}
    assert unit["valid_to"] in str(body["detail"])
    for successor in successors:
        assert successor in str(body["detail"])


class TestPeriodsAUnitFilesFor:
    """Before its end (early 2025) Na Rì still acts, but only for periods it exists in."""

    async def test_na_ri_cannot_open_a_2026_estimate_or_a_2026_2030_plan(
        self, office: Office
    ) -> None:
        office.clock.set(2025, 3, 15)
        na_ri = await office.reporter("bk-na-ri")

        estimate = await office.post(f"{BK}/budget-estimates", na_ri, json={"budget_year": 2026})
        plan = await office.post(
            f"{BK}/plans", na_ri, json={"kind": "five_year", "start_year": 2026}
        )
        annual = await office.post(
            f"{BK}/plans", na_ri, json={"kind": "annual", "start_year": 2026}
        )

        for answer, field in (
            (estimate, "budget_year"),
            (plan, "start_year"),
            (annual, "start_year"),
        ):
            body = assert_problem(answer, 422, "unit_not_in_period")
            assert_names_period(body, NA_RI, ["tn-ppc"])
            assert body["errors"][0]["location"] == ["body", field]

    async def test_na_ri_files_for_2025_which_it_entered(self, office: Office) -> None:
        office.clock.set(2025, 3, 15)
        na_ri = await office.reporter("bk-na-ri")
        estimate = await office.post(f"{BK}/budget-estimates", na_ri, json={"budget_year": 2025})
        plan = await office.post(f"{BK}/plans", na_ri, json={"kind": "annual", "start_year": 2025})
        assert estimate.status_code == 201, estimate.text
        assert plan.status_code == 201, plan.text

    async def test_bk_dost_cannot_open_2026_estimates_and_its_successor_can(
        self, office: Office
    ) -> None:
        office.clock.set(2025, 5, 2)
        bk_dost = await office.reporter("bk-dost")
        refused = await office.post(f"{BK}/budget-estimates", bk_dost, json={"budget_year": 2026})
        body = assert_problem(refused, 422, "unit_not_in_period")
        assert body["unit_period"]["key"] == "bk-dost"
        assert body["unit_period"]["successors"] == ["tn-dost"]

        office.clock.set(2025, 8, 1)
        tn_dost = await office.reporter("tn-dost")
        opened = await office.post(f"{BK}/budget-estimates", tn_dost, json={"budget_year": 2026})
        assert opened.status_code == 201, opened.text

    async def test_a_successor_cannot_file_for_a_year_it_did_not_exist_in(
        self, office: Office
    ) -> None:
        tn_doh = await office.reporter("tn-doh")
        refused = await office.post(f"{BK}/budget-estimates", tn_doh, json={"budget_year": 2025})
        body = assert_problem(refused, 422, "unit_not_in_period")
        assert body["unit_period"]["valid_from"] == "2025-07-01"
        assert "had not begun" in str(body["detail"])


class TestClientsOfEndedUnits:
    """From 2025-07-01 the Bắc Kạn units' clients open nothing new and review nothing."""

    async def test_na_ri_opens_nothing_after_its_end_and_is_told_its_successor(
        self, office: Office
    ) -> None:
        na_ri = await office.reporter("bk-na-ri")
        for url, body in (
            (f"{BK}/budget-estimates", {"budget_year": 2026}),
            (f"{BK}/plans", {"kind": "five_year", "start_year": 2026}),
            (f"{BK}/budget-estimates", {"budget_year": 2025}),
        ):
            refused = assert_problem(
                await office.post(url, na_ri, json=body), 403, "unit_not_acting"
            )
            assert_names_period(refused, NA_RI, ["tn-ppc"])

    async def test_a_reviewer_of_the_dissolved_dost_cannot_accept_a_2025_report(
        self, office: Office
    ) -> None:
        office.clock.set(2025, 11, 20)
        manager = await office.reviewer("tn-dost")
        submitted = await office.filed_report(
            2025, "tn-doh", await office.reporter("tn-doh"), manager
        )
        url = f"/v1/reports/{submitted.json()['id']}"
        bk_reviewer = await office.reviewer("bk-dost")

        for action in ("acceptance", "return"):
            refused = await office.post(
                f"{url}/{action}", bk_reviewer, submitted.headers["etag"],
                **({"json": {"reason": "Thiếu số liệu"}} if action == "return" else {}),
            )  # fmt: skip
            body = assert_problem(refused, 403, "reviewer_unit_not_acting")
            assert body["unit_period"]["key"] == "bk-dost"
            assert body["unit_period"]["valid_to"] == "2025-07-01"
            assert body["unit_period"]["successors"] == ["tn-dost"]

        accepted = await office.post(f"{url}/acceptance", manager, submitted.headers["etag"])
        assert accepted.status_code == 200, accepted.text
        assert accepted.json()["status"] == "accepted"

    async def test_na_ri_still_corrects_its_own_2024_report_after_its_end(
        self, office: Office
    ) -> None:
        office.clock.set(2024, 11, 20)
        na_ri = await office.reporter("bk-na-ri")
        bk_dost = await office.reviewer("bk-dost")
        submitted = await office.filed_report(2024, "bk-na-ri", na_ri, bk_dost)
        url = f"/v1/reports/{submitted.json()['id']}"
        accepted = await office.post(f"{url}/acceptance", bk_dost, submitted.headers["etag"])
        assert accepted.status_code == 200, accepted.text

        office.clock.set(2026, 2, 10)
        reopened = await office.post(
            f"{url}/correction", na_ri, accepted.headers["etag"],
            json={"reason": "Sửa số doanh nghiệp được hỗ trợ"},
        )  # fmt: skip
        assert reopened.status_code == 200, reopened.text
        content = content_for("bk-na-ri", 2024)
        content["narrative"]["results"] = "Đã sửa số liệu"
        written = await office.put(f"{url}/draft", na_ri, reopened.headers["etag"], json=content)
        assert written.status_code == 200, written.text
        resubmitted = await office.post(f"{url}/submission", na_ri, written.headers["etag"])
        assert resubmitted.status_code == 200, resubmitted.text
        assert resubmitted.json()["latest_version_no"] == 2

        # The dissolved DOST's reviewer no longer decides; its successor does.
        refused = await office.post(f"{url}/acceptance", bk_dost, resubmitted.headers["etag"])
        assert_problem(refused, 403, "reviewer_unit_not_acting")
        tn_dost = await office.reviewer("tn-dost")
        final = await office.post(f"{url}/acceptance", tn_dost, resubmitted.headers["etag"])
        assert final.status_code == 200, final.text
        assert final.json()["accepted_version_no"] == 2

    async def test_open_work_passes_to_the_successor_with_its_history(
        self, office: Office, db_connection: AsyncConnection
    ) -> None:
        office.clock.set(2024, 12, 10)
        na_ri = await office.reporter("bk-na-ri")
        opened = await office.post(f"{BK}/budget-estimates", na_ri, json={"budget_year": 2025})
        assert opened.status_code == 201, opened.text
        url = f"/v1/budget-estimates/{opened.json()['id']}"

        office.clock.set(2025, 8, 4)
        # Never filed: the ended unit's client may not finish it …
        refused = await office.put(
            f"{url}/lines", na_ri, opened.headers["etag"], json=estimate_lines()
        )
        assert_names_period(assert_problem(refused, 403, "unit_not_acting"), NA_RI, ["tn-ppc"])
        # … its successor sees it and continues it; it stays Na Rì's estimate.
        tn_ppc = await office.reporter("tn-ppc")
        seen = await office.http.get(url, headers=tn_ppc)
        assert seen.status_code == 200, seen.text
        lined = await office.put(
            f"{url}/lines", tn_ppc, seen.headers["etag"], json=estimate_lines()
        )
        assert lined.status_code == 200, lined.text
        submitted = await office.post(f"{url}/submission", tn_ppc, lined.headers["etag"])
        assert submitted.status_code == 200, submitted.text
        assert submitted.json()["unit"] == "bk-na-ri"
        # Another unit's client still does not see it.
        other = await office.reporter("tn-doh")
        assert (await office.http.get(url, headers=other)).status_code == 404

        trail = (
            await db_connection.execute(
                text(
                    "SELECT client_id, action FROM audit_event WHERE object_id = :id "
                    "ORDER BY occurred_at, id"
                ),
                {"id": opened.json()["id"]},
            )
        ).all()
        assert [tuple(row) for row in trail] == [
            ("reporter-bk-na-ri", "estimate.created"),
            ("reporter-tn-ppc", "estimate.lines_replaced"),
            ("reporter-tn-ppc", "estimate.submitted"),
        ]

    async def test_a_successor_lists_its_predecessors_plans_and_finishes_an_open_one(
        self, office: Office
    ) -> None:
        office.clock.set(2024, 12, 10)
        na_ri = await office.reporter("bk-na-ri")
        opened = await office.post(
            f"{BK}/plans", na_ri, json={"kind": "annual", "start_year": 2025}
        )
        assert opened.status_code == 201, opened.text

        office.clock.set(2025, 8, 4)
        tn_ppc, tn_doh = await office.reporter("tn-ppc"), await office.reporter("tn-doh")
        listed = await office.http.get(f"{BK}/plans?year=2025", headers=tn_ppc)
        assert [(p["id"], p["unit"]) for p in listed.json()["items"]] == [
            (opened.json()["id"], "bk-na-ri")
        ]
        others = await office.http.get(f"{BK}/plans?year=2025", headers=tn_doh)
        assert others.json()["items"] == []
        url = f"/v1/plans/{opened.json()['id']}"
        written = await office.put(
            f"{url}/content", tn_ppc, opened.headers["etag"], json=plan_content(2025)
        )
        assert written.status_code == 200, written.text
        submitted = await office.post(f"{url}/submission", tn_ppc, written.headers["etag"])
        assert submitted.status_code == 200, submitted.text
        versions = await office.http.get(f"{url}/versions", headers=tn_ppc)
        assert [v["created_by"] for v in versions.json()["items"]] == ["reporter-tn-ppc"]


class TestFourEyes:
    """A client holding reporter and reviewer roles never decides on its own submission."""

    @pytest.fixture
    async def both(self, office: Office) -> dict[str, str]:
        office.clock.set(2025, 11, 20)
        return await office.client("both-tn-doh", "tn-doh", Role.REPORTER, Role.REVIEWER)

    async def refused_then_decided(
        self, office: Office, url: str, both: dict[str, str], etag: str
    ) -> httpx.Response:
        for action, body in (("return", {"reason": "Tự trả lại"}), ("acceptance", None)):
            refused = await office.post(f"{url}/{action}", both, etag, json=body)
            assert "both-tn-doh" in str(assert_problem(refused, 403, "four_eyes")["detail"])
        other = await office.reviewer("tn-dost")
        accepted = await office.post(f"{url}/acceptance", other, etag)
        assert accepted.status_code == 200, accepted.text
        assert accepted.json()["status"] == "accepted"
        return accepted

    async def test_a_report(self, office: Office, both: dict[str, str]) -> None:
        submitted = await office.filed_report(2025, "tn-doh", both, both)
        url = f"/v1/reports/{submitted.json()['id']}"
        assert submitted.json()["submitted_by"] == "both-tn-doh"
        await self.refused_then_decided(office, url, both, submitted.headers["etag"])

    async def test_an_estimate(self, office: Office, both: dict[str, str]) -> None:
        opened = await office.post(f"{BK}/budget-estimates", both, json={"budget_year": 2026})
        url = f"/v1/budget-estimates/{opened.json()['id']}"
        lined = await office.put(
            f"{url}/lines", both, opened.headers["etag"], json=estimate_lines()
        )
        submitted = await office.post(f"{url}/submission", both, lined.headers["etag"])
        assert submitted.status_code == 200, submitted.text
        assert submitted.json()["submitted_by"] == "both-tn-doh"
        await self.refused_then_decided(office, url, both, submitted.headers["etag"])

    async def test_a_plan_and_its_change_request(
        self, office: Office, both: dict[str, str]
    ) -> None:
        opened = await office.post(f"{BK}/plans", both, json={"kind": "annual", "start_year": 2026})
        assert opened.status_code == 201, opened.text
        url = f"/v1/plans/{opened.json()['id']}"
        written = await office.put(
            f"{url}/content", both, opened.headers["etag"], json=plan_content(2026)
        )
        submitted = await office.post(f"{url}/submission", both, written.headers["etag"])
        assert submitted.status_code == 200, submitted.text
        await self.refused_then_decided(office, url, both, submitted.headers["etag"])

        proposed = await office.post(
            f"{url}/change-requests", both,
            json={"reason": "Điều chỉnh theo thực tế", **plan_content(2026)},
        )  # fmt: skip
        assert proposed.status_code == 201, proposed.text
        decision = f"/v1/plan-change-requests/{proposed.json()['id']}/decision"
        for verdict in ("approve", "reject"):
            refused = await office.post(
                decision, both, json={"decision": verdict, "note": "Tự duyệt"}
            )
            assert_problem(refused, 403, "four_eyes")
        other = await office.reviewer("tn-dost")
        approved = await office.post(
            decision, other, json={"decision": "approve", "note": "Đồng ý"}
        )
        assert approved.status_code == 200, approved.text

    async def test_an_administrator_may_waive_it_and_both_are_audited(
        self, office: Office, both: dict[str, str], db_connection: AsyncConnection
    ) -> None:
        admin = await office.client("admin-tn-dost", "tn-dost", Role.ADMIN)
        waived = await office.http.put(
            f"{BK}/four-eyes",
            json={"required": False, "reason": "Một cán bộ phụ trách chương trình"},
            headers=admin,
        )
        assert waived.status_code == 200, waived.text
        assert waived.json()["four_eyes"] is False
        reviewer = await office.reviewer("tn-doh")
        refused = await office.http.put(
            f"{BK}/four-eyes", json={"required": False, "reason": "Tự bỏ"}, headers=reviewer
        )
        assert_problem(refused, 403, "insufficient_scope")

        opened = await office.post(f"{BK}/budget-estimates", both, json={"budget_year": 2026})
        url = f"/v1/budget-estimates/{opened.json()['id']}"
        lined = await office.put(
            f"{url}/lines", both, opened.headers["etag"], json=estimate_lines()
        )
        submitted = await office.post(f"{url}/submission", both, lined.headers["etag"])
        accepted = await office.post(f"{url}/acceptance", both, submitted.headers["etag"])
        assert accepted.status_code == 200, accepted.text

        events = dict(
            tuple(row)
            for row in (
                await db_connection.execute(
                    text(
                        "SELECT action, after FROM audit_event "
                        "WHERE action IN ('programme.four_eyes_set', 'estimate.accepted')"
                    )
                )
            ).all()
        )
        assert events["programme.four_eyes_set"] == {
            "four_eyes": False,
            "reason": "Một cán bộ phụ trách chương trình",
        }
        assert events["estimate.accepted"]["four_eyes_waived"] is True
