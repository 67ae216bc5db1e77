"""Requests other contexts make of a job by name, without importing the context that runs it.

A change to reported, planned or budgeted figures asks for its programme-year's rollup
refresh: a ``rollups.refresh`` job in the same transaction, due at once. Bursts coalesce
without a fixed wait: changes join the one pending job, and a refresh that finds another
already waiting behind the one in flight leaves the work to it (see ``rollups.refresh``), so
a programme-year has at most one run in flight and one trailing refresh after it.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from nscl_domain.jobs import JobName
from nscl_domain.jobs.models import Job
from nscl_domain.uow import UnitOfWork

# No debounce: a fixed wait was most of the time a reader waited for an acceptance to show
# (5 s against an incremental run of tens of ms). Coalescing makes a burst cheap instead.
ROLLUP_DEBOUNCE: timedelta | None = None


def refresh_args(programme_id: uuid.UUID, year: int) -> dict[str, Any]:
    """The arguments of a programme-year's rollup refresh job."""
    return {"programme_id": str(programme_id), "year": year}


def refresh_key(programme_id: uuid.UUID, year: int) -> str:
    """Names a programme-year's refresh: its pending job joins others, its runs queue."""
    return f"rollup:{programme_id}:{year}"


async def refresh_later(
    uow: UnitOfWork, programme_id: uuid.UUID, year: int, *, requested_by: str
) -> Job:
    """Schedule the programme-year's refresh through the outbox, joining one pending; return
    the job, which the change's answer may name so its caller can follow the refresh."""
    return await uow.schedule(
        JobName.REFRESH_ROLLUP,
        refresh_args(programme_id, year),
        dedup_key=refresh_key(programme_id, year),
        delay=ROLLUP_DEBOUNCE,
        requested_by=requested_by,
    )
