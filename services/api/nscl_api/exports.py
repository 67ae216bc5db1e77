"""Exports of read resources as CSV or XLSX, chosen by content negotiation.

A resource answers JSON unless the client asks otherwise: ``Accept: text/csv`` or the XLSX
media type, or ``?format=csv|xlsx|json`` for links (a link cannot set a header; the
parameter wins over the header). An ``Accept`` that none of the three satisfies is 406.

An export is built from the resource's own JSON (the response model dumped as JSON), so a
figure in the file is the figure of the JSON answer, cell for cell. Columns are headed in
Vietnamese by default (``Accept-Language: en`` for English); a workbook carries both, the
chosen language on its first header row and the other one below it. CSV files start with a
UTF-8 BOM so that Excel reads the diacritics.

Rows may come as an async iterator of chunks: the CSV is then sent as each chunk is read,
and the workbook is written row by row to a temporary file (xlsxwriter's constant-memory
mode) and sent from there, so a 100,000-row audit trail never sits in memory whole.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import tempfile
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Annotated, Any, Literal

import xlsxwriter
from fastapi import Query, Request
from pydantic import BaseModel
from starlette.exceptions import HTTPException
from starlette.responses import StreamingResponse

from nscl_api.messages import Language, preferred_language
from nscl_domain.reports.importing import XLSX_MEDIA_TYPE

CSV_MEDIA_TYPE = "text/csv"
JSON_MEDIA_TYPE = "application/json"
ExportFormat = Literal["json", "csv", "xlsx"]
MEDIA_TYPES: dict[ExportFormat, str] = {
    "json": JSON_MEDIA_TYPE,
    "csv": CSV_MEDIA_TYPE,
    "xlsx": XLSX_MEDIA_TYPE,
}
FormatQuery = Annotated[
    ExportFormat | None,
    Query(
        description="The answer's format, for links that cannot send `Accept`: `json` (the "
        "default), `csv` (UTF-8 with a BOM) or `xlsx`. Wins over `Accept`."
    ),
]
_BINARY = {"schema": {"type": "string", "format": "binary"}}


def export_responses(description: str) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI entries of an exportable answer: the CSV and XLSX media types beside the
    JSON one (FastAPI adds that from the response model), and the 406 problem."""
    return {
        200: {
            "description": description,
            "content": {CSV_MEDIA_TYPE: _BINARY, XLSX_MEDIA_TYPE: _BINARY},
        },
        406: {
            "model": _problem_model(),
            "description": "`Accept` names no format this resource has (JSON, CSV, XLSX).",
        },
    }


def _problem_model() -> type[BaseModel]:
    from nscl_api.problems import Problem

    return Problem


def _accepted(header: str) -> list[tuple[str, float, int]]:
    ranges = []
    for position, part in enumerate(header.split(",")):
        media, *params = (p.strip() for p in part.split(";"))
        if not media:
            continue
        quality = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        ranges.append((media.lower(), quality, position))
    return ranges


def _matches(media_range: str, media_type: str) -> int:
    """How specifically a range names a type: 3 exactly, 2 by `text/*`, 1 by `*/*`, 0 not."""
    if media_range == media_type:
        return 3
    major, _, minor = media_range.partition("/")
    if minor == "*" and media_type.startswith(major + "/"):
        return 2
    return 1 if media_range == "*/*" else 0


def negotiate(request: Request, format: ExportFormat | None) -> ExportFormat:
    """The format to answer in: the ``format`` parameter, else the best of ``Accept``
    (JSON when it allows JSON as much as any other), else 406."""
    if format is not None:
        return format
    header = request.headers.get("accept", "").strip()
    if not header:
        return "json"
    best: tuple[float, int, int, int] | None = None
    chosen: ExportFormat | None = None
    # problem+json is how errors are sent, and means "JSON" to a client that lists it.
    offers: list[tuple[ExportFormat, str]] = [
        ("json", JSON_MEDIA_TYPE),
        ("json", "application/problem+json"),
        ("csv", CSV_MEDIA_TYPE),
        ("xlsx", XLSX_MEDIA_TYPE),
    ]
    for preference, (name, media_type) in enumerate(offers):
        for media_range, quality, position in _accepted(header):
            specificity = _matches(media_range, media_type)
            if not specificity or quality <= 0:
                continue
            # The highest quality wins; then the range that names the type most exactly,
            # then the client's order, then ours (JSON first).
            rank = (quality, specificity, -position, -preference)
            if best is None or rank > best:
                best, chosen = rank, name
    if chosen is None:
        raise HTTPException(
            406,
            f"This resource is available as {JSON_MEDIA_TYPE}, {CSV_MEDIA_TYPE} or "
            f"{XLSX_MEDIA_TYPE}; the request accepts none of them ({header}).",
        )
    return chosen


