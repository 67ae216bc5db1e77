"""Reports over HTTP: drafts under If-Match, frozen versions, rules, imports, idempotency."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from openpyxl import Workbook
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from nscl_api.auth.tokens import KeyRing
from nscl_api.resources import Resources
from nscl_domain.jobs import JobName
from nscl_domain.jobs.models import Job
from nscl_domain.jobs.registry import JobContext
from nscl_domain.reports.content import MAX_INDICATOR_VALUES
from nscl_domain.reports.importing import XLSX_MEDIA_TYPE
from nscl_domain.rollups import service as rollups
from tests.api.test_problems import assert_problem
from tests.conftest import OWN_UNIT, mint_token

BK = "/v1/programmes/bac-kan-nscl"


def auth(keys: KeyRing, client_id: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {mint_token(keys, client_id)}"}


class Desk:
    """A reporter of OWN_UNIT and a reviewer at work, on one HTTP client."""

    def __init__(self, http: httpx.AsyncClient, keys: KeyRing) -> None:
        self.http = http
        self.reporter = auth(keys, "test-reporter")
        self.reviewer = auth(keys, "test-reviewer")

    async def obligation(self, year: int) -> str:
        await self.http.post(
            f"{BK}/obligations/generation",
            json={"year": year, "regime": "bk-annual"},
            headers=self.reviewer,
        )
        items = (
            await self.http.get(f"{BK}/obligations?year={year}", headers=self.reporter)
        ).json()["items"]
        assert [o["unit"] for o in items] == [OWN_UNIT]
        return str(items[0]["id"])

    async def draft(self, year: int, content: dict[str, Any] | None = None) -> httpx.Response:
        created = await self.http.post(
            "/v1/reports",
            json={"obligation_id": await self.obligation(year)},
            headers=self.reporter,
        )
        assert created.status_code == 201, created.text
        if content is None:
            return created
        written = await self.http.put(
            f"/v1/reports/{created.json()['id']}/draft",
            json=content,
            headers={**self.reporter, "If-Match": created.headers["etag"]},
        )
        assert written.status_code == 200, written.text
        return written

    async def submit(self, report: httpx.Response) -> httpx.Response:
        return await self.http.post(
            f"/v1/reports/{report.json()['id']}/submission",
            headers={**self.reporter, "If-Match": report.headers["etag"]},
        )

    async def accept(self, report: httpx.Response) -> httpx.Response:
        return await self.http.post(
            f"/v1/reports/{report.json()['id']}/acceptance",
            headers={**self.reviewer, "If-Match": report.headers["etag"]},
        )


@pytest.fixture
def desk(anonymous: httpx.AsyncClient, keys: KeyRing) -> Desk:
    return Desk(anonymous, keys)


def courses(value: str, year: int = 2024) -> dict[str, Any]:
    return {
        "indicator_values": [{"indicator": "training-courses", "value": value}],
        "experts": [
            {"full_name": "Nguyễn Văn An", "level": "national", "certified_on": f"{year}-05-02"}
        ],
    }


class TestDraftsAndVersions:
    async def test_a_submitted_version_cannot_be_changed(self, desk: Desk) -> None:
        submitted = await desk.submit(await desk.draft(2024, courses("3")))
        assert submitted.status_code == 200
        response = await desk.http.put(
            f"/v1/reports/{submitted.json()['id']}/draft",
            json=courses("4"),
            headers={**desk.reporter, "If-Match": submitted.headers["etag"]},
        )
        assert_problem(response, 409, "report_not_editable")
        again = await desk.submit(submitted)
        assert_problem(again, 409, "transition_not_allowed")

    async def test_stale_if_match_is_412_and_a_missing_one_428(self, desk: Desk) -> None:
        created = await desk.draft(2024)
        report_id = created.json()["id"]
        first = await desk.http.put(
            f"/v1/reports/{report_id}/draft",
            json=courses("1"),
            headers={**desk.reporter, "If-Match": created.headers["etag"]},
        )
        assert first.status_code == 200
        stale = await desk.http.put(
            f"/v1/reports/{report_id}/draft",
            json=courses("2"),
            headers={**desk.reporter, "If-Match": created.headers["etag"]},
        )
        assert_problem(stale, 412, "stale_revision")
        missing = await desk.http.put(
            f"/v1/reports/{report_id}/draft", json=courses("2"), headers=desk.reporter
        )
        assert_problem(missing, 428, "precondition_required")
        current = (await desk.http.get(f"/v1/reports/{report_id}", headers=desk.reporter)).json()
        assert current["draft"]["indicator_values"][0]["value"] == "1"

    async def test_frozen_rows_are_refused_by_postgresql(
        self, desk: Desk, db_connection: AsyncConnection
    ) -> None:
        await desk.submit(await desk.draft(2024, courses("3")))
        for statement in (
            "UPDATE report_version SET reason = 'rewritten'",
            "DELETE FROM indicator_value",
        ):
            with pytest.raises(DBAPIError, match="is frozen once written"):
                async with db_connection.begin_nested():
                    await db_connection.execute(text(statement))

    async def test_correction_after_acceptance_is_a_new_version_with_its_reason(
        self, desk: Desk
    ) -> None:
        accepted = await desk.accept(await desk.submit(await desk.draft(2024, courses("3"))))
        reopened = await desk.http.post(
            f"/v1/reports/{accepted.json()['id']}/correction",
            json={"reason": "Sai số lớp tập huấn"},
            headers={**desk.reporter, "If-Match": accepted.headers["etag"]},
        )
        assert reopened.json()["status"] == "draft"
        rewritten = await desk.http.put(
            f"/v1/reports/{accepted.json()['id']}/draft",
            json=courses("5"),
            headers={**desk.reporter, "If-Match": reopened.headers["etag"]},
        )
        resubmitted = await desk.submit(rewritten)
        assert resubmitted.json()["latest_version_no"] == 2
        assert resubmitted.json()["accepted_version_no"] == 1
        version = (
            await desk.http.get(
                f"/v1/reports/{accepted.json()['id']}/versions/2", headers=desk.reviewer
            )
        ).json()
        assert (version["kind"], version["reason"]) == ("correction", "Sai số lớp tập huấn")


class TestIdempotency:
    async def test_a_repeated_post_creates_one_report(self, desk: Desk) -> None:
        obligation = await desk.obligation(2024)
        headers = {**desk.reporter, "Idempotency-Key": "4b0e1c1e-create-report-2024"}
        first = await desk.http.post(
            "/v1/reports", json={"obligation_id": obligation}, headers=headers
        )
        second = await desk.http.post(
            "/v1/reports", json={"obligation_id": obligation}, headers=headers
        )
        assert first.status_code == second.status_code == 201
        assert first.json()["id"] == second.json()["id"]
        assert second.headers["idempotent-replayed"] == "true"
        without_key = await desk.http.post(
            "/v1/reports", json={"obligation_id": obligation}, headers=desk.reporter
        )
        assert_problem(without_key, 409, "report_exists")

    async def test_the_same_key_for_another_request_is_refused(self, desk: Desk) -> None:
        headers = {**desk.reporter, "Idempotency-Key": "4b0e1c1e-reused-key-0001"}
        first = await desk.http.post(
            "/v1/reports", json={"obligation_id": await desk.obligation(2024)}, headers=headers
        )
        assert first.status_code == 201
        other = await desk.http.post(
            "/v1/reports", json={"obligation_id": await desk.obligation(2023)}, headers=headers
        )
        assert_problem(other, 422, "idempotency_key_reused")


class TestValidationRules:
    async def test_errors_block_submission_and_name_each_place(self, desk: Desk) -> None:
        bad = {
            "indicator_values": [
                {"indicator": "training-courses", "value": "-2"},
                {"indicator": "experts-certified", "value": "3"},
                {"indicator": "no-such-indicator", "value": "1"},
            ],
            "experts": [
                {"full_name": "Trần Thị Bình", "level": "regional", "certified_on": "2019-03-01"}
            ],
            "task_progress": [{"task": "t-9-9", "status": "completed"}],
        }
        draft = await desk.draft(2024, bad)
        body = assert_problem(await desk.submit(draft), 422, "report_invalid")
        codes = {e["code"] for e in body["errors"]}  # type: ignore[attr-defined]
        assert codes == {
            "negative_value",
            "derived_indicator_typed",
            "unknown_indicator",
            "record_outside_year",
            "unknown_task",
        }
        still = await desk.http.get(f"/v1/reports/{draft.json()['id']}", headers=desk.reporter)
        assert still.json()["status"] == "draft"
        assert still.json()["latest_version_no"] == 0

    async def test_an_invalid_tax_code_is_refused_in_the_draft(self, desk: Desk) -> None:
        created = await desk.draft(2024)
        response = await desk.http.put(
            f"/v1/reports/{created.json()['id']}/draft",
            json={
                "enterprises": [
                    {"tax_code": "0100109107", "name": "Công ty X", "solution": "iso_9001"}
                ]
            },
            headers={**desk.reporter, "If-Match": created.headers["etag"]},
        )
        body = assert_problem(response, 422, "validation_failed")
        assert body["errors"][0]["location"][-1] == "tax_code"  # type: ignore[index]

    async def test_a_jump_against_last_year_is_a_warning_kept_with_the_version(
        self, desk: Desk
    ) -> None:
        await desk.accept(await desk.submit(await desk.draft(2023, courses("2", 2023))))
        submitted = await desk.submit(await desk.draft(2024, courses("20")))
        assert submitted.status_code == 200, submitted.text
        version = (
            await desk.http.get(
                f"/v1/reports/{submitted.json()['id']}/versions/1", headers=desk.reporter
            )
        ).json()
        assert [(w["code"], w["severity"]) for w in version["warnings"]] == [
            ("yearly_jump", "warning")
        ]

    async def test_rules_are_listed_and_their_parameters_changed(self, desk: Desk) -> None:
        rules = (await desk.http.get("/v1/validation-rules", headers=desk.reporter)).json()
        jump = next(r for r in rules["items"] if r["code"] == "yearly_jump")
        assert (jump["severity"], jump["params"]) == ("warning", {"factor": 3})
        changed = await desk.http.patch(
            "/v1/validation-rules/yearly_jump",
            json={"params": {"factor": 20}},
            headers=desk.reviewer,
        )
        assert changed.json()["params"] == {"factor": 20}
        await desk.accept(await desk.submit(await desk.draft(2023, courses("2", 2023))))
        submitted = await desk.submit(await desk.draft(2024, courses("20")))
        version = (
            await desk.http.get(
                f"/v1/reports/{submitted.json()['id']}/versions/1", headers=desk.reporter
            )
        ).json()
        assert version["warnings"] == []
        refused = await desk.http.patch(
            "/v1/validation-rules/yearly_jump",
            json={"params": {"factor": 1}},
            headers=desk.reviewer,
        )
        assert_problem(refused, 422, "invalid_rule_params")


def workbook(rows: list[list[object]]) -> bytes:
    book = Workbook()
    sheet = book.active
    sheet.append(["unit", "year", "indicator", "trainee_group", "value"])
    for row in rows:
        sheet.append(row)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


class TestSpreadsheetImport:
    async def test_bad_rows_are_each_reported_in_a_dry_run_and_nothing_changes(
        self, desk: Desk
    ) -> None:
        created = await desk.draft(2024, courses("3"))
        report_id = created.json()["id"]
        upload = workbook(
            [
                [OWN_UNIT, 2024, "no-such-indicator", None, 1],
                [OWN_UNIT, 2024, "training-courses", None, "mười"],
                [OWN_UNIT, 2024, "people-trained", "manager", -4],
                [OWN_UNIT, 2024, "people-trained", "worker", 7],
                [OWN_UNIT, 2024, "people-trained", "worker", 8],
            ]
        )
        headers = {**desk.reporter, "Content-Type": XLSX_MEDIA_TYPE}
        response = await desk.http.post(
            f"/v1/reports/{report_id}/indicator-values/import?dry_run=true",
            content=upload,
            headers=headers,
        )
        assert response.status_code == 200, response.text
        outcome = response.json()
        assert (outcome["valid"], outcome["applied"], outcome["rows_read"]) == (False, False, 5)
        # Rows and cells are placed as every problem places a field: body, row, column.
        assert [(e["location"], e["code"]) for e in outcome["errors"]] == [
            (["body", 2, "indicator"], "unknown_indicator"),
            (["body", 3, "value"], "not_a_number"),
            (["body", 4, "value"], "negative_value"),
            (["body", 6], "duplicate_row"),
        ]
        real = await desk.http.post(
            f"/v1/reports/{report_id}/indicator-values/import?dry_run=false",
            content=upload,
            headers={**headers, "If-Match": created.headers["etag"]},
        )
        assert_problem(real, 422, "import_rejected")
        assert real.json()["errors"] == outcome["errors"]
        assert "rows" not in real.json()
        after = (await desk.http.get(f"/v1/reports/{report_id}", headers=desk.reporter)).json()
        assert after["revision"] == created.json()["revision"]
        assert after["draft"]["indicator_values"] == created.json()["draft"]["indicator_values"]

    async def test_a_good_file_replaces_the_typed_values(self, desk: Desk) -> None:
        created = await desk.draft(2024, courses("3"))
        report_id = created.json()["id"]
        template = await desk.http.get(
            f"/v1/reports/{report_id}/indicator-template?format=xlsx", headers=desk.reporter
        )
        assert template.headers["content-type"] == XLSX_MEDIA_TYPE
        upload = workbook(
            [
                [OWN_UNIT, 2024, "training-courses", None, 6],
                [OWN_UNIT, 2024, "people-trained", "manager", 10],
                [OWN_UNIT, 2024, "people-trained", "worker", 30],
            ]
        )
        applied = await desk.http.post(
            f"/v1/reports/{report_id}/indicator-values/import?dry_run=false",
            content=upload,
            headers={
                **desk.reporter,
                "Content-Type": XLSX_MEDIA_TYPE,
                "If-Match": created.headers["etag"],
            },
        )
        assert applied.status_code == 200, applied.text
        assert applied.json()["applied"] is True
        draft = (await desk.http.get(f"/v1/reports/{report_id}", headers=desk.reporter)).json()
        values = {
            (v["indicator"], tuple(v["disaggregation"].values()), v["value"])
            for v in draft["draft"]["indicator_values"]
        }
        assert values == {
            ("training-courses", (), "6"),
            ("people-trained", ("manager",), "10"),
            ("people-trained", ("worker",), "30"),
        }
        assert draft["draft"]["experts"]  # records are not touched by an import

    async def test_a_file_that_is_not_a_spreadsheet(self, desk: Desk) -> None:
        created = await desk.draft(2024)
        url = f"/v1/reports/{created.json()['id']}/indicator-values/import"
        garbage = await desk.http.post(
            url,
            content=b"PK\x03\x04nonsense",
            headers={**desk.reporter, "Content-Type": XLSX_MEDIA_TYPE},
        )
        assert_problem(garbage, 422, "unreadable_file")
        wrong_type = await desk.http.post(
            url, content=b"{}", headers={**desk.reporter, "Content-Type": "application/json"}
        )
        assert_problem(wrong_type, 415, "unsupported_media_type")


# A typed indicator broken down finely enough for files of thousands of distinct values
# (the catalogue has no write API: it is the plan's).
ADD_COMMUNE_INDICATOR = """
INSERT INTO indicator (id, key, programme_id, name_vi, name_en, unit, aggregation_across_units,
                       aggregation_across_time, disaggregations, derived_from)
