"""Plans over HTTP: a unit writes its five-year plan, DOST returns it, the unit resubmits,
DOST accepts; the unit proposes changes, DOST rejects one and approves another; every step
stays in the plan's history as frozen versions and decided requests."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from nscl_api.auth.tokens import KeyRing
from tests.api.test_problems import assert_problem
from tests.conftest import mint_token

BK = "/v1/programmes/bac-kan-nscl"


def auth(keys: KeyRing, client_id: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {mint_token(keys, client_id)}"}


def activity(
    title: str, *, task: str = "t-3-1", outputs: list[Any] | None = None
) -> dict[str, Any]:
    return {
        "task": task,
        "title": title,
        "key_products": ["Miến dong Na Rì", "Chè Shan tuyết"],
        "integrated_with": [
            {"programme": "new_rural_development"},
            {"programme": "other", "detail": "Đề án phát triển dược liệu"},
        ],
        "planned_outputs": outputs
        if outputs is not None
        else [
            {"indicator": "enterprises-supported", "year": 2022, "value": "4"},
            {"indicator": "iso-9001-certificates", "year": 2023, "value": "2"},
        ],
    }


CONTENT = {
    "focal_agency": "Phòng Kế hoạch – Tài chính",
    "summary": "Kế hoạch thực hiện Chương trình NSCL giai đoạn 2021–2025",
    "activities": [
        activity("Hỗ trợ doanh nghiệp áp dụng ISO 9001"),
        activity(
            "Truyền thông năng suất",
            task="t-2-1",
            outputs=[{"indicator": "enterprises-supported", "year": 2022, "value": "3"}],
        ),
    ],
}


async def open_plan(
    http: httpx.AsyncClient, me: dict[str, str], content: dict[str, Any]
) -> dict[str, Any]:
    created = await http.post(
        f"{BK}/plans", json={"kind": "five_year", "start_year": 2021}, headers=me
    )
    assert created.status_code == 201, created.text
    assert created.headers["location"] == f"/v1/plans/{created.json()['id']}"
    written = await http.put(
        f"/v1/plans/{created.json()['id']}/content",
        json={"content": content},
        headers={**me, "If-Match": created.headers["etag"]},
    )
    assert written.status_code == 200, written.text
    return {"id": created.json()["id"], "etag": written.headers["etag"], "body": written.json()}


async def test_a_plan_from_draft_through_review_and_two_change_requests(
    anonymous: httpx.AsyncClient, keys: KeyRing
) -> None:
    http = anonymous
    me, dost = auth(keys, "test-reporter"), auth(keys, "test-reviewer")
    plan = await open_plan(http, me, CONTENT)
    body = plan["body"]
    assert (body["kind"], body["start_year"], body["end_year"]) == ("five_year", 2021, 2025)
    assert (body["status"], body["unit"]) == ("draft", "bk-doh")
    # Planned outputs combine the activities by each indicator's rule (a sum for counts).
    assert body["planned_outputs"] == [
        {"indicator": "enterprises-supported", "year": 2022, "value": "7"},
        {"indicator": "iso-9001-certificates", "year": 2023, "value": "2"},
    ]
    plan_url = f"/v1/plans/{plan['id']}"

    submitted = await http.post(f"{plan_url}/submission", headers={**me, "If-Match": plan["etag"]})
    assert submitted.json()["status"] == "submitted", submitted.text
    returned = await http.post(
        f"{plan_url}/return",
        json={"reason": "Bổ sung sản phẩm chủ lực"},
        headers={**dost, "If-Match": submitted.headers["etag"]},
    )
    assert (returned.json()["status"], returned.json()["returned_reason"]) == (
        "returned",
        "Bổ sung sản phẩm chủ lực",
    )
    revised = {**CONTENT, "activities": [*CONTENT["activities"], activity("Mô hình điểm 5S")]}
    rewritten = await http.put(
        f"{plan_url}/content",
        json={"content": revised},
        headers={**me, "If-Match": returned.headers["etag"]},
    )
    resubmitted = await http.post(
        f"{plan_url}/submission", headers={**me, "If-Match": rewritten.headers["etag"]}
    )
    assert resubmitted.json()["status"] == "resubmitted"
    accepted = await http.post(
        f"{plan_url}/acceptance", headers={**dost, "If-Match": resubmitted.headers["etag"]}
    )
    assert accepted.json()["status"] == "accepted"
    assert accepted.json()["accepted_version_no"] == 2

    # An accepted plan is not edited in place: it changes through a request DOST decides.
    in_place = await http.put(
        f"{plan_url}/content",
        json={"content": CONTENT},
        headers={**me, "If-Match": accepted.headers["etag"]},
    )
    assert_problem(in_place, 409, "plan_not_editable")

    smaller = {**revised, "activities": revised["activities"][:1]}
    first = await http.post(
        f"{plan_url}/change-requests",
        json={"reason": "Điều chỉnh theo thực tế địa phương", "content": smaller},
        headers=me,
    )
    assert first.status_code == 201, first.text
    assert (first.json()["status"], first.json()["base_version_no"]) == ("proposed", 2)
    second = await http.post(
        f"{plan_url}/change-requests", json={"reason": "Lần nữa", "content": CONTENT}, headers=me
    )
    assert_problem(second, 409, "change_request_open")
    # DOST consolidates the proposals of every unit.
    pending = await http.get(
        f"{BK}/plan-change-requests", params={"status": "proposed"}, headers=dost
    )
    assert [r["id"] for r in pending.json()["items"]] == [first.json()["id"]]
    rejected = await http.post(
        f"/v1/plan-change-requests/{first.json()['id']}/decision",
        json={"decision": "reject", "note": "Giữ nguyên mục tiêu giai đoạn"},
        headers=dost,
    )
    assert rejected.status_code == 200, rejected.text
    assert (rejected.json()["status"], rejected.json()["decided_by"]) == (
        "rejected",
        "test-reviewer",
    )
    again = await http.post(
        f"/v1/plan-change-requests/{first.json()['id']}/decision",
        json={"decision": "approve", "note": "Đổi ý"},
        headers=dost,
    )
    assert_problem(again, 409, "change_request_closed")
    unchanged = await http.get(plan_url, headers=me)
    assert len(unchanged.json()["content"]["activities"]) == 3

    third = await http.post(
        f"{plan_url}/change-requests",
        json={"reason": "Thêm chỉ tiêu chứng nhận", "content": smaller},
        headers=me,
    )
    approved = await http.post(
        f"/v1/plan-change-requests/{third.json()['id']}/decision",
        json={"decision": "approve", "note": "Đồng ý điều chỉnh"},
        headers=dost,
    )
    assert (approved.json()["status"], approved.json()["resulting_version_no"]) == ("approved", 3)
    changed = await http.get(plan_url, headers=me)
    assert changed.json()["accepted_version_no"] == 3
    assert changed.json()["content"] == smaller | {
        "activities": changed.json()["content"]["activities"]
    }
    assert [a["title"] for a in changed.json()["content"]["activities"]] == [
        "Hỗ trợ doanh nghiệp áp dụng ISO 9001"
    ]

    # The history: two submissions, then the approved change pointing at its request.
    history = await http.get(f"{plan_url}/versions", headers=me)
    versions = history.json()["items"]
    assert [(v["version_no"], v["kind"]) for v in versions] == [
        (1, "submission"),
        (2, "resubmission"),
        (3, "change"),
    ]
    assert versions[2]["change_request_id"] == third.json()["id"]
    assert len(versions[0]["content"]["activities"]) == 2
    assert len(versions[1]["content"]["activities"]) == 3
    requests = await http.get(
        f"{BK}/plan-change-requests", params={"plan_id": plan["id"]}, headers=me
    )
    assert [(r["status"], r["decision_note"]) for r in requests.json()["items"]] == [
        ("approved", "Đồng ý điều chỉnh"),
        ("rejected", "Giữ nguyên mục tiêu giai đoạn"),
    ]


async def test_another_unit_neither_reads_nor_changes_the_plan(
    anonymous: httpx.AsyncClient, keys: KeyRing
) -> None:
    plan = await open_plan(anonymous, auth(keys, "test-reporter"), CONTENT)
    other = auth(keys, "test-reporter-other")
    assert_problem(
        await anonymous.get(f"/v1/plans/{plan['id']}", headers=other), 404, "plan_not_found"
    )
    listed = await anonymous.get(f"{BK}/plans", headers=other)
    assert listed.json()["items"] == []
    assert_problem(
        await anonymous.post(
            f"/v1/plans/{plan['id']}/submission", headers={**other, "If-Match": plan["etag"]}
        ),
        404,
        "plan_not_found",
    )
    seen_by_dost = await anonymous.get(f"{BK}/plans", headers=auth(keys, "test-reviewer"))
    assert [p["id"] for p in seen_by_dost.json()["items"]] == [plan["id"]]
    finance = await anonymous.get(f"{BK}/plans", headers=auth(keys, "test-finance"))
    assert_problem(finance, 403, "insufficient_scope")


SUPPORTED_2022 = {"indicator": "enterprises-supported", "year": 2022, "value": "1"}


@pytest.mark.parametrize(
    ("change", "location", "code"),
    [
        ({"task": "t-9-9"}, ("activities", 0, "task"), "invalid"),
        ({"planned_outputs": [{"indicator": "smiles", "year": 2022, "value": "1"}]},
         ("activities", 0, "planned_outputs", 0, "indicator"), "invalid"),
        ({"planned_outputs": [{"indicator": "enterprises-supported", "year": 2027, "value": "1"}]},
         ("activities", 0, "planned_outputs", 0, "year"), "invalid"),
        ({"planned_outputs": [{"indicator": "enterprises-supported", "year": 2022, "value": "-1"}]},
         ("activities", 0, "planned_outputs", 0, "value"), "greater_than_equal"),
        ({"planned_outputs": [SUPPORTED_2022] * 2},
         ("activities", 0, "planned_outputs", 1, "indicator"), "duplicate_output"),
        ({"integrated_with": [{"programme": "other"}]}, ("activities", 0, "integrated_with", 0),
         "value_error"),
        ({"integrated_with": [{"programme": "lottery"}]},
         ("activities", 0, "integrated_with", 0, "programme"), "literal_error"),
    ],
)  # fmt: skip
async def test_bad_content_is_refused_with_the_field_named_and_the_draft_kept(
    anonymous: httpx.AsyncClient,
    keys: KeyRing,
    change: dict[str, Any],
    location: tuple[Any, ...],
    code: str,
) -> None:
    me = auth(keys, "test-reporter")
    plan = await open_plan(anonymous, me, CONTENT)
    bad = {**CONTENT, "activities": [activity("x") | change]}
    response = await anonymous.put(
        f"/v1/plans/{plan['id']}/content",
        json={"content": bad},
        headers={**me, "If-Match": plan["etag"]},
    )
    assert response.status_code == 422, response.text
    [error] = response.json()["errors"]
    assert tuple(error["location"][-len(location) :]) == location
    assert error["code"] == code
    kept = await anonymous.get(f"/v1/plans/{plan['id']}", headers=me)
    assert kept.json()["content"] == plan["body"]["content"]
    assert kept.headers["etag"] == plan["etag"]


async def test_periods_and_workflow_guards(anonymous: httpx.AsyncClient, keys: KeyRing) -> None:
    me = auth(keys, "test-reporter")
    not_a_phase = await anonymous.post(
        f"{BK}/plans", json={"kind": "five_year", "start_year": 2022}, headers=me
    )
    body = assert_problem(not_a_phase, 422, "not_a_phase")
    assert "2021, 2026" in str(body["detail"])
    annual = await anonymous.post(
        f"{BK}/plans", json={"kind": "annual", "start_year": 2024}, headers=me
    )
    assert (annual.json()["start_year"], annual.json()["end_year"]) == (2024, 2024)
    twice = await anonymous.post(
        f"{BK}/plans", json={"kind": "annual", "start_year": 2024}, headers=me
    )
    assert_problem(twice, 409, "plan_exists")
    empty = await anonymous.post(
        f"/v1/plans/{annual.json()['id']}/submission",
        headers={**me, "If-Match": annual.headers["etag"]},
    )
    assert_problem(empty, 422, "plan_empty")
    early = await anonymous.post(
        f"/v1/plans/{annual.json()['id']}/change-requests",
        json={"reason": "Chưa được duyệt", "content": CONTENT},
        headers=me,
    )
    assert_problem(early, 409, "plan_not_accepted")
    stale = await anonymous.put(
        f"/v1/plans/{annual.json()['id']}/content",
        json={"content": {"activities": []}},
        headers={**me, "If-Match": '"9"'},
    )
    assert_problem(stale, 412, "stale_revision")
    listed = await anonymous.get(f"{BK}/plans", params={"year": 2024, "kind": "annual"}, headers=me)
    assert [p["id"] for p in listed.json()["items"]] == [annual.json()["id"]]


async def test_a_version_is_frozen_in_the_database(
    anonymous: httpx.AsyncClient, keys: KeyRing, db_connection: AsyncConnection
) -> None:
    me = auth(keys, "test-reporter")
    plan = await open_plan(anonymous, me, CONTENT)
    await anonymous.post(
        f"/v1/plans/{plan['id']}/submission", headers={**me, "If-Match": plan["etag"]}
    )
    with pytest.raises(DBAPIError, match="frozen"):
        async with db_connection.begin_nested():
            await db_connection.execute(
                text("UPDATE plan_version SET content = '{}' WHERE plan_id = :id"),
                {"id": plan["id"]},
            )
