"""A province loads its history over HTTP: 2021–2025 as DOST received the reports (each
with its official letter and the day it arrived; some late by a known number of days, one
never received), the 2011–2020 and 2020 baselines, and then reads the timeliness of every
year and the ISO and growth targets judged with their arithmetic, year by year and for the
phase.

2021–2024 are the 14 units of Bắc Kạn (six departments and eight districts); in 2025 the
five departments of Thái Nguyên that succeeded them report (the districts were abolished on
2025-07-01), as the structure of each year's due date says.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
from stdnum.vn import mst

from nscl_api.resources import Resources
from tests.api.test_problems import assert_problem
from tests.e2e.test_rollups import refresh

BK = "bac-kan-nscl"
BK_UNITS = [
    "bk-doit", "bk-dard", "bk-doh", "bk-doc", "bk-dot", "bk-dic",
    "bk-bac-kan-city", "bk-pac-nam", "bk-ba-be", "bk-ngan-son",
    "bk-bach-thong", "bk-cho-don", "bk-cho-moi", "bk-na-ri",
]  # fmt: skip
TN_UNITS = ["tn-doit", "tn-dae", "tn-doh", "tn-doc", "tn-dost"]
UNITS = {2021: BK_UNITS, 2022: BK_UNITS, 2023: BK_UNITS, 2024: BK_UNITS, 2025: TN_UNITS}
# Days after 30 November on which DOST received a report; absent: received on 28 November.
LATE = {
    (2021, "bk-doh"): 10,
    (2021, "bk-ba-be"): 1,
    (2022, "bk-cho-don"): 5,
    (2023, "bk-doit"): 31,
    (2024, "bk-pac-nam"): 45,
    (2025, "tn-doh"): 3,
}
NEVER_RECEIVED = {(2023, "bk-na-ri")}
# Enterprises supported each year (2020: 100, the base year), and ISO certificates among them.
ENTERPRISES = {2021: 101, 2022: 103, 2023: 104, 2024: 105, 2025: 107}
ISO_9001 = {2021: 6, 2022: 5, 2023: 4, 2024: 6, 2025: 5}
ISO_14001 = {2021: 2, 2022: 1, 2023: 0, 2024: 1, 2025: 1}


def tax_codes() -> list[str]:
    """Valid Vietnamese tax codes (mã số thuế), distinct."""
    found, number = [], 100_000_000
    while len(found) < sum(ENTERPRISES.values()):
        code = f"{number:010d}"
        if mst.is_valid(code):
            found.append(code)
        number += 1
    return found


CODES = tax_codes()


def received(year: int, unit: str) -> date:
    due = date(year, 11, 30)
    return due + timedelta(days=LATE[(year, unit)]) if (year, unit) in LATE else due - timedelta(2)


def enterprises_of(year: int) -> dict[str, list[dict[str, Any]]]:
    """The year's enterprise records, spread over the units that reported."""
    reporting = [u for u in UNITS[year] if (year, u) not in NEVER_RECEIVED]
    offset = sum(n for y, n in ENTERPRISES.items() if y < year)
    records: dict[str, list[dict[str, Any]]] = {u: [] for u in reporting}
    for i in range(ENTERPRISES[year]):
        if i < ISO_9001[year]:
            solution, issued = "iso_9001", True
        elif i < ISO_9001[year] + ISO_14001[year]:
            solution, issued = "iso_14001", True
        else:
            solution, issued = "5s", False
        records[reporting[i % len(reporting)]].append(
            {
                "tax_code": CODES[offset + i],
                "name": f"Công ty TNHH Hợp tác xã số {offset + i}",
                "solution": solution,
                "certificate_issued": issued,
                "certified_on": f"{year}-06-15" if issued else None,
            }
        )
    return records


