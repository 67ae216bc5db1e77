"""Deterministic national-scale synthetic data, generated in PostgreSQL by set-based SQL.

A national programme, one provincial programme per province, reporting units with an
accepted report and an accepted budget estimate for every year: 1.7 million indicator
values at the default size. Nothing is random and nothing passes through Python row by row:
every row is a function of its position in a ``generate_series``, so the same arguments
always give the same rows, ids included.

    .venv/bin/python -m bench.datagen --database-url postgresql+asyncpg://…/db

The database must be migrated and seeded (``nscl db upgrade``, ``nscl seed``): the
national programme is owned by the seed's Ministry of Science and Technology.
"""

from __future__ import annotations

import argparse
import asyncio
import enum
import json
import string
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

from nscl_domain.reports.content import ReportContent
from nscl_domain.text import fold

DEFAULT_YEARS = range(2021, 2031)
# Deadlines are days in Vietnam, as the reporting service reads them.
LOCAL_ZONE = "Asia/Ho_Chi_Minh"
SUBMITTED_BY = "bench-datagen"
FUNDING_SOURCES = (
    "recurrent_science",
    "recurrent_sector",
    "development_investment",
    "other_enterprise",
)
# Room left in the id series of report versions for corrections of one report.
VERSIONS_PER_REPORT = 256
# Tables the generator fills: their statistics must describe the new rows before any plan.
FILLED_TABLES = (
    "org_unit",
    "programme",
    "phase",
    "indicator",
    "programme_role",
    "reporting_regime",
    "reporting_obligation",
    "report",
    "report_version",
    "indicator_value",
    "budget_estimate",
    "estimate_line",
)


@dataclass(frozen=True)
class Dataset:
    national_programme_id: uuid.UUID
    provincial_programme_ids: list[uuid.UUID]  # one per province, in province order
    years: range
    units: int  # reporting units created
    reports: int  # accepted reports (one per unit per year)
    values: int  # indicator_value rows created
    budget_lines: int  # estimate_line rows created


class _Kind(enum.IntEnum):
    NATIONAL_PROGRAMME = 1
    PHASE = 2
    NATIONAL_INDICATOR = 3
    PROVINCE = 4
    PROVINCIAL_PROGRAMME = 5
    PROVINCIAL_INDICATOR = 6
    REPORTING_UNIT = 7
    PROGRAMME_ROLE = 8
    REGIME = 9
    OBLIGATION = 10
    REPORT = 11
    REPORT_VERSION = 12
    ESTIMATE = 13
    ESTIMATE_LINE = 14


# Ids are UUIDv8 (RFC 9562 leaves its layout to the application): the first group names the
# kind of row, the last 48 bits its index in its series. They ascend in insertion order, so
# the primary-key indexes fill from the right instead of splitting pages at random, and
# they cannot meet the UUIDv7 ids the application writes.
_INDEX_MASK = (1 << 48) - 1


def _id_prefix(kind: _Kind) -> str:
    return f"bec0{kind:04x}-0000-8000-8000-"


def _bench_id(kind: _Kind, index: int) -> uuid.UUID:
    return uuid.UUID(f"{_id_prefix(kind)}{index:012x}")


def _index_of(bench_id: uuid.UUID) -> int:
    return bench_id.int & _INDEX_MASK


def _id_sql(kind: _Kind, index: str) -> str:
    return f"CAST('{_id_prefix(kind)}' || lpad(to_hex(CAST({index} AS bigint)), 12, '0') AS uuid)"


def _concat_sql(template: str, **parts: str) -> str:
    """SQL joining the literal text of ``template`` with the SQL expressions of its fields."""
    pieces: list[str] = []
    for literal, field, _, _ in string.Formatter().parse(template):
        if literal:
            pieces.append("'" + literal.replace("'", "''") + "'")
        if field is not None:
            pieces.append(parts[field])
    return " || ".join(pieces)


def _names_sql(name_vi: str, name_en: str, **parts: str) -> tuple[str, str, str]:
    """name_vi, name_en and search_text of a unit, search_text folded as the catalogue folds."""
    search = fold(f"{name_vi} {name_en}")
    vi, en, folded = (_concat_sql(t, **parts) for t in (name_vi, name_en, search))
    return vi, en, folded


