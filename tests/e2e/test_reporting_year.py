"""A reporting year over HTTP: 14 units, 11 report on time, 2 late, 1 never; DOST returns one
report, its unit resubmits, DOST accepts the rest; completeness and timeliness say exactly that."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from nscl_api.auth.tokens import KeyRing
from nscl_api.resources import Resources
from nscl_domain.identity import SYSTEM, Role, permissions_of
from nscl_domain.identity import service as identity
from nscl_domain.identity.service import Grant

BK = "/v1/programmes/bac-kan-nscl"
YEAR = 2024
# Late units, and by how many days; the unit that never reports.
LATE = {"bk-na-ri": 3, "bk-pac-nam": 10}
NEVER = "bk-ngan-son"
RETURNED = "bk-doit"


class Clock:
    """The time the service believes it is; the test moves it."""

    def __init__(self) -> None:
        self.now = datetime(YEAR, 11, 1, 3, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def content_for(unit: str) -> dict[str, Any]:
    return {
        "indicator_values": [
            {"indicator": "training-courses", "value": "2"},
            {
                "indicator": "people-trained",
                "disaggregation": {"trainee_group": "manager"},
                "value": "12",
            },
            {
                "indicator": "people-trained",
                "disaggregation": {"trainee_group": "worker"},
                "value": "40",
            },
        ],
        "task_progress": [
            {"task": "t-3-1", "status": "in_progress", "narrative": f"{unit}: đang triển khai"}
        ],
        "narrative": {
            "results": "Đã hỗ trợ doanh nghiệp áp dụng ISO 9001.",
            "shortcomings": "Kinh phí còn hạn chế.",
            "causes": "Nguồn lực địa phương ít.",
            "proposals": "Đề nghị bổ sung kinh phí sự nghiệp khoa học.",
        },
        "enterprises": [
            {
                "tax_code": "0100109106",
                "name": "Công ty cổ phần Nông sản Bắc Kạn",
                "solution": "iso_9001",
                "certificate_issued": True,
                "certified_on": f"{YEAR}-06-15",
            }
        ],
        "experts": [],
    }


@pytest.fixture
async def world(
    anonymous: httpx.AsyncClient, resources: Resources, keys: KeyRing
) -> dict[str, Any]:
    clock = Clock()
    resources.clock = clock

    def token(client_id: str, unit: str, role: Role) -> dict[str, str]:
        roles = frozenset({role})
        grant = Grant(client_id, unit, roles, permissions_of(roles))
        issued = keys.issue(grant, now=datetime.now(UTC), ttl_seconds=900)
        return {"Authorization": f"Bearer {issued.access_token}"}

    reviewer = token("test-reviewer", "bk-doh", Role.REVIEWER)
    generated = await anonymous.post(
        f"{BK}/obligations/generation", json={"year": YEAR, "regime": "bk-annual"}, headers=reviewer
    )
    assert generated.json() == {"created": 14}
    obligations = (await anonymous.get(f"{BK}/obligations?year={YEAR}", headers=reviewer)).json()
    units = {o["unit"]: o["id"] for o in obligations["items"]}
    reporters = {}
    for unit in units:
        await identity.create_client(
            resources.new_uow(),
            SYSTEM,
            client_id=f"reporter-{unit}",
            name=unit,
            unit=unit,
            roles=["reporter"],
        )
        reporters[unit] = token(f"reporter-{unit}", unit, Role.REPORTER)
    return {"clock": clock, "reviewer": reviewer, "obligations": units, "reporters": reporters}


async def file_report(
    http: httpx.AsyncClient, world: dict[str, Any], unit: str, submitted_at: datetime
) -> dict[str, Any]:
    headers = world["reporters"][unit]
    created = await http.post(
        "/v1/reports", json={"obligation_id": world["obligations"][unit]}, headers=headers
    )
    assert created.status_code == 201, created.text
    report = created.json()
    written = await http.put(
        f"/v1/reports/{report['id']}/draft",
        json=content_for(unit),
        headers={**headers, "If-Match": created.headers["etag"]},
    )
    assert written.status_code == 200, written.text
    world["clock"].now = submitted_at
    submitted = await http.post(
        f"/v1/reports/{report['id']}/submission",
        headers={**headers, "If-Match": written.headers["etag"]},
    )
    assert submitted.status_code == 200, submitted.text
    assert submitted.json()["status"] == "submitted"
    return submitted.json() | {"etag": submitted.headers["etag"]}


async def test_a_reporting_year(anonymous: httpx.AsyncClient, world: dict[str, Any]) -> None:
    reviewer = world["reviewer"]
    filed: dict[str, dict[str, Any]] = {}
    for unit in sorted(world["obligations"]):
        if unit == NEVER:
            continue
        # 23:30 in Vietnam on 30 November is still on time; late ones come days after.
        day = 30 + LATE.get(unit, 0)
        submitted_at = datetime(YEAR, 11, 30, 16, 30, tzinfo=UTC) if unit not in LATE else (
            datetime(YEAR, 12, day - 30, 9, 0, tzinfo=UTC)
        )  # fmt: skip
        filed[unit] = await file_report(anonymous, world, unit, submitted_at)
    assert len(filed) == 13

    # DOST returns one report with a reason; its unit corrects and resubmits it.
    returned = await anonymous.post(
        f"/v1/reports/{filed[RETURNED]['id']}/return",
        json={"reason": "Thiếu số liệu về doanh nghiệp được hỗ trợ."},
        headers={**reviewer, "If-Match": filed[RETURNED]["etag"]},
    )
    assert returned.status_code == 200, returned.text
    assert returned.json()["status"] == "returned"
    owner = world["reporters"][RETURNED]
    revised = content_for(RETURNED) | {"narrative": {"results": "Bổ sung số liệu."}}
    rewritten = await anonymous.put(
        f"/v1/reports/{filed[RETURNED]['id']}/draft",
        json=revised,
        headers={**owner, "If-Match": returned.headers["etag"]},
    )
    resubmitted = await anonymous.post(
        f"/v1/reports/{filed[RETURNED]['id']}/submission",
        headers={**owner, "If-Match": rewritten.headers["etag"]},
    )
    assert resubmitted.json()["status"] == "resubmitted"
    filed[RETURNED]["etag"] = resubmitted.headers["etag"]

    for report in filed.values():
        accepted = await anonymous.post(
            f"/v1/reports/{report['id']}/acceptance",
            headers={**reviewer, "If-Match": report["etag"]},
        )
        assert accepted.status_code == 200, accepted.text
        assert accepted.json()["status"] == "accepted"

    world["clock"].now = datetime(YEAR, 12, 20, tzinfo=UTC)
    summary = (await anonymous.get(f"{BK}/timeliness?year={YEAR}", headers=reviewer)).json()
    assert (summary["obligations"], summary["on_time"], summary["late"], summary["missing"]) == (
        14, 11, 2, 1,
    )  # fmt: skip
    assert summary["accepted"] == 13
    by_unit = {row["unit"]: row for row in summary["rows"]}
    assert {u: by_unit[u]["days_late"] for u in LATE} == LATE
    assert by_unit[NEVER]["status"] == "missing"
    assert (by_unit[NEVER]["submitted_on"], by_unit[NEVER]["accepted"]) == (None, False)

    versions = (
        await anonymous.get(f"/v1/reports/{filed[RETURNED]['id']}/versions", headers=reviewer)
    ).json()["items"]
    assert [(v["version_no"], v["kind"]) for v in versions] == [
        (1, "submission"),
        (2, "resubmission"),
    ]
    assert (
        versions[0]["content"]["narrative"]["results"]
        != versions[1]["content"]["narrative"]["results"]
    )

    # A unit sees its own obligations and reports, and nobody else's.
    own = await anonymous.get(
        f"{BK}/timeliness?year={YEAR}", headers=world["reporters"]["bk-cho-don"]
    )
    assert [row["unit"] for row in own.json()["rows"]] == ["bk-cho-don"]
    other = await anonymous.get(
        f"/v1/reports/{filed['bk-ba-be']['id']}", headers=world["reporters"]["bk-cho-don"]
    )
    assert other.status_code == 404
