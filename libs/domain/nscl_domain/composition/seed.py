"""Load the built-in catalogue (the Bắc Kạn plan) from its YAML file, idempotently."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import structlog
import yaml
from sqlalchemy import delete, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from nscl_domain.budget.models import AccountCode
from nscl_domain.catalogue import models as m
from nscl_domain.db import Base
from nscl_domain.jobs.schedule_repository import ScheduleRepository
from nscl_domain.jobs.schedules import default_schedules
from nscl_domain.reports.models import ReportingRegime, ValidationRule
from nscl_domain.reports.rules import DEFAULT_RULES
from nscl_domain.text import fold, nfc

log = structlog.get_logger(__name__)

SEED_FILE = Path(__file__).resolve().parent / "seed" / "bac_kan.yaml"


def read_seed(path: Path = SEED_FILE) -> dict[str, list[dict[str, Any]]]:
    """Parse the seed file, with every string in NFC."""
    with path.open(encoding="utf-8") as handle:
        data = yaml.safe_load(handle)
    return {section: [_normalise(item) for item in items or []] for section, items in data.items()}


def _normalise(item: dict[str, Any]) -> dict[str, Any]:
    return {k: nfc(v) if isinstance(v, str) else v for k, v in item.items()}


async def _upsert(
    session: AsyncSession, model: type[Base], rows: Sequence[dict[str, Any]]
) -> dict[str, uuid.UUID]:
    """Insert or update rows by their ``key``; return key → id (ids never change)."""
    if not rows:
        return {}
    insert_rows = insert(model).values(list(rows))
    columns = [c for c in rows[0] if c not in ("id", "key")]
    table = model.__table__
    stmt = insert_rows.on_conflict_do_update(
        index_elements=["key"], set_={c: insert_rows.excluded[c] for c in columns}
    ).returning(table.c.key, table.c.id)
    return dict((await session.execute(stmt)).all())


def _ids(mapping: Mapping[str, uuid.UUID], keys: Iterable[str]) -> list[uuid.UUID]:
    return [mapping[key] for key in keys]


def _pct(value: Any) -> Decimal | None:
    return None if value is None else Decimal(str(value))


async def load_seed(session: AsyncSession, path: Path = SEED_FILE) -> dict[str, int]:
    """Write the seed into the catalogue; running it again changes nothing. Returns counts."""
    seed = read_seed(path)
    units = await _upsert(
        session,
        m.OrgUnit,
        [
            {
                "key": u["key"],
                "kind": u["kind"],
                "code": u["code"],
                "name_vi": u["name_vi"],
                "name_en": u["name_en"],
                "abbreviation": u["abbreviation"],
                "valid_from": u["valid_from"],
                "valid_to": u["valid_to"],
                "search_text": fold(
                    " ".join(
                        filter(None, (u["name_vi"], u["name_en"], u["abbreviation"], u["code"]))
                    )
                ),
            }
            for u in seed["org_units"]
        ],
    )
    for u in seed["org_units"]:
        await session.execute(
            update(m.OrgUnit)
            .where(m.OrgUnit.id == units[u["key"]])
            .values(parent_id=units[u["parent"]] if u["parent"] else None)
        )
    await _upsert(
        session,
        m.OrgSuccession,
        [
            {
                "key": s["key"],
                "predecessor_id": units[s["predecessor"]],
                "successor_id": units[s["successor"]],
                "kind": s["kind"],
                "effective": s["effective"],
                "note_en": s.get("note_en"),
            }
            for s in seed["successions"]
        ],
    )
    programmes: dict[str, uuid.UUID] = {}
    # Parents first, so a provincial plan can point at the national programme.
    for p in sorted(seed["programmes"], key=lambda p: p["parent"] is not None):
        programmes |= await _upsert(
            session,
            m.Programme,
            [
                {
                    "key": p["key"],
                    "level": p["level"],
                    "parent_id": programmes[p["parent"]] if p["parent"] else None,
                    "owner_unit_id": units[p["owner_unit"]],
                    "decision_no": p["decision_no"],
                    "decision_date": p["decision_date"],
                    "decided_by_vi": p["decided_by_vi"],
                    "decided_by_en": p["decided_by_en"],
                    "name_vi": p["name_vi"],
                    "name_en": p["name_en"],
                    "start_year": p["start_year"],
                    "end_year": p["end_year"],
                }
            ],
        )
    phases = await _upsert(
        session,
        m.Phase,
        [
            {k: v for k, v in ph.items() if k != "programme"}
            | {"programme_id": programmes[ph["programme"]]}
            for ph in seed["phases"]
        ],
    )
    baselines = await _upsert(session, m.BaselinePeriod, seed["baseline_periods"])
    await _upsert(
        session,
        m.ProgrammeRole,
        [
            {
                "key": r["key"],
                "programme_id": programmes[r["programme"]],
                "role": r["role"],
                "unit_id": units[r["unit"]],
                "focal_agency_id": units[r["focal_agency"]] if r["focal_agency"] else None,
                "valid_from": r["valid_from"],
                "valid_to": r["valid_to"],
            }
            for r in seed["roles"]
        ],
    )
    # National indicators first: a provincial one names the national one it counts towards.
    indicators: dict[str, uuid.UUID] = {}
    for maps_to_national in (False, True):
        indicators |= await _upsert(
            session,
            m.Indicator,
            [
                {
                    "key": i["key"],
                    "programme_id": programmes[i["programme"]],
                    "name_vi": i["name_vi"],
                    "name_en": i["name_en"],
                    "unit": i["unit"],
                    "aggregation_across_units": i["aggregation_across_units"],
                    "aggregation_across_time": i["aggregation_across_time"],
                    "disaggregations": i.get("disaggregations") or [],
                    "derived_from": i.get("derived_from"),
                    "national_indicator_id": indicators[i["national_indicator"]]
                    if i.get("national_indicator")
                    else None,
                }
                for i in seed["indicators"]
                if bool(i.get("national_indicator")) == maps_to_national
            ],
        )
    await _upsert(
        session,
        m.Target,
        [
            {
                "key": t["key"],
                "programme_id": programmes[t["programme"]],
                "indicator_id": indicators[t["indicator"]],
                "phase_id": phases[t["phase"]],
                "kind": t["kind"],
                "value": _pct(t.get("value")),
                "min_pct": _pct(t.get("min_pct")),
                "max_pct": _pct(t.get("max_pct")),
                "baseline_period_id": baselines[t["baseline_period"]]
                if t.get("baseline_period")
                else None,
                "disaggregation": t.get("disaggregation"),
                "approximate": bool(t.get("approximate")),
                "text_vi": t["text_vi"],
                "text_en": t["text_en"],
            }
            for t in seed["targets"]
        ],
    )
    groups = await _upsert(
        session,
        m.TaskGroup,
        [
            {
                "key": g["key"],
                "programme_id": programmes[g["programme"]],
                "number": g["number"],
                "name_vi": g["name_vi"],
                "name_en": g["name_en"],
            }
            for g in seed["task_groups"]
        ],
    )
    tasks = await _upsert(
        session,
        m.Task,
        [
            {
                "key": t["key"],
                "group_id": groups[t["group"]],
                "number": str(t["number"]),
                "text_vi": t["text_vi"],
                "text_en": t["text_en"],
                "search_text": fold(f"{t['text_vi']} {t['text_en']}"),
            }
            for t in seed["tasks"]
        ],
    )
    await session.execute(delete(m.TaskUnit).where(m.TaskUnit.task_id.in_(list(tasks.values()))))
    task_units = [
        {"task_id": tasks[t["key"]], "unit_id": unit_id, "role": role}
        for t in seed["tasks"]
        for role, keys in (("lead", t["lead_units"]), ("cooperating", t["cooperating_units"]))
        for unit_id in _ids(units, keys)
    ]
    if task_units:
        await session.execute(insert(m.TaskUnit).values(task_units))
    regimes = [
        {
            "id": uuid.uuid4(),
            **{k: v for k, v in r.items() if k != "programme"},
            "programme_id": programmes[r["programme"]],
        }
        for r in seed.get("reporting_regimes", [])
    ]
    if regimes:
        await session.execute(insert(ReportingRegime).values(regimes).on_conflict_do_nothing())
    codes = [{"id": uuid.uuid4(), **code} for code in seed.get("account_codes", [])]
    if codes:
        await session.execute(insert(AccountCode).values(codes).on_conflict_do_nothing())
    rules = [
        {"code": r.code, "severity": r.severity, "enabled": r.enabled, "description": r.description,
         "params": dict(r.params)}
        for r in DEFAULT_RULES
    ]  # fmt: skip
    await session.execute(insert(ValidationRule).values(rules).on_conflict_do_nothing())
    provincial = {
        p["key"]: programmes[p["key"]] for p in seed["programmes"] if p["level"] == "provincial"
    }
    await ScheduleRepository(session).ensure(default_schedules(provincial))
    counts = {section: len(items) for section, items in seed.items()}
    log.info("catalogue.seeded", **counts)
    return counts
