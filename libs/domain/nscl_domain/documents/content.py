"""What a document says, gathered from published runs into one plain value.

The renderers turn a :class:`Document` into DOCX and XLSX and read nothing else, so the
same runs (and the same accepted versions behind them) make the same bytes; the
document's fingerprint is the hash of this value.
"""

from __future__ import annotations

import hashlib
import json
import unicodedata
import uuid
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from nscl_domain.catalogue import models as cm
from nscl_domain.catalogue.repository import CatalogueRepository
from nscl_domain.catalogue.targets import Achievement, TargetKind, TargetStatus
from nscl_domain.reports.repository import ReportRepository
from nscl_domain.repositories import RepositorySource
from nscl_domain.rollups import service as rollups
from nscl_domain.rollups.models import TOTAL, RollupRun
from nscl_domain.rollups.repository import RollupRepository
from nscl_domain.rollups.views import TargetProgress

VIETNAM = ZoneInfo("Asia/Ho_Chi_Minh")

STATUS_VI = {
    TargetStatus.ON_TRACK: "Đúng tiến độ",
    TargetStatus.AT_RISK: "Có nguy cơ không đạt",
    TargetStatus.OFF_TRACK: "Chậm tiến độ",
    TargetStatus.ACHIEVED: "Đã đạt",
    TargetStatus.MISSED: "Không đạt",
    TargetStatus.NO_DATA: "Chưa có số liệu",
}
TIMELINESS_VI = {
    "on_time": "Đúng hạn",
    "late": "Chậm hạn",
    "missing": "Chưa gửi",
    "not_due": "Chưa đến hạn",
}
SOURCE_VI = {
    "recurrent_science": "Chi thường xuyên - kinh phí sự nghiệp khoa học",
    "recurrent_sector": "Chi thường xuyên - kinh phí phân bổ theo ngành, lĩnh vực",
    "development_investment": "Chi đầu tư phát triển",
    "other_enterprise": "Nguồn huy động hợp pháp khác - doanh nghiệp",
    "other_sponsorship": "Nguồn huy động hợp pháp khác - tài trợ",
    "other": "Nguồn hợp pháp khác",
}
TASK_STATUS_VI = {
    "not_started": "Chưa triển khai",
    "in_progress": "Đang thực hiện",
    "completed": "Hoàn thành",
    "suspended": "Tạm dừng",
}
UNIT_KIND_VI = {
    "department": "Các sở, ban, ngành",
    "sub_department": "Các chi cục",
    "district_peoples_committee": "UBND các huyện, thành phố",
    "provincial_peoples_committee": "UBND tỉnh",
    "commune_peoples_committee": "UBND các xã, phường",
}
MEASURE_VI = {
    "person": "người",
    "enterprise": "doanh nghiệp",
    "certificate": "giấy chứng nhận",
    "course": "lớp",
    "percent": "%",
    "count": "số lượng",
    "standard": "tiêu chuẩn",
}
KIND_TITLE_VI = {
    "annual_report": "Kết quả thực hiện {programme} năm {period}",
    "mid_term_review": "Sơ kết giai đoạn {period} thực hiện {programme}",
    "final_review": "Tổng kết giai đoạn {period} thực hiện {programme}",
}
REVIEW_REGIMES = {"mid_term_review": "mid_term_review", "final_review": "final_review"}
NARRATIVE_PARTS = ("results", "shortcomings", "causes", "proposals")


def nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)


def quantity(value: Decimal | None) -> str:
    """A figure as a Vietnamese reader writes it: dots between thousands, a comma before
    decimals (1.234,5)."""
    if value is None:
        return "-"
    whole = value == value.to_integral_value()
    shown = value.to_integral_value() if whole else value.quantize(Decimal("0.01"))
    return f"{shown:,}".translate(str.maketrans(",.", ".,"))


def money(amount: int) -> str:
    return f"{amount:,}".replace(",", ".")


@dataclass(frozen=True)
class Figure:
    """An indicator's total for the period, by unit kind, and year by year."""

    number: str
    indicator: str
    name_vi: str
    measure_vi: str
    total: Decimal
    by_kind: dict[str, Decimal]
    by_year: dict[int, Decimal]


@dataclass(frozen=True)
class Judged:
    number: str
    key: str
    indicator: str
    phase_vi: str
    text_vi: str
    status: str
    status_vi: str
    actual: Decimal | None
    expected: Decimal | None
    target: Decimal | None
    arithmetic_vi: str


