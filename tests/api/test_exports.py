"""Exports by content negotiation, the template for people, and messages in Vietnamese."""

from __future__ import annotations

import csv
import io
import json
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from http import HTTPStatus
from typing import Any

import httpx
import pytest
from openpyxl import load_workbook
from pydantic import BaseModel
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from nscl_api.audit.schemas import AuditEventRead
from nscl_api.auth.tokens import KeyRing
from nscl_api.exports import columns_of, text_of
from nscl_api.resources import Resources
from nscl_api.rollups.router import SECTIONS
from nscl_domain.jobs import JobName
from nscl_domain.jobs.models import Job
from nscl_domain.jobs.registry import JobContext
from nscl_domain.reports.importing import TITLE_ROWS, XLSX_MEDIA_TYPE
from nscl_domain.rollups import service as rollups
from tests.api.test_problems import assert_problem
from tests.api.test_reports import Desk, courses
from tests.conftest import OWN_UNIT

ROLLUP = "/v1/rollups/bac-kan-nscl/2024"
FIRST_DATA_ROW = TITLE_ROWS + 3


@pytest.fixture
def desk(anonymous: httpx.AsyncClient, keys: KeyRing) -> Desk:
    return Desk(anonymous, keys)


async def published_rollup(desk: Desk, resources: Resources) -> dict[str, Any]:
    """Accept a report of 2024 and run the refresh it schedules: a published rollup."""
    content = {
        **courses("3"),
        "indicator_values": [
            {"indicator": "training-courses", "value": "3"},
            {"indicator": "people-trained", "disaggregation": {"trainee_group": "manager"},
             "value": "12"},
            {"indicator": "people-trained", "disaggregation": {"trainee_group": "worker"},
             "value": "40"},
        ],
    }  # fmt: skip
    accepted = await desk.accept(await desk.submit(await desk.draft(2024, content)))
    assert accepted.status_code == 200, accepted.text
    async with resources.sessionmaker() as session:
        [job] = (await session.scalars(select(Job).where(Job.name == JobName.REFRESH_ROLLUP))).all()
        context = JobContext(session=session, job_id=job.id, attempt=1, now=datetime.now(UTC))
        await rollups.refresh(context, rollups.RefreshRollupArgs.model_validate(job.args))
        await session.commit()
    answer = await desk.http.get(ROLLUP, headers=desk.reporter)
    assert answer.status_code == 200
    return answer.json()  # type: ignore[no-any-return]


def _same(column_kind: str, cell: Any, value: Any) -> bool:
    if value is None:
        return cell is None
    if column_kind == "number":
        return Decimal(str(cell)) == Decimal(value)
    if column_kind == "json":
        return json.loads(cell) == value
    if isinstance(value, bool | int):
        return bool(cell == value)
    return bool(cell == text_of(value))


def assert_sheet_is(sheet: Any, model: type[BaseModel], rows: list[dict[str, Any]]) -> None:
    """Every cell of the sheet is the JSON's value; headings in Vietnamese then English."""
    columns = columns_of(model)
    cells = list(sheet.iter_rows(values_only=True))
    assert list(cells[0]) == [c.vi for c in columns]
    assert list(cells[1]) == [c.en for c in columns]
    assert len(cells) - 2 == len(rows)
    for got, want in zip(cells[2:], rows, strict=True):
        for column, cell in zip(columns, got, strict=True):
            assert _same(column.kind, cell, want[column.key]), (column.key, cell, want)