SELECT gen_random_uuid(), 'trained-by-commune', p.id, 'Số người được tập huấn theo xã',
       'People trained by commune', 'person', 'sum', 'sum', CAST(:disaggregations AS jsonb), NULL
FROM programme p WHERE p.key = 'bac-kan-nscl'
"""


class TestValuesAReportHolds:
    async def test_an_applied_import_of_thousands_of_values_reads_back(
        self, desk: Desk, db_connection: AsyncConnection
    ) -> None:
        communes = [f"xa-{n:05d}" for n in range(6_000)]
        await db_connection.execute(
            text(ADD_COMMUNE_INDICATOR),
            {"disaggregations": json.dumps([{"dimension": "commune", "values": communes}])},
        )
        created = await desk.draft(2024)
        report_id = created.json()["id"]
        upload = "\n".join(
            ["indicator,commune,value", *(f"trained-by-commune,{c},{n}" for n, c in
                                          enumerate(communes))]
        ).encode()  # fmt: skip
        applied = await desk.http.post(
            f"/v1/reports/{report_id}/indicator-values/import?dry_run=false",
            content=upload,
            headers={
                **desk.reporter,
                "Content-Type": "text/csv",
                "If-Match": created.headers["etag"],
            },
        )
        assert applied.status_code == 200, applied.text
        assert applied.json()["values"] == len(communes)
        read = await desk.http.get(f"/v1/reports/{report_id}", headers=desk.reporter)
        assert read.status_code == 200, read.text
        values = read.json()["draft"]["indicator_values"]
        assert len(values) == len(communes)
        assert values[-1] == {
            "indicator": "trained-by-commune",
            "disaggregation": {"commune": communes[-1]},
            "value": str(len(communes) - 1),
        }

    async def test_a_draft_holds_up_to_the_limit_and_is_refused_past_it(self, desk: Desk) -> None:
        created = await desk.draft(2024)
        report_id = created.json()["id"]
        entry = {"indicator": "training-courses", "value": "1"}
        full = await desk.http.put(
            f"/v1/reports/{report_id}/draft",
            json={"indicator_values": [entry] * MAX_INDICATOR_VALUES},
            headers={**desk.reporter, "If-Match": created.headers["etag"]},
        )
        assert full.status_code == 200, full.text[:500]
        read = await desk.http.get(f"/v1/reports/{report_id}", headers=desk.reporter)
        assert read.status_code == 200
        assert len(read.json()["draft"]["indicator_values"]) == MAX_INDICATOR_VALUES
        over = await desk.http.put(
            f"/v1/reports/{report_id}/draft",
            json={"indicator_values": [entry] * (MAX_INDICATOR_VALUES + 1)},
            headers={**desk.reporter, "If-Match": full.headers["etag"]},
        )
        assert_problem(over, 422, "validation_failed")
        assert [(e["location"], e["code"]) for e in over.json()["errors"]] == [
            (["body", "indicator_values"], "too_long")
        ]


class TestObligationsFollowTheStructure:
    async def test_after_the_2025_mergers_successors_report(
        self, anonymous: httpx.AsyncClient, keys: KeyRing
    ) -> None:
        reviewer = auth(keys, "test-reviewer")
        for year in (2024, 2026):
            await anonymous.post(
                f"{BK}/obligations/generation",
                json={"year": year, "regime": "bk-annual"},
                headers=reviewer,
            )
        units = {}
        for year in (2024, 2026):
            items = (await anonymous.get(f"{BK}/obligations?year={year}", headers=reviewer)).json()[
                "items"
            ]
            units[year] = {o["unit"] for o in items}
        assert len(units[2024]) == 14
        assert "bk-cho-don" in units[2024]
        assert not any(key.startswith("bk-") for key in units[2026])
        assert units[2026]
        again = await anonymous.post(
            f"{BK}/obligations/generation",
            json={"year": 2026, "regime": "bk-annual"},
            headers=reviewer,
        )
        assert again.json() == {"created": 0}

    async def test_a_later_deadline_applies_to_obligations_generated_after(
        self, anonymous: httpx.AsyncClient, keys: KeyRing
    ) -> None:
        reviewer = auth(keys, "test-reviewer")
        moved = await anonymous.patch(
            f"{BK}/reporting-regimes/bk-annual",
            json={"due_month": 12, "due_day": 10},
            headers=reviewer,
        )
        assert moved.status_code == 200, moved.text
        await anonymous.post(
            f"{BK}/obligations/generation",
            json={"year": 2024, "regime": "bk-annual"},
            headers=reviewer,
        )
        items = (await anonymous.get(f"{BK}/obligations?year=2024", headers=reviewer)).json()[
            "items"
        ]
        assert {o["due_date"] for o in items} == {"2024-12-10"}
        bad = await anonymous.patch(
            f"{BK}/reporting-regimes/bk-annual",
            json={"due_month": 2, "due_day": 31},
            headers=reviewer,
        )
        assert_problem(bad, 422, "invalid_due_date")


class TestAdHocRequests:
    async def test_a_request_has_its_units_indicators_and_questions(self, desk: Desk) -> None:
        created = await desk.http.post(
            f"{BK}/reporting-requests",
            json={
                "title_vi": "Báo cáo đột xuất về đào tạo",
                "title_en": "Ad hoc report on training",
                "year": 2024,
                "due_date": "2024-08-15",
                "units": [OWN_UNIT, "bk-ba-be"],
                "indicators": ["training-courses"],
                "questions": ["Khó khăn chính là gì?"],
            },
            headers=desk.reviewer,
        )
        assert created.status_code == 201, created.text
        assert created.json()["obligations_created"] == 2
        request_id = created.json()["id"]
        mine = (
            await desk.http.get(f"{BK}/obligations?request_id={request_id}", headers=desk.reporter)
        ).json()["items"]
        assert [o["unit"] for o in mine] == [OWN_UNIT]
        report = await desk.http.post(
            "/v1/reports", json={"obligation_id": mine[0]["id"]}, headers=desk.reporter
        )
        written = await desk.http.put(
            f"/v1/reports/{report.json()['id']}/draft",
            json={"indicator_values": [{"indicator": "people-trained", "value": "3"}]},
            headers={**desk.reporter, "If-Match": report.headers["etag"]},
        )
        body = assert_problem(await desk.submit(written), 422, "report_invalid")
        assert [e["code"] for e in body["errors"]] == ["indicator_not_requested"]  # type: ignore[attr-defined]

    async def test_units_that_do_not_exist_on_the_due_date_are_refused(self, desk: Desk) -> None:
        response = await desk.http.post(
            f"{BK}/reporting-requests",
            json={
                "title_vi": "x", "title_en": "x", "year": 2026, "due_date": "2026-03-01",
                "units": ["bk-cho-don"],
            },
            headers=desk.reviewer,
        )  # fmt: skip
        assert_problem(response, 422, "unit_not_found")


class TestRollupsFollowAcceptance:
    async def test_acceptance_schedules_a_rollup_that_sums_accepted_figures(
        self, desk: Desk, resources: Resources
    ) -> None:
        accepted = await desk.accept(await desk.submit(await desk.draft(2024, courses("3"))))
        assert accepted.status_code == 200
        async with resources.sessionmaker() as session:
            query = select(Job).where(Job.name == JobName.REFRESH_ROLLUP)
            jobs = (await session.scalars(query)).all()
            assert len(jobs) == 1  # submission and acceptance share one debounced job
            context = JobContext(
                session=session, job_id=jobs[0].id, attempt=1, now=datetime.now(UTC)
            )
            args = rollups.RefreshRollupArgs.model_validate(jobs[0].args)
            first = await rollups.refresh(context, args)
            second = await rollups.refresh(context, args)
            await session.commit()
        assert first["unchanged"] is False
        assert second == {"run_id": first["run_id"], "unchanged": True}
        rollup = await desk.http.get("/v1/rollups/bac-kan-nscl/2024", headers=desk.reporter)
        totals = {
            (t["indicator"], t["disaggregation"]): t["value"]
            for t in rollup.json()["cells"]
            if t["breakdown"] == ""
        }
        assert totals[("training-courses", "")] == "3"
        assert totals[("experts-certified", "certification_level=national")] == "1"
        assert rollup.json()["sources"] == 1
        behind = await desk.http.get(
            "/v1/rollups/bac-kan-nscl/2024/provenance",
            params={"indicator": "training-courses"},
            headers=desk.reporter,
        )
        [contribution] = behind.json()["items"]
        assert (contribution["unit"], contribution["value"]) == (OWN_UNIT, "3")
        unchanged = await desk.http.get(
            "/v1/rollups/bac-kan-nscl/2024",
            headers={**desk.reporter, "If-None-Match": rollup.headers["etag"]},
        )
        assert unchanged.status_code == 304