@dataclass(frozen=True)
class BudgetLine:
    number: str
    funding_source: str
    source_vi: str
    destination: str | None
    destination_vi: str
    estimated: int
    allocated: int
    spent: int


@dataclass(frozen=True)
class Timely:
    number: str
    unit: str
    unit_vi: str
    due_date: str
    submitted_on: str | None
    status: str
    status_vi: str
    days_late: int | None
    accepted: bool


@dataclass(frozen=True)
class Narrative:
    unit: str
    unit_vi: str
    year: int
    version_no: int
    parts: dict[str, str]


@dataclass(frozen=True)
class TaskLine:
    number: str
    text_vi: str
    counts: dict[str, int]


@dataclass(frozen=True)
class UnitLine:
    """A unit's figure of an indicator year by year, under the unit that succeeds it now."""

    number: str
    indicator: str
    unit: str
    unit_vi: str
    successor: str
    note_vi: str
    by_year: dict[int, Decimal]
    total: Decimal
    is_group: bool = False


@dataclass(frozen=True)
class Document:
    kind: str
    programme: str
    programme_vi: str
    period: str
    period_vi: str
    years: list[int]
    superior_vi: str
    issuer_vi: str
    symbol: str
    place_vi: str
    signed_on: str  # ISO date: the day the run was computed, in Vietnam
    recipients_vi: list[str]
    signer_vi: str
    run_id: str
    run_ids: list[str]
    figures: list[Figure]
    targets: list[Judged]
    budget: list[BudgetLine]
    timeliness: list[Timely]
    task_groups: list[tuple[str, str, list[TaskLine]]]
    narratives: list[Narrative]
    unit_lines: list[UnitLine] = field(default_factory=list)

    @property
    def title_vi(self) -> str:
        return KIND_TITLE_VI[self.kind].format(programme="Kế hoạch", period=self.period_vi)

    def fingerprint(self) -> str:
        body = json.dumps(asdict(self), sort_keys=True, ensure_ascii=False, default=str)
        return hashlib.sha256(body.encode()).hexdigest()


def arithmetic_vi(achievement: Achievement | None, measure: str, as_of: int) -> str:
    """The calculation behind a verdict, in words an official reads."""
    if achievement is None:
        return "Chưa có số liệu giai đoạn cơ sở để so sánh."
    a = achievement
    if a.kind is TargetKind.YEARLY_GROWTH_RANGE:
        parts = [
            f"năm {d.year}: {quantity(d.growth_pct)} %"
            for d in a.per_year
            if d.growth_pct is not None
        ]
        if not parts:
            return "Chưa đủ số liệu hai năm liền kề để tính tốc độ tăng trưởng."
        return "Tốc độ tăng so với năm trước: " + "; ".join(parts) + "."
    text = f"Thực hiện lũy kế đến năm {as_of}: {quantity(a.actual)} {measure}"
    if a.expected is not None:
        text += f"; yêu cầu theo tiến độ: {quantity(a.expected)} {measure}"
    if a.ratio_pct is not None:
        text += f"; đạt {quantity(a.ratio_pct)} %"
    return text + "."


async def _issuer(
    catalogue: CatalogueRepository, programme: cm.Programme, on: date
) -> tuple[str, str, str, list[str]]:
    """Superior body, issuing body, place and recipients on the day."""
    leads = await catalogue.roles(programme.id, as_of=on, role="lead", unit=None, offset=0, limit=5)
    receivers = await catalogue.roles(
        programme.id, as_of=on, role="receives_provincial_report", unit=None, offset=0, limit=5
    )
    issuer = leads[0][1] if leads else None
    superior = receivers[0][1] if receivers else None
    issuer_vi = issuer.name_vi if issuer else "Sở Khoa học và Công nghệ"
    superior_vi = superior.name_vi if superior else "Ủy ban nhân dân tỉnh"
    place = superior_vi.split(" tỉnh ")[-1] if " tỉnh " in superior_vi else superior_vi
    province = place
    recipients = [
        f"UBND tỉnh {province} (b/c)",
        "Bộ Khoa học và Công nghệ (b/c)",
        "Các sở, ban, ngành, địa phương thực hiện Kế hoạch",
        "Lãnh đạo Sở",
        "Lưu: VT, TĐC.",
    ]
    # The issuing body's name without the province, as it heads the document.
    issuer_short = issuer_vi.split(" tỉnh ")[0]
    return superior_vi, issuer_short, place, recipients


