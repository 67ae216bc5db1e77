"""Requests other contexts make of a job by name, without importing the context that runs it.

A change to reported, planned or budgeted figures asks for its programme-year's rollup
refresh: a debounced ``rollups.refresh`` job in the same transaction.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from nscl_domain.jobs import JobName
from nscl_domain.jobs.models import Job
from nscl_domain.uow import UnitOfWork

# A burst of changes to one programme-year (a reviewer accepting a pile of reports, a
# destination acknowledging a dossier line by line) makes one refresh.
ROLLUP_DEBOUNCE = timedelta(seconds=5)


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