class TestRollupExports:
    async def test_csv_and_xlsx_hold_every_figure_of_the_json(
        self, desk: Desk, resources: Resources
    ) -> None:
        data = await published_rollup(desk, resources)
        assert data["cells"]
        assert data["targets"]
        assert data["timeliness"]

        answer = await desk.http.get(ROLLUP, headers={**desk.reporter, "Accept": "text/csv"})
        assert answer.status_code == 200, answer.text
        assert answer.headers["content-type"] == "text/csv; charset=utf-8"
        assert answer.headers["content-language"] == "vi"
        assert answer.content.startswith(b"\xef\xbb\xbf")
        table = list(csv.reader(io.StringIO(answer.content.decode("utf-8-sig"))))
        columns = columns_of(SECTIONS["cells"][2])
        assert table[0] == [c.vi for c in columns]
        assert table[0][:3] == ["Mã chỉ tiêu", "Phân tổ", "Chia theo"]
        assert table[1:] == [[text_of(cell[c.key]) for c in columns] for cell in data["cells"]]
        assert ["people-trained", "trainee_group=manager", "", "12"] in [row[:4] for row in table]

        for name in SECTIONS:
            by_section = await desk.http.get(
                ROLLUP, params={"format": "csv", "section": name}, headers=desk.reporter
            )
            rows = list(csv.reader(io.StringIO(by_section.content.decode("utf-8-sig"))))
            section_columns = columns_of(SECTIONS[name][2])
            assert rows[1:] == [
                [text_of(row[c.key]) for c in section_columns] for row in data[name]
            ], name

        workbook_answer = await desk.http.get(
            ROLLUP, headers={**desk.reporter, "Accept": XLSX_MEDIA_TYPE}
        )
        assert workbook_answer.headers["content-type"] == XLSX_MEDIA_TYPE
        workbook = load_workbook(io.BytesIO(workbook_answer.content))
        assert workbook.sheetnames == [sheet for sheet, _, _ in SECTIONS.values()] + ["Tổng hợp"]
        for name, (sheet, _, model) in SECTIONS.items():
            assert_sheet_is(workbook[sheet], model, data[name])
        summary = {row[2]: row[3] for row in workbook["Tổng hợp"].iter_rows(values_only=True)}
        assert summary["run_id"] == data["run_id"]
        assert summary["sources"] == data["sources"]
        assert summary["on_time"] == data["completeness"]["on_time"]

    async def test_english_headings_on_request(self, desk: Desk, resources: Resources) -> None:
        await published_rollup(desk, resources)
        answer = await desk.http.get(
            ROLLUP,
            params={"format": "csv"},
            headers={**desk.reporter, "Accept-Language": "en-GB,en;q=0.9,vi;q=0.5"},
        )
        header = next(csv.reader(io.StringIO(answer.content.decode("utf-8-sig"))))
        assert header[:3] == ["Indicator", "Disaggregation", "Breakdown"]
        assert answer.headers["content-language"] == "en"

    async def test_json_stays_the_default_and_an_unknown_accept_is_406(
        self, desk: Desk, resources: Resources
    ) -> None:
        await published_rollup(desk, resources)
        for accept in (None, "application/json", "*/*", "text/html, */*;q=0.1"):
            headers = {**desk.reporter, **({"Accept": accept} if accept else {})}
            answer = await desk.http.get(ROLLUP, headers=headers)
            assert answer.headers["content-type"] == "application/json", accept
        refused = await desk.http.get(
            ROLLUP, headers={**desk.reporter, "Accept": "application/pdf"}
        )
        assert_problem(refused, 406, "not_acceptable")
        preferred = await desk.http.get(
            ROLLUP,
            headers={**desk.reporter, "Accept": "application/json;q=0.5, text/csv"},
        )
        assert preferred.headers["content-type"].startswith("text/csv")

    async def test_the_phase_and_timeliness_export_alike(
        self, desk: Desk, resources: Resources
    ) -> None:
        await published_rollup(desk, resources)
        phase = await desk.http.get(
            "/v1/phase-rollups/bac-kan-nscl/bk-2021-2025", headers=desk.reporter
        )
        assert phase.status_code == 200, phase.text
        phase_book = await desk.http.get(
            "/v1/phase-rollups/bac-kan-nscl/bk-2021-2025",
            params={"format": "xlsx"},
            headers=desk.reporter,
        )
        workbook = load_workbook(io.BytesIO(phase_book.content))
        assert_sheet_is(workbook["Số liệu"], SECTIONS["cells"][2], phase.json()["cells"])
        assert_sheet_is(workbook["Mục tiêu"], SECTIONS["targets"][2], phase.json()["targets"])
        timeliness = await desk.http.get(
            "/v1/programmes/bac-kan-nscl/timeliness",
            params={"year": 2024},
            headers=desk.reporter,
        )
        rows = list(
            csv.reader(
                io.StringIO(
                    (
                        await desk.http.get(
                            "/v1/programmes/bac-kan-nscl/timeliness",
                            params={"year": 2024, "format": "csv"},
                            headers=desk.reporter,
                        )
                    ).content.decode("utf-8-sig")
                )
            )
        )
        assert rows[0][:3] == ["Đơn vị", "Mã nghĩa vụ báo cáo", "Hạn báo cáo"]
        assert [r[0] for r in rows[1:]] == [r["unit"] for r in timeliness.json()["rows"]]