# Every size is a bind parameter: one statement text whatever the arguments.
_PROVINCES = "CAST(:provinces AS integer)"
_UNITS = "CAST(:units AS integer)"
_YEARS = "CAST(:years AS integer)"
_FIRST_YEAR = "CAST(:first_year AS integer)"
_LAST_YEAR = "CAST(:last_year AS integer)"
_INDICATORS = "CAST(:indicators AS integer)"
_LINES = "CAST(:lines AS integer)"
_REPORTS = "CAST(:reports AS integer)"

_PROVINCE_NO = "lpad(CAST(p + 1 AS text), CAST(:province_width AS integer), '0')"
_UNIT_NO = "lpad(CAST(u + 1 AS text), CAST(:unit_width AS integer), '0')"
_INDICATOR_NO = "lpad(CAST(i + 1 AS text), CAST(:indicator_width AS integer), '0')"

# Aggregation rules by indicator index: most are counts summed over units and years; the
# 5th, 15th, 25th … are percentages of which the highest counts, and the 3rd a percentage
# averaged over units, so every branch of the rollup's aggregation is exercised.
_IS_AVERAGE = "(i = 2)"
_IS_MAXIMUM = "(i % 10 = 4)"
_INDICATOR_RULES = f"""
    CASE WHEN {_IS_AVERAGE} OR {_IS_MAXIMUM} THEN 'percent' ELSE 'enterprise' END,
    CASE WHEN {_IS_AVERAGE} THEN 'average' WHEN {_IS_MAXIMUM} THEN 'maximum' ELSE 'sum' END,
    CASE WHEN {_IS_AVERAGE} THEN 'latest' WHEN {_IS_MAXIMUM} THEN 'maximum' ELSE 'sum' END
"""
# Products of large primes, reduced: figures spread over 0..996 with no visible pattern,
# yet each is a pure function of (province, unit, indicator, year).
_FIGURE = "((CAST(p AS bigint) * 7919 + u * 104729 + i * 1299709 + k * 15485863) % 997)"
_VALUE = f"""
    CASE WHEN {_IS_AVERAGE} OR {_IS_MAXIMUM} THEN round({_FIGURE} / 10.0, 1)
         ELSE CAST({_FIGURE} AS numeric) END
"""
_AMOUNT = (
    "(((CAST(p AS bigint) * 7919 + u * 104729 + k * 15485863 + l * 1299709) % 997) + 1) * 1000000"
)


def _report_axes(report_index: str) -> str:
    """Lateral joins that split a report's index into province, unit and year, and date it.

    Reports are numbered province by province, unit by unit, year by year. About one in
    thirteen is submitted one to three days after its 30 November deadline, the others up
    to 36 days before it, so timeliness has something to show.
    """
    return f"""
    CROSS JOIN LATERAL (
        SELECT {report_index} / {_YEARS} AS pu, {report_index} % {_YEARS} AS k
    ) AS rk
    CROSS JOIN LATERAL (
        SELECT rk.pu / {_UNITS} AS p, rk.pu % {_UNITS} AS u, {_FIRST_YEAR} + rk.k AS y
    ) AS puy
    CROSS JOIN LATERAL (
        SELECT make_timestamptz(puy.y, 11, 30, 8 + puy.u % 9, ({report_index} * 7) % 60, 0,
                                '{LOCAL_ZONE}')
               - make_interval(days => (puy.p * 7 + puy.u * 13 + rk.k * 5) % 40 - 3)
               AS submitted_at
    ) AS sub
    """


_PER_REPORT = f"FROM generate_series(0, {_REPORTS} - 1) AS r {_report_axes('r')}"
_PER_UNIT = f"""
    FROM generate_series(0, {_PROVINCES} * {_UNITS} - 1) AS pu
    CROSS JOIN LATERAL (SELECT pu / {_UNITS} AS p, pu % {_UNITS} AS u) AS ix
"""
_PER_PROVINCE = f"FROM generate_series(0, {_PROVINCES} - 1) AS p"

