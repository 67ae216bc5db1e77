"""Rollup benchmark: national-scale data, then the figures the rollups must meet, at one or
more scales.

    make bench            # or: .venv/bin/python -m bench.rollups [--provinces 34 --units 100]
    .venv/bin/python -m bench.rollups --scale 1,3,10    # 1.7, 5.1 and 17 million values

At each scale (the provinces multiplied, so a province's own rollup stays the same size):

1. the full rollup (the nightly rebuild job, run as the worker runs it, in a process of
   its own) against a plain ``GROUP BY ROLLUP`` over the same values; ratio ≤ 1.3;
2. the incremental rollup after one accepted correction; ≤ 50 ms;
3. the worker's peak memory during the full rollup; ≤ 300 MB;
4. freshness: an acceptance's commit → the published run including it, with ``nscl worker``
   running (bench.freshness): single p95 ≤ 1 s; a burst of 100, last → all published ≤ 3 s;
5. ``GET`` of a published provincial rollup under 50 connections beside a bare FastAPI
   ``SELECT 1`` endpoint over asyncpg and a bare FastAPI endpoint returning the same bytes
   from memory, with and without gzip, all served by uvicorn: ≥ 80 % of each, p99 ≤ 20 ms.
   wrk is required, and a figure is refused when wrk used more than 90 % of its cores.
   Each server's CPU time per request is printed beside its req/s, and the comparisons in
   it too: on a shared machine they hold where req/s follow the CPU a server was given.
   ``python -m bench.rollups http`` measures these alone, on a database kept by --keep.

With several scales, a table follows with each figure's growth factor. It creates (and
afterwards drops) its own database ``nscl_bench`` on the PostgreSQL of ``BENCH_ADMIN_URL``
(default: the local server) and uses Redis database 14.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from bench import datagen, freshness, http_load
from bench.databases import BenchDatabase, create_client
from nscl_domain.composition.registry import DEFAULT_REGISTRY
from nscl_domain.db import create_sessionmaker
from nscl_domain.jobs import JobName
from nscl_domain.jobs.registry import JobContext
from nscl_domain.jobs.service import run_attempt
from nscl_domain.rollups import service as rollups
from nscl_domain.uow import UnitOfWork

DATABASE = os.environ.get("BENCH_DATABASE", "nscl_bench")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")

PLAIN_ROLLUP = """
CREATE TEMP TABLE plain_rollup AS
SELECT iv.year, iv.indicator_id, iv.disaggregation, u.kind,
       sum(iv.value) AS value_sum, count(*) AS value_count,
       min(iv.value) AS value_min, max(iv.value) AS value_max
