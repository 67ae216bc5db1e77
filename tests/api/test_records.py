"""Programme records over HTTP: each kind filed, reviewed, listed, and counted into the
indicators it determines in a rollup, with provenance back to the record."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from nscl_api.auth.tokens import KeyRing
from nscl_api.resources import Resources
from nscl_domain.jobs import JobName
from nscl_domain.jobs.models import Job
from nscl_domain.jobs.registry import JobContext
from nscl_domain.rollups import service as rollups
from tests.api.test_problems import assert_problem
from tests.conftest import OTHER_UNIT, OWN_UNIT, mint_token

BK = "/v1/programmes/bac-kan-nscl"
RECORDS = f"{BK}/records"


def auth(keys: KeyRing, client_id: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {mint_token(keys, client_id)}"}


HONOUR = {
    "kind": "honour",
    "decision_no": "1234/QĐ-UBND",
    "decision_date": "2024-12-20",
    "issued_by": "Chủ tịch UBND tỉnh Bắc Kạn",
    "form": "certificate_of_merit_chairman",
    "recipients": [
        {"recipient_kind": "collective", "name": "Phòng Kế hoạch - Tài chính"},
        {"recipient_kind": "individual", "name": "Nguyễn Thị Hoa", "organisation": "Sở Y tế"},
        {"recipient_kind": "individual", "name": "Trần Văn Bình", "organisation": "Sở Y tế"},
    ],
}
QUALITY_AWARD = {
    "kind": "quality_award",
    "enterprise": {"tax_code": "4700123406", "name": "Công ty CP Miến dong Bắc Kạn"},
    "award_year": 2024,
    "result": "silver",
    "support": "Hướng dẫn lập hồ sơ",
}
TRAINING_COURSE = {
    "kind": "training_course",
    "title": "Đào tạo chuyên gia năng suất chất lượng",
    "organiser": "Sở Khoa học và Công nghệ",
    "starts_on": "2024-05-06",
    "ends_on": "2024-05-17",
    "trainee_groups": [{"group": "manager", "trainees": 12}, {"group": "worker", "trainees": 30}],
    "experts": [
        {"full_name": "Hoàng Văn Nam", "level": "national", "certified_on": "2024-05-17"},
        {"full_name": "Lý Thị Mai", "level": "regional", "certified_on": "2024-05-17"},
    ],
}
COMMUNICATION = {
    "kind": "communication",
    "campaign": "Tháng chất lượng 2024",
    "channel": "television",
    "held_on": "2024-10-10",
    "reach": 15000,
}
MODEL_ENTERPRISE = {
    "kind": "model_enterprise",
    "enterprise": {"tax_code": "4700155503", "name": "HTX Chè Bằng Phúc"},
    "solutions": ["iso_9001", "5s", "kaizen"],
    "state": "model",
    "started_on": "2023-03-01",
    "recognised_on": "2024-11-15",
    "progress": "Áp dụng đồng bộ ISO 9001, 5S, Kaizen",
}
INSPECTION = {
    "kind": "inspection",
    "inspected_unit": "bk-cho-don",
    "inspected_on": "2024-09-12",
    "findings": "Chưa xây dựng kế hoạch hằng năm đúng hạn",
    "recommendations": [
        {"text": "Ban hành kế hoạch năm 2025", "follow_up": "pending"},
        {"text": "Báo cáo đúng hạn", "follow_up": "done", "note": "Đã báo cáo"},
    ],
}

# Each kind, and what one accepted record of it counts: (indicator, disaggregation) → value.
EFFECTS: dict[str, tuple[dict[str, Any], dict[tuple[str, str], str]]] = {
    "honour": (
        HONOUR,
        {
            ("honoured-recipients", ""): "3",
            ("honoured-recipients", "recipient_kind=collective"): "1",
            ("honoured-recipients", "recipient_kind=individual"): "2",
        },
    ),
    "quality_award": (
        QUALITY_AWARD,
        {
            ("quality-award-entrants", ""): "1",
            ("quality-award-entrants", "award_result=silver"): "1",
        },
    ),
    "training_course": (
        TRAINING_COURSE,
        {
            ("experts-certified", ""): "2",
            ("experts-certified", "certification_level=national"): "1",
            ("experts-certified", "certification_level=regional"): "1",
        },
    ),
    "communication": (
        COMMUNICATION,
        {
            ("communication-activities", ""): "1",
            ("communication-activities", "channel=television"): "1",
            ("communication-reach", ""): "15000",
        },
    ),
    "model_enterprise": (MODEL_ENTERPRISE, {("model-enterprises", ""): "1"}),
    "inspection": (
        INSPECTION,
        {
            ("inspections-held", ""): "1",
            ("inspection-recommendations", ""): "2",
            ("inspection-recommendations", "follow_up=done"): "1",
            ("inspection-recommendations", "follow_up=pending"): "1",
        },
    ),
}
RECORD_INDICATORS = {key[0] for _, effects in EFFECTS.values() for key in effects}


class Office:
    """A reporter of OWN_UNIT, a reviewer, and a reporter of another unit, on one client."""

    def __init__(self, http: httpx.AsyncClient, keys: KeyRing) -> None:
        self.http = http
        self.reporter = auth(keys, "test-reporter")
        self.reviewer = auth(keys, "test-reviewer")
        self.other = auth(keys, "test-reporter-other")

    async def create(
        self, content: dict[str, Any], headers: dict[str, str] | None = None
    ) -> httpx.Response:
        return await self.http.post(
            RECORDS, json={"content": content}, headers=headers or self.reporter
        )

    async def submit(self, record: httpx.Response) -> httpx.Response:
        return await self.http.post(
            f"/v1/records/{record.json()['id']}/submission",
            headers={**self.reporter, "If-Match": record.headers["etag"]},
        )

    async def accept(self, record: httpx.Response) -> httpx.Response:
        return await self.http.post(
            f"/v1/records/{record.json()['id']}/acceptance",
            headers={**self.reviewer, "If-Match": record.headers["etag"]},
        )

    async def accepted(self, content: dict[str, Any]) -> httpx.Response:
        created = await self.create(content)
        assert created.status_code == 201, created.text
        submitted = await self.submit(created)
        assert submitted.status_code == 200, submitted.text
        accepted = await self.accept(submitted)
        assert accepted.status_code == 200, accepted.text
        return accepted

    async def totals(self, year: int) -> dict[tuple[str, str], str]:
        rollup = await self.http.get(f"/v1/rollups/bac-kan-nscl/{year}", headers=self.reporter)
        assert rollup.status_code == 200, rollup.text
        return {
            (t["indicator"], t["disaggregation"]): t["value"]
            for t in rollup.json()["cells"]
            if t["breakdown"] == ""
        }

    async def provenance(self, year: int, indicator: str, disaggregation: str = "") -> Any:
        behind = await self.http.get(
            f"/v1/rollups/bac-kan-nscl/{year}/provenance",
            params={"indicator": indicator, "disaggregation": disaggregation},
            headers=self.reporter,
        )
        assert behind.status_code == 200, behind.text
        return behind.json()["items"]


@pytest.fixture
def office(anonymous: httpx.AsyncClient, keys: KeyRing) -> Office:
    return Office(anonymous, keys)


async def run_scheduled_refreshes(resources: Resources) -> list[dict[str, Any]]:
    """Run the rollup refreshes the changes scheduled, as the worker would."""
    async with resources.sessionmaker() as session:
        jobs = (await session.scalars(select(Job).where(Job.name == JobName.REFRESH_ROLLUP))).all()
        results = []
        for job in jobs:
            context = JobContext(session=session, job_id=job.id, attempt=1, now=datetime.now(UTC))
            args = rollups.RefreshRollupArgs.model_validate(job.args)
            results.append(await rollups.refresh(context, args))
        await session.commit()
    return results


class TestEachKindCountsIntoItsIndicators:
    @pytest.mark.parametrize("kind", list(EFFECTS))
    async def test_created_reviewed_listed_counted_and_traced(
        self, office: Office, resources: Resources, kind: str
    ) -> None:
        content, effects = EFFECTS[kind]
        created = await office.create(content)
        assert created.status_code == 201, created.text
        record = created.json()
        assert created.headers["location"] == f"/v1/records/{record['id']}"
        assert created.headers["etag"] == '"1"'
        assert (record["kind"], record["unit"], record["year"], record["status"]) == (
            kind, OWN_UNIT, 2024, "draft",
        )  # fmt: skip
        # What it will count is shown before it is submitted: derived, never typed.
        preview = {(f["indicator"], f["disaggregation"]): f["value"] for f in record["figures"]}
        assert preview == effects

        submitted = await office.submit(created)
        assert submitted.json()["status"] == "submitted"
        assert submitted.json()["latest_version_no"] == 1
        accepted = await office.accept(submitted)
        assert accepted.status_code == 200, accepted.text
        assert accepted.json()["status"] == "accepted"
        assert accepted.json()["accepted_version_no"] == 1

        listed = await office.http.get(
            RECORDS, params={"kind": kind, "year": 2024, "unit": OWN_UNIT}, headers=office.reviewer
        )
        assert [r["id"] for r in listed.json()["items"]] == [record["id"]]
        other_year = await office.http.get(
            RECORDS, params={"kind": kind, "year": 2023}, headers=office.reviewer
        )
        assert other_year.json()["items"] == []

        [result] = await run_scheduled_refreshes(resources)
        assert result["unchanged"] is False
        totals = await office.totals(2024)
        assert {k: v for k, v in totals.items() if k[0] in RECORD_INDICATORS} == effects

        indicator, disaggregation = next(iter(effects))
        [contribution] = await office.provenance(2024, indicator, disaggregation)
        assert contribution["kind"] == "record_version"
        assert contribution["record_id"] == record["id"]
        assert contribution["record_kind"] == kind
        assert contribution["report_id"] is None
        assert (contribution["unit"], contribution["version_no"]) == (OWN_UNIT, 1)
        assert contribution["value"] == effects[(indicator, disaggregation)]


class TestRecordsBesideReports:
    async def test_a_course_adds_its_experts_to_those_of_the_annual_report(
        self, office: Office, resources: Resources
    ) -> None:
        await office.http.post(
            f"{BK}/obligations/generation",
            json={"year": 2024, "regime": "bk-annual"},
            headers=office.reviewer,
        )
        [obligation] = (
            await office.http.get(f"{BK}/obligations?year=2024", headers=office.reporter)
        ).json()["items"]
        report = await office.http.post(
            "/v1/reports", json={"obligation_id": obligation["id"]}, headers=office.reporter
        )
        written = await office.http.put(
            f"/v1/reports/{report.json()['id']}/draft",
            json={
                "experts": [
                    {"full_name": "Đặng Văn Tú", "level": "national", "certified_on": "2024-03-01"}
                ]
            },
            headers={**office.reporter, "If-Match": report.headers["etag"]},
        )
        submitted = await office.http.post(
            f"/v1/reports/{report.json()['id']}/submission",
            headers={**office.reporter, "If-Match": written.headers["etag"]},
        )
        await office.http.post(
            f"/v1/reports/{report.json()['id']}/acceptance",
            headers={**office.reviewer, "If-Match": submitted.headers["etag"]},
        )
        course = await office.accepted(TRAINING_COURSE)
        await run_scheduled_refreshes(resources)

        totals = await office.totals(2024)
        assert totals[("experts-certified", "")] == "3"
        assert totals[("experts-certified", "certification_level=national")] == "2"
        assert totals[("experts-certified", "certification_level=regional")] == "1"
        behind = await office.provenance(2024, "experts-certified")
        assert [(c["kind"], c["value"]) for c in behind] == [
            ("report_version", "1"),
            ("record_version", "2"),
        ]
        assert behind[0]["report_id"] == report.json()["id"]
        assert behind[1]["record_id"] == course.json()["id"]
        subtree = await office.http.get(
            "/v1/rollups/bac-kan-nscl/2024",
            params={"unit": OWN_UNIT, "indicator": "experts-certified"},
            headers=office.reporter,
        )
        assert {c["disaggregation"]: c["value"] for c in subtree.json()["cells"]} == {
            "": "3",
            "certification_level=national": "2",
            "certification_level=regional": "1",
        }
        # The regional figure the 2026–2030 target counts comes from the course alone.
        [regional] = await office.provenance(
            2024, "experts-certified", "certification_level=regional"
        )
        assert regional["record_id"] == course.json()["id"]

    async def test_a_figure_counted_from_records_cannot_be_typed_in_a_report(
        self, office: Office
    ) -> None:
        await office.http.post(
            f"{BK}/obligations/generation",
            json={"year": 2024, "regime": "bk-annual"},
            headers=office.reviewer,
        )
        [obligation] = (
            await office.http.get(f"{BK}/obligations?year=2024", headers=office.reporter)
        ).json()["items"]
        report = await office.http.post(
            "/v1/reports", json={"obligation_id": obligation["id"]}, headers=office.reporter
        )
        written = await office.http.put(
            f"/v1/reports/{report.json()['id']}/draft",
            json={"indicator_values": [{"indicator": "communication-reach", "value": "500"}]},
            headers={**office.reporter, "If-Match": report.headers["etag"]},
        )
        refused = await office.http.post(
            f"/v1/reports/{report.json()['id']}/submission",
            headers={**office.reporter, "If-Match": written.headers["etag"]},
        )
        body = assert_problem(refused, 422, "report_invalid")
        assert [e["code"] for e in body["errors"]] == ["derived_indicator_typed"]  # type: ignore[attr-defined]

    async def test_a_record_not_yet_accepted_counts_nothing(
        self, office: Office, resources: Resources
    ) -> None:
        await office.submit(await office.create(HONOUR))
        await office.accepted(COMMUNICATION)
        await run_scheduled_refreshes(resources)
        totals = await office.totals(2024)
        assert ("honoured-recipients", "") not in totals
        assert totals[("communication-activities", "")] == "1"


class TestTargetsJudgedOnRecords:
    async def test_regional_and_international_experts_of_courses_meet_their_own_target(
        self, office: Office, resources: Resources
    ) -> None:
        course = copy.deepcopy(TRAINING_COURSE)
        course.update(starts_on="2026-04-06", ends_on="2026-04-17")
        course["experts"] = [
            {"full_name": "Lý Thị Mai", "level": "regional", "certified_on": "2026-04-17"},
            {"full_name": "Phan Văn Đức", "level": "international", "certified_on": "2026-04-17"},
            {"full_name": "Hoàng Văn Nam", "level": "national", "certified_on": "2026-04-17"},
        ]
        await office.accepted(course)
        await run_scheduled_refreshes(resources)
        rollup = await office.http.get("/v1/rollups/bac-kan-nscl/2026", headers=office.reporter)
        targets = {t["key"]: t for t in rollup.json()["targets"]}
        assert targets["bk-experts-2026-2030"]["actual"] == "3"
        assert targets["bk-experts-regional-international-2026-2030"]["actual"] == "2"

    async def test_the_model_enterprise_record_meets_the_model_enterprise_target(
        self, office: Office, resources: Resources
    ) -> None:
        await office.accepted(MODEL_ENTERPRISE)
        await run_scheduled_refreshes(resources)
        rollup = await office.http.get("/v1/rollups/bac-kan-nscl/2024", headers=office.reporter)
        [target] = [t for t in rollup.json()["targets"] if t["indicator"] == "model-enterprises"]
        assert Decimal(target["actual"]) == 1
        assert target["status"] == "achieved"


class TestReview:
    async def test_returned_rewritten_resubmitted_then_accepted(self, office: Office) -> None:
        submitted = await office.submit(await office.create(INSPECTION))
        returned = await office.http.post(
            f"/v1/records/{submitted.json()['id']}/return",
            json={"reason": "Thiếu kiến nghị"},
            headers={**office.reviewer, "If-Match": submitted.headers["etag"]},
        )
        assert returned.status_code == 200, returned.text
        assert (returned.json()["status"], returned.json()["returned_reason"]) == (
            "returned", "Thiếu kiến nghị",
        )  # fmt: skip
        more = copy.deepcopy(INSPECTION)
        more["recommendations"].append({"text": "Bố trí cán bộ đầu mối"})
        rewritten = await office.http.put(
            f"/v1/records/{returned.json()['id']}/content",
            json={"content": more},
            headers={**office.reporter, "If-Match": returned.headers["etag"]},
        )
        assert rewritten.status_code == 200, rewritten.text
        resubmitted = await office.submit(rewritten)
        assert resubmitted.json()["status"] == "resubmitted"
        accepted = await office.accept(resubmitted)
        assert accepted.json()["accepted_version_no"] == 2
        versions = await office.http.get(
            f"/v1/records/{accepted.json()['id']}/versions", headers=office.reporter
        )
        assert [(v["version_no"], v["kind"]) for v in versions.json()["items"]] == [
            (1, "submission"),
            (2, "resubmission"),
        ]
        second = {
            (f["indicator"], f["disaggregation"]): f["value"]
            for f in versions.json()["items"][1]["figures"]
        }
        assert second[("inspection-recommendations", "follow_up=pending")] == "2"

    async def test_a_follow_up_is_a_correction_and_the_accepted_version_counts_until_then(
        self, office: Office, resources: Resources
    ) -> None:
        accepted = await office.accepted(INSPECTION)
        await run_scheduled_refreshes(resources)
        reopened = await office.http.post(
            f"/v1/records/{accepted.json()['id']}/correction",
            json={"reason": "Cập nhật kết quả khắc phục"},
            headers={**office.reporter, "If-Match": accepted.headers["etag"]},
        )
        assert reopened.status_code == 200, reopened.text
        assert reopened.json()["status"] == "draft"
        followed = copy.deepcopy(INSPECTION)
        followed["recommendations"][0]["follow_up"] = "done"
        written = await office.http.put(
            f"/v1/records/{reopened.json()['id']}/content",
            json={"content": followed},
            headers={**office.reporter, "If-Match": reopened.headers["etag"]},
        )
        submitted = await office.submit(written)
        # Submitted, not accepted: the published figure still comes from version 1.
        [pending] = await office.provenance(2024, "inspection-recommendations", "follow_up=pending")
        assert (pending["version_no"], pending["value"]) == (1, "1")
        await office.accept(submitted)
        await run_scheduled_refreshes(resources)
        totals = await office.totals(2024)
        assert ("inspection-recommendations", "follow_up=pending") not in totals
        assert totals[("inspection-recommendations", "follow_up=done")] == "2"
        [behind] = await office.provenance(2024, "inspections-held")
        assert behind["version_no"] == 2

    async def test_a_submitted_record_cannot_be_rewritten(self, office: Office) -> None:
        submitted = await office.submit(await office.create(HONOUR))
        response = await office.http.put(
            f"/v1/records/{submitted.json()['id']}/content",
            json={"content": HONOUR},
            headers={**office.reporter, "If-Match": submitted.headers["etag"]},
        )
        assert_problem(response, 409, "record_not_editable")

    async def test_a_stale_revision_is_refused(self, office: Office) -> None:
        created = await office.create(HONOUR)
        response = await office.http.post(
            f"/v1/records/{created.json()['id']}/submission",
            headers={**office.reporter, "If-Match": '"7"'},
        )
        assert_problem(response, 412, "stale_revision")

    async def test_a_reporter_cannot_accept(self, office: Office) -> None:
        submitted = await office.submit(await office.create(HONOUR))
        response = await office.http.post(
            f"/v1/records/{submitted.json()['id']}/acceptance",
            headers={**office.reporter, "If-Match": submitted.headers["etag"]},
        )
        assert_problem(response, 403, "insufficient_scope")

    async def test_submitted_versions_are_frozen(
        self, office: Office, db_connection: AsyncConnection
    ) -> None:
        await office.submit(await office.create(HONOUR))
        for table in ("programme_record_version", "record_figure"):
            nested = await db_connection.begin_nested()
            with pytest.raises(DBAPIError, match="frozen"):
                await db_connection.execute(text(f"DELETE FROM {table}"))
            await nested.rollback()


class TestScopeAndLists:
    async def test_a_unit_sees_its_own_records_and_reviewers_see_every_unit(
        self, office: Office
    ) -> None:
        mine = await office.create(HONOUR)
        theirs = await office.create(COMMUNICATION, office.other)
        assert theirs.json()["unit"] == OTHER_UNIT
        hidden = await office.http.get(
            f"/v1/records/{theirs.json()['id']}", headers=office.reporter
        )
        assert_problem(hidden, 404, "record_not_found")
        listed = await office.http.get(RECORDS, headers=office.reporter)
        assert [r["id"] for r in listed.json()["items"]] == [mine.json()["id"]]
        every = await office.http.get(RECORDS, headers=office.reviewer)
        assert {r["unit"] for r in every.json()["items"]} == {OWN_UNIT, OTHER_UNIT}
        by_unit = await office.http.get(
            RECORDS, params={"unit": OTHER_UNIT}, headers=office.reviewer
        )
        assert [r["id"] for r in by_unit.json()["items"]] == [theirs.json()["id"]]
        unknown = await office.http.get(
            RECORDS, params={"unit": "no-such"}, headers=office.reviewer
        )
        assert_problem(unknown, 404, "unit_not_found")

    async def test_pages_follow_the_cursor(self, office: Office) -> None:
        ids = [
            (await office.create(content)).json()["id"]
            for content in (HONOUR, COMMUNICATION, INSPECTION)
        ]
        first = await office.http.get(RECORDS, params={"limit": 2}, headers=office.reporter)
        assert first.json()["next_cursor"]
        second = await office.http.get(
            RECORDS,
            params={"limit": 2, "cursor": first.json()["next_cursor"]},
            headers=office.reporter,
        )
        assert second.json().get("next_cursor") is None
        assert [r["id"] for r in first.json()["items"] + second.json()["items"]] == ids

    async def test_words_are_found_in_any_order_with_or_without_diacritics(
        self, office: Office
    ) -> None:
        honour = await office.create(HONOUR)
        await office.create(COMMUNICATION)
        for q in ("nguyen thi hoa", "HOA nguyễn", "tran binh"):
            found = await office.http.get(RECORDS, params={"q": q}, headers=office.reporter)
            assert [r["id"] for r in found.json()["items"]] == [honour.json()["id"]], q
        nothing = await office.http.get(RECORDS, params={"q": "hoa 100%"}, headers=office.reporter)
        assert nothing.json()["items"] == []


class TestInput:
    async def test_text_is_stored_in_nfc(self, office: Office) -> None:
        nfd = "Nguye\u0302\u0303n Thi\u0323 Hoa"
        content = copy.deepcopy(HONOUR)
        content["recipients"][1]["name"] = nfd
        created = await office.create(content)
        assert created.json()["content"]["recipients"][1]["name"] == "Nguyễn Thị Hoa"

    async def test_a_control_character_is_a_field_error(self, office: Office) -> None:
        content = copy.deepcopy(HONOUR)
        content["issued_by"] = "Chủ tịch\x00"
        body = assert_problem(await office.create(content), 422, "validation_failed")
        assert any(e["location"][-1] == "issued_by" for e in body["errors"])  # type: ignore[attr-defined]

    @pytest.mark.parametrize(
        ("change", "code"),
        [
            ({"decision_date": "2031-01-05"}, "year_outside_programme"),
            ({"recipients": []}, "validation_failed"),
        ],
    )
    async def test_invalid_records_are_refused(
        self, office: Office, change: dict[str, Any], code: str
    ) -> None:
        assert_problem(await office.create({**HONOUR, **change}), 422, code)

    async def test_an_inspection_names_a_unit_that_exists(self, office: Office) -> None:
        body = assert_problem(
            await office.create({**INSPECTION, "inspected_unit": "no-such-unit"}),
            422,
            "unit_not_found",
        )
        assert body["errors"][0]["location"][-1] == "inspected_unit"  # type: ignore[index]

    async def test_a_model_enterprise_is_dated_when_recognised(self, office: Office) -> None:
        response = await office.create({**MODEL_ENTERPRISE, "recognised_on": None})
        assert_problem(response, 422, "validation_failed")
        selected = await office.create(
            {**MODEL_ENTERPRISE, "state": "applying", "recognised_on": None}
        )
        # Counted from the year it started, and it counts nothing until it is a model.
        assert (selected.json()["year"], selected.json()["figures"]) == (2023, [])

    async def test_a_record_keeps_its_kind(self, office: Office) -> None:
        created = await office.create(HONOUR)
        response = await office.http.put(
            f"/v1/records/{created.json()['id']}/content",
            json={"content": COMMUNICATION},
            headers={**office.reporter, "If-Match": created.headers["etag"]},
        )
        assert_problem(response, 422, "record_kind_changed")
