"""Rollup benchmark: national-scale data, then the four figures the rollups must meet.

    make bench            # or: .venv/bin/python -m bench.rollups [--provinces 34 --units 100]

1. the full rollup (the nightly rebuild job, run as the worker runs it, in a process of
   its own) against a plain ``GROUP BY ROLLUP`` over the same values; ratio ≤ 1.5;
2. the incremental rollup after one accepted correction; ≤ 50 ms;
3. the worker's peak memory during the full rollup; ≤ 300 MB;
4. ``GET`` of a published provincial rollup under 50 connections beside a bare FastAPI
   ``SELECT 1`` endpoint over asyncpg, both served by uvicorn; ≥ 60 % of its requests/s,
   p99 ≤ 50 ms.

It creates (and afterwards drops) its own database ``nscl_bench`` on the PostgreSQL of
``BENCH_ADMIN_URL`` (default: the local server) and uses Redis database 14.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from bench import datagen, http_load
from nscl_domain.composition.registry import DEFAULT_REGISTRY
from nscl_domain.db import create_sessionmaker
from nscl_domain.identity import SYSTEM
from nscl_domain.identity import service as identity
from nscl_domain.jobs import JobName
from nscl_domain.jobs.registry import JobContext
from nscl_domain.jobs.service import run_attempt
from nscl_domain.rollups import service as rollups
from nscl_domain.uow import UnitOfWork

ADMIN_URL = os.environ.get("BENCH_ADMIN_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
DATABASE = "nscl_bench"
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
NSCL = str(Path(sys.executable).with_name("nscl"))

PLAIN_ROLLUP = """
CREATE TEMP TABLE plain_rollup AS
SELECT iv.year, iv.indicator_id, iv.disaggregation, u.kind,
       sum(iv.value) AS value_sum, count(*) AS value_count,
       min(iv.value) AS value_min, max(iv.value) AS value_max