def _judged(
    progress: list[TargetProgress],
    targets: dict[str, cm.Target],
    phases: dict[str, cm.Phase],
    measures: dict[str, str],
    as_of: int,
) -> list[Judged]:
    judged: list[Judged] = []
    by_phase: dict[str, list[TargetProgress]] = defaultdict(list)
    for p in progress:
        by_phase[p.phase].append(p)
    ordered = sorted(by_phase, key=lambda k: (phases[k].start_year, phases[k].end_year, k))
    for i, phase_key in enumerate(ordered, start=1):
        for j, p in enumerate(by_phase[phase_key], start=1):
            target = targets[p.key]
            status = p.achievement.status if p.achievement else TargetStatus.NO_DATA
            judged.append(
                Judged(
                    number=f"{i}.{j}",
                    key=p.key,
                    indicator=p.indicator,
                    phase_vi=nfc(phases[phase_key].name_vi),
                    text_vi=nfc(target.text_vi),
                    status=str(status),
                    status_vi=STATUS_VI[status],
                    actual=p.achievement.actual if p.achievement else None,
                    expected=p.achievement.expected if p.achievement else None,
                    target=target.value,
                    arithmetic_vi=arithmetic_vi(p.achievement, measures[p.indicator], as_of),
                )
            )
    return judged


def _budget(rows: list[dict[str, Any]], names: dict[str, str]) -> list[BudgetLine]:
    totals = rollups.budget_totals(rows)
    lines: list[BudgetLine] = []
    source_no: dict[str, int] = {}
    for row in totals:
        source = row["funding_source"]
        if source not in source_no:
            source_no[source] = len(source_no) + 1
        i = source_no[source]
        j = sum(1 for line in lines if line.funding_source == source) + 1
        destination = row["destination"]
        lines.append(
            BudgetLine(
                number=f"{i}.{j}",
                funding_source=source,
                source_vi=SOURCE_VI.get(source, source),
                destination=destination,
                destination_vi=nfc(names.get(destination, destination))
                if destination
                else "Không chuyển cơ quan nào (nguồn khác)",
                estimated=int(row["estimated"]),
                allocated=int(row["allocated"]),
                spent=int(row["spent"]),
            )
        )
    return lines


def _days_late(row: dict[str, Any]) -> int | None:
    # As the rollup's readers are told it: whole days in Vietnam past the due date.
    if not row.get("submitted_on"):
        return None
    days = (date.fromisoformat(row["submitted_on"]) - date.fromisoformat(row["due_date"])).days
    return days if days > 0 else None


def _timeliness(rows: list[dict[str, Any]], names: dict[str, str]) -> list[Timely]:
    return [
        Timely(
            number=str(i),
            unit=row["unit"],
            unit_vi=nfc(names.get(row["unit"], row["unit"])),
            due_date=str(row["due_date"]),
            submitted_on=None if row.get("submitted_on") is None else str(row["submitted_on"]),
            status=row["status"],
            status_vi=TIMELINESS_VI.get(row["status"], row["status"]),
            days_late=_days_late(row),
            accepted=bool(row.get("accepted")),
        )
        for i, row in enumerate(rows, start=1)
    ]


async def _narratives(
    reports: ReportRepository,
    programme_id: uuid.UUID,
    names: dict[str, str],
    **where: Any,
) -> list[Narrative]:
    found = []
    for row in await reports.accepted_narratives(programme_id, **where):
        parts = {k: nfc(str((row.narrative or {}).get(k, "") or "")) for k in NARRATIVE_PARTS}
        if any(parts.values()):
            found.append(
                Narrative(
                    unit=row.unit,
                    unit_vi=nfc(names.get(row.unit, row.unit)),
                    year=row.year,
                    version_no=row.version_no,
                    parts=parts,
                )
            )
    return found


def _latest_successor(unit: str, links: dict[str, list[str]]) -> str:
    seen = {unit}
    while links.get(unit):
        unit = links[unit][0]
        if unit in seen:
            break
        seen.add(unit)
    return unit


