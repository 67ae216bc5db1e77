"""Schedules as data: made over the API, fired by the workers' ticks once per fire time.

The clock of the scheduler's tick is the test's: two workers tick at the same instants,
before, at and after a fire time, and exactly one job is written for it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from nscl_api.auth.tokens import KeyRing
from nscl_api.resources import Resources
from nscl_domain.jobs.cron import TIME_ZONE
from nscl_domain.jobs.schedules import NIGHTLY_REBUILD
from nscl_worker.deps import WorkerDeps
from nscl_worker.jobs import fire_schedules
from nscl_worker.settings import build_worker
from tests.conftest import mint_token

# 02:00 on 1 December in Vietnam, the post-deadline rebuild's time; far from any real day.
FIRE_AT = datetime(2031, 12, 1, 2, 0, tzinfo=TIME_ZONE)


class Clock:
    """The scheduler's time, moved by the test."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now.astimezone(UTC)


@pytest.fixture
async def own_queue(committed_resources: Resources) -> AsyncIterator[Resources]:
    settings = committed_resources.settings.model_copy(
        update={"queue_name": f"nscl:test:schedules:{uuid.uuid4().hex[:8]}"}
    )
    yield dataclasses.replace(committed_resources, settings=settings)
    await committed_resources.redis.delete(settings.queue_name)


@pytest.fixture
async def http(
    shared_app: FastAPI, own_queue: Resources, keys: KeyRing, owner_engine: AsyncEngine
) -> AsyncIterator[httpx.AsyncClient]:
    shared_app.state.resources = own_queue
    transport = httpx.ASGITransport(app=shared_app)
    token = mint_token(keys, "test-operator")
    async with httpx.AsyncClient(
        transport=transport,
        base_url="http://nscl.test",
        headers={"Authorization": f"Bearer {token}"},
    ) as client:
        yield client
    # The seeded schedules stay (paused by no one, looking forward from now): only the
    # test's own go.
    async with owner_engine.begin() as conn:
        await conn.execute(text("DELETE FROM job_schedule WHERE key LIKE 'test-%'"))
        await conn.execute(text("UPDATE job_schedule SET checked_through = now()"))


def worker_deps(resources: Resources, clock: Clock) -> WorkerDeps:
    return WorkerDeps(
        settings=resources.settings,
        engine=resources.engine,
        sessionmaker=resources.sessionmaker,
        queue=resources.queue,
        registry=resources.registry,
        clock=clock,
    )


async def two_workers_tick(resources: Resources, clock: Clock) -> int:
    """Both workers run their scheduler tick at the same instant (the seeded schedules fire
    too); return the jobs fired in all."""
    first, second = worker_deps(resources, clock), worker_deps(resources, clock)
    fired = await asyncio.gather(fire_schedules({"deps": first}), fire_schedules({"deps": second}))
    return sum(fired)


async def runs_of(engine: AsyncEngine, key: str) -> list[dict[str, Any]]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT j.id, j.fire_at, j.status FROM job j JOIN job_schedule s "
                "ON s.id = j.schedule_id WHERE s.key = :key ORDER BY j.fire_at"
            ),
            {"key": key},
        )
        return [dict(r._mapping) for r in rows]


async def create(http: httpx.AsyncClient, key: str, **body: Any) -> httpx.Response:
    return await http.post(
        "/v1/schedules",
        json={"key": key, "job_name": "jobs.prune", "args": {"older_than_days": 90}, **body},
    )