_NATIONAL_ID = _id_sql(_Kind.NATIONAL_PROGRAMME, "0")
_PROVINCIAL_ID = _id_sql(_Kind.PROVINCIAL_PROGRAMME, "p")
_UNIT_ID = _id_sql(_Kind.REPORTING_UNIT, "pu")
_ACCEPTED_AT = "submitted_at + make_interval(days => 2 + (u + k) % 10)"
_ESTIMATE_SUBMITTED_AT = f"make_timestamptz(y - 1, 7, 1 + (u + k) % 28, 9, 0, 0, '{LOCAL_ZONE}')"

_INSERT_NATIONAL_PROGRAMME = f"""
INSERT INTO programme (id, key, level, parent_id, owner_unit_id, decision_no, decision_date,
                       decided_by_vi, decided_by_en, name_vi, name_en, start_year, end_year)
VALUES ({_NATIONAL_ID}, 'bench-national', 'national', NULL, :owner_unit_id, '0000/QĐ-TTg',
        DATE '2020-08-31', 'Thủ tướng Chính phủ', 'Prime Minister',
        'Chương trình quốc gia (dữ liệu đo hiệu năng)', 'National programme (benchmark data)',
        {_FIRST_YEAR}, {_LAST_YEAR})
"""

_INSERT_PHASE = f"""
INSERT INTO phase (id, key, programme_id, name_vi, name_en, start_year, end_year)
VALUES (:id, :key, {_NATIONAL_ID}, :name_vi, :name_en, :start_year, :end_year)
"""

_INSERT_NATIONAL_INDICATORS = f"""
INSERT INTO indicator (id, key, programme_id, name_vi, name_en, unit, aggregation_across_units,
                       aggregation_across_time, disaggregations, derived_from,
                       national_indicator_id)
SELECT {_id_sql(_Kind.NATIONAL_INDICATOR, "i")}, 'bench-n-' || {_INDICATOR_NO}, {_NATIONAL_ID},
       'Chỉ tiêu quốc gia số ' || {_INDICATOR_NO}, 'National indicator no. ' || {_INDICATOR_NO},
       {_INDICATOR_RULES}, CAST('[]' AS jsonb), NULL, NULL
FROM generate_series(0, {_INDICATORS} - 1) AS i
"""

_PROVINCE_NAMES = _names_sql(
    "Ủy ban nhân dân tỉnh thử nghiệm {p}",
    "People's Committee of benchmark province {p}",
    p=_PROVINCE_NO,
)
_INSERT_PROVINCES = f"""
INSERT INTO org_unit (id, key, kind, code, name_vi, name_en, search_text, abbreviation,
                      parent_id, valid_from, valid_to)
SELECT {_id_sql(_Kind.PROVINCE, "p")}, 'bench-p' || {_PROVINCE_NO} || '-ppc',
       'provincial_peoples_committee', NULL, {", ".join(_PROVINCE_NAMES)},
       NULL, NULL, DATE '2021-01-01', NULL
{_PER_PROVINCE}
"""

_INSERT_PROVINCIAL_PROGRAMMES = f"""
INSERT INTO programme (id, key, level, parent_id, owner_unit_id, decision_no, decision_date,
                       decided_by_vi, decided_by_en, name_vi, name_en, start_year, end_year)
SELECT {_PROVINCIAL_ID}, 'bench-p-' || {_PROVINCE_NO}, 'provincial', {_NATIONAL_ID},
       {_id_sql(_Kind.PROVINCE, "p")}, {_PROVINCE_NO} || '/QĐ-UBND', DATE '2020-10-14',
       'Chủ tịch Ủy ban nhân dân tỉnh thử nghiệm ' || {_PROVINCE_NO},
       'Chairman of the People''s Committee of benchmark province ' || {_PROVINCE_NO},
       'Kế hoạch thực hiện Chương trình quốc gia, tỉnh thử nghiệm ' || {_PROVINCE_NO},
       'Plan implementing the national programme, benchmark province ' || {_PROVINCE_NO},
       {_FIRST_YEAR}, {_LAST_YEAR}
{_PER_PROVINCE}
"""