def history_csv(years: list[int]) -> bytes:
    """The province's history as one file: a row per enterprise (or a letter-only row), each
    unit-year carrying its letter on its first row."""
    columns = [
        "unit", "year", "letter_number", "letter_date", "received_on", "record",
        "indicator", "value", "tax_code", "name", "solution", "certificate_issued",
        "certified_on",
    ]  # fmt: skip
    out = io.StringIO()
    writer = csv.DictWriter(out, columns, lineterminator="\n")
    writer.writeheader()
    for year in years:
        for unit, records in enterprises_of(year).items():
            day = received(year, unit)
            letter = {
                "unit": unit,
                "year": year,
                "letter_number": f"{len(unit)}/BC-{unit.upper()}",
                "letter_date": (day - timedelta(days=2)).strftime("%d/%m/%Y"),
                "received_on": day.isoformat(),
            }
            writer.writerow(
                {**letter, "record": "value", "indicator": "training-courses", "value": 1}
            )
            for record in records:
                writer.writerow(
                    {
                        "unit": unit,
                        "year": year,
                        "record": "enterprise",
                        **record,
                        "certificate_issued": "có" if record["certificate_issued"] else "không",
                    }
                )
    return out.getvalue().encode("utf-8")


BASELINES = [
    {
        "indicator": "iso-9001-certificates",
        "period": "bp-2011-2020",
        "value": "50",
        "source_document": "Báo cáo số 45/BC-SKHCN tổng kết giai đoạn 2011 - 2020",
        "source_date": "2021-01-15",
    },
    # ISO 14001 is known per unit only: the baseline is their sum.
    {
        "indicator": "iso-14001-certificates",
        "period": "bp-2011-2020",
        "unit": "bk-doit",
        "value": "6",
        "source_document": "Công văn số 12/SCT-QLCN",
        "source_date": "2021-02-01",
    },
    {
        "indicator": "iso-14001-certificates",
        "period": "bp-2011-2020",
        "unit": "bk-dard",
        "value": "4",
        "source_document": "Công văn số 30/SNN-KHTC",
        "source_date": "2021-02-03",
    },
    {
        "indicator": "enterprises-supported",
        "year": 2020,
        "value": "100",
        "source_document": "Báo cáo số 45/BC-SKHCN tổng kết giai đoạn 2011 - 2020",
        "source_date": "2021-01-15",
    },
]

# What the plan's three targets read, as of each year: (status, cumulative or growth).
ISO_9001_JUDGED = {
    2021: ("on_track", "6", "12.00", "5.1"),
    2022: ("on_track", "11", "22.00", "10.2"),
    2023: ("at_risk", "15", "30.00", "15.3"),
    2024: ("on_track", "21", "42.00", "20.4"),
    2025: ("on_track", "26", "52.00", "25.5"),
}
ISO_14001_JUDGED = {
    2021: ("on_track", "2", "20.00", "1.02"),
    2022: ("on_track", "3", "30.00", "2.04"),
    2023: ("at_risk", "3", "30.00", "3.06"),
    2024: ("at_risk", "4", "40.00", "4.08"),
    2025: ("at_risk", "5", "50.00", "5.1"),
}
# Growth against the previous year: 2021 against the 2020 base year (100).
GROWTH = {2021: "1.00", 2022: "1.98", 2023: "0.97", 2024: "0.96", 2025: "1.90"}
POSITION = {2021: "in_range", 2022: "above", 2023: "below", 2024: "below", 2025: "above"}
GROWTH_STATUS = {
    2021: "on_track",
    2022: "on_track",
    2023: "at_risk",
    2024: "off_track",
    2025: "off_track",
}


def _target(body: dict[str, Any], key: str) -> dict[str, Any]:
    [target] = [t for t in body["targets"] if t["key"] == key]
    return target