# --- tables ----------------------------------------------------------------------------

Kind = Literal["text", "number", "integer", "money", "json"]


@dataclass(frozen=True)
class Column:
    key: str
    vi: str
    en: str
    kind: Kind = "text"

    def label(self, language: Language) -> str:
        return self.vi if language == "vi" else self.en


@dataclass
class Table:
    """One sheet of an export: its columns and its rows (JSON values, keyed by column)."""

    name: str
    title_vi: str
    title_en: str
    columns: list[Column]
    rows: Iterable[dict[str, Any]] | None = None
    chunks: AsyncIterator[Sequence[dict[str, Any]]] | None = field(default=None, repr=False)

    async def batches(self) -> AsyncIterator[Sequence[dict[str, Any]]]:
        if self.rows is not None:
            yield list(self.rows)
        if self.chunks is not None:
            async for chunk in self.chunks:
                yield chunk


# Vietnamese and English column headings, shared by every export: a field has one name.
LABELS: dict[str, tuple[str, str]] = {
    "programme": ("Chương trình", "Programme"),
    "phase": ("Giai đoạn", "Phase"),
    "year": ("Năm", "Year"),
    "budget_year": ("Năm ngân sách", "Budget year"),
    "indicator": ("Mã chỉ tiêu", "Indicator"),
    "disaggregation": ("Phân tổ", "Disaggregation"),
    "breakdown": ("Chia theo", "Breakdown"),
    "value": ("Giá trị", "Value"),
    "contributors": ("Số đơn vị đóng góp", "Contributors"),
    "key": ("Mã", "Key"),
    "text_en": ("Nội dung mục tiêu (tiếng Anh)", "Target (English)"),
    "status": ("Trạng thái", "Status"),
    "actual": ("Thực hiện", "Actual"),
    "expected": ("Yêu cầu đến nay", "Expected by now"),
    "ratio_pct": ("Tỷ lệ (%)", "Ratio (%)"),
    "explanation": ("Cách tính", "Explanation"),
    "per_year": ("Theo từng năm", "Per year"),
    "funding_source": ("Nguồn vốn", "Funding source"),
    "destination": ("Cơ quan nhận hồ sơ", "Destination"),
    "unit": ("Đơn vị", "Unit"),
    "task_group": ("Nhóm nhiệm vụ", "Task group"),
    "task": ("Nhiệm vụ", "Task"),
    "estimated": ("Dự toán (đồng)", "Estimated (VND)"),
    "allocated": ("Được giao (đồng)", "Allocated (VND)"),
    "spent": ("Đã chi (đồng)", "Spent (VND)"),
    "amount": ("Số tiền (đồng)", "Amount (VND)"),
    "lines": ("Số dòng", "Lines"),
    "planned": ("Kế hoạch", "Planned"),
    "obligation_id": ("Mã nghĩa vụ báo cáo", "Obligation id"),
    "due_date": ("Hạn báo cáo", "Due date"),
    "submitted_on": ("Ngày gửi", "Submitted on"),
    "days_late": ("Số ngày chậm", "Days late"),
    "accepted": ("Đã được chấp nhận", "Accepted"),
    "line_id": ("Mã dòng", "Line id"),
    "activity": ("Nội dung hoạt động", "Activity"),
    "chapter": ("Chương", "Chapter"),
    "loai_khoan": ("Loại, khoản", "Type and item"),
    "muc_tieu_muc": ("Mục, tiểu mục", "Section and subsection"),
    "id": ("Mã", "Id"),
    "occurred_at": ("Thời điểm", "Occurred at"),
    "client_id": ("Tài khoản thực hiện", "Client"),
    "action": ("Thao tác", "Action"),
    "object_type": ("Loại đối tượng", "Object type"),
    "object_id": ("Mã đối tượng", "Object id"),
    "before": ("Trước khi thay đổi", "Before"),
    "after": ("Sau khi thay đổi", "After"),
    "request_id": ("Mã yêu cầu", "Request id"),
    "field": ("Mục", "Field"),
    "run_id": ("Mã lượt tổng hợp", "Run id"),
    "seq": ("Lượt số", "Run number"),
    "level": ("Cấp", "Level"),
    "kind": ("Loại", "Kind"),
    "fingerprint": ("Dấu vân tay đầu vào", "Inputs' fingerprint"),
    "computed_at": ("Thời điểm tính", "Computed at"),
    "published_at": ("Thời điểm công bố", "Published at"),
    "sources": ("Số nguồn", "Sources"),
    "obligations": ("Số nghĩa vụ báo cáo", "Obligations"),
    "submitted": ("Đã gửi", "Submitted"),
    "on_time": ("Đúng hạn", "On time"),
    "late": ("Chậm", "Late"),
    "missing": ("Chưa gửi", "Missing"),
    "not_due": ("Chưa đến hạn", "Not due"),
    "regime": ("Chế độ báo cáo", "Regime"),
    "start_year": ("Năm bắt đầu", "Start year"),
    "end_year": ("Năm kết thúc", "End year"),
    "version_no": ("Phiên bản", "Version"),
    "total": ("Tổng (đồng)", "Total (VND)"),
    "built_at": ("Thời điểm lập", "Built at"),
    "sent_at": ("Thời điểm gửi", "Sent at"),
    "acknowledged_at": ("Thời điểm xác nhận", "Acknowledged at"),
}
# Fields whose JSON strings are decimal figures: written as numbers in a workbook.
_NUMBER_FIELDS = frozenset(
    {"value", "actual", "expected", "ratio_pct", "planned", "cumulative", "growth_pct"}
)