class TestAuditExport:
    async def test_every_matching_event_streams_in_chunks(
        self, client: httpx.AsyncClient, db_connection: AsyncConnection, monkeypatch: Any
    ) -> None:
        monkeypatch.setattr("nscl_api.audit.router.EXPORT_CHUNK", 7)
        await db_connection.execute(
            text(
                "INSERT INTO audit_event (id, occurred_at, client_id, action, object_type, "
                "object_id, before, after) SELECT gen_random_uuid(), now(), 'test-all', "
                "'bulk.made', 'thing', g::text, NULL, jsonb_build_object('n', g, 'tên', 'Hà') "
                "FROM generate_series(1, 30) g"
            )
        )
        listed = await client.get("/v1/audit-events", params={"action": "bulk.made", "limit": 200})
        expected = listed.json()["items"]
        assert len(expected) == 30
        answer = await client.get(
            "/v1/audit-events", params={"action": "bulk.made", "format": "csv"}
        )
        assert answer.status_code == 200, answer.text
        rows = list(csv.reader(io.StringIO(answer.content.decode("utf-8-sig"))))
        columns = columns_of(AuditEventRead)
        assert rows[0][:3] == ["Mã", "Thời điểm", "Tài khoản thực hiện"]
        assert rows[1:] == [[text_of(e[c.key]) for c in columns] for e in expected]
        book = await client.get(
            "/v1/audit-events",
            params={"action": "bulk.made"},
            headers={"Accept": XLSX_MEDIA_TYPE},
        )
        assert_sheet_is(
            load_workbook(io.BytesIO(book.content))["Nhật ký"], AuditEventRead, expected
        )

    async def test_only_auditors_export(self, desk: Desk) -> None:
        refused = await desk.http.get(
            "/v1/audit-events", params={"format": "csv"}, headers=desk.reporter
        )
        assert_problem(refused, 403, refused.json()["code"])
        assert refused.headers["content-type"] == "application/problem+json"


def _filled(template: bytes, values: dict[int, object]) -> bytes:
    workbook = load_workbook(io.BytesIO(template))
    sheet = workbook["values"]
    for row, value in values.items():
        sheet.cell(row=row, column=_value_column(sheet), value=value)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def _value_column(sheet: Any) -> int:
    keys = [cell.value for cell in sheet[FIRST_DATA_ROW - 1]]
    return keys.index("value") + 1


def _template_rows(template: bytes) -> dict[tuple[str, str | None], int]:
    sheet = load_workbook(io.BytesIO(template))["values"]
    keys = [cell.value for cell in sheet[FIRST_DATA_ROW - 1]]
    found = {}
    for number in range(FIRST_DATA_ROW, sheet.max_row + 1):
        row = {k: sheet.cell(number, i + 1).value for i, k in enumerate(keys)}
        found[(str(row["indicator"]), row.get("trainee_group"))] = number
    return found


