"""How soon a job runs again after its worker is killed, at the default settings.

    python -m bench.jobs_recovery [--rounds 10] [--provinces 34 --units 40 --indicators 40]

Starts a private PostgreSQL and Redis (free ports, temporary folders), generates data
(bench/datagen.py) big enough that a forced rebuild of every rollup runs a few seconds,
then, for each round, schedules the rebuild, SIGKILLs the `nscl worker` running it in
the middle, and measures:

- restart: a new worker process starts at once; time from its start to the job's success;
- second worker: another worker was already running, none restarts; time from the kill
  to the job's success.

The workers run with the production defaults (lease 10 s, heartbeat 2 s, sweep 5 s): the
figures are what an operator would see. The private PostgreSQL ends a killed worker's
backend within a second (``client_connection_check_interval``); without that setting a
killed worker's query runs on to its end and holds the rollup locks while it does.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import time
import urllib.request
import uuid
from pathlib import Path

import nscl_domain.composition  # noqa: F401 -- an entry point: wires the contexts together
from bench import datagen
from bench.private_services import (
    WorkerProcess,
    free_port,
    seeded_stack,
    worker_env,
)
from nscl_domain.db import create_engine, create_sessionmaker
from nscl_domain.jobs import JobName, JobStatus
from nscl_domain.jobs.models import Job
from nscl_domain.settings import Settings
from nscl_domain.uow import UnitOfWork

TARGET_SECONDS = 30.0


class Bench:
    def __init__(self, database_url: str, redis_url: str, logs: Path) -> None:
        self.database_url = database_url
        self.redis_url = redis_url
        self.logs = logs
        self.engine = create_engine(database_url, pooled=False)
        self.started: list[WorkerProcess] = []

    def worker(self) -> tuple[WorkerProcess, int]:
        port = free_port()
        process = WorkerProcess(
            worker_env(self.database_url, self.redis_url, log_level="WARNING"),
            self.logs / "workers.log",
        ).start("--health-port", str(port))
        self.started.append(process)
        return process, port

    def stop_workers(self) -> None:
        for process in self.started:
            process.stop()

    async def ready(self, port: int) -> None:
        def answers() -> bool:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=2) as r:
                    return bool(r.status == 200)
            except OSError:
                return False

        for _ in range(300):
            if await asyncio.to_thread(answers):
                return
            await asyncio.sleep(0.1)
        raise RuntimeError("a worker never became ready")

    async def schedule_rebuild(self) -> uuid.UUID:
        from arq.connections import RedisSettings, create_pool

        from nscl_worker.queue import ArqJobQueue

        redis = await create_pool(RedisSettings.from_dsn(self.redis_url))
        try:
            queue = ArqJobQueue(redis, Settings().queue_name)
            uow = UnitOfWork(create_sessionmaker(self.engine), queue)
            async with uow:
                job = await uow.schedule(
                    JobName.REBUILD_ROLLUPS, {"force": True}, requested_by="bench"
                )
                await uow.commit()
            return job.id
        finally:
            await redis.aclose()

    async def job(self, job_id: uuid.UUID) -> Job:
        async with create_sessionmaker(self.engine)() as session:
            job = await session.get(Job, job_id)
            assert job is not None
            return job

    async def wait(self, job_id: uuid.UUID, *, running: int | None = None) -> Job:
        """Until the job runs attempt ``running`` (or, without it, has finished)."""
        while True:
            job = await self.job(job_id)
            if running is not None and (
                (job.status == JobStatus.RUNNING and job.attempts == running)
                or job.job_status.is_final
            ):
                return job
            if running is None and job.job_status.is_final:
                if job.status != JobStatus.SUCCEEDED:
                    raise RuntimeError(f"job {job_id} ended {job.status}: {job.error}")
                return job
            await asyncio.sleep(0.05)

    async def plain_seconds(self) -> float:
        job_id = await self.schedule_rebuild()
        job = await self.wait(job_id)
        assert job.finished_at is not None
        assert job.started_at is not None
        return (job.finished_at - job.started_at).total_seconds()

    async def kill_midway(self, worker: WorkerProcess, job_id: uuid.UUID, run: float) -> bool:
        """SIGKILL the worker in the middle of the run; False when the job finished first."""
        await self.wait(job_id, running=1)
        await asyncio.sleep(run * random.uniform(0.3, 0.7))
        worker.kill()
        return not (await self.job(job_id)).job_status.is_final

    async def restart_round(self, run: float) -> float:
        while True:
            worker, port = self.worker()
            await self.ready(port)
            job_id = await self.schedule_rebuild()
            if await self.kill_midway(worker, job_id, run):
                break
            print("  (the rebuild finished before the kill: round repeated)")
        restarted_at = time.monotonic()
        worker, port = self.worker()
        await self.wait(job_id)
        seconds = time.monotonic() - restarted_at
        worker.stop()
        return seconds

    async def second_worker_round(self, run: float) -> float:
        while True:
            first, port = self.worker()
            second, second_port = self.worker()
            await self.ready(port)
            await self.ready(second_port)
            # Paused while the job is handed over, so the first worker is the one that runs
            # it; it resumes before the first dies.
            second.pause()
            job_id = await self.schedule_rebuild()
            await self.wait(job_id, running=1)
            second.resume()
            if await self.kill_midway(first, job_id, run):
                break
            second.stop()
            print("  (the rebuild finished before the kill: round repeated)")
        killed_at = time.monotonic()
        await self.wait(job_id)
        seconds = time.monotonic() - killed_at
        second.stop()
        return seconds


def summary(name: str, figures: list[float]) -> str:
    return (
        f"{name:<34} median {statistics.median(figures):5.1f} s   max {max(figures):5.1f} s   "
        f"({len(figures)} kills; target ≤ {TARGET_SECONDS:.0f} s)"
    )


async def run(args: argparse.Namespace, database_url: str, redis_url: str, logs: Path) -> None:
    engine = create_engine(database_url, pooled=False)
    started = time.perf_counter()
    async with engine.begin() as conn:
        dataset = await datagen.generate(
            conn,
            provinces=args.provinces,
            units_per_province=args.units,
            indicators=args.indicators,
        )
    await engine.dispose()
    print(f"data: {dataset.values:,} values ({time.perf_counter() - started:.0f} s to generate)")

    bench = Bench(database_url, redis_url, logs)
    try:
        worker, port = bench.worker()
        await bench.ready(port)
        run_seconds = await bench.plain_seconds()
        worker.stop()
        print(f"forced rebuild, undisturbed: {run_seconds:.1f} s")

        if args.variant in ("both", "restart"):
            restart = [await bench.restart_round(run_seconds) for _ in range(args.rounds)]
            print(summary("kill, restart: restart → success", restart), flush=True)
        if args.variant in ("both", "second-worker"):
            second = [await bench.second_worker_round(run_seconds) for _ in range(args.rounds)]
            print(summary("kill, second worker: kill → success", second), flush=True)
    finally:
        bench.stop_workers()
        await bench.engine.dispose()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Job recovery after a killed worker.")
    parser.add_argument("--rounds", type=int, default=10, help="kills per variant")
    parser.add_argument("--provinces", type=int, default=34)
    parser.add_argument("--units", type=int, default=40, help="reporting units per province")
    parser.add_argument("--indicators", type=int, default=40)
    parser.add_argument("--variant", choices=["both", "restart", "second-worker"], default="both")
    args = parser.parse_args(argv)
    random.seed(20261130)
    with seeded_stack() as (url, redis_url, logs):
        asyncio.run(run(args, url, redis_url, logs))


if __name__ == "__main__":
    main()