_INSERT_PROVINCIAL_INDICATORS = f"""
INSERT INTO indicator (id, key, programme_id, name_vi, name_en, unit, aggregation_across_units,
                       aggregation_across_time, disaggregations, derived_from,
                       national_indicator_id)
SELECT {_id_sql(_Kind.PROVINCIAL_INDICATOR, f"p * {_INDICATORS} + i")},
       'bench-p-' || {_PROVINCE_NO} || '-i-' || {_INDICATOR_NO}, {_PROVINCIAL_ID},
       'Chỉ tiêu số ' || {_INDICATOR_NO} || ', tỉnh thử nghiệm ' || {_PROVINCE_NO},
       'Indicator no. ' || {_INDICATOR_NO} || ', benchmark province ' || {_PROVINCE_NO},
       {_INDICATOR_RULES}, CAST('[]' AS jsonb), NULL,
       {_id_sql(_Kind.NATIONAL_INDICATOR, "i")}
{_PER_PROVINCE}
CROSS JOIN generate_series(0, {_INDICATORS} - 1) AS i
"""

# One unit in five is a department (sở), the others district People's Committees.
_IS_DEPARTMENT = "u % 5 = 0"
_DEPARTMENT_NAMES = _names_sql(
    "Sở số {u}, tỉnh thử nghiệm {p}",
    "Department no. {u} of benchmark province {p}",
    u=_UNIT_NO,
    p=_PROVINCE_NO,
)
_DISTRICT_NAMES = _names_sql(
    "Ủy ban nhân dân huyện số {u}, tỉnh thử nghiệm {p}",
    "People's Committee of district no. {u}, benchmark province {p}",
    u=_UNIT_NO,
    p=_PROVINCE_NO,
)
_UNIT_NAMES = ", ".join(
    f"CASE WHEN {_IS_DEPARTMENT} THEN {department} ELSE {district} END"
    for department, district in zip(_DEPARTMENT_NAMES, _DISTRICT_NAMES, strict=True)
)
_INSERT_REPORTING_UNITS = f"""
INSERT INTO org_unit (id, key, kind, code, name_vi, name_en, search_text, abbreviation,
                      parent_id, valid_from, valid_to)
SELECT {_UNIT_ID}, 'bench-p' || {_PROVINCE_NO} || '-u' || {_UNIT_NO},
       CASE WHEN {_IS_DEPARTMENT} THEN 'department' ELSE 'district_peoples_committee' END,
       NULL, {_UNIT_NAMES}, NULL, {_id_sql(_Kind.PROVINCE, "p")}, DATE '2021-01-01', NULL
{_PER_UNIT}
"""

_INSERT_ROLES = f"""
INSERT INTO programme_role (id, key, programme_id, role, unit_id, focal_agency_id,
                            valid_from, valid_to)
SELECT {_id_sql(_Kind.PROGRAMME_ROLE, "pu")},
       'r-bench-p' || {_PROVINCE_NO} || '-u' || {_UNIT_NO} || '-reporting', {_PROVINCIAL_ID},
       'reporting_unit', {_UNIT_ID}, NULL, DATE '2021-01-01', NULL
{_PER_UNIT}
"""

_INSERT_REGIMES = f"""
INSERT INTO reporting_regime (id, key, programme_id, kind, name_vi, name_en, due_month, due_day,
                              cutoff_days_before_due, years)
SELECT {_id_sql(_Kind.REGIME, "p")}, 'bench-p-' || {_PROVINCE_NO} || '-annual', {_PROVINCIAL_ID},
       'annual', 'Báo cáo định kỳ hằng năm gửi Sở Khoa học và Công nghệ',
       'Annual report to the Department of Science and Technology', 11, 30, 0, NULL
{_PER_PROVINCE}
"""

_INSERT_OBLIGATIONS = f"""
INSERT INTO reporting_obligation (id, programme_id, regime_id, request_id, unit_id, year,
                                  due_date, cutoff_date, created_at)
SELECT {_id_sql(_Kind.OBLIGATION, "r")}, {_PROVINCIAL_ID}, {_id_sql(_Kind.REGIME, "p")}, NULL,
       {_UNIT_ID}, y, make_date(y, 11, 30), make_date(y, 11, 30),
       make_timestamptz(y, 1, 15, 8, 0, 0, '{LOCAL_ZONE}')
{_PER_REPORT}
"""