FROM indicator_value iv JOIN org_unit u ON u.id = iv.unit_id
GROUP BY ROLLUP (iv.year, iv.indicator_id, iv.disaggregation, u.kind)
"""
PLAIN_WORK_MEM = "SET LOCAL work_mem = '64MB'"


# The database's helpers, under the names the rest of this module calls them by.
BENCH = BenchDatabase(DATABASE)
database_url = BENCH.url
recreate_database = BENCH.recreate
drop_database = BENCH.drop
nscl = BENCH.nscl


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
        # The memory the rebuild's grouping gets (nscl_domain.rollups.sql.ROOMY_WORK_MEM):
        # at the default 4 MB the baseline sorts through files and looks slower than it is.
        await conn.execute(text(PLAIN_WORK_MEM))
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
    client_id, secret = await create_client(database_url(), "viewer", "bk-dost")
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


HTTP_TARGETS = ("rollup", "select1", "bytes", "rollup_gzip", "bytes_gzip")


async def first_province_key(dataset: datagen.Dataset) -> str:
    """The first province's programme key (its number is padded to the provinces' count)."""
    engine = create_async_engine(database_url())
    async with engine.connect() as conn:
        key = await conn.scalar(
            text("SELECT key FROM programme WHERE id = :id"),
            {"id": dataset.provincial_programme_ids[0]},
        )
    await engine.dispose()
    return str(key)


def http_figures(
    province: str, seconds: int, connections: int, rounds: int = 3
) -> dict[str, http_load.LoadResult]:
    """The product, the bare ``SELECT 1`` app and the bare app returning the rollup's own
    bytes from memory run side by side; their measurements alternate, round after round, so
    a slow moment of the machine falls on all. Each figure is the median of the rounds."""
    env = {
        "NSCL_DATABASE_URL": database_url(),
        "NSCL_REDIS_URL": REDIS_URL,
        "NSCL_LOG_LEVEL": "WARNING",
        "BENCH_DATABASE_URL": database_url(),
    }
    with contextlib.ExitStack() as stack:
        # The product as deployed: its own entry point, settings and logging.
        product = stack.enter_context(
            http_load.serve("nscl_api.asgi:app", port=http_load.free_port(), env=env, factory=False)
        )
        bare = stack.enter_context(
            http_load.serve(
                "bench.http_load:select1_app_from_env", port=http_load.free_port(), env=env
            )
        )
        token = asyncio.run(token_for_viewer(product))
        viewer = {"Authorization": f"Bearer {token}"}
        rollup_url = f"{product}/v1/rollups/{province}/2024"
        body = httpx.get(rollup_url, headers={**viewer, "Accept-Encoding": "identity"})
        body.raise_for_status()
        body_file = Path(stack.enter_context(tempfile.TemporaryDirectory())) / "rollup.json"
        body_file.write_bytes(body.content)
        in_memory = stack.enter_context(
            http_load.serve(
                "bench.http_load:bytes_app_from_env",
                port=http_load.free_port(),
                env={**env, "BENCH_BODY_FILE": str(body_file)},
            )
        )
        gzip = {"Accept-Encoding": "gzip"}
        targets = {
            "rollup": (product, rollup_url, viewer),
            "select1": (bare, f"{bare}/select1", {}),
            "bytes": (in_memory, f"{in_memory}/bytes", {}),
            "rollup_gzip": (product, rollup_url, {**viewer, **gzip}),
            "bytes_gzip": (in_memory, f"{in_memory}/bytes", gzip),
        }
        for _, url, headers in targets.values():
            httpx.get(url, headers=headers).raise_for_status()
            http_load.measure(url, connections=connections, seconds=2, headers=headers)
        measured: dict[str, list[http_load.LoadResult]] = {name: [] for name in targets}
        for _ in range(rounds):
            for name, (server, url, headers) in targets.items():
                measured[name].append(
                    http_load.measure(
                        url,
                        connections=connections,
                        seconds=seconds,
                        headers=headers,
                        server_pid=server.pid,
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
        generator_cpu=max(r.generator_cpu for r in results),
        server_cpu_us=statistics.median(r.server_cpu_us for r in results),
        server_cpu=statistics.median(r.server_cpu for r in results),
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
        f"{dataset.budget_lines:,} budget lines ({time.perf_counter() - started:.0f} s; "
        f"{load_average()})",
        flush=True,
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


def load_average() -> str:
    one, five, _ = os.getloadavg()
    return f"load {one:.1f}/{five:.1f}"


def machine() -> str:
    return f"{platform.node()}, {http_load.hardware()}"


async def versions() -> str:
    return f"PostgreSQL {await BENCH.server_version()}, {http_load.stack_versions()}"


def scale_figures(
    args: argparse.Namespace, scale: int
) -> tuple[dict[str, tuple[float, str]], list[str]]:
    """One scale from an empty database: (figure → (value, how it compares), verdicts)."""
    asyncio.run(recreate_database())
    try:
        nscl("db", "upgrade")
        nscl("seed")
        dataset = asyncio.run(prepare(args.provinces * scale, args.units, args.indicators))
        figures = asyncio.run(rollup_figures(dataset, args.repeats))
        rollup_load = load_average()
        fresh = None
        if not args.no_freshness:
            fresh = asyncio.run(freshness.measure(database_url(), REDIS_URL, dataset))
        fresh_load = load_average()
        asyncio.run(settle())
        province = asyncio.run(first_province_key(dataset))
        http = http_figures(province, args.seconds, connections=50, rounds=args.rounds)
        http_load_average = load_average()
        print(f"versions: {asyncio.run(versions())}")
        return report(dataset, figures, fresh, http, (rollup_load, fresh_load, http_load_average))
    finally:
        if not args.keep:
            asyncio.run(drop_database())


def report(
    dataset: datagen.Dataset,
    figures: dict[str, Any],
    fresh: freshness.Freshness | None,
    http: dict[str, http_load.LoadResult],
    loads: tuple[str, str, str],
) -> tuple[dict[str, tuple[float, str]], list[str]]:
    """Print the scale's figures; return them for the series table, and what was missed."""
    plain = statistics.median(figures["plain"])
    full_runs = figures["full"]
    full = statistics.median(run["seconds"] for run in full_runs)
    peak = max(run["peak_mb"] for run in full_runs)
    incremental = statistics.median(figures["incremental"])
    missed: list[str] = []

    def judged(name: str, ok: bool, target: str) -> str:
        if not ok:
            missed.append(name)
        return f"{target}: {'ok' if ok else 'MISSED'}"

    rows: dict[str, tuple[float, str]] = {
        "values": (float(dataset.values), ""),
        "budget lines": (float(dataset.budget_lines), ""),
        "plain GROUP BY ROLLUP, s": (plain, ""),
        "full rebuild, s": (full, ""),
        "full / plain": (full / plain, judged("full / plain", full / plain <= 1.3, "≤ 1.3")),
        "incremental, ms (median)": (
            incremental,
            judged("incremental", incremental <= 50, "≤ 50 ms"),
        ),
        "incremental, ms (max)": (max(figures["incremental"]), ""),
        "national rollup of a year, ms": (national_ms(figures), ""),
        "worker peak memory, MB": (peak, judged("peak memory", peak <= 300, "≤ 300 MB")),
    }
    print(f"machine: {machine()}")
    print(f"recomputed programme-years per full run: {full_runs[0]['result']['recomputed']}")
    # The medians above hide how far the repeats were apart: each repeat's own figures.
    ratios = [
        run["seconds"] / plain_seconds
        for run, plain_seconds in zip(full_runs, figures["plain"], strict=True)
    ]
    print(
        "repeats (min–max): "
        f"plain {_spread(figures['plain'])} s, "
        f"full {_spread([run['seconds'] for run in full_runs])} s, "
        f"full / plain {_spread(ratios)}, "
        f"incremental {_spread(figures['incremental'])} ms"
    )
    print(f"rollup figures measured at {loads[0]}")
    if fresh is not None:
        single95 = freshness.percentile(fresh.single_ms, 95)
        rows |= {
            "freshness single, p50 ms": (statistics.median(fresh.single_ms), ""),
            "freshness single, p95 ms": (single95, judged("freshness", single95 <= 1000, "≤ 1 s")),
            "freshness single, max ms": (max(fresh.single_ms), ""),
            "burst of 100: last acceptance → all published, ms": (
                fresh.burst_after_last_ms,
                judged("burst", fresh.burst_after_last_ms <= 3000, "≤ 3 s"),
            ),
            "burst of 100: runs made": (float(fresh.burst_runs), ""),
        }
        print(
            f"freshness (commit → published run including it; {loads[1]}): single "
            f"{freshness.summary(fresh.single_ms)}; burst of {len(fresh.burst_ms)} committed "
            f"in {fresh.burst_seconds:.1f} s: each {freshness.summary(fresh.burst_ms)}, last "
            f"acceptance → all published {fresh.burst_after_last_ms:.0f} ms, "
            f"{fresh.burst_runs} runs"
        )
    http_figures_, http_missed = http_rows(http, loads[2])
    return rows | http_figures_, missed + http_missed


