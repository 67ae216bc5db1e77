"""What the API and the worker expose at /metrics, beyond each process's own counters.

Gauges of shared state (jobs by status, the outbox's lag, the queue's depth, how far each
published rollup is behind its latest acceptance) are read from PostgreSQL and Redis at
scrape time, so they are right whatever the number of processes. Counters (requests,
job attempts, tokens) live in each process; with several API processes they are
aggregated through prometheus_client's multiprocess mode (PROMETHEUS_MULTIPROC_DIR).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterable, Sequence
from typing import Any

import structlog
from prometheus_client import CollectorRegistry, PlatformCollector, ProcessCollector
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from nscl_domain.jobs.repository import JobRepository
from nscl_domain.rollups.repository import freshness

log = structlog.get_logger(__name__)

SCRAPE_TIMEOUT_SECONDS = 3.0
MULTIPROCESS_DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"


class Families(Collector):
    """A fixed list of families, gathered before the (synchronous) exposition."""

    def __init__(self, families: Iterable[Metric]) -> None:
        self.families = list(families)

    def collect(self) -> Iterable[Metric]:
        return self.families


def multiprocess() -> bool:
    return bool(os.environ.get(MULTIPROCESS_DIR_VARIABLE))


def render(own: CollectorRegistry, families: Sequence[Metric]) -> bytes:
    """The exposition text: this process's (or, in multiprocess mode, every process's)
    counters, the process's own resource use, and the families gathered at scrape time."""
    registry = CollectorRegistry(auto_describe=False)
    if multiprocess():
        from prometheus_client import multiprocess as mp

        mp.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]  # untyped upstream
    else:
        registry.register(Families(own.collect()))
    ProcessCollector(namespace="", registry=registry)
    PlatformCollector(registry=registry)
    registry.register(Families(families))
    return generate_latest(registry)


def pool_families(engine: AsyncEngine) -> list[Metric]:
    """The scraping process's connection pool: size, in use, idle, overflow, waiting."""
    pool: Any = engine.sync_engine.pool
    family = GaugeMetricFamily(
        "nscl_db_pool_connections",
        "Connections of this process's database pool, by state.",
        labels=["state", "pid"],
    )
    pid = str(os.getpid())
    try:
        in_use = int(pool.checkedout())
        idle = int(pool.checkedin())
        overflow = max(0, int(pool.overflow()))
        size = int(pool.size())
    except AttributeError:  # NullPool (one-shot commands) keeps nothing
        return []
    # SQLAlchemy does not publish how many wait for a connection; its async queue does.
    getters = getattr(getattr(getattr(pool, "_pool", None), "_queue", None), "_getters", ())
    waiting = len(getters) if getters is not None else 0
    for state, value in (
        ("in_use", in_use),
        ("idle", idle),
        ("overflow", overflow),
        ("size", size),
        ("waiting", waiting),
    ):
        family.add_metric([state, pid], value)
    return [family]


async def shared_state_families(
    sessionmaker: async_sessionmaker[AsyncSession], redis: Any | None, queue_name: str
) -> list[Metric]:
    """Jobs by status, outbox lag, queue depth and rollup freshness, read now; a source that
    does not answer in time is reported as down rather than delaying the scrape."""
    families: list[Metric] = []
    up = GaugeMetricFamily(
        "nscl_metrics_source_up", "Whether a source of these metrics answered.", labels=["source"]
    )
    try:
        families += await asyncio.wait_for(_database(sessionmaker), SCRAPE_TIMEOUT_SECONDS)
        up.add_metric(["database"], 1)
    except Exception:
        log.warning("metrics.database_failed", exc_info=True)
        up.add_metric(["database"], 0)
    if redis is not None:
        depth = GaugeMetricFamily(
            "nscl_queue_depth", "Hand-overs waiting in the job queue.", labels=["queue"]
        )
        try:
            waiting = await asyncio.wait_for(redis.zcard(queue_name), SCRAPE_TIMEOUT_SECONDS)
            depth.add_metric([queue_name], int(waiting))
            families.append(depth)
            up.add_metric(["redis"], 1)
        except Exception:
            log.warning("metrics.redis_failed", exc_info=True)
            up.add_metric(["redis"], 0)
    families.append(up)
    return families


async def _database(sessionmaker: async_sessionmaker[AsyncSession]) -> list[Metric]:
    async with sessionmaker() as session:
        jobs = JobRepository(session)
        counts = await jobs.counts()
        lag = await jobs.oldest_due_pending_age()
        fresh = await freshness(session)
    by_status = GaugeMetricFamily(
        "nscl_jobs", "Jobs in the outbox by name and status.", labels=["job", "status"]
    )
    for name, status, n in counts:
        by_status.add_metric([name, status], n)
    outbox = GaugeMetricFamily(
        "nscl_outbox_oldest_pending_age_seconds",
        "How long the longest-waiting due job has waited for a worker (0: none waits).",
        value=lag,
    )
    staleness = GaugeMetricFamily(
        "nscl_rollup_staleness_seconds",
        "How far a programme-year's published rollup is behind its latest accepted report "
        "(+Inf: accepted reports, nothing published).",
        labels=["programme", "year"],
    )
    published = GaugeMetricFamily(
        "nscl_rollup_published_timestamp_seconds",
        "When the published run of a programme-year was computed (Unix time).",
        labels=["programme", "year"],
    )
    for row in fresh:
        labels = [row.programme, str(row.year)]
        staleness.add_metric(labels, row.lag_seconds)
        if row.published_computed_at is not None:
            published.add_metric(labels, row.published_computed_at.timestamp())
    return [by_status, outbox, staleness, published]