async def gather(
    source: RepositorySource, programme: cm.Programme, kind: str, period: str
) -> Document:
    """The document of a programme's year (``annual_report``) or phase (a review), from the
    published runs; NotFound-free: the caller has checked that the runs exist."""
    repo = source.get(RollupRepository)
    catalogue = source.get(CatalogueRepository)
    reports = source.get(ReportRepository)
    phases = {p.key: p for p in await catalogue.phases(programme.id)}
    if kind == "annual_report":
        year = int(period)
        containing = [p for p in phases.values() if p.start_year <= year <= p.end_year]
        phase = min(containing, key=lambda p: (p.end_year - p.start_year, p.start_year))
        first = phase.start_year
        period_vi = str(year)
    else:
        phase = phases[period]
        year, first = phase.end_year, phase.start_year
        period_vi = f"{phase.start_year} - {phase.end_year}"
    published = await repo.published_years(programme.id, first, year)
    years = sorted(published)
    last_year = year if kind == "annual_report" else max(years)
    found = await repo.publication(programme.id, last_year)
    assert found is not None
    run: RollupRun = found[0]
    signed_on = run.computed_at.astimezone(VIETNAM).date()

    indicators = {i.key: i for i in await catalogue.indicators(programme.id, 0, 1000)}
    measures = {k: MEASURE_VI.get(i.unit, i.unit) for k, i in indicators.items()}
    target_rows = await catalogue.targets(
        programme.id, phase=None, indicator=None, offset=0, limit=1000
    )
    targets = {t.key: t for t, *_ in target_rows}

    # Figures: the period's total (the year's run, or the phase combined by each
    # indicator's rule), by unit kind, and each year's total for the charts.
    by_year: dict[str, dict[int, Decimal]] = defaultdict(dict)
    for y in years:
        for cell in await repo.cells(published[y], indicator=None, unit=None):
            if cell.breakdown == TOTAL and cell.disaggregation == "":
                by_year[cell.indicator][y] = cell.value
    if kind == "annual_report":
        cells = await repo.cells(run.id, indicator=None, unit=None)
    else:
        cells = await repo.phase_cells(programme.id, first, year, None)
    totals: dict[str, Decimal] = {}
    kinds: dict[str, dict[str, Decimal]] = defaultdict(dict)
    for cell in cells:
        if cell.disaggregation != "":
            continue
        if cell.breakdown == TOTAL:
            totals[cell.indicator] = cell.value
        elif cell.breakdown.startswith("unit_kind="):
            kinds[cell.indicator][cell.breakdown.removeprefix("unit_kind=")] = cell.value
    figures = [
        Figure(
            number=str(n),
            indicator=key,
            name_vi=nfc(indicators[key].name_vi),
            measure_vi=measures[key],
            total=totals[key],
            by_kind=dict(sorted(kinds[key].items())),
            by_year=dict(sorted(by_year[key].items())),
        )
        for n, key in enumerate(sorted(totals, key=lambda k: k), start=1)
        if key in indicators
    ]

    progress = await rollups.judged_targets(source, programme, last_year)
    if kind != "annual_report":
        progress = [p for p in progress if p.phase == phase.key]
    judged = _judged(progress, targets, phases, measures, last_year)

    sections: dict[str, list[dict[str, Any]]] = dict(run.sections or {})
    if kind != "annual_report":
        # A review adds up the phase: each year's budget, task reports and obligations
        # from that year's own run, with the units and destinations of that year.
        sections = {"budget": [], "tasks": [], "timeliness": []}
        for y in years:
            year_run = await repo.run(published[y])
            assert year_run is not None
            for name, rows in sections.items():
                rows.extend((year_run.sections or {}).get(name, []))
    unit_keys = {r["unit"] for r in sections.get("timeliness", [])}
    unit_keys |= {r["destination"] for r in sections.get("budget", []) if r.get("destination")}
    links: dict[str, list[str]] = defaultdict(list)
    for predecessor, successor, _ in await catalogue.succession_links():
        links[predecessor].append(successor)

    narratives_where: dict[str, Any]
    if kind == "annual_report":
        narratives_where = {"version_ids": list(run.source_ids)}
    else:
        narratives_where = {"year": year, "regime_kinds": [REVIEW_REGIMES[kind]]}

    unit_lines: list[UnitLine] = []
    contributions: dict[str, dict[str, dict[int, Decimal]]] = {}
    if kind != "annual_report":
        # Each year's figures from that year's own sources, so a unit that ended in 2025
        # and its successor each count the years they reported, once.
        for key in sorted(totals):
            if key not in indicators:
                continue
            per_unit: dict[str, dict[int, Decimal]] = defaultdict(dict)
            for y in years:
                year_run = await repo.run(published[y])
                assert year_run is not None
                for c in await repo.contributions(
                    year_run, indicator_id=indicators[key].id, disaggregation="", breakdown=TOTAL
                ):
                    if c.unit is not None:
                        per_unit[c.unit][y] = per_unit[c.unit].get(y, Decimal(0)) + c.value
            contributions[key] = per_unit
            unit_keys |= set(per_unit)
    for units in contributions.values():
        unit_keys |= {_latest_successor(u, links) for u in units}
    named = await catalogue.units_by_keys(sorted(unit_keys))
    names = {k: u.name_vi for k, u in named.items()}

    for i, (key, per_unit) in enumerate(sorted(contributions.items()), start=1):
        groups: dict[str, list[str]] = defaultdict(list)
        for unit in sorted(per_unit):
            groups[_latest_successor(unit, links)].append(unit)
        for j, successor in enumerate(sorted(groups), start=1):
            members = groups[successor]
            group_years: dict[int, Decimal] = defaultdict(Decimal)
            for unit in members:
                for y, v in per_unit[unit].items():
                    group_years[y] += v
            unit_lines.append(
                UnitLine(
                    number=f"{i}.{j}",
                    indicator=key,
                    unit=successor,
                    unit_vi=nfc(names.get(successor, successor)),
                    successor=successor,
                    note_vi="Đơn vị hiện nay",
                    by_year=dict(sorted(group_years.items())),
                    total=sum(group_years.values(), Decimal(0)),
                    is_group=True,
                )
            )
            for k, unit in enumerate(members, start=1):
                ended = named[unit].valid_to if unit in named else None
                note = (
                    f"Đến ngày {ended:%d/%m/%Y}, nay thuộc {nfc(names.get(successor, successor))}"
                    if unit != successor and ended is not None
                    else "Báo cáo trực tiếp"
                )
                unit_lines.append(
                    UnitLine(
                        number=f"{i}.{j}.{k}",
                        indicator=key,
                        unit=unit,
                        unit_vi=nfc(names.get(unit, unit)),
                        successor=successor,
                        note_vi=note,
                        by_year=dict(sorted(per_unit[unit].items())),
                        total=sum(per_unit[unit].values(), Decimal(0)),
                    )
                )

    groups_rows = await catalogue.task_groups(programme.id)
    task_rows = await catalogue.tasks(
        programme.id, group=None, unit=None, q=None, offset=0, limit=1000
    )
    status_by_task: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for row in sections.get("tasks", []):
        status_by_task[row["task"]][row["status"]] += 1
    task_groups: list[tuple[str, str, list[TaskLine]]] = []
    for g in groups_rows:
        lines = [
            TaskLine(
                number=f"{g.number}.{n}",
                text_vi=nfc(t.text_vi),
                counts=dict(sorted(status_by_task.get(t.key, {}).items())),
            )
            for n, t in enumerate((t for t, tg in task_rows if tg.id == g.id), start=1)
        ]
        task_groups.append((str(g.number), nfc(g.name_vi), lines))

    superior_vi, issuer_vi, place, recipients = await _issuer(
        catalogue, programme, date(last_year, 12, 31)
    )
    return Document(
        kind=kind,
        programme=programme.key,
        programme_vi=nfc(programme.name_vi),
        period=period,
        period_vi=period_vi,
        years=years,
        superior_vi=nfc(superior_vi),
        issuer_vi=nfc(issuer_vi),
        symbol="BC-SKHCN",
        place_vi=nfc(place),
        signed_on=signed_on.isoformat(),
        recipients_vi=recipients,
        signer_vi="GIÁM ĐỐC",
        run_id=str(run.id),
        run_ids=[str(published[y]) for y in years],
        figures=figures,
        targets=judged,
        budget=_budget(sections.get("budget", []), names),
        timeliness=_timeliness(sections.get("timeliness", []), names),
        task_groups=task_groups,
        narratives=await _narratives(reports, programme.id, names, **narratives_where),
        unit_lines=unit_lines,
    )


def signed_on_words(iso: str) -> str:
    """ "ngày 05 tháng 01 năm 2025": Decree 30 writes days below 10 and months below 3
    with a leading zero."""
    d = datetime.fromisoformat(iso).date()
    month = f"{d.month:02d}" if d.month < 3 else str(d.month)
    return f"ngày {d.day:02d} tháng {month} năm {d.year}"