async def test_a_province_loads_its_history_and_baselines_and_reads_every_year(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    # DOST enters the history once it has all of it: in the 2026 spring, after 2025's letters.
    resources.clock = lambda: datetime(2026, 3, 2, 3, 0, tzinfo=UTC)
    # Baselines: 2011–2020 (provincial total; per unit) and the 2020 base year.
    recorded = await client.post(f"/v1/programmes/{BK}/baselines", json={"figures": BASELINES})
    assert recorded.status_code == 200, recorded.text
    assert len(recorded.json()["items"]) == 4
    listed = await client.get(
        f"/v1/programmes/{BK}/baselines", params={"indicator": "iso-14001-certificates"}
    )
    assert [(f["unit"], f["value"]) for f in listed.json()["items"]] == [
        ("bk-dard", "4"),
        ("bk-doit", "6"),
    ]

    # A dry run of a file with mistakes lists every one at its row and column.
    wrong = history_csv([2021]).decode().splitlines()
    wrong.append("bk-dpi,2021,1/BC,25/11/2021,2021-11-28,value,training-courses,1,,,,,")
    wrong.append("bk-doh,2019,2/BC,25/11/2019,2019-11-28,letter,,,,,,,")
    wrong.append("bk-na-ri,2022,3/BC,31/02/2022,2022-11-28,value,iso-9001-certificates,3,,,,,")
    upload = "\n".join(wrong).encode()
    headers = {"Content-Type": "text/csv"}
    dry = await client.post(
        f"/v1/programmes/{BK}/report-backfills/import", content=upload, headers=headers
    )
    assert dry.status_code == 200, dry.text
    rows = len(wrong)
    assert dry.json()["valid"] is False
    assert dry.json()["applied"] is False
    assert [(e["location"], e["code"]) for e in dry.json()["errors"]] == [
        (["body", rows - 2, "unit"], "not_a_reporting_unit"),
        (["body", rows - 1, "year"], "year_outside_regime"),
        (["body", rows, "indicator"], "derived_indicator"),
        (["body", rows, "letter_date"], "invalid_date"),
    ]
    refused = await client.post(
        f"/v1/programmes/{BK}/report-backfills/import",
        params={"dry_run": "false"},
        content=upload,
        headers=headers,
    )
    assert_problem(refused, 422, "import_rejected")

    # 2021–2024 from one file: a dry run finds nothing, the import enters them all.
    upload = history_csv([2021, 2022, 2023, 2024])
    dry = await client.post(
        f"/v1/programmes/{BK}/report-backfills/import", content=upload, headers=headers
    )
    assert dry.json()["errors"] == [], dry.text
    assert dry.json()["reports"] == 14 * 4 - 1
    applied = await client.post(
        f"/v1/programmes/{BK}/report-backfills/import",
        params={"dry_run": "false"},
        content=upload,
        headers=headers,
    )
    assert applied.status_code == 200, applied.text
    assert applied.json()["applied"] is True
    assert len(applied.json()["entered"]) == 55
    assert applied.json()["obligations_created"] == 14 * 4

    # 2025 one report at a time, by the successors.
    for unit, records in enterprises_of(2025).items():
        day = received(2025, unit)
        entered = await client.post(
            f"/v1/programmes/{BK}/report-backfills",
            json={
                "unit": unit,
                "year": 2025,
                "letter": {"number": f"7/BC-{unit.upper()}", "date": str(day - timedelta(1))},
                "received_on": str(day),
                "content": {
                    "enterprises": [{k: v for k, v in r.items() if v is not None} for r in records]
                },
            },
        )
        assert entered.status_code == 201, entered.text
        version = entered.json()["version"]
        assert version["kind"] == "submission"
        assert version["backfill"]["received_on"] == str(day)
        assert version["backfill"]["entered_by"] == "test-all"
        assert entered.json()["report"]["status"] == "accepted"

    async with resources.sessionmaker() as session:
        for year in range(2021, 2026):
            await refresh(session, BK, year)
        await session.commit()

    # Timeliness of every year, judged on the day each letter was received.
    for year, units in UNITS.items():
        found = await client.get(f"/v1/programmes/{BK}/timeliness", params={"year": year})
        assert found.status_code == 200, found.text
        body = found.json()
        expected = {
            u: (
                ("missing", None)
                if (year, u) in NEVER_RECEIVED
                else ("late", LATE[(year, u)])
                if (year, u) in LATE
                else ("on_time", None)
            )
            for u in units
        }
        assert {r["unit"]: (r["status"], r["days_late"]) for r in body["rows"]} == expected
        # The day each is judged on is the day its letter was received.
        assert {r["unit"]: r["submitted_on"] for r in body["rows"]} == {
            u: None if (year, u) in NEVER_RECEIVED else str(received(year, u)) for u in units
        }
        late = sum(1 for y, _ in LATE if y == year)
        missing = sum(1 for y, _ in NEVER_RECEIVED if y == year)
        assert (body["obligations"], body["late"], body["missing"], body["on_time"]) == (
            len(units), late, missing, len(units) - late - missing,
        )  # fmt: skip
        # The published rollup says the same.
        rollup = (await client.get(f"/v1/rollups/{BK}/{year}")).json()
        assert rollup["completeness"]["late"] == late
        assert rollup["completeness"]["missing"] == missing
        assert {r["unit"]: (r["status"], r["days_late"]) for r in rollup["timeliness"]} == expected

        # Both ISO targets against 2011–2020, with the figures they used.
        for key, judged, baseline, figures in (
            ("bk-iso-9001-2021-2030", ISO_9001_JUDGED, "50", 1),
            ("bk-iso-14001-2021-2030", ISO_14001_JUDGED, "10", 2),
        ):
            target = _target(rollup, key)
            status, cumulative, ratio, expected_by_now = judged[year]
            assert target["status"] == status, target
            assert Decimal(target["actual"]) == Decimal(cumulative)
            assert Decimal(target["ratio_pct"]) == Decimal(ratio)
            assert target["expected"] == expected_by_now
            assert target["baseline"]["label"] == "2011–2020"
            assert Decimal(target["baseline"]["total"]) == Decimal(baseline)
            assert len(target["baseline"]["figures"]) == figures
            assert (
                f"cumulative {cumulative} against baseline {baseline} = {ratio} %"
                in target["explanation"]
            )
            assert f"requires {Decimal(expected_by_now).normalize():f}" in target["explanation"]

        # The growth target: 2021 against the 2020 base year, then year on year.
        growth = _target(rollup, "bk-enterprises-supported-growth-2021-2030")
        assert growth["status"] == GROWTH_STATUS[year], growth
        assert growth["baseline"]["year"] == 2020
        assert growth["baseline"]["figures"][0]["source_document"].startswith("Báo cáo số 45")
        assert "baseline 2020: 100 (provincial total from Báo cáo số 45" in growth["explanation"]
        per_year = {d["year"]: d for d in growth["per_year"]}
        assert {y: Decimal(per_year[y]["growth_pct"]) for y in per_year} == {
            y: Decimal(g) for y, g in GROWTH.items() if y <= year
        }
        assert f"latest {year}: +{GROWTH[year]} % ({POSITION[year]})" in growth["explanation"]

    # The phase: every year combined, the targets judged as of 2025.
    phase = await client.get(f"/v1/phase-rollups/{BK}/bk-2021-2030")
    assert phase.status_code == 200, phase.text
    judged = {t["key"]: t for t in phase.json()["targets"]}
    assert judged["bk-iso-9001-2021-2030"]["status"] == "on_track"
    assert Decimal(judged["bk-iso-9001-2021-2030"]["ratio_pct"]) == Decimal("52")
    assert judged["bk-iso-14001-2021-2030"]["status"] == "at_risk"
    assert Decimal(judged["bk-iso-14001-2021-2030"]["ratio_pct"]) == Decimal("50")
    growth = judged["bk-enterprises-supported-growth-2021-2030"]
    assert growth["status"] == "off_track"
    assert "below in 2023, 2024" in growth["explanation"]
    assert [Decimal(d["growth_pct"]) for d in growth["per_year"]] == [
        Decimal(g) for g in GROWTH.values()
    ]
