"""The annex tables (biểu mẫu) of a document, one definition for the DOCX and the XLSX, so
the two always carry the same figures. Rows are numbered as government forms number
them: 1, 1.1, 1.2 …; a row whose number has no dot heads its group."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from nscl_domain.documents.content import UNIT_KIND_VI, Document

Value = str | int | Decimal | None


@dataclass(frozen=True)
class Column:
    header_vi: str
    kind: str = "text"  # text, quantity, money, count
    width: float = 14


@dataclass(frozen=True)
class Annex:
    sheet: str  # at most 31 characters: an Excel sheet name
    title_vi: str
    columns: tuple[Column, ...]
    rows: tuple[tuple[Value, ...], ...]
    chart: str | None = None  # which native chart the XLSX draws from it


NUMBER = Column("STT", "text", 7)


def _targets(document: Document) -> Annex:
    rows: list[tuple[Value, ...]] = []
    phases: list[str] = []
    for t in document.targets:
        group = t.number.split(".")[0]
        if group not in phases:
            phases.append(group)
            rows.append((group, t.phase_vi, None, None, None, None, None))
        rows.append(
            (t.number, t.text_vi, t.target, t.actual, t.expected, t.status_vi, t.arithmetic_vi)
        )
    return Annex(
        "Bieu 01 - Muc tieu",
        "Biểu 01. Kết quả thực hiện các mục tiêu của Kế hoạch",
        (
            NUMBER,
            Column("Mục tiêu", width=50),
            Column("Chỉ tiêu", "quantity", 11),
            Column("Thực hiện", "quantity", 11),
            Column("Yêu cầu theo tiến độ", "quantity", 13),
            Column("Đánh giá", width=16),
            Column("Cách tính", width=50),
        ),
        tuple(rows),
    )


def _figures(document: Document) -> Annex:
    rows: list[tuple[Value, ...]] = []
    for f in document.figures:
        rows.append((f.number, f.name_vi, f.measure_vi, f.total))
        for j, (kind, value) in enumerate(f.by_kind.items(), start=1):
            rows.append((f"{f.number}.{j}", UNIT_KIND_VI.get(kind, kind), f.measure_vi, value))
    return Annex(
        "Bieu 02 - Chi tieu",
        f"Biểu 02. Số liệu các chỉ tiêu {_period(document)}",
        (
            NUMBER,
            Column("Chỉ tiêu", width=60),
            Column("Đơn vị tính", width=14),
            Column("Số liệu", "quantity", 12),
        ),
        tuple(rows),
        chart="column",
    )


def _years(document: Document) -> Annex:
    years = document.years
    rows: list[tuple[Value, ...]] = [
        (f.number, f.name_vi, *(f.by_year.get(y) for y in years), f.total) for f in document.figures
    ]
    return Annex(
        "Bieu 03 - Cac nam",
        "Biểu 03. Số liệu các chỉ tiêu qua các năm của giai đoạn",
        (
            NUMBER,
            Column("Chỉ tiêu", width=60),
            *(Column(f"Năm {y}", "quantity", 10) for y in years),
            Column(
                "Cả kỳ báo cáo" if document.kind != "annual_report" else "Năm báo cáo",
                "quantity",
                12,
            ),
        ),
        tuple(rows),
        chart="line",
    )


def _budget(document: Document) -> Annex:
    rows: list[tuple[Value, ...]] = []
    seen: list[str] = []
    for line in document.budget:
        group = line.number.split(".")[0]
        if group not in seen:
            seen.append(group)
            members = [x for x in document.budget if x.number.split(".")[0] == group]
            rows.append(
                (
                    group,
                    line.source_vi,
                    sum(x.estimated for x in members),
                    sum(x.allocated for x in members),
                    sum(x.spent for x in members),
                )
            )
        rows.append(
            (line.number, f"Nơi nhận: {line.destination_vi}", line.estimated, line.allocated,
             line.spent)
        )  # fmt: skip
    return Annex(
        "Bieu 04 - Kinh phi",
        "Biểu 04. Kinh phí theo nguồn và nơi nhận dự toán (đồng)",
        (
            NUMBER,
            Column("Nguồn kinh phí / nơi nhận", width=60),
            Column("Dự toán", "money", 18),
            Column("Được giao", "money", 18),
            Column("Đã chi", "money", 18),
        ),
        tuple(rows),
        chart="bar",
    )


def _timeliness(document: Document) -> Annex:
    return Annex(
        "Bieu 05 - Gui bao cao",
        "Biểu 05. Tình hình gửi báo cáo của các đơn vị",
        (
            NUMBER,
            Column("Đơn vị", width=50),
            Column("Hạn gửi", width=12),
            Column("Ngày gửi", width=12),
            Column("Tình trạng", width=14),
            Column("Số ngày chậm", "count", 10),
            Column("Đã chấp nhận", width=12),
        ),
        tuple(
            (
                r.number,
                r.unit_vi,
                _day(r.due_date),
                _day(r.submitted_on) if r.submitted_on else None,
                r.status_vi,
                r.days_late,
                "Có" if r.accepted else "Chưa",
            )
            for r in document.timeliness
        ),
        chart="pie",
    )


def _tasks(document: Document) -> Annex:
    rows: list[tuple[Value, ...]] = []
    for number, name, lines in document.task_groups:
        rows.append((number, name, None, None, None, None))
        for line in lines:
            rows.append(
                (
                    line.number,
                    line.text_vi,
                    line.counts.get("completed", 0),
                    line.counts.get("in_progress", 0),
                    line.counts.get("not_started", 0),
                    line.counts.get("suspended", 0),
                )
            )
    return Annex(
        "Bieu 06 - Nhiem vu",
        "Biểu 06. Tiến độ thực hiện nhiệm vụ theo nhóm (số đơn vị báo cáo)",
        (
            NUMBER,
            Column("Nhóm nhiệm vụ / nhiệm vụ", width=70),
            Column("Hoàn thành", "count", 11),
            Column("Đang thực hiện", "count", 11),
            Column("Chưa triển khai", "count", 11),
            Column("Tạm dừng", "count", 11),
        ),
        tuple(rows),
    )


def _units(document: Document) -> Annex:
    years = document.years
    rows: list[tuple[Value, ...]] = []
    names = {f.indicator: (f.number, f.name_vi) for f in document.figures}
    seen: set[str] = set()
    for line in document.unit_lines:
        if line.indicator not in seen:
            seen.add(line.indicator)
            number, name = names[line.indicator]
            rows.append((number, name, None, *(None for _ in years), None))
        rows.append(
            (line.number, line.unit_vi, line.note_vi, *(line.by_year.get(y) for y in years),
             line.total)
        )  # fmt: skip
    return Annex(
        "Bieu 07 - Don vi",
        "Biểu 07. Kết quả theo đơn vị, đơn vị đã sắp xếp thể hiện dưới đơn vị kế thừa",
        (
            NUMBER,
            Column("Đơn vị", width=50),
            Column("Ghi chú", width=40),
            *(Column(f"Năm {y}", "quantity", 10) for y in years),
            Column("Cả giai đoạn", "quantity", 12),
        ),
        tuple(rows),
    )


def _period(document: Document) -> str:
    return (
        f"năm {document.period_vi}"
        if document.kind == "annual_report"
        else (f"giai đoạn {document.period_vi}")
    )


def _day(iso: str) -> str:
    year, month, day = iso[:10].split("-")
    return f"{day}/{month}/{year}"


def annexes(document: Document) -> list[Annex]:
    """Every annex table of the document, in the order the document numbers them."""
    tables = [
        _targets(document),
        _figures(document),
        _years(document),
        _budget(document),
        _timeliness(document),
        _tasks(document),
    ]
    if document.unit_lines:
        tables.append(_units(document))
    return tables