# Created, submitted and accepted: three changes, so revision 3, as the workflow leaves it.
_INSERT_REPORTS = f"""
INSERT INTO report (id, obligation_id, unit_id, status, revision, draft, correction_reason,
                    returned_reason, latest_version_no, accepted_version_no, first_submitted_at,
                    accepted_at, created_at, updated_at)
SELECT {_id_sql(_Kind.REPORT, "r")}, {_id_sql(_Kind.OBLIGATION, "r")}, {_UNIT_ID}, 'accepted', 3,
       CAST(:content AS jsonb), NULL, NULL, 1, 1, submitted_at, {_ACCEPTED_AT},
       submitted_at - interval '14 days', {_ACCEPTED_AT}
{_PER_REPORT}
"""

_INSERT_VERSIONS = f"""
INSERT INTO report_version (id, report_id, version_no, kind, content, warnings, reason,
                            submitted_at, submitted_by)
SELECT {_id_sql(_Kind.REPORT_VERSION, f"r * {VERSIONS_PER_REPORT} + 1")},
       {_id_sql(_Kind.REPORT, "r")}, 1, 'submission', CAST(:content AS jsonb),
       CAST('[]' AS jsonb), NULL, submitted_at, '{SUBMITTED_BY}'
{_PER_REPORT}
"""

# One series over every (report, indicator) pair, in that order: rows arrive in primary-key
# order, so the index grows at its right edge.
_INSERT_VALUES = f"""
INSERT INTO indicator_value (version_id, indicator_id, disaggregation, unit_id, year, value,
                             derived)
SELECT {_id_sql(_Kind.REPORT_VERSION, f"r * {VERSIONS_PER_REPORT} + 1")},
       {_id_sql(_Kind.PROVINCIAL_INDICATOR, f"p * {_INDICATORS} + i")}, '', {_UNIT_ID}, y,
       {_VALUE}, false
FROM generate_series(0, {_REPORTS} * {_INDICATORS} - 1) AS n
CROSS JOIN LATERAL (SELECT n / {_INDICATORS} AS r, n % {_INDICATORS} AS i) AS ri
{_report_axes("ri.r")}
"""

# Estimates are drawn up in July of the year before the budget year.
_INSERT_ESTIMATES = f"""
INSERT INTO budget_estimate (id, programme_id, unit_id, budget_year, status, revision,
                             returned_reason, submitted_at, accepted_at, created_at)
SELECT {_id_sql(_Kind.ESTIMATE, "r")}, {_PROVINCIAL_ID}, {_UNIT_ID}, y, 'accepted', 3, NULL,
       {_ESTIMATE_SUBMITTED_AT}, {_ESTIMATE_SUBMITTED_AT} + interval '20 days',
       {_ESTIMATE_SUBMITTED_AT} - interval '7 days'
{_PER_REPORT}
"""

_INSERT_LINES = f"""
INSERT INTO estimate_line (id, estimate_id, position, task_id, activity, amount, funding_source,
                           chapter, loai_khoan, muc_tieu_muc, destination_unit_id)
SELECT {_id_sql(_Kind.ESTIMATE_LINE, f"r * {_LINES} + l")}, {_id_sql(_Kind.ESTIMATE, "r")},
       l + 1, NULL, 'Hoạt động số ' || (l + 1) || ' năm ' || y, {_AMOUNT},
       (ARRAY[{", ".join(f"'{s}'" for s in FUNDING_SOURCES)}])[1 + l % {len(FUNDING_SOURCES)}],
       NULL, NULL, NULL, NULL
FROM generate_series(0, {_REPORTS} * {_LINES} - 1) AS n
CROSS JOIN LATERAL (SELECT n / {_LINES} AS r, n % {_LINES} AS l) AS rl
{_report_axes("rl.r")}
"""


def _phases(years: range) -> list[tuple[int, int]]:
    """Two phases splitting the years, the first the longer: 2021–2025 and 2026–2030."""
    first, last = years[0], years[-1]
    if len(years) == 1:
        return [(first, last)]
    middle = first + (len(years) + 1) // 2
    return [(first, middle - 1), (middle, last)]


