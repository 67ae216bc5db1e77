"""Budget estimates over HTTP: every reporting unit files for 2024 and 2026; recurrent lines
reach Finance and investment lines Planning and Investment in 2024, both reach Finance in
2026; the 2024 dossiers do not change when the routing does; every total is its lines' sum."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from nscl_api.auth.tokens import KeyRing
from nscl_api.resources import Resources
from nscl_domain.composition.registry import DEFAULT_REGISTRY
from nscl_domain.identity import SYSTEM, Role, permissions_of
from nscl_domain.identity import service as identity
from nscl_domain.identity.service import Grant
from nscl_domain.jobs import service as jobs
from tests.api.test_problems import assert_problem

BK = "/v1/programmes/bac-kan-nscl"
UNITS_2024 = [
    "bk-doit",
    "bk-dard",
    "bk-doh",
    "bk-doc",
    "bk-dot",
    "bk-dic",
    "bk-bac-kan-city",
    "bk-ba-be",
    "bk-bach-thong",
    "bk-cho-don",
    "bk-cho-moi",
    "bk-na-ri",
    "bk-ngan-son",
    "bk-pac-nam",
]
UNITS_2026 = ["tn-doit", "tn-dae", "tn-doh", "tn-doc", "tn-dost"]


def lines_for(index: int, year: int) -> list[dict[str, Any]]:
    """Deterministic lines of all three kinds of source, amounts in whole đồng."""
    loai_khoan = "100-103" if year <= 2025 else "100-104"
    return [
        {
            "task": "t-3-1",
            "activity": "Hỗ trợ áp dụng ISO 9001",
            "amount": 120_000_000 + index,
            "funding_source": "recurrent_science",
            "chapter": "417",
            "loai_khoan": loai_khoan,
            "muc_tieu_muc": "7000-7012",
        },
        {
            "task": "t-2-1",
            "activity": "Truyền thông năng suất",
            "amount": 35_500_000 + 7 * index,
            "funding_source": "recurrent_sector",
        },
        {
            "task": "t-3-4",
            "activity": "Phòng thử nghiệm",
            "amount": 2_000_000_000 + 13 * index,
            "funding_source": "development_investment",
            "muc_tieu_muc": "9300-9301",
        },
        {
            "task": "t-4-2",
            "activity": "Doanh nghiệp đóng góp",
            "amount": 50_000_000 + index,
            "funding_source": "other_enterprise",
        },
    ]


@pytest.fixture
async def office(
    anonymous: httpx.AsyncClient, resources: Resources, keys: KeyRing
) -> dict[str, Any]:
    def token(client_id: str, unit: str, role: Role) -> dict[str, str]:
        roles = frozenset({role})
        grant = Grant(client_id, unit, roles, permissions_of(roles))
        issued = keys.issue(grant, now=datetime.now(UTC), ttl_seconds=900)
        return {"Authorization": f"Bearer {issued.access_token}"}

    people: dict[str, Any] = {"clock": Clock()}
    resources.clock = people["clock"]
    for unit, role in [
        *[(u, Role.REPORTER) for u in UNITS_2024 + UNITS_2026],
        ("bk-dost", Role.REVIEWER),
        ("tn-dost", Role.REVIEWER),
        ("bk-dof", Role.FINANCE),
        ("bk-dpi", Role.PLANNING_INVESTMENT),
        ("tn-dof", Role.FINANCE),
    ]:
        client_id = f"{role.value}-{unit}"
        await identity.create_client(
            resources.new_uow(),
            SYSTEM,
            client_id=client_id,
            name=client_id,
            unit=unit,
            roles=[role.value],
        )
        people[client_id] = token(client_id, unit, role)
    return people


class Clock:
    """The time the service believes it is; the test moves it."""

    def __init__(self) -> None:
        self.now = datetime(2024, 11, 15, 3, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


async def file_estimate(
    http: httpx.AsyncClient, office: dict[str, Any], unit: str, year: int, index: int
) -> dict[str, Any]:
    # Bắc Kạn's units file in 2024; Thái Nguyên's, after the merger, in late 2025, each
    # reviewed by the DOST of its day.
    season = (2024, 11, 15) if year <= 2025 else (2025, 11, 15)
    office["clock"].now = datetime(*season, 3, 0, tzinfo=UTC)
    me = office[f"reporter-{unit}"]
    reviewer = office["reviewer-bk-dost" if year <= 2025 else "reviewer-tn-dost"]
    created = await http.post(f"{BK}/budget-estimates", json={"budget_year": year}, headers=me)
    assert created.status_code == 201, created.text
    estimate_id = created.json()["id"]
    lined = await http.put(
        f"/v1/budget-estimates/{estimate_id}/lines",
        json={"lines": lines_for(index, year)},
        headers={**me, "If-Match": created.headers["etag"]},
    )
    assert lined.status_code == 200, lined.text
    assert [line["task"] for line in lined.json()["lines"]] == [
        line["task"] for line in lines_for(index, year)
    ]
    submitted = await http.post(
        f"/v1/budget-estimates/{estimate_id}/submission",
        headers={**me, "If-Match": lined.headers["etag"]},
    )
    assert submitted.status_code == 200, submitted.text
    accepted = await http.post(
        f"/v1/budget-estimates/{estimate_id}/acceptance",
        headers={**reviewer, "If-Match": submitted.headers["etag"]},
    )
    assert accepted.status_code == 200, accepted.text
    return dict(accepted.json())


async def build(
    http: httpx.AsyncClient, office: dict[str, Any], resources: Resources, year: int
) -> None:
    """Ask for the build over HTTP, then run the queued job as the worker does."""
    queued = await http.post(
        f"{BK}/budget-dossiers/builds",
        json={"budget_year": year},
        headers=office["reviewer-bk-dost"],
    )
    assert queued.status_code == 202, queued.text
    await jobs.run_attempt(resources.sessionmaker, DEFAULT_REGISTRY, uuid.UUID(queued.json()["id"]))
    job = await http.get(queued.headers["location"], headers=office["reviewer-bk-dost"])
    assert job.json()["status"] == "succeeded", job.json()


async def dossiers(http: httpx.AsyncClient, office: dict[str, Any], year: int) -> dict[str, Any]:
    response = await http.get(
        f"{BK}/budget-dossiers?budget_year={year}", headers=office["reviewer-bk-dost"]
    )
    return {d["destination"]: d for d in response.json()["items"]}


async def test_estimates_are_routed_by_the_rules_of_their_budget_year(
    anonymous: httpx.AsyncClient, office: dict[str, Any], resources: Resources
) -> None:
    filed = {
        (unit, year): await file_estimate(anonymous, office, unit, year, i)
        for year, units in ((2024, UNITS_2024), (2026, UNITS_2026))
        for i, unit in enumerate(units)
    }
    routed = {
        (year, line["funding_source"]): line["destination"]
        for (_, year), estimate in filed.items()
        for line in estimate["lines"]
    }
    office["clock"].now = datetime(2024, 11, 20, 3, 0, tzinfo=UTC)
    assert routed[(2024, "recurrent_science")] == routed[(2024, "recurrent_sector")] == "bk-dof"
    assert routed[(2024, "development_investment")] == "bk-dpi"
    assert (
        routed[(2026, "recurrent_science")] == routed[(2026, "development_investment")] == "tn-dof"
    )
    assert routed[(2024, "other_enterprise")] is None

    await build(anonymous, office, resources, 2024)
    before = await dossiers(anonymous, office, 2024)
    assert set(before) == {"bk-dof", "bk-dpi"}
    for dossier in before.values():
        lines = dossier["document"]["lines"]
        assert dossier["total"] == sum(line["amount"] for line in lines)
        assert sum(dossier["document"]["by_unit"].values()) == dossier["total"]
        assert sum(dossier["document"]["by_funding_source"].values()) == dossier["total"]
        assert sum(dossier["document"]["by_task_group"].values()) == dossier["total"]
    expected_investment = sum(2_000_000_000 + 13 * i for i in range(len(UNITS_2024)))
    assert before["bk-dpi"]["total"] == expected_investment

    # The routing changes: from 2024 investment goes to Finance. History is not rewritten.
    reviewer, admin = office["reviewer-bk-dost"], {"Authorization": resources_admin(resources)}
    roles = (
        await anonymous.get(f"{BK}/roles?role=investment_estimate_recipient", headers=reviewer)
    ).json()
    dpi_role = next(r for r in roles["items"] if r["unit"] == "bk-dpi")
    ended = await anonymous.patch(
        f"{BK}/roles/{dpi_role['id']}", json={"valid_to": "2024-01-01"}, headers=admin
    )
    assert ended.status_code == 200, ended.text
    started = await anonymous.post(
        f"{BK}/roles",
        json={
            "role": "investment_estimate_recipient",
            "unit": "bk-dof",
            "valid_from": "2024-01-01",
            "valid_to": "2025-03-01",
        },
        headers=admin,
    )
    assert started.status_code == 201, started.text
    await build(anonymous, office, resources, 2024)
    assert await dossiers(anonymous, office, 2024) == before

    # 2026: both kinds reach Finance of the merged province; other sources reach nobody.
    await build(anonymous, office, resources, 2026)
    assert set(await dossiers(anonymous, office, 2026)) == {"tn-dof"}
    totals = (await anonymous.get(f"{BK}/budget-totals?budget_year=2024", headers=reviewer)).json()[
        "items"
    ]
    all_lines = sum(
        line["amount"] for (_, year), e in filed.items() if year == 2024 for line in e["lines"]
    )
    assert sum(row["amount"] for row in totals) == all_lines
    other = [row for row in totals if row["funding_source"] == "other_enterprise"]
    assert {row["destination"] for row in other} == {None}

    # Finance reads its dossier, not Planning and Investment's, and the reverse.
    finance, planning = office["finance-bk-dof"], office["planning_investment-bk-dpi"]
    own = await anonymous.get(f"/v1/budget-dossiers/{before['bk-dof']['id']}", headers=finance)
    assert own.status_code == 200
    assert_problem(
        await anonymous.get(f"/v1/budget-dossiers/{before['bk-dpi']['id']}", headers=finance),
        404,
        "dossier_not_found",
    )
    assert_problem(
        await anonymous.get(f"/v1/budget-dossiers/{before['bk-dof']['id']}", headers=planning),
        404,
        "dossier_not_found",
    )
    listed = (
        await anonymous.get(f"{BK}/budget-dossiers?budget_year=2024", headers=planning)
    ).json()
    assert [d["destination"] for d in listed["items"]] == ["bk-dpi"]

    # DOST sends; Finance acknowledges and allocates per line.
    sent = await anonymous.post(
        f"/v1/budget-dossiers/{before['bk-dof']['id']}/sending", headers=reviewer
    )
    assert sent.json()["status"] == "sent"
    first_line = before["bk-dof"]["document"]["lines"][0]
    acknowledged = await anonymous.post(
        f"/v1/budget-dossiers/{before['bk-dof']['id']}/acknowledgement",
        json={"allocations": {first_line["line_id"]: first_line["amount"] - 1_000_000}},
        headers=finance,
    )
    assert acknowledged.status_code == 200, acknowledged.text
    assert acknowledged.json()["status"] == "acknowledged"
    [allocation] = acknowledged.json()["allocations"]
    assert (allocation["line_id"], allocation["amount"]) == (
        first_line["line_id"],
        first_line["amount"] - 1_000_000,
    )

    # The unit spends against the allocation; the follow-up shows estimate → allocation → spent.
    spender = office[f"reporter-{first_line['unit']}"]
    spent = await anonymous.post(
        f"/v1/budget-allocations/{allocation['id']}/spending",
        json={"amount": 40_000_000, "spent_on": "2024-06-30", "note": "Tập huấn ISO"},
        headers=spender,
    )
    assert spent.status_code == 201, spent.text
    too_much = await anonymous.post(
        f"/v1/budget-allocations/{allocation['id']}/spending",
        json={"amount": allocation["amount"], "spent_on": "2024-07-30"},
        headers=spender,
    )
    assert_problem(too_much, 409, "allocation_exceeded")
    follow = (
        await anonymous.get(f"{BK}/budget-follow-up?budget_year=2024", headers=spender)
    ).json()["items"]
    assert {row["unit"] for row in follow} == {first_line["unit"]}
    row = next(r for r in follow if r["task"] == "t-3-1")
    assert (row["allocated"], row["spent"]) == (allocation["amount"], 40_000_000)
    assert row["estimated"] == first_line["amount"]


def resources_admin(resources: Resources) -> str:
    from tests.conftest import mint_token

    return f"Bearer {mint_token(resources.keys, 'test-admin')}"


@pytest.mark.parametrize(
    ("line", "location", "code"),
    [
        ({"amount": -1}, "amount", "greater_than_equal"),
        ({"amount": 1.5}, "amount", "int_type"),
        ({"amount": 10**15 + 1}, "amount", "less_than_equal"),
        ({"amount": "1000"}, "amount", "int_type"),
        ({"funding_source": "lottery"}, "funding_source", "literal_error"),
        ({"loai_khoan": "100-103"}, "loai_khoan", "invalid_account_code"),
    ],
)
async def test_bad_money_is_refused_with_the_field_named(
    anonymous: httpx.AsyncClient,
    office: dict[str, Any],
    line: dict[str, Any],
    location: str,
    code: str,
) -> None:
    me = office["reporter-tn-doh"]
    office["clock"].now = datetime(2025, 11, 15, 3, 0, tzinfo=UTC)
    created = await anonymous.post(f"{BK}/budget-estimates", json={"budget_year": 2026}, headers=me)
    good = lines_for(0, 2026)[0]
    response = await anonymous.put(
        f"/v1/budget-estimates/{created.json()['id']}/lines",
        json={"lines": [good, good | line]},
        headers={**me, "If-Match": created.headers["etag"]},
    )
    assert response.status_code == 422, response.text
    [error] = response.json()["errors"]
    assert error["location"][-1] == location
    assert error["location"][-2] == 1  # the second line
    assert error["code"] == code
    unchanged = await anonymous.get(f"/v1/budget-estimates/{created.json()['id']}", headers=me)
    assert unchanged.json()["lines"] == []
