"""Rollups of accepted reports, computed in PostgreSQL and published as immutable runs."""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

from pydantic import BaseModel, ConfigDict
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from nscl_domain.catalogue.service import programme_or_404
from nscl_domain.errors import NotFound
from nscl_domain.identity import Caller, Permission
from nscl_domain.jobs.registry import JobContext
from nscl_domain.rollups.models import RollupRun
from nscl_domain.uow import UnitOfWork

# The accepted version of every periodic report of a programme-year: the rollup's inputs.
_ACCEPTED = """
SELECT v.id AS version_id, v.version_no, r.id AS report_id, u.key AS unit_key
FROM report r
JOIN report_version v ON v.report_id = r.id AND v.version_no = r.accepted_version_no
JOIN reporting_obligation o ON o.id = r.obligation_id
JOIN org_unit u ON u.id = o.unit_id
WHERE o.programme_id = :programme_id AND o.year = :year AND o.regime_id IS NOT NULL
ORDER BY v.id
"""

# One pass over the figures, each indicator aggregated across units by its own rule.
_TOTALS = """
SELECT i.key AS indicator, iv.disaggregation,
       CASE i.aggregation_across_units
            WHEN 'sum' THEN sum(iv.value)
            WHEN 'minimum' THEN min(iv.value)
            WHEN 'average' THEN avg(iv.value)
            ELSE max(iv.value)
       END AS value,
       count(DISTINCT iv.unit_id) AS units
FROM indicator_value iv
JOIN indicator i ON i.id = iv.indicator_id
WHERE iv.version_id = ANY(:version_ids)
GROUP BY i.key, i.aggregation_across_units, iv.disaggregation
ORDER BY i.key, iv.disaggregation
"""


class RefreshRollupArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")

    programme_id: uuid.UUID
    year: int


async def refresh(ctx: JobContext, args: RefreshRollupArgs) -> dict[str, Any]:
    """Recompute a programme-year's rollup; a no-op when its accepted inputs did not change."""
    session = ctx.session
    params = {"programme_id": args.programme_id, "year": args.year}
    sources = [dict(row._mapping) for row in await session.execute(text(_ACCEPTED), params)]
    fingerprint = hashlib.sha256(
        ",".join(str(s["version_id"]) for s in sources).encode()
    ).hexdigest()
    latest = await _latest(session, args.programme_id, args.year)
    if latest is not None and latest.fingerprint == fingerprint:
        return {"run_id": str(latest.id), "unchanged": True}
    version_ids = [s["version_id"] for s in sources]
    totals = [
        {**row._mapping, "value": str(row.value)}
        for row in await session.execute(text(_TOTALS), {"version_ids": version_ids})
    ]
    run = RollupRun(
        programme_id=args.programme_id,
        year=args.year,
        fingerprint=fingerprint,
        totals=totals,
        sources=[{k: str(v) for k, v in s.items()} for s in sources],
    )
    session.add(run)
    await session.flush()
    return {"run_id": str(run.id), "unchanged": False, "sources": len(sources)}


async def _latest(session: AsyncSession, programme_id: uuid.UUID, year: int) -> RollupRun | None:
    stmt = (
        select(RollupRun)
        .where(RollupRun.programme_id == programme_id, RollupRun.year == year)
        .order_by(RollupRun.id.desc())
        .limit(1)
    )
    result: RollupRun | None = (await session.scalars(stmt)).first()
    return result


async def latest_run(uow: UnitOfWork, caller: Caller, programme_ref: str, year: int) -> RollupRun:
    """The latest published rollup of a programme-year."""
    caller.require(Permission.ROLLUPS_READ)
    async with uow:
        programme = await programme_or_404(uow, programme_ref)
        run = await _latest(uow.session, programme.id, year)
    if run is None:
        raise NotFound(f"No rollup of {programme_ref} for {year} yet.", code="rollup_not_found")
    return run
