"""/metrics of the API and of the worker: the families operators watch, and a failing job
seen from both sides (the worker's failure counter, the API's outbox lag)."""

from __future__ import annotations

import dataclasses
import json
import re
import socket
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families
from pydantic import BaseModel
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from nscl_api.auth.tokens import KeyRing
from nscl_api.resources import Resources
from nscl_domain.composition.registry import DEFAULT_REGISTRY
from nscl_domain.jobs import PermanentJobError
from nscl_domain.jobs.registry import JobContext, JobKind, JobRegistry
from nscl_domain.uow import UnitOfWork
from nscl_worker.deps import WorkerDeps
from nscl_worker.runner import WorkerState, serve_health
from nscl_worker.settings import build_worker
from tests.conftest import mint_token


class NoArgs(BaseModel):
    pass


async def _always_fails(ctx: JobContext, args: NoArgs) -> dict[str, Any]:
    raise PermanentJobError("the test's job fails on purpose")


REGISTRY: JobRegistry = {
    **DEFAULT_REGISTRY,
    "test.fails": JobKind("test.fails", NoArgs, _always_fails, "fails"),
}

API_FAMILIES = {
    "nscl_http_requests",
    "nscl_http_request_duration_seconds",
    "nscl_tokens_issued",
    "nscl_token_failures",
    "nscl_bearer_rejections",
    "nscl_jobs",
    "nscl_outbox_oldest_pending_age_seconds",
    "nscl_queue_depth",
    "nscl_rollup_staleness_seconds",
    "nscl_rollup_published_timestamp_seconds",
    "nscl_db_pool_connections",
    "nscl_metrics_source_up",
    "process_cpu_seconds",
    "process_resident_memory_bytes",
}
WORKER_FAMILIES = {
    "nscl_job_runs",
    "nscl_job_failures",
    "nscl_job_retries",
    "nscl_job_duration_seconds",
    "nscl_worker_running",
    "process_cpu_seconds",
}


def samples(text_: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    found = {}
    for family in text_string_to_metric_families(text_):
        for sample in family.samples:
            found[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return found


def families(text_: str) -> set[str]:
    return {family.name for family in text_string_to_metric_families(text_)}


def value(text_: str, name: str, **labels: str) -> float:
    return samples(text_).get((name, frozenset(labels.items())), 0.0)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
async def own_queue(committed_resources: Resources) -> AsyncIterator[Resources]:
    settings = committed_resources.settings.model_copy(
        update={"queue_name": f"nscl:test:metrics:{uuid.uuid4().hex[:8]}"}
    )
    yield dataclasses.replace(committed_resources, settings=settings, registry=REGISTRY)
    await committed_resources.redis.delete(settings.queue_name)


@pytest.fixture
async def api(
    shared_app: FastAPI, own_queue: Resources, keys: KeyRing
) -> AsyncIterator[httpx.AsyncClient]:
    shared_app.state.resources = own_queue
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=shared_app), base_url="http://nscl.test"
    ) as client:
        yield client


@pytest.fixture
async def worker_http(own_queue: Resources) -> AsyncIterator[httpx.AsyncClient]:
    """The worker's health port, as `nscl worker --health-port` serves it."""
    state = WorkerState(running=True, waiting_for=None)
    port = free_port()
    server = await serve_health(own_queue.settings, state, port)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            yield client
    finally:
        server.close()
        await server.wait_closed()


async def test_api_metrics_expose_the_families_with_route_templates(
    api: httpx.AsyncClient, keys: KeyRing
) -> None:
    await api.get("/openapi.json")
    await api.get("/docs")
    await api.get("/v1/jobs", headers={"Authorization": "Bearer not-a-token"})
    await api.get(
        "/v1/schedules", headers={"Authorization": f"Bearer {mint_token(keys, 'test-all')}"}
    )
    await api.post("/v1/oauth/token", data={"grant_type": "client_credentials"})
    answer = await api.get("/metrics")
    assert answer.status_code == 200
    assert families(answer.text) >= API_FAMILIES, API_FAMILIES - families(answer.text)
    for handler in ("/openapi.json", "/docs", "/v1/schedules"):
        assert f'nscl_http_requests_total{{handler="{handler}",method="GET",status="2xx"}}' in (
            answer.text
        ), handler
    assert value(answer.text, "nscl_bearer_rejections_total", code="invalid_token") >= 1
    assert value(answer.text, "nscl_token_failures_total", error="invalid_request") >= 1


