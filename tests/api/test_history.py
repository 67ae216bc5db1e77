"""Entering past reports one at a time and recording baselines: the rules of each, what is
kept, and how targets read before and after the baselines exist."""

from __future__ import annotations

import asyncio
import io
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from openpyxl import Workbook

from nscl_api.auth.tokens import KeyRing
from nscl_api.resources import Resources
from tests.api.test_problems import assert_problem
from tests.conftest import mint_token
from tests.e2e.test_rollups import refresh

BK = "bac-kan-nscl"
ENTERPRISE = {
    "tax_code": "0100109106",
    "name": "Công ty Cổ phần Chè Bắc Kạn",
    "solution": "iso_9001",
    "certificate_issued": True,
    "certified_on": "2022-05-10",
}


def entry(unit: str = "bk-doh", year: int = 2022, **changes: Any) -> dict[str, Any]:
    return {
        "unit": unit,
        "year": year,
        "letter": {"number": "152/BC-SYT", "date": f"{year}-12-01"},
        "received_on": f"{year}-12-04",
        "content": {"enterprises": [ENTERPRISE], "narrative": {"results": "Đạt kế hoạch."}},
        **changes,
    }


def codes(response: httpx.Response) -> list[tuple[list[str | int], str]]:
    return [(e["location"], e["code"]) for e in response.json()["errors"]]


class TestBackfillOneReport:
    async def test_the_letter_and_the_day_received_are_kept_and_judge_timeliness(
        self, client: httpx.AsyncClient
    ) -> None:
        created = await client.post(f"/v1/programmes/{BK}/report-backfills", json=entry())
        assert created.status_code == 201, created.text
        body = created.json()
        assert body["obligations_created"] == 14
        assert body["report"]["received_on"] == "2022-12-04"
        assert body["version"]["backfill"] == {
            "letter": {"number": "152/BC-SYT", "date": "2022-12-01",
                       "issuer": "Sở Y tế tỉnh Bắc Kạn"},
            "received_on": "2022-12-04",
            "entered_by": "test-all",
        }  # fmt: skip
        report_id = body["report"]["id"]
        timeliness = await client.get(f"/v1/programmes/{BK}/timeliness", params={"year": 2022})
        rows = {r["unit"]: r for r in timeliness.json()["rows"]}
        assert (rows["bk-doh"]["status"], rows["bk-doh"]["days_late"]) == ("late", 4)
        assert rows["bk-doh"]["submitted_on"] == "2022-12-04"
        assert rows["bk-na-ri"]["status"] == "missing"
        audit = await client.get(
            "/v1/audit-events", params={"object_id": report_id, "action": "report.backfilled"}
        )
        [event] = audit.json()["items"]
        assert event["client_id"] == "test-all"
        assert event["after"]["days_after_due"] == 4
        assert event["after"]["letter"]["number"] == "152/BC-SYT"

        # A later letter corrects the accepted report; timeliness stays that of the first.
        again = await client.post(
            f"/v1/programmes/{BK}/report-backfills",
            json=entry(letter={"number": "170/BC-SYT", "date": "2023-01-20"},
                       received_on="2023-01-22"),
        )  # fmt: skip
        assert_problem(again, 422, "backfill_invalid")
        assert codes(again) == [(["body", "reason"], "reason_required")]
        corrected = await client.post(
            f"/v1/programmes/{BK}/report-backfills",
            json=entry(letter={"number": "170/BC-SYT", "date": "2023-01-20"},
                       received_on="2023-01-22", reason="Bổ sung số liệu doanh nghiệp"),
        )  # fmt: skip
        assert corrected.status_code == 201, corrected.text
        assert corrected.json()["version"]["kind"] == "correction"
        assert corrected.json()["version"]["version_no"] == 2
        assert corrected.json()["report"]["received_on"] == "2022-12-04"
        versions = await client.get(f"/v1/reports/{report_id}/versions")
        assert [v["backfill"]["letter"]["number"] for v in versions.json()["items"]] == [
            "152/BC-SYT",
            "170/BC-SYT",
        ]

    async def test_the_rules_of_a_submission_and_of_a_letter_are_checked(
        self, client: httpx.AsyncClient
    ) -> None:
        wrong = entry(
            letter={"number": "1/BC", "date": "2022-12-05"},
            received_on="2022-12-01",
            content={"enterprises": [{**ENTERPRISE, "certified_on": "2021-03-01"}]},
        )
        refused = await client.post(f"/v1/programmes/{BK}/report-backfills", json=wrong)
        assert_problem(refused, 422, "backfill_invalid")
        assert codes(refused) == [
            (["body", "received_on"], "received_before_sent"),
            (["body", "content", "enterprises", 0, "certified_on"], "record_outside_year"),
        ]

    async def test_a_year_before_the_programme_is_a_baseline_not_a_report(
        self, client: httpx.AsyncClient
    ) -> None:
        refused = await client.post(f"/v1/programmes/{BK}/report-backfills", json=entry(year=2019))
        body = assert_problem(refused, 422, "backfill_invalid")
        assert codes(refused) == [(["body", "year"], "year_outside_regime")]
        assert "/baselines" in str(body["errors"])

    async def test_a_unit_enters_only_the_years_it_reported(
        self, client: httpx.AsyncClient, resources: Resources
    ) -> None:
        resources.clock = lambda: datetime(2026, 3, 2, 3, 0, tzinfo=UTC)
        refused = await client.post(
            f"/v1/programmes/{BK}/report-backfills", json=entry(unit="bk-doh", year=2025)
        )
        assert codes(refused) == [(["body", "unit"], "not_a_reporting_unit")]

    async def test_a_report_under_way_in_the_system_is_not_overwritten(
        self, client: httpx.AsyncClient, keys: KeyRing
    ) -> None:
        await client.post(
            f"/v1/programmes/{BK}/obligations/generation",
            json={"year": 2022, "regime": "bk-annual"},
        )
        reporter = {"Authorization": f"Bearer {mint_token(keys, 'test-reporter')}"}
        [obligation] = (
            await client.get(
                f"/v1/programmes/{BK}/obligations", params={"year": 2022}, headers=reporter
            )
        ).json()["items"]
        draft = await client.post(
            "/v1/reports", json={"obligation_id": obligation["id"]}, headers=reporter
        )
        assert draft.status_code == 201, draft.text
        refused = await client.post(f"/v1/programmes/{BK}/report-backfills", json=entry())
        assert codes(refused) == [(["body", "unit"], "report_in_progress")]

    async def test_only_dost_enters_history(
        self, anonymous: httpx.AsyncClient, keys: KeyRing
    ) -> None:
        reporter = {"Authorization": f"Bearer {mint_token(keys, 'test-reporter')}"}
        refused = await anonymous.post(
            f"/v1/programmes/{BK}/report-backfills", json=entry(), headers=reporter
        )
        assert_problem(refused, 403, "insufficient_scope")


