"""arq worker settings: `arq nscl_worker.settings.WorkerSettings`, or `nscl worker`."""

from __future__ import annotations

from typing import Any, ClassVar

from arq import cron
from arq.connections import ArqRedis, RedisSettings
from arq.cron import CronJob
from arq.worker import Function, Worker, func

from nscl_domain.composition.process import open_engine
from nscl_domain.composition.registry import registry_for
from nscl_domain.db import create_sessionmaker
from nscl_domain.jobs.registry import JobRegistry
from nscl_domain.schema import SchemaOutOfDate, schema_state
from nscl_domain.settings import Settings
from nscl_worker.deps import WorkerDeps
from nscl_worker.jobs import fire_schedules, run_job, sweep_outbox
from nscl_worker.queue import RUN_JOB, ArqJobQueue


def _every(seconds: int) -> dict[str, Any]:
    """arq cron arguments for "every `seconds`" (rounded to what a clock face allows)."""
    if seconds < 60:
        return {"second": set(range(0, 60, seconds))}
    minutes = max(1, seconds // 60)
    return {"minute": set(range(0, 60, minutes)), "second": 0}


def functions(settings: Settings) -> list[Function]:
    return [
        func(
            run_job,
            name=RUN_JOB,
            # The job row counts attempts and retries; arq running a delivery twice would
            # only fight it.
            max_tries=1,
            timeout=settings.job_timeout_seconds,
            # Nothing reads arq's results; each hand-over has its own id anyway.
            keep_result=60,
        )
    ]


def cron_jobs(settings: Settings) -> list[CronJob]:
    return [
        # Named after the queue: arq keys a cron run by name and time, so two deployments
        # (or test runs) sharing a Redis would otherwise take each other's turns.
        cron(
            sweep_outbox,
            name=f"{settings.queue_name}:sweep_outbox",
            run_at_startup=True,
            unique=True,
            **_every(settings.outbox_sweep_seconds),
        ),
        # What runs when is data (job_schedule, /v1/schedules); this only looks often.
        cron(
            fire_schedules,
            name=f"{settings.queue_name}:fire_schedules",
            run_at_startup=True,
            unique=True,
            **_every(settings.schedule_tick_seconds),
        ),
    ]


async def database_deps(
    settings: Settings, database_url: str, redis: ArqRedis, registry: JobRegistry
) -> WorkerDeps:
    """Connect to the database and refuse to work on a schema older than the code."""
    engine = open_engine(settings, database_url)
    async with engine.connect() as conn:
        state = await schema_state(conn)
    if not state.is_current:
        await engine.dispose()
        raise SchemaOutOfDate(state)
    return WorkerDeps(
        settings=settings,
        engine=engine,
        sessionmaker=create_sessionmaker(engine),
        queue=ArqJobQueue(redis, settings.queue_name),
        registry=registry,
    )


def build_worker(
    settings: Settings,
    *,
    database_url: str,
    redis: ArqRedis,
    registry: JobRegistry | None = None,
    burst: bool = False,
    with_cron: bool = True,
    handle_signals: bool = True,
    deps: WorkerDeps | None = None,
) -> Worker:
    """Build a worker on an existing Redis client; ``deps`` shares the caller's database pool."""

    async def on_startup(ctx: dict[str, Any]) -> None:
        ctx["deps"] = deps or await database_deps(
            settings, database_url, redis, registry or registry_for(settings)
        )

    async def on_shutdown(ctx: dict[str, Any]) -> None:
        if deps is None and "deps" in ctx:
            await ctx["deps"].engine.dispose()

    return Worker(
        functions=functions(settings),
        cron_jobs=cron_jobs(settings) if with_cron else None,
        redis_pool=redis,
        queue_name=settings.queue_name,
        on_startup=on_startup,
        on_shutdown=on_shutdown,
        burst=burst,
        handle_signals=handle_signals and not burst,
        # How long a job handed over may wait for an idle worker to look: part of the time a
        # reader waits for an acceptance to show (20 cheap Redis reads a second per worker).
        poll_delay=0.05,
        max_jobs=10,
        keep_result=60,
        job_timeout=settings.job_timeout_seconds,
    )


class WorkerSettings:
    """Settings class for arq's own command line (`arq nscl_worker.settings.WorkerSettings`)."""

    _settings = Settings()
    functions: ClassVar[list[Function]] = functions(_settings)
    cron_jobs: ClassVar[list[CronJob]] = cron_jobs(_settings)
    queue_name = _settings.queue_name
    redis_settings = RedisSettings.from_dsn(str(_settings.redis_url or "redis://127.0.0.1:6379"))

    @staticmethod
    async def on_startup(ctx: dict[str, Any]) -> None:
        settings = WorkerSettings._settings
        if settings.database_url is None:
            raise SystemExit("set NSCL_DATABASE_URL: a separate worker needs a shared database")
        ctx["deps"] = await database_deps(
            settings, str(settings.database_url), ctx["redis"], registry_for(settings)
        )

    @staticmethod
    async def on_shutdown(ctx: dict[str, Any]) -> None:
        if "deps" in ctx:
            await ctx["deps"].engine.dispose()