async def generate(
    conn: AsyncConnection,
    *,
    provinces: int = 34,
    units_per_province: int = 100,
    years: range = DEFAULT_YEARS,
    indicators: int = 50,
    lines_per_estimate: int = 4,
) -> Dataset:
    """Fill the catalogue, reports and budget with a national-scale data set.

    Runs in the caller's transaction and does not commit: the caller decides. The database
    must be migrated and seeded, and hold no data of an earlier run.
    """
    if min(provinces, units_per_province, indicators, lines_per_estimate, len(years)) < 1:
        raise ValueError("Every size must be at least 1.")
    if years.step != 1:
        raise ValueError("Years must be consecutive.")
    owner_unit_id = await conn.scalar(text("SELECT id FROM org_unit WHERE key = 'most'"))
    if owner_unit_id is None:
        raise LookupError("No unit 'most' to own the national programme: run `nscl seed` first.")
    # The data can be generated again: waiting for the WAL to reach the disk buys nothing.
    await conn.execute(text("SET LOCAL synchronous_commit = off"))
    params: dict[str, Any] = {
        "provinces": provinces,
        "units": units_per_province,
        "years": len(years),
        "first_year": years[0],
        "last_year": years[-1],
        "indicators": indicators,
        "lines": lines_per_estimate,
        "reports": provinces * units_per_province * len(years),
        "province_width": max(2, len(str(provinces))),
        "unit_width": max(3, len(str(units_per_province))),
        "indicator_width": max(2, len(str(indicators))),
        "owner_unit_id": owner_unit_id,
        "content": json.dumps(ReportContent().model_dump(mode="json")),
    }

    async def run(statement: str) -> int:
        result = await conn.execute(text(statement), params)
        return result.rowcount

    await run(_INSERT_NATIONAL_PROGRAMME)
    await conn.execute(
        text(_INSERT_PHASE),
        [
            {
                "id": _bench_id(_Kind.PHASE, n),
                "key": f"bench-national-{start}-{end}",
                "name_vi": f"Giai đoạn {start} - {end}",
                "name_en": f"Phase {start}–{end}",
                "start_year": start,
                "end_year": end,
            }
            for n, (start, end) in enumerate(_phases(years))
        ],
    )
    await run(_INSERT_NATIONAL_INDICATORS)
    await run(_INSERT_PROVINCES)
    await run(_INSERT_PROVINCIAL_PROGRAMMES)
    await run(_INSERT_PROVINCIAL_INDICATORS)
    units = await run(_INSERT_REPORTING_UNITS)
    await run(_INSERT_ROLES)
    await run(_INSERT_REGIMES)
    await run(_INSERT_OBLIGATIONS)
    reports = await run(_INSERT_REPORTS)
    await run(_INSERT_VERSIONS)
    values = await run(_INSERT_VALUES)
    await run(_INSERT_ESTIMATES)
    budget_lines = await run(_INSERT_LINES)
    for table in FILLED_TABLES:
        await conn.execute(text(f"ANALYZE {table}"))
    return Dataset(
        national_programme_id=_bench_id(_Kind.NATIONAL_PROGRAMME, 0),
        provincial_programme_ids=[
            _bench_id(_Kind.PROVINCIAL_PROGRAMME, p) for p in range(provinces)
        ],
        years=years,
        units=units,
        reports=reports,
        values=values,
        budget_lines=budget_lines,
    )


_FIND_REPORT = """
SELECT r.id, r.accepted_version_no
FROM report r
JOIN reporting_obligation o ON o.id = r.obligation_id
WHERE o.programme_id = :programme_id AND o.unit_id = :unit_id AND o.year = :year
  AND o.regime_id IS NOT NULL
FOR UPDATE OF r
"""

# Corrections arrive in the spring after the year's report, one every month after that.
_INSERT_CORRECTION = f"""
INSERT INTO report_version (id, report_id, version_no, kind, content, warnings, reason,
                            submitted_at, submitted_by)
SELECT :version_id, report_id, :version_no, 'correction', content, CAST('[]' AS jsonb),
       'Số liệu được điều chỉnh (dữ liệu đo hiệu năng)',
       make_timestamptz(:year + 1, 3, 1, 9, 0, 0, '{LOCAL_ZONE}')
       + make_interval(months => CAST(:version_no AS integer) - 2),
       '{SUBMITTED_BY}'
FROM report_version
WHERE id = :accepted_version_id
"""