class TestTemplateRoundTrip:
    async def test_download_fill_upload_changes_exactly_the_filled_cells(self, desk: Desk) -> None:
        created = await desk.draft(2024, courses("3"))
        report_id = created.json()["id"]
        template = await desk.http.get(
            f"/v1/reports/{report_id}/indicator-template", headers=desk.reporter
        )
        assert template.headers["content-language"] == "vi"
        sheet = load_workbook(io.BytesIO(template.content))["values"]
        assert sheet["A1"].value == "BIỂU NHẬP SỐ LIỆU CHỈ TIÊU NĂM 2024"
        rows = _template_rows(template.content)
        value_column = _value_column(sheet)
        # The draft's figure is filled in; every other value cell is empty.
        assert sheet.cell(rows[("training-courses", None)], value_column).value == 3
        empty = [n for key, n in rows.items() if key != ("training-courses", None)]
        assert all(sheet.cell(n, value_column).value is None for n in empty)

        filled = {n: 10 + i for i, n in enumerate(empty)}
        upload = await desk.http.post(
            f"/v1/reports/{report_id}/indicator-values/import?dry_run=false",
            content=_filled(template.content, filled),
            headers={
                **desk.reporter,
                "Content-Type": XLSX_MEDIA_TYPE,
                "If-Match": created.headers["etag"],
            },
        )
        assert upload.status_code == 200, upload.text
        after = (await desk.http.get(f"/v1/reports/{report_id}", headers=desk.reporter)).json()
        before = {
            (v["indicator"], json.dumps(v["disaggregation"], sort_keys=True)): v["value"]
            for v in created.json()["draft"]["indicator_values"]
        }
        now = {
            (v["indicator"], json.dumps(v["disaggregation"], sort_keys=True)): v["value"]
            for v in after["draft"]["indicator_values"]
        }
        assert {k: v for k, v in now.items() if k in before} == before
        assert len(now) - len(before) == len(filled)
        assert sorted(Decimal(v) for k, v in now.items() if k not in before) == sorted(
            Decimal(v) for v in filled.values()
        )
        # Downloaded again, the template shows the new draft: a second round trip is a no-op.
        again = await desk.http.get(
            f"/v1/reports/{report_id}/indicator-template", headers=desk.reporter
        )
        second = await desk.http.post(
            f"/v1/reports/{report_id}/indicator-values/import?dry_run=true",
            content=again.content,
            headers={**desk.reporter, "Content-Type": XLSX_MEDIA_TYPE},
        )
        assert second.json()["valid"] is True
        assert second.json()["values"] == len(now)

    @pytest.mark.parametrize(
        ("language", "formula_words", "merged_words"),
        [
            ("vi", "chứa công thức (=1+2)", "nằm trong vùng ô đã gộp"),
            ("en", "holds a formula (=1+2)", "is part of the merged cells"),
        ],
    )
    async def test_formula_and_merged_cell_are_named_in_either_language(
        self, desk: Desk, language: str, formula_words: str, merged_words: str
    ) -> None:
        created = await desk.draft(2024)
        report_id = created.json()["id"]
        template = (
            await desk.http.get(
                f"/v1/reports/{report_id}/indicator-template", headers=desk.reporter
            )
        ).content
        workbook = load_workbook(io.BytesIO(template))
        sheet = workbook["values"]
        column = _value_column(sheet)
        letter = sheet.cell(FIRST_DATA_ROW, column).column_letter
        sheet.cell(FIRST_DATA_ROW, column, "=1+2")
        sheet.cell(FIRST_DATA_ROW + 1, column, 5)
        sheet.merge_cells(f"{letter}{FIRST_DATA_ROW + 1}:{letter}{FIRST_DATA_ROW + 2}")
        buffer = io.BytesIO()
        workbook.save(buffer)
        answer = await desk.http.post(
            f"/v1/reports/{report_id}/indicator-values/import?dry_run=false",
            content=buffer.getvalue(),
            headers={
                **desk.reporter,
                "Content-Type": XLSX_MEDIA_TYPE,
                "If-Match": created.headers["etag"],
                "Accept-Language": language,
            },
        )
        body = assert_problem(answer, 422, "import_rejected")
        assert answer.headers["content-language"] == language
        errors = {tuple(e["location"]): e for e in body["errors"]}  # type: ignore[union-attr]
        formula = errors[("body", FIRST_DATA_ROW, "value")]
        assert formula["code"] == "formula_not_allowed"
        assert formula_words in formula["message"]
        merged = errors[("body", FIRST_DATA_ROW + 2, "value")]
        assert merged["code"] == "merged_cell"
        assert merged_words in merged["message"]
        if language == "vi":
            assert body["title"] == "Dữ liệu không hợp lệ"
            assert body["detail"].startswith("Tệp có ")  # type: ignore[union-attr]