async def test_worker_metrics_expose_the_families(worker_http: httpx.AsyncClient) -> None:
    answer = await worker_http.get("/metrics")
    assert answer.status_code == 200
    assert families(answer.text) >= WORKER_FAMILIES, WORKER_FAMILIES - families(answer.text)
    assert (await worker_http.get("/health")).status_code == 200


async def test_a_failing_job_moves_the_failure_counter_and_the_outbox_lag(
    api: httpx.AsyncClient,
    worker_http: httpx.AsyncClient,
    own_queue: Resources,
    owner_engine: AsyncEngine,
) -> None:
    worker_before = (await worker_http.get("/metrics")).text
    failures_before = value(worker_before, "nscl_job_failures_total", job="test.fails")
    assert value((await api.get("/metrics")).text, "nscl_outbox_oldest_pending_age_seconds") < 5

    # The job waits in the outbox half a minute with no worker to take it.
    uow = UnitOfWork(own_queue.sessionmaker)
    async with uow:
        job = await uow.schedule("test.fails", {})
        await uow.commit()
    async with owner_engine.begin() as conn:
        await conn.execute(
            text("UPDATE job SET created_at = now() - interval '30 seconds' WHERE id = :id"),
            {"id": job.id},
        )
    waiting = (await api.get("/metrics")).text
    assert value(waiting, "nscl_outbox_oldest_pending_age_seconds") >= 30
    assert value(waiting, "nscl_jobs", job="test.fails", status="pending") == 1

    # A worker takes it, and it fails.
    assert await own_queue.queue.enqueue(job.id)
    assert (
        value(
            (await api.get("/metrics")).text,
            "nscl_queue_depth",
            queue=own_queue.settings.queue_name,
        )
        == 1
    )
    worker = build_worker(
        own_queue.settings,
        database_url=own_queue.database_url,
        redis=own_queue.redis,
        burst=True,
        with_cron=False,
        deps=WorkerDeps(
            settings=own_queue.settings,
            engine=own_queue.engine,
            sessionmaker=own_queue.sessionmaker,
            queue=own_queue.queue,
            registry=REGISTRY,
        ),
    )
    await worker.main()

    worker_after = (await worker_http.get("/metrics")).text
    assert value(worker_after, "nscl_job_failures_total", job="test.fails") == failures_before + 1
    assert value(worker_after, "nscl_job_runs_total", job="test.fails", outcome="failed") >= 1
    assert value(worker_after, "nscl_job_duration_seconds_count", job="test.fails") >= 1
    done = (await api.get("/metrics")).text
    assert value(done, "nscl_outbox_oldest_pending_age_seconds") < 5
    assert value(done, "nscl_jobs", job="test.fails", status="failed") == 1


DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
METRIC_NAME = re.compile(r"\b((?:nscl|process)_[a-z_]+)\b")


async def test_the_dashboard_and_the_alerts_read_only_metrics_the_services_expose(
    api: httpx.AsyncClient, worker_http: httpx.AsyncClient
) -> None:
    exposed: set[str] = set()
    for scraped in ((await api.get("/metrics")).text, (await worker_http.get("/metrics")).text):
        for family in text_string_to_metric_families(scraped):
            exposed.add(family.name)
            suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum")}
            exposed.update(family.name + s for s in suffixes.get(family.type, ()))
    dashboard = json.loads((DEPLOY / "grafana" / "nscl-dashboard.json").read_text())
    panel_exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    rules = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())
    alert_exprs = [r["expr"] for g in rules["groups"] for r in g["rules"]]
    assert {r["alert"] for g in rules["groups"] for r in g["rules"]} >= {
        "NsclOutboxLag",
        "NsclJobsFailing",
        "NsclRollupStale",
        "NsclNotReady",
    }
    for expr in panel_exprs + alert_exprs:
        unknown = set(METRIC_NAME.findall(expr)) - exposed
        assert not unknown, f"{expr!r} reads {unknown}, which no service exposes"
