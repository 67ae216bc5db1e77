"""Freshness: from an acceptance's commit to the published run that includes it.

Runs ``nscl worker`` (default settings) on the benchmark's database and a queue of its own,
accepts corrections the way the product does (the acceptance and its ``rollups.refresh``
request in one transaction, handed to the queue after the commit) and watches the
publication pointer until a published run includes the accepted version:

- single: one acceptance at a time, each waited for (p50/p95/max);
- burst: 100 acceptances across the units of a province as fast as they commit, then how
  long after the last one the published run includes all of them, and each one's wait.

The wait is observed by polling every 5 ms, so each figure may be up to 5 ms late.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from arq import create_pool
from arq.connections import RedisSettings
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

from bench import datagen
from nscl_domain.db import create_sessionmaker
from nscl_domain.jobs.queue import ArqJobQueue
from nscl_domain.jobs.requests import refresh_later
from nscl_domain.uow import UnitOfWork

POLL_SECONDS = 0.005
TIMEOUT_SECONDS = 60.0
NSCL = str(Path(sys.executable).with_name("nscl"))

# Is the version in the run published for its programme-year now?
_INCLUDED = """
SELECT count(*) FROM rollup_publication p JOIN rollup_run r ON r.id = p.run_id
WHERE p.programme_id = :programme_id AND p.year = :year
  AND r.source_ids && CAST(:versions AS uuid[])
"""


class _Session:
    """The unit of work's session, to run the generator's SQL in its transaction."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session


@dataclass(frozen=True)
class Freshness:
    single_ms: list[float]
    burst_ms: list[float]  # each acceptance of the burst: commit → published
    burst_after_last_ms: float  # the last acceptance's commit → all of them published
    burst_runs: int  # runs the burst made (coalesced)
    burst_seconds: float  # how long committing the 100 took


@contextlib.contextmanager
def worker(database_url: str, redis_url: str, queue: str) -> Any:
    env = {
        **os.environ,
        "NSCL_DATABASE_URL": database_url,
        "NSCL_REDIS_URL": redis_url,
        "NSCL_QUEUE_NAME": queue,
        "NSCL_LOG_LEVEL": "WARNING",
    }
    process = subprocess.Popen([NSCL, "worker"], env=env, stdout=subprocess.DEVNULL)
    try:
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextlib.asynccontextmanager
async def _uows(database_url: str, redis_url: str, queue: str) -> AsyncIterator[Any]:
    engine = create_async_engine(database_url, pool_size=4)
    redis = await create_pool(RedisSettings.from_dsn(redis_url))
    sessionmaker = create_sessionmaker(engine)
    try:
        yield lambda: UnitOfWork(sessionmaker, queue=ArqJobQueue(redis, queue))
    finally:
        await redis.aclose()
        await engine.dispose()


async def _accept(
    new_uow: Any, dataset: datagen.Dataset, province: int, unit: int, year: int
) -> tuple[uuid.UUID, uuid.UUID, float]:
    """Accept a correction and ask for its refresh in one transaction; (programme, version,
    perf_counter at the commit's return)."""
    uow: UnitOfWork = new_uow()
    async with uow:
        session = uow.get(_Session).session
        connection = await session.connection()
        programme_id, _, unit_id = await datagen.accept_correction(
            connection, dataset, province=province, unit=unit, year=year
        )
        version_id = await session.scalar(
            text(
                "SELECT v.id FROM report r JOIN report_version v ON v.report_id = r.id "
                "AND v.version_no = r.accepted_version_no JOIN reporting_obligation o "
                "ON o.id = r.obligation_id WHERE r.unit_id = :unit AND o.year = :year "
                "AND o.programme_id = :programme_id"
            ),
            {"unit": unit_id, "year": year, "programme_id": programme_id},
        )
        await refresh_later(uow, programme_id, year, requested_by="bench")
        await uow.commit()
        committed = time.perf_counter()
    assert version_id is not None
    return programme_id, version_id, committed


async def _published_at(
    session: AsyncSession, programme_id: uuid.UUID, year: int, versions: Sequence[uuid.UUID]
) -> dict[uuid.UUID, float]:
    """Poll until each version is in the published run; when each was first seen there."""
    seen: dict[uuid.UUID, float] = {}
    deadline = time.perf_counter() + TIMEOUT_SECONDS
    while len(seen) < len(versions):
        for version in versions:
            if version in seen:
                continue
            found = await session.scalar(
                text(_INCLUDED),
                {"programme_id": programme_id, "year": year, "versions": [version]},
            )
            await session.rollback()
            if found:
                seen[version] = time.perf_counter()
        if time.perf_counter() > deadline:
            raise TimeoutError(f"{len(versions) - len(seen)} acceptances never got published")
        await asyncio.sleep(POLL_SECONDS)
    return seen


async def measure(
    database_url: str,
    redis_url: str,
    dataset: datagen.Dataset,
    *,
    singles: int = 20,
    burst: int = 100,
) -> Freshness:
    queue = f"nscl:bench-fresh:{uuid.uuid4().hex[:8]}"
    engine = create_async_engine(database_url)
    units = dataset.units // len(dataset.provincial_programme_ids)
    with worker(database_url, redis_url, queue):
        async with _uows(database_url, redis_url, queue) as new_uow, engine.connect() as conn:
            session = AsyncSession(bind=conn)
            # Warm up: the worker's first job imports and connects.
            programme_id, version, _ = await _accept(new_uow, dataset, 0, units - 1, 2022)
            await _published_at(session, programme_id, 2022, [version])
            single_ms = []
            for i in range(singles):
                programme_id, version, committed = await _accept(
                    new_uow, dataset, i % len(dataset.provincial_programme_ids), i % units, 2022
                )
                seen = await _published_at(session, programme_id, 2022, [version])
                single_ms.append((seen[version] - committed) * 1000)
            runs_before = await _runs(session, dataset.provincial_programme_ids[0], 2023)
            started = time.perf_counter()
            accepted = [await _accept(new_uow, dataset, 0, i % units, 2023) for i in range(burst)]
            burst_seconds = time.perf_counter() - started
            programme_id = accepted[0][0]
            # Later corrections of a unit replace its earlier ones: wait for the last of each.
            last_of_unit = {i % units: accepted[i] for i in range(burst)}
            versions = [version for _, version, _ in last_of_unit.values()]
            seen = await _published_at(session, programme_id, 2023, versions)
            last_commit = accepted[-1][2]
            burst_ms = [(seen[v] - committed) * 1000 for _, v, committed in last_of_unit.values()]
            # Settle: the trailing refresh may still be running.
            await asyncio.sleep(1.0)
            burst_runs = await _runs(session, programme_id, 2023) - runs_before
            await session.close()
    await engine.dispose()
    return Freshness(
        single_ms=single_ms,
        burst_ms=burst_ms,
        burst_after_last_ms=(max(seen.values()) - last_commit) * 1000,
        burst_runs=burst_runs,
        burst_seconds=burst_seconds,
    )


async def _runs(session: AsyncSession, programme_id: uuid.UUID, year: int) -> int:
    count = await session.scalar(
        text("SELECT count(*) FROM rollup_run WHERE programme_id = :p AND year = :y"),
        {"p": programme_id, "y": year},
    )
    await session.rollback()
    return int(count or 0)


def percentile(values: Sequence[float], percent: int) -> float:
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * percent // 100))
    return ordered[rank - 1]


def summary(values: Sequence[float]) -> str:
    return (
        f"p50 {statistics.median(values):.0f} ms, p95 {percentile(values, 95):.0f} ms, "
        f"max {max(values):.0f} ms"
    )