_INSERT_CORRECTED_VALUES = """
INSERT INTO indicator_value (version_id, indicator_id, disaggregation, unit_id, year, value,
                             derived)
SELECT :version_id, indicator_id, disaggregation, unit_id, year, value + 1, derived
FROM indicator_value
WHERE version_id = :accepted_version_id
ORDER BY indicator_id, disaggregation
"""

# Reopened, resubmitted and accepted again: three more changes of the report.
_ACCEPT_CORRECTION = """
UPDATE report
SET accepted_version_no = :version_no, latest_version_no = :version_no,
    revision = revision + 3, accepted_at = v.submitted_at + interval '1 day',
    updated_at = v.submitted_at + interval '1 day'
FROM report_version v
WHERE report.id = :report_id AND v.id = :version_id
"""


async def accept_correction(
    conn: AsyncConnection,
    dataset: Dataset,
    *,
    province: int = 0,
    unit: int = 0,
    year: int = 2024,
) -> tuple[uuid.UUID, int, uuid.UUID]:
    """Simulate DOST accepting a corrected report: insert report_version number
    (accepted_version_no + 1) for that unit's report of that year with slightly different
    values for all its indicators (new indicator_value rows), and set
    report.accepted_version_no / latest_version_no to it. Returns (provincial programme id,
    year, the unit's org_unit id).

    ``province`` and ``unit`` count from 0; every figure of the correction is one more than
    in the version it replaces. Runs in the caller's transaction and does not commit.
    """
    units_per_province = dataset.units // len(dataset.provincial_programme_ids)
    if not 0 <= unit < units_per_province:
        raise ValueError(f"Unit {unit} is outside 0..{units_per_province - 1}.")
    programme_id = dataset.provincial_programme_ids[province]
    unit_id = _bench_id(_Kind.REPORTING_UNIT, province * units_per_province + unit)
    found = (
        await conn.execute(
            text(_FIND_REPORT), {"programme_id": programme_id, "unit_id": unit_id, "year": year}
        )
    ).one_or_none()
    if found is None:
        raise LookupError(f"No report of unit {unit} of province {province} for {year}.")
    report_id, accepted_no = found
    version_no = accepted_no + 1
    if version_no >= VERSIONS_PER_REPORT:
        raise ValueError(f"Report {report_id} has no room for another version.")
    report_index = _index_of(report_id)
    params = {
        "report_id": report_id,
        "year": year,
        "version_no": version_no,
        "version_id": _bench_id(
            _Kind.REPORT_VERSION, report_index * VERSIONS_PER_REPORT + version_no
        ),
        "accepted_version_id": _bench_id(
            _Kind.REPORT_VERSION, report_index * VERSIONS_PER_REPORT + accepted_no
        ),
    }
    await conn.execute(text(_INSERT_CORRECTION), params)
    await conn.execute(text(_INSERT_CORRECTED_VALUES), params)
    await conn.execute(text(_ACCEPT_CORRECTION), params)
    return programme_id, year, unit_id


async def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--database-url", required=True, help="postgresql+asyncpg://…")
    parser.add_argument("--provinces", type=int, default=34)
    parser.add_argument("--units", type=int, default=100, help="reporting units per province")
    parser.add_argument("--indicators", type=int, default=50, help="indicators per programme")
    args = parser.parse_args(argv)
    engine = create_async_engine(args.database_url)
    started = time.perf_counter()
    try:
        async with engine.begin() as conn:
            dataset = await generate(
                conn,
                provinces=args.provinces,
                units_per_province=args.units,
                indicators=args.indicators,
            )
    finally:
        await engine.dispose()
    elapsed = time.perf_counter() - started
    print(
        f"{len(dataset.provincial_programme_ids)} provinces, {dataset.units} units, "
        f"{dataset.reports} reports, {dataset.values} indicator values, "
        f"{dataset.budget_lines} budget lines in {elapsed:.1f} s"
    )


if __name__ == "__main__":
    asyncio.run(main())