def _spread(values: Sequence[float]) -> str:
    return f"{_figure(min(values))}–{_figure(max(values))} over {len(values)}"


def http_rows(
    http: dict[str, http_load.LoadResult], load: str
) -> tuple[dict[str, tuple[float, str]], list[str]]:
    """Print the HTTP figures; return them, judged, and what was missed (refused figures
    count as missed)."""
    rows: dict[str, tuple[float, str]] = {}
    missed: list[str] = []

    def judged(name: str, ok: bool, target: str) -> str:
        if not ok:
            missed.append(name)
        return f"{target}: {'ok' if ok else 'MISSED'}"

    bound = [name for name, result in http.items() if result.generator_bound]
    if bound:
        missed.append("HTTP (generator-bound)")
        print(
            f"HTTP figures REFUSED: the load generator was the bottleneck for {bound} "
            f"({', '.join(f'{http[n].generator_cpu:.0%}' for n in bound)} of its cores)"
        )
        return rows, missed
    rollup, select1 = http["rollup"], http["select1"]
    share = rollup.rps / select1.rps
    of_bytes = rollup.rps / http["bytes"].rps
    of_bytes_gzip = http["rollup_gzip"].rps / http["bytes_gzip"].rps
    rows |= {
        "GET rollup, req/s": (rollup.rps, ""),
        "GET rollup, p99 ms": (rollup.p99_ms, judged("GET p99", rollup.p99_ms <= 20, "≤ 20 ms")),
        "SELECT 1, req/s": (select1.rps, ""),
        "GET / SELECT 1": (share, judged("GET / SELECT 1", share >= 0.8, "≥ 80 %")),
        "same bytes from memory, req/s": (http["bytes"].rps, ""),
        "GET / bytes": (of_bytes, judged("GET / bytes", of_bytes >= 0.8, "≥ 80 %")),
        "GET rollup gzip, req/s": (http["rollup_gzip"].rps, ""),
        "GET rollup gzip, p99 ms": (http["rollup_gzip"].p99_ms, ""),
        "GET gzip / bytes gzip": (
            of_bytes_gzip,
            judged("GET gzip / bytes gzip", of_bytes_gzip >= 0.8, "≥ 80 %"),
        ),
    }
    print(f"HTTP at 50 connections, medians of alternating rounds ({load}):")
    for name, result in http.items():
        print(f"   {http_load.describe(name, result)}")
    print(
        f"   each server pinned to CPU {http_load.server_cpus()}, wrk to "
        f"{http_load.load_cpus()}; PostgreSQL not pinned"
    )
    # The same comparisons in the server's CPU per request: what a server given a whole core
    # would reach, whatever else the machine ran meanwhile.
    print(
        "   by CPU per request: GET / SELECT 1 "
        f"{select1.server_cpu_us / rollup.server_cpu_us:.0%}, GET / bytes "
        f"{http['bytes'].server_cpu_us / rollup.server_cpu_us:.0%}, GET gzip / bytes gzip "
        f"{http['bytes_gzip'].server_cpu_us / http['rollup_gzip'].server_cpu_us:.0%}"
    )
    return rows, missed