class TestHistoryFile:
    # Labelled text/csv as generated clients label every raw upload: no CSV is a ZIP.
    @pytest.mark.parametrize(
        "label", ["application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "text/csv"]
    )
    async def test_a_workbook_is_read_like_a_csv(
        self, client: httpx.AsyncClient, label: str
    ) -> None:
        book = Workbook()
        sheet = book.active
        assert sheet is not None
        sheet.append(["unit", "year", "letter_number", "letter_date", "received_on", "record",
                      "indicator", "value", "trainee_group"])  # fmt: skip
        sheet.append(["bk-ba-be", 2021, "9/BC-UBND", "26/11/2021", "2021-11-29", "value",
                      "people-trained", 12, "manager"])  # fmt: skip
        sheet.append(["bk-ba-be", 2021, None, None, None, "value", "people-trained", 30,
                      "worker"])  # fmt: skip
        sheet.append(["bk-ba-be", 2021, None, None, "2021-11-30", "value", "training-courses",
                      2, None])  # fmt: skip
        data = io.BytesIO()
        book.save(data)
        checked = await client.post(
            f"/v1/programmes/{BK}/report-backfills/import",
            content=data.getvalue(),
            headers={"Content-Type": label},
        )
        assert checked.status_code == 200, checked.text
        # received_on disagrees with the first row's: the row that differs is named.
        assert [(e["location"], e["code"]) for e in checked.json()["errors"]] == [
            (["body", 4, "received_on"], "conflicting_value")
        ]


class TestBaselines:
    async def test_targets_say_what_is_missing_then_judge_with_the_figures(
        self, client: httpx.AsyncClient, resources: Resources
    ) -> None:
        await client.post(
            f"/v1/programmes/{BK}/report-backfills",
            json=entry(content={"enterprises": [ENTERPRISE]}),
        )
        async with resources.sessionmaker() as session:
            await refresh(session, BK, 2022)
            await session.commit()
        before = await client.get(f"/v1/rollups/{BK}/2022")
        etag = before.headers["ETag"]
        iso = next(t for t in before.json()["targets"] if t["key"] == "bk-iso-9001-2021-2030")
        assert iso["status"] is None
        assert iso["explanation"].startswith("No baseline figures are recorded for 2011–2020")

        figure = {
            "indicator": "iso-9001-certificates",
            "period": "bp-2011-2020",
            "value": "40",
            "source_document": "Báo cáo số 45/BC-SKHCN",
            "source_date": "2021-01-15",
        }
        assert (
            await client.post(f"/v1/programmes/{BK}/baselines", json={"figures": [figure]})
        ).status_code == 200
        # Recording it again replaces it; the audit trail keeps both.
        again = await client.post(
            f"/v1/programmes/{BK}/baselines", json={"figures": [{**figure, "value": "50"}]}
        )
        [recorded] = again.json()["items"]
        listed = await client.get(f"/v1/programmes/{BK}/baselines")
        assert [f["value"] for f in listed.json()["items"]] == ["50"]
        audit = await client.get("/v1/audit-events", params={"object_id": recorded["id"]})
        assert [e["after"]["value"] for e in audit.json()["items"]] in (
            [40, 50], [50, 40], ["40.0000", "50.0000"], ["50.0000", "40.0000"],
            ["40", "50"], ["50", "40"],
        )  # fmt: skip

        # The rollup's tag follows the baselines: a poller sees the new judgement (within the
        # second the published state is kept for).
        await asyncio.sleep(1.1)
        after = await client.get(f"/v1/rollups/{BK}/2022", headers={"If-None-Match": etag})
        assert after.status_code == 200, after.text
        iso = next(t for t in after.json()["targets"] if t["key"] == "bk-iso-9001-2021-2030")
        assert iso["status"] == "off_track"  # 1 of 102 % × 50 = 51, linear 10.2 by 2022
        assert iso["explanation"].startswith("cumulative 1 against baseline 50 = 2.00 %")
        assert iso["baseline"]["figures"][0]["source_document"] == "Báo cáo số 45/BC-SKHCN"

    async def test_figures_are_checked_against_the_catalogue_and_the_calendar(
        self, client: httpx.AsyncClient
    ) -> None:
        refused = await client.post(
            f"/v1/programmes/{BK}/baselines",
            json={
                "figures": [
                    {"indicator": "iso-9001-certificates", "year": 2022, "value": "1",
                     "source_document": "x", "source_date": "2021-01-01"},
                    {"indicator": "no-such", "period": "bp-2011-2020", "value": "1",
                     "source_document": "x", "source_date": "2021-01-01"},
                    {"indicator": "iso-9001-certificates", "period": "bp-2011-2020",
                     "unit": "tn-doh", "value": "1.5", "source_document": "x",
                     "source_date": "2021-01-01"},
                    {"indicator": "iso-9001-certificates", "period": "bp-2011-2020",
                     "year": 2020, "value": "1", "source_document": "x",
                     "source_date": "2021-01-01"},
                ]
            },
        )  # fmt: skip
        assert_problem(refused, 422, "validation_failed")
        # Shape first: the last figure names both a period and a year.
        assert codes(refused) == [(["body", "figures", 3], "value_error")]
        refused = await client.post(
            f"/v1/programmes/{BK}/baselines",
            json={
                "figures": [
                    {"indicator": "iso-9001-certificates", "year": 2022, "value": "1",
                     "source_document": "x", "source_date": "2021-01-01"},
                    {"indicator": "no-such", "period": "bp-2011-2020", "value": "1",
                     "source_document": "x", "source_date": "2021-01-01"},
                    {"indicator": "iso-9001-certificates", "period": "bp-2011-2020",
                     "unit": "tn-doh", "value": "1.5", "source_document": "x",
                     "source_date": "2021-01-01"},
                ]
            },
        )  # fmt: skip
        assert_problem(refused, 422, "invalid_baseline")
        assert codes(refused) == [
            (["body", "figures", 0, "year"], "year_inside_programme"),
            (["body", "figures", 1, "indicator"], "unknown_indicator"),
            (["body", "figures", 2, "value"], "fractional_count"),
            (["body", "figures", 2, "unit"], "unit_not_in_period"),
        ]