class TestMessagesInVietnamese:
    async def test_problems_and_field_errors_follow_accept_language(
        self, client: httpx.AsyncClient
    ) -> None:
        path = f"/v1/reports/{uuid.uuid4()}/versions/x"
        english = await client.get(path)
        vietnamese = await client.get(path, headers={"Accept-Language": "vi-VN,vi;q=0.9"})
        assert english.json()["code"] == vietnamese.json()["code"] == "validation_failed"
        assert english.json()["title"] == HTTPStatus(422).phrase
        assert vietnamese.json()["title"] == "Dữ liệu không hợp lệ"
        assert vietnamese.json()["detail"] == "Yêu cầu có 1 chỗ không hợp lệ."
        [field] = vietnamese.json()["errors"]
        assert field["code"] == english.json()["errors"][0]["code"] == "int_parsing"
        assert field["message"] == "Phải là số nguyên."
        assert vietnamese.headers["content-language"] == "vi"
        missing = await client.get("/v1/no-such-thing", headers={"Accept-Language": "vi"})
        assert missing.json()["detail"] == "Không có tài nguyên tại địa chỉ này."
        assert missing.json()["title"] == "Không tìm thấy"
        job = await client.get(f"/v1/jobs/{uuid.uuid4()}", headers={"Accept-Language": "vi"})
        assert job.json()["code"] == "job_not_found"
        assert job.json()["detail"] == "Không tìm thấy công việc."

    async def test_import_row_errors_in_vietnamese(self, desk: Desk) -> None:
        created = await desk.draft(2024)
        answer = await desk.http.post(
            f"/v1/reports/{created.json()['id']}/indicator-values/import",
            content=b"indicator,value\r\ntraining-courses,abc\r\nnope,1\r\n",
            headers={**desk.reporter, "Content-Type": "text/csv", "Accept-Language": "vi"},
        )
        messages = {e["code"]: e["message"] for e in answer.json()["errors"]}
        assert messages == {
            "not_a_number": "Giá trị abc không phải là số.",
            "unknown_indicator": "Chỉ tiêu nope không có trong danh mục.",
        }
        assert OWN_UNIT  # the desk's unit reports


class TestWorkbookCells:
    async def test_money_has_thousands_separators_and_years_do_not(self) -> None:
        from nscl_api.budget.schemas import FollowUpRow
        from nscl_api.exports import table_of, xlsx_stream

        class Row(FollowUpRow):
            year: int

        rows = [{"task": "t-1", "unit": "bk-doh", "estimated": 150_000_000, "allocated": 0,
                 "spent": 1_250, "year": 2024}]  # fmt: skip
        table = table_of("Theo dõi", ("Theo dõi kinh phí", "Follow-up"), Row, rows)
        data = b"".join([block async for block in xlsx_stream([table], "vi")])
        sheet = load_workbook(io.BytesIO(data))["Theo dõi"]
        assert [c.value for c in sheet[1]] == [
            "Nhiệm vụ", "Đơn vị", "Dự toán (đồng)", "Được giao (đồng)", "Đã chi (đồng)", "Năm"
        ]  # fmt: skip
        assert [c.value for c in sheet[2]][:3] == ["Task", "Unit", "Estimated (VND)"]
        estimated, year = sheet["C3"], sheet["F3"]
        assert (estimated.value, estimated.number_format) == (150_000_000, "#,##0")
        assert (year.value, year.number_format) == (2024, "General")
        assert sheet.freeze_panes == "A3"