# Whole đồng: written with a thousands separator.
_MONEY_FIELDS = frozenset({"estimated", "allocated", "spent", "amount", "total"})


def columns_of(model: type[BaseModel], *, skip: Iterable[str] = ()) -> list[Column]:
    """The columns of a row model, in its fields' order, headed from :data:`LABELS`."""
    skipped = set(skip)
    columns = []
    for name, info in model.model_fields.items():
        if name in skipped:
            continue
        vi, en = LABELS.get(name, (name, name))
        annotation = str(info.annotation)
        kind: Kind = "text"
        if name in _NUMBER_FIELDS:
            kind = "number"
        elif name in _MONEY_FIELDS:
            kind = "money"
        elif "int" in annotation and "str" not in annotation:
            kind = "integer"
        elif any(word in annotation for word in ("list", "dict", "Dict", "List")):
            kind = "json"
        columns.append(Column(name, vi, en, kind))
    return columns


def table_of(
    name: str,
    titles: tuple[str, str],
    model: type[BaseModel],
    rows: Iterable[dict[str, Any]],
    *,
    skip: Iterable[str] = (),
) -> Table:
    return Table(name, titles[0], titles[1], columns_of(model, skip=skip), rows=rows)


def text_of(value: Any) -> str:
    """A JSON value as a CSV cell: the JSON's own text, nothing rounded or reformatted."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return str(value)


def _xlsx_value(column: Column, value: Any) -> Any:
    if value is None:
        return None
    if column.kind == "number" and isinstance(value, str):
        # Quantities have at most 4 decimals and 16 digits: a double holds them exactly
        # enough that Decimal(str(cell)) is the JSON's figure again.
        return float(Decimal(value))
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return value
    return text_of(value)


# --- writers ---------------------------------------------------------------------------


async def csv_stream(table: Table, language: Language) -> AsyncIterator[bytes]:
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([c.label(language) for c in table.columns])
    yield ("\ufeff" + buffer.getvalue()).encode()
    async for chunk in table.batches():
        buffer.seek(0)
        buffer.truncate()
        for row in chunk:
            writer.writerow([text_of(row.get(c.key)) for c in table.columns])
        yield buffer.getvalue().encode()


_SHEET_FORBIDDEN = str.maketrans(dict.fromkeys("[]:*?/\\", " "))
_READ_SIZE = 64 * 1024


async def xlsx_stream(tables: Sequence[Table], language: Language) -> AsyncIterator[bytes]:
    """A workbook with a sheet per table, written to a temporary file row by row and sent
    from it: memory holds one chunk of rows, not the workbook."""
    handle, path = tempfile.mkstemp(prefix="nscl-export-", suffix=".xlsx")
    os.close(handle)
    try:
        workbook = xlsxwriter.Workbook(
            path,
            {"constant_memory": True, "strings_to_numbers": False, "strings_to_urls": False},
        )
        heading = workbook.add_format({"bold": True, "text_wrap": True, "bg_color": "#DDEBF7"})
        second = workbook.add_format({"italic": True, "font_color": "#595959"})
        money = workbook.add_format({"num_format": "#,##0"})
        other: Language = "en" if language == "vi" else "vi"
        for table in tables:
            sheet = workbook.add_worksheet(table.name.translate(_SHEET_FORBIDDEN)[:31])
            # Constant-memory mode writes a row out once the next one starts: row by row.
            for position, column in enumerate(table.columns):
                sheet.set_column(position, position, min(max(len(column.vi), 10) + 2, 50))
                sheet.write_string(0, position, column.label(language), heading)
            for position, column in enumerate(table.columns):
                sheet.write_string(1, position, column.label(other), second)
            sheet.freeze_panes(2, 0)
            number = 2
            async for chunk in table.batches():
                for row in chunk:
                    for position, column in enumerate(table.columns):
                        value = _xlsx_value(column, row.get(column.key))
                        if value is None:
                            continue
                        if isinstance(value, bool):
                            sheet.write_boolean(number, position, value)
                        elif isinstance(value, int | float):
                            fmt = money if column.kind == "money" else None
                            sheet.write_number(number, position, value, fmt)
                        else:
                            sheet.write_string(number, position, value)
                    number += 1
                # Let other requests run between chunks of a long export.
                await asyncio.sleep(0)
            if number > 2:
                sheet.autofilter(0, 0, number - 1, max(len(table.columns) - 1, 0))
        await asyncio.to_thread(workbook.close)
        with open(path, "rb") as source:  # noqa: ASYNC230  # small reads of a local file
            while block := source.read(_READ_SIZE):
                yield block
    finally:
        os.unlink(path)


def export_response(
    tables: Sequence[Table],
    format: Literal["csv", "xlsx"],
    language: Language,
    filename: str,
) -> StreamingResponse:
    """Stream the tables as CSV (the first table) or as a workbook (every table)."""
    if format == "csv":
        body = csv_stream(tables[0], language)
        media_type = f"{CSV_MEDIA_TYPE}; charset=utf-8"
    else:
        body = xlsx_stream(tables, language)
        media_type = XLSX_MEDIA_TYPE
    return StreamingResponse(
        body,
        media_type=media_type,
        headers={
            "Content-Disposition": f'attachment; filename="{filename}.{format}"',
            "Content-Language": language,
            "Vary": "Accept, Accept-Language",
        },
    )


def export_language(request: Request) -> Language:
    """Exports are for people: Vietnamese unless the client prefers English."""
    return preferred_language(request.headers.get("accept-language"), default="vi")


def summary_rows(data: dict[str, Any], fields: Iterable[str]) -> list[dict[str, Any]]:
    """A resource's scalar fields as rows of a two-column sheet (field, value)."""
    rows = []
    for name in fields:
        vi, en = LABELS.get(name, (name, name))
        rows.append({"field": vi, "field_en": en, "key": name, "value": data.get(name)})
    return rows


SUMMARY_COLUMNS = [
    Column("field", "Mục", "Field"),
    Column("field_en", "Mục (tiếng Anh)", "Field (English)"),
    Column("key", "Mã trường", "Key"),
    Column("value", "Giá trị", "Value"),
]