def http_only(args: argparse.Namespace) -> None:
    """The HTTP figures (item 5) alone, with their targets, on the kept database: for
    measuring the read path again without generating the data and computing the rollups."""
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (apt-get install -y wrk, as `make bench` does)")
    programme = args.programme or asyncio.run(_first_bench_province())
    print(f"machine: {http_load.machine()}")
    print(f"versions: {asyncio.run(versions())}")
    http = http_figures(programme, args.seconds, connections=50, rounds=args.rounds)
    rows, missed = http_rows(http, load_average())
    for name, (value, target) in rows.items():
        print(f"   {name}: {_figure(value)}{f'  ({target})' if target else ''}")
    print(f"\nmissed: {', '.join(missed) or 'none'}")
    if args.strict and missed:
        sys.exit(1)


async def _first_bench_province() -> str:
    engine = create_async_engine(database_url())
    async with engine.connect() as conn:
        key = await conn.scalar(
            text(
                "SELECT min(key) FROM programme WHERE key LIKE 'bench-p-%' AND level = 'provincial'"
            )
        )
    await engine.dispose()
    if key is None:
        raise SystemExit(f"{DATABASE} holds no bench data: run with --keep first")
    return str(key)


def national_ms(figures: dict[str, Any]) -> float:
    return float(figures["national"]["seconds"]) * 1000


def series_table(scales: list[int], rows: list[dict[str, tuple[float, str]]]) -> None:
    """The figures side by side, with each one's growth from the smallest scale."""
    head = " | ".join(f"{s}×" for s in scales)
    print(f"\n| figure | {head} | growth {scales[-1]}×/{scales[0]}× | target at {scales[-1]}× |")
    print("|---|" + "---|" * len(scales) + "---|---|")
    for name in rows[-1]:
        values = [r[name][0] if name in r else float("nan") for r in rows]
        growth = values[-1] / values[0] if values[0] else float("nan")
        cells = " | ".join(_figure(v) for v in values)
        print(f"| {name} | {cells} | {growth:.2f} | {rows[-1][name][1]} |")


def _figure(value: float) -> str:
    if value >= 1000:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Rollup benchmark.")
    sub = parser.add_subparsers(dest="command")
    run = sub.add_parser("run-job", help="(internal) run one job as the worker does")
    run.add_argument("job_id", type=uuid.UUID)
    http = sub.add_parser(
        "http", help="the HTTP figures alone, on a database an earlier run kept (--keep)"
    )
    http.add_argument("--programme", help="the programme read (default: the first province's)")
    parser.add_argument("--provinces", type=int, default=34, help="at scale 1")
    parser.add_argument("--units", type=int, default=100, help="reporting units per province")
    parser.add_argument("--indicators", type=int, default=50)
    parser.add_argument(
        "--scale",
        default="1",
        help="comma-separated multiples of the provinces, e.g. 1,3,10 (10×: 17 million values)",
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--seconds", type=int, default=6, help="of HTTP load per endpoint and round"
    )
    parser.add_argument("--rounds", type=int, default=3, help="alternating HTTP rounds")
    parser.add_argument("--no-freshness", action="store_true", help="skip the freshness figures")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args(argv)
    if args.command == "run-job":
        asyncio.run(run_job(args.job_id))
        return
    if args.command == "http":
        http_only(args)
        return
    if shutil.which("wrk") is None:
        raise SystemExit(
            "wrk is not installed (apt-get install -y wrk, as `make bench` does): the Python "
            "load generator saturates before the server, so its figures are its own."
        )
    scales = [int(s) for s in args.scale.split(",")]
    rows = []
    missed: list[str] = []
    for scale in scales:
        print(f"\n== scale {scale}× ({load_average()}) ==", flush=True)
        figures, missed = scale_figures(args, scale)
        for name, (value, target) in figures.items():
            print(f"   {name}: {_figure(value)}{f'  ({target})' if target else ''}")
        rows.append(figures)
    if len(scales) > 1:
        series_table(scales, rows)
    print(f"\nmissed at {scales[-1]}×: {', '.join(missed) or 'none'}")
    if args.strict and missed:
        sys.exit(1)


if __name__ == "__main__":
    main()