FROM indicator_value iv JOIN org_unit u ON u.id = iv.unit_id
GROUP BY ROLLUP (iv.year, iv.indicator_id, iv.disaggregation, u.kind)
"""


def database_url() -> str:
    return ADMIN_URL.rsplit("/", 1)[0] + "/" + DATABASE


async def recreate_database() -> None:
    admin = create_async_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(text(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)"))
        await conn.execute(text(f"CREATE DATABASE {DATABASE}"))
    await admin.dispose()


async def drop_database() -> None:
    admin = create_async_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(text(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)"))
    await admin.dispose()


def nscl(*args: str) -> None:
    env = {**os.environ, "NSCL_DATABASE_URL": database_url(), "NSCL_LOG_LEVEL": "WARNING"}
    subprocess.run([NSCL, *args], check=True, env=env, stdout=subprocess.DEVNULL)


async def schedule(engine: AsyncEngine, name: str, args: dict[str, Any]) -> uuid.UUID:
    uow = UnitOfWork(create_sessionmaker(engine))
    async with uow:
        job = await uow.schedule(name, args, requested_by="bench")
        await uow.commit()
    return job.id


def run_job_in_worker_process(job_id: uuid.UUID) -> dict[str, Any]:
    """Run one job as the worker runs it, in a fresh process: its time and peak memory."""
    completed = subprocess.run(
        [sys.executable, "-m", "bench.rollups", "run-job", str(job_id)],
        check=True,
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parent.parent,
        env={**os.environ, "NSCL_LOG_LEVEL": "WARNING"},
    )
    return dict(json.loads(completed.stdout.strip().splitlines()[-1]))


async def run_job(job_id: uuid.UUID) -> None:
    engine = create_async_engine(database_url(), pool_size=2)
    started = time.perf_counter()
    result = await run_attempt(create_sessionmaker(engine), DEFAULT_REGISTRY, job_id)
    seconds = time.perf_counter() - started
    await engine.dispose()
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"seconds": seconds, "peak_mb": peak_kib / 1024, "result": result}))


async def settle() -> None:
    """Vacuum and analyse what was just written, so autovacuum does not compete with the
    measurements that follow (a production database is vacuumed too)."""
    engine = create_async_engine(database_url(), isolation_level="AUTOCOMMIT")
    async with engine.connect() as conn:
        await conn.execute(text("VACUUM (ANALYZE)"))
    await engine.dispose()


async def plain_rollup_seconds(engine: AsyncEngine) -> float:
    async with engine.connect() as conn:
        started = time.perf_counter()
        await conn.execute(text(PLAIN_ROLLUP))
        seconds = time.perf_counter() - started
        await conn.rollback()
    return seconds


async def incremental_ms(engine: AsyncEngine, dataset: datagen.Dataset, times: int) -> list[float]:
    """Accept a correction, then time the refresh the acceptance schedules (commit included)."""
    sessionmaker = create_sessionmaker(engine)
    timings = []
    for i in range(times):
        async with engine.begin() as conn:
            programme_id, year, _ = await datagen.accept_correction(
                conn, dataset, province=i % len(dataset.provincial_programme_ids), unit=i, year=2024
            )
        args = rollups.RefreshRollupArgs(programme_id=programme_id, year=year)
        started = time.perf_counter()
        async with sessionmaker() as session:
            context = JobContext(session=session, job_id=uuid.uuid4(), attempt=1, now=_now())
            result = await rollups.refresh(context, args)
            await session.commit()
        timings.append((time.perf_counter() - started) * 1000)
        assert result["kind"] == "incremental", result
    return timings


def _now() -> datetime:
    return datetime.now(UTC)


async def token_for_viewer(base_url: str) -> str:
    engine = create_async_engine(database_url())
    uow = UnitOfWork(create_sessionmaker(engine))
    client_id = f"bench-viewer-{uuid.uuid4().hex[:8]}"
    _, secret = await identity.create_client(
        uow, SYSTEM, client_id=client_id, name="bench", unit="bk-dost", roles=["viewer"]
    )
    await engine.dispose()
    async with httpx.AsyncClient(base_url=base_url) as http:
        issued = await http.post(
            "/v1/oauth/token",
            data={
                "grant_type": "client_credentials",
                "client_id": client_id,
                "client_secret": secret,
            },
        )
        issued.raise_for_status()
        return str(issued.json()["access_token"])


def http_figures(
    seconds: int, connections: int, rounds: int = 3
) -> dict[str, http_load.LoadResult]:
    """Both servers run side by side; their measurements alternate, round after round, so
    a slow moment of the machine falls on both. Each figure is the median of the rounds."""
    env = {
        "NSCL_DATABASE_URL": database_url(),
        "NSCL_REDIS_URL": REDIS_URL,
        "NSCL_LOG_LEVEL": "WARNING",
        "BENCH_DATABASE_URL": database_url(),
    }
    with (
        # The product as deployed: its own entry point, settings and logging.
        http_load.serve("nscl_api.asgi:app", port=8731, env=env, factory=False) as product,
        http_load.serve("bench.http_load:select1_app_from_env", port=8732, env=env) as bare,
    ):
        token = asyncio.run(token_for_viewer(product))
        targets = {
            "rollup": (
                f"{product}/v1/rollups/bench-p-01/2024",
                {"Authorization": f"Bearer {token}"},
            ),
            "select1": (f"{bare}/select1", {}),
        }
        for url, headers in targets.values():
            httpx.get(url, headers=headers).raise_for_status()
            http_load.measure(url, connections=connections, seconds=2, headers=headers)
        measured: dict[str, list[http_load.LoadResult]] = {name: [] for name in targets}
        for _ in range(rounds):
            for name, (url, headers) in targets.items():
                measured[name].append(
                    http_load.measure(
                        url, connections=connections, seconds=seconds, headers=headers
                    )
                )
    return {name: _median_result(results) for name, results in measured.items()}


def _median_result(results: list[http_load.LoadResult]) -> http_load.LoadResult:
    return http_load.LoadResult(
        tool=results[0].tool,
        requests=sum(r.requests for r in results),
        seconds=sum(r.seconds for r in results),
        rps=statistics.median(r.rps for r in results),
        p50_ms=statistics.median(r.p50_ms for r in results),
        p99_ms=statistics.median(r.p99_ms for r in results),
        errors=sum(r.errors for r in results),
    )


async def prepare(provinces: int, units: int, indicators: int) -> datagen.Dataset:
    engine = create_async_engine(database_url())
    started = time.perf_counter()
    async with engine.begin() as conn:
        dataset = await datagen.generate(
            conn, provinces=provinces, units_per_province=units, indicators=indicators
        )
    print(
        f"data: {len(dataset.provincial_programme_ids)} provinces × "
        f"{dataset.units // len(dataset.provincial_programme_ids)} units × "
        f"{len(dataset.years)} years × {indicators} indicators = {dataset.values:,} values, "
        f"{dataset.budget_lines:,} budget lines ({time.perf_counter() - started:.0f} s)"
    )
    await engine.dispose()
    return dataset


async def rollup_figures(dataset: datagen.Dataset, repeats: int) -> dict[str, Any]:
    await settle()
    engine = create_async_engine(database_url())
    plain = [await plain_rollup_seconds(engine) for _ in range(repeats)]
    full = []
    for attempt in range(repeats):
        job_id = await schedule(engine, JobName.REBUILD_ROLLUPS, {"force": attempt > 0})
        full.append(run_job_in_worker_process(job_id))
    national_job = await schedule(
        engine,
        JobName.REFRESH_ROLLUP,
        {"programme_id": str(dataset.national_programme_id), "year": 2024},
    )
    national = run_job_in_worker_process(national_job)
    await settle()
    incremental = await incremental_ms(engine, dataset, times=9)
    await engine.dispose()
    return {"plain": plain, "full": full, "national": national, "incremental": incremental}


def report(figures: dict[str, Any], http: dict[str, http_load.LoadResult]) -> None:
    plain = statistics.median(figures["plain"])
    full_runs = figures["full"]
    full = statistics.median(run["seconds"] for run in full_runs)
    peak = max(run["peak_mb"] for run in full_runs)
    incremental = figures["incremental"]
    rollup, select1 = http["rollup"], http["select1"]
    share = rollup.rps / select1.rps if select1.rps else 0.0
    verdict = {True: "ok", False: "MISSED"}
    print(f"machine: {platform.node()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"recomputed programme-years per full run: {full_runs[0]['result']['recomputed']}")
    print(
        f"1. full rollup {full:.2f} s (median of {len(full_runs)}) vs plain GROUP BY ROLLUP "
        f"{plain:.2f} s: ratio {full / plain:.2f} (≤ 1.5: {verdict[full / plain <= 1.5]})"
    )
    print(f"   national rollup of a year over the provinces: {national_ms(figures):.0f} ms")
    print(
        f"2. incremental rollup after one accepted correction: median "
        f"{statistics.median(incremental):.1f} ms, max {max(incremental):.1f} ms over "
        f"{len(incremental)} (≤ 50 ms: {verdict[statistics.median(incremental) <= 50]})"
    )
    print(
        f"3. worker peak memory during the full rollup: {peak:.0f} MB "
        f"(≤ 300: {verdict[peak <= 300]})"
    )
    print(
        f"4. GET published rollup: {rollup.rps:,.0f} req/s, p99 {rollup.p99_ms:.1f} ms, "
        f"{rollup.errors} errors; SELECT 1: {select1.rps:,.0f} req/s, p99 {select1.p99_ms:.1f} ms "
        f"({rollup.tool}, 50 connections, medians of 3 alternating rounds): "
        f"{share:.0%} of SELECT 1 "
        f"(≥ 60 %: {verdict[share >= 0.6]}; p99 ≤ 50 ms: {verdict[rollup.p99_ms <= 50]})"
    )
    print(
        f"   each server pinned to CPU {http_load.server_cpus()}, wrk to "
        f"{http_load.load_cpus()}; PostgreSQL not pinned"
    )


def national_ms(figures: dict[str, Any]) -> float:
    return float(figures["national"]["seconds"]) * 1000


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Rollup benchmark.")
    sub = parser.add_subparsers(dest="command")
    run = sub.add_parser("run-job", help="(internal) run one job as the worker does")
    run.add_argument("job_id", type=uuid.UUID)
    parser.add_argument("--provinces", type=int, default=34)
    parser.add_argument("--units", type=int, default=100, help="reporting units per province")
    parser.add_argument("--indicators", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--seconds", type=int, default=6, help="of HTTP load per endpoint and round (3 rounds)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    args = parser.parse_args(argv)
    if args.command == "run-job":
        asyncio.run(run_job(args.job_id))
        return
    asyncio.run(recreate_database())
    try:
        nscl("db", "upgrade")
        nscl("seed")
        dataset = asyncio.run(prepare(args.provinces, args.units, args.indicators))
        figures = asyncio.run(rollup_figures(dataset, args.repeats))
        asyncio.run(settle())
        http = http_figures(args.seconds, connections=50)
        report(figures, http)
    finally:
        if not args.keep:
            asyncio.run(drop_database())


if __name__ == "__main__":
    main()