class TestFiring:
    async def test_created_schedule_fires_once_with_two_workers_and_lists_its_run(
        self, http: httpx.AsyncClient, own_queue: Resources
    ) -> None:
        key = f"test-prune-{uuid.uuid4().hex[:6]}"
        created = await create(http, key, cron="0 2 1 12 *")
        assert created.status_code == 201, created.text
        assert created.headers["location"] == f"/v1/schedules/{key}"
        body = created.json()
        assert body["time_zone"] == "Asia/Ho_Chi_Minh"
        # Next fire times are 02:00 on 1 December, Vietnam time (+07:00).
        assert all(t.endswith("-12-01T02:00:00+07:00") for t in body["next_fire_times"])

        clock = Clock(FIRE_AT - timedelta(minutes=1))
        await two_workers_tick(own_queue, clock)
        assert await runs_of(own_queue.engine, key) == []
        for moment in (FIRE_AT, FIRE_AT + timedelta(seconds=15), FIRE_AT + timedelta(minutes=5)):
            clock.now = moment
            await two_workers_tick(own_queue, clock)
        runs = await runs_of(own_queue.engine, key)
        assert [r["fire_at"] for r in runs] == [FIRE_AT]

        worker = build_worker(
            own_queue.settings,
            database_url=own_queue.database_url,
            redis=own_queue.redis,
            burst=True,
            with_cron=False,
            deps=worker_deps(own_queue, clock),
        )
        await worker.main()

        listed = (await http.get(f"/v1/schedules/{key}")).json()
        assert [(r["fire_at"], r["status"], r["trigger"]) for r in listed["last_runs"]] == [
            ("2031-11-30T19:00:00Z", "succeeded", "schedule")
        ]
        everything = (await http.get("/v1/schedules")).json()["items"]
        assert key in [s["key"] for s in everything]

    async def test_a_paused_schedule_skips_its_fire_time_and_resumes_forward(
        self, http: httpx.AsyncClient, own_queue: Resources
    ) -> None:
        key = f"test-paused-{uuid.uuid4().hex[:6]}"
        assert (await create(http, key, cron="*/10 * * * *")).status_code == 201
        paused = await http.patch(f"/v1/schedules/{key}", json={"enabled": False})
        assert paused.status_code == 200
        assert paused.json()["next_fire_times"] == []

        start = datetime.now(TIME_ZONE).replace(second=0, microsecond=0) + timedelta(hours=1)
        start = start.replace(minute=0)
        clock = Clock(start)
        await two_workers_tick(own_queue, clock)
        assert await runs_of(own_queue.engine, key) == []

        # Resumed later on (the API's clock is the test's too): the fire time that passed
        # while paused is not made up.
        own_queue.clock = clock
        clock.now = start + timedelta(minutes=5)
        resumed = await http.patch(f"/v1/schedules/{key}", json={"enabled": True})
        assert resumed.json()["enabled"] is True
        await two_workers_tick(own_queue, clock)
        assert await runs_of(own_queue.engine, key) == []
        clock.now = start + timedelta(minutes=10)
        await two_workers_tick(own_queue, clock)
        assert [r["fire_at"] for r in await runs_of(own_queue.engine, key)] == [
            (start + timedelta(minutes=10)).astimezone(UTC)
        ]

    async def test_a_worker_back_within_the_window_makes_up_only_the_latest_missed_time(
        self, http: httpx.AsyncClient, own_queue: Resources
    ) -> None:
        key = f"test-daily-{uuid.uuid4().hex[:6]}"
        assert (await create(http, key, cron="0 4 * * *")).status_code == 201
        day = datetime.now(TIME_ZONE).replace(hour=4, minute=0, second=0, microsecond=0)
        day += timedelta(days=3)
        # No worker ran for three days, and one is back at 07:30: one job, for today's 04:00.
        clock = Clock(day + timedelta(hours=3, minutes=30))
        await two_workers_tick(own_queue, clock)
        assert [r["fire_at"] for r in await runs_of(own_queue.engine, key)] == [day]
        # The next day's 04:00 is missed by longer than the window (6 h): it is dropped.
        clock.now = day + timedelta(days=1, hours=7)
        await two_workers_tick(own_queue, clock)
        assert [r["fire_at"] for r in await runs_of(own_queue.engine, key)] == [day]
        clock.now = day + timedelta(days=2, minutes=1)
        await two_workers_tick(own_queue, clock)
        assert len(await runs_of(own_queue.engine, key)) == 2

    async def test_run_now_is_listed_as_an_operators_run(
        self, http: httpx.AsyncClient, own_queue: Resources
    ) -> None:
        ran = await http.post(f"/v1/schedules/{NIGHTLY_REBUILD}/runs")
        assert ran.status_code == 202, ran.text
        assert ran.headers["location"] == f"/v1/jobs/{ran.json()['id']}"
        runs = (await http.get(f"/v1/schedules/{NIGHTLY_REBUILD}")).json()["last_runs"]
        assert (runs[0]["job_id"], runs[0]["trigger"]) == (ran.json()["id"], "operator")

    async def test_a_deleted_schedule_is_gone_and_its_runs_stay(
        self, http: httpx.AsyncClient, own_queue: Resources
    ) -> None:
        key = f"test-deleted-{uuid.uuid4().hex[:6]}"
        assert (await create(http, key, cron="0 5 * * *")).status_code == 201
        ran = (await http.post(f"/v1/schedules/{key}/runs")).json()
        assert (await http.delete(f"/v1/schedules/{key}")).status_code == 204
        gone = await http.get(f"/v1/schedules/{key}")
        assert (gone.status_code, gone.json()["code"]) == (404, "schedule_not_found")
        assert (await http.get(f"/v1/jobs/{ran['id']}")).status_code == 200


class TestValidation:
    async def test_arguments_are_refused_as_the_jobs_own_route_refuses_them(
        self, http: httpx.AsyncClient
    ) -> None:
        args = {"programme_id": str(uuid.uuid4())}
        direct = await http.post("/v1/jobs", json={"name": "rollups.rebuild", "args": args})
        scheduled = await http.post(
            "/v1/schedules",
            json={
                "key": "test-bad",
                "job_name": "rollups.rebuild",
                "args": args,
                "cron": "0 2 * * *",
            },
        )
        assert direct.status_code >= 400
        assert (scheduled.status_code, scheduled.json()["code"]) == (
            direct.status_code,
            direct.json()["code"],
        )
        assert scheduled.json()["errors"] == direct.json()["errors"]

    async def test_unknown_job_and_bad_cron_name_their_fields(
        self, http: httpx.AsyncClient
    ) -> None:
        unknown = await http.post(
            "/v1/schedules", json={"key": "test-x", "job_name": "nope", "cron": "0 2 * * *"}
        )
        assert unknown.status_code == 422
        assert unknown.json()["errors"][0]["location"] == ["body", "job_name"]
        bad_cron = await create(http, "test-y", cron="0 25 * * *")
        assert (bad_cron.status_code, bad_cron.json()["code"]) == (422, "invalid_cron")
        seconds = await create(http, "test-z", cron="0 0 2 * * *")
        assert (seconds.status_code, seconds.json()["code"]) == (422, "invalid_cron")
        bad_args = await http.patch(
            f"/v1/schedules/{NIGHTLY_REBUILD}", json={"args": {"programme_id": "x"}}
        )
        assert (bad_args.status_code, bad_args.json()["code"]) == (422, "invalid_job_args")

    async def test_seeded_with_the_nightly_and_post_deadline_rebuilds(
        self, http: httpx.AsyncClient
    ) -> None:
        listed = {s["key"]: s for s in (await http.get("/v1/schedules")).json()["items"]}
        assert listed[NIGHTLY_REBUILD]["cron"] == "30 1 * * *"
        deadline = listed["post-deadline-rebuild:bac-kan-nscl"]
        assert (deadline["job_name"], deadline["cron"]) == ("rollups.rebuild", "0 2 1 12 *")
        assert deadline["next_fire_times"][0].endswith("-12-01T02:00:00+07:00")
