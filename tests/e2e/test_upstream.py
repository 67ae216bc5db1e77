"""Two instances of the service on loopback: a province's and the national one.

The province's instance is configured with the national one as its upstream, and the
national instance knows the province as a client (a reporter of the unit that owns the
province's programme). Each has its own database, its own queue and its own worker. A
report accepted in the province reaches the national rollup within seconds; a correction
accepted in the province replaces the province's figures nationally; the national
provenance names the province's run.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from arq.connections import ArqRedis
from pydantic import SecretStr

from nscl_domain import schema
from nscl_domain.composition.registry import registry_for
from nscl_domain.db import create_engine, create_sessionmaker
from nscl_domain.identity import SYSTEM
from nscl_domain.identity import service as identity
from nscl_domain.settings import Settings
from nscl_domain.uow import UnitOfWork
from nscl_worker.settings import build_worker
from tests.conftest import (
    REDIS_PREFIX,
    SERVICE_ROLE,
    Services,
    drop_database,
    recreate_database,
    seed_database,
    serve_in_thread,
)
from tests.e2e.test_reporting_year import content_for

BK, NATIONAL, YEAR = "bac-kan-nscl", "national-nscl", 2024
UNIT = "bk-doh"
FIGURE = "national-enterprises-supported"
# How long the national figure may take to follow a province's acceptance.
WITHIN_SECONDS = 20.0


@dataclass(frozen=True)
class Instance:
    name: str
    owner_url: str
    secrets: dict[str, str]


async def _province_client(owner_url: str) -> str:
    """The province's client on the national instance: a reporter of the unit that owns
    the province's programme there."""
    engine = create_engine(owner_url, pooled=False)
    try:
        _, secret = await identity.create_client(
            UnitOfWork(create_sessionmaker(engine)), SYSTEM, client_id="bk-upstream",
            name="Bắc Kạn's instance", unit="bk-ppc", roles=["reporter"],
        )  # fmt: skip
    finally:
        await engine.dispose()
    return secret


@pytest.fixture
def instances(services: Services, database_url: str) -> Iterator[dict[str, Instance]]:
    """Two migrated, seeded databases, granted to the service role the session created."""
    made = {}
    for role in ("province", "national"):
        name = f"nscl_{role}_{os.getpid()}"
        url = recreate_database(services, name)
        schema.upgrade(url)
        secrets = asyncio.run(seed_database(url))
        schema.grant(url, SERVICE_ROLE)
        made[role] = Instance(name, url, secrets)
    made["national"].secrets["bk-upstream"] = asyncio.run(
        _province_client(made["national"].owner_url)
    )
    yield made
    for instance in made.values():
        drop_database(services, instance.name)


def settings_of(base: Settings, services: Services, instance: Instance, **extra: Any) -> Settings:
    return base.model_copy(
        update={
            "database_url": services.role_url(instance.name, SERVICE_ROLE),
            "queue_name": f"{REDIS_PREFIX}:{instance.name}:{uuid.uuid4().hex[:6]}",
            "outbox_sweep_seconds": 1,
            "outbox_grace_seconds": 1,
            **extra,
        }
    )


@contextlib.asynccontextmanager
async def running_worker(settings: Settings, redis: ArqRedis) -> AsyncIterator[None]:
    """The instance's worker on the test Redis, on the instance's own queue."""
    worker = build_worker(
        settings,
        database_url=str(settings.database_url),
        redis=redis,
        registry=registry_for(settings),
        handle_signals=False,
    )
    task = asyncio.create_task(worker.main())
    try:
        yield
    finally:
        # Not worker.close(): it would close the session's shared Redis client.
        task.cancel()
        in_flight = list(worker.tasks.values())
        for job in in_flight:
            job.cancel()
        await asyncio.gather(task, *in_flight, return_exceptions=True)
        deps = worker.ctx.get("deps")
        if deps is not None:
            await deps.engine.dispose()
        await redis.delete(settings.queue_name)


async def token(http: httpx.AsyncClient, client_id: str, secret: str) -> dict[str, str]:
    answer = await http.post(
        "/v1/oauth/token",
        data={"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret},
    )
    assert answer.status_code == 200, answer.text
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


def figure(body: dict[str, Any], indicator: str) -> str | None:
    for cell in body.get("cells", []):
        if (
            cell["indicator"] == indicator
            and cell["breakdown"] == ""
            and not cell["disaggregation"]
        ):
            return str(cell["value"])
    return None


async def wait_for(
    http: httpx.AsyncClient, path: str, headers: dict[str, str], done: Any
) -> tuple[dict[str, Any], float]:
    """Poll ``path`` until ``done(body)``; the body and the seconds it took."""
    started = time.monotonic()
    body: dict[str, Any] = {}
    while time.monotonic() - started < WITHIN_SECONDS:
        answer = await http.get(path, headers=headers)
        if answer.status_code == 200:
            body = answer.json()
            if done(body):
                return body, time.monotonic() - started
        await asyncio.sleep(0.1)
    raise AssertionError(f"{path} did not come to the state awaited in time: {body}")


# Valid tax codes (their check digit holds).
TAX_CODES = ["0100109106", "0100109113", "0100109120", "0100109138", "0100109145"]


def enterprises(count: int) -> list[dict[str, Any]]:
    return [
        {
            "tax_code": TAX_CODES[n],
            "name": f"Công ty số {n}",
            "solution": "iso_9001",
            "certificate_issued": True,
            "certified_on": f"{YEAR}-06-15",
        }
        for n in range(count)
    ]


async def test_the_national_rollup_follows_the_province_instance(
    settings: Settings,
    services: Services,
    instances: dict[str, Instance],
    redis: ArqRedis,
) -> None:
    province, national = instances["province"], instances["national"]
    national_settings = settings_of(settings, services, national)
    with serve_in_thread(national_settings) as national_url:
        province_settings = settings_of(
            settings,
            services,
            province,
            upstream_url=national_url,
            upstream_client_id="bk-upstream",
            upstream_client_secret=SecretStr(national.secrets["bk-upstream"]),
        )
        with serve_in_thread(province_settings) as province_url:
            async with (
                running_worker(national_settings, redis),
                running_worker(province_settings, redis),
                httpx.AsyncClient(base_url=province_url, timeout=30) as here,
                httpx.AsyncClient(base_url=national_url, timeout=30) as there,
            ):
                await _scenario(here, there, province, national)


async def _scenario(
    here: httpx.AsyncClient, there: httpx.AsyncClient, province: Instance, national: Instance
) -> None:
    reporter = await token(here, "test-reporter", province.secrets["test-reporter"])
    reviewer = await token(here, "test-reviewer", province.secrets["test-reviewer"])
    viewer = await token(there, "test-viewer", national.secrets["test-viewer"])
    operator = await token(there, "test-operator", national.secrets["test-operator"])

    generated = await here.post(
        f"/v1/programmes/{BK}/obligations/generation",
        json={"year": YEAR, "regime": "bk-annual"},
        headers=reviewer,
    )
    assert generated.status_code in (200, 201), generated.text
    obligations = (
        await here.get(f"/v1/programmes/{BK}/obligations?year={YEAR}", headers=reviewer)
    ).json()
    obligation = next(o["id"] for o in obligations["items"] if o["unit"] == UNIT)

    # The province accepts a report: two enterprises supported.
    created = await here.post("/v1/reports", json={"obligation_id": obligation}, headers=reporter)
    assert created.status_code == 201, created.text
    report = f"/v1/reports/{created.json()['id']}"
    content = content_for(UNIT) | {"enterprises": enterprises(2)}
    written = await here.put(
        f"{report}/draft", json=content, headers={**reporter, "If-Match": created.headers["etag"]}
    )
    assert written.status_code == 200, written.text
    submitted = await here.post(
        f"{report}/submission", headers={**reporter, "If-Match": written.headers["etag"]}
    )
    assert submitted.status_code == 200, submitted.text
    accepted = await here.post(
        f"{report}/acceptance", headers={**reviewer, "If-Match": submitted.headers["etag"]}
    )
    assert accepted.status_code == 200, accepted.text

    # Within seconds the national instance's rollup holds the province's figures.
    first, took = await wait_for(
        there, f"/v1/rollups/{NATIONAL}/{YEAR}", viewer, lambda b: figure(b, FIGURE) == "2"
    )
    print(f"\nprovince acceptance → national rollup: {took:.2f} s")
    provincial, _ = await wait_for(
        here, f"/v1/rollups/{BK}/{YEAR}", reviewer, lambda b: figure(b, "enterprises-supported")
    )
    first_run = provincial["run_id"]
    provenance = await there.get(
        f"/v1/rollups/{NATIONAL}/{YEAR}/provenance",
        params={"indicator": FIGURE},
        headers=viewer,
    )
    assert provenance.status_code == 200, provenance.text
    [source] = provenance.json()["items"]
    assert (source["programme"], source["source_id"]) == (BK, first_run)
    assert (source["province_seq"], source["province_fingerprint"]) == (
        provincial["seq"],
        provincial["fingerprint"],
    )

    # The province corrects the report: five enterprises; accepted again.
    reopened = await here.post(
        f"{report}/correction",
        json={"reason": "Bổ sung doanh nghiệp được hỗ trợ"},
        headers={**reporter, "If-Match": accepted.headers["etag"]},
    )
    assert reopened.status_code == 200, reopened.text
    corrected = content_for(UNIT) | {"enterprises": enterprises(5)}
    rewritten = await here.put(
        f"{report}/draft",
        json=corrected,
        headers={**reporter, "If-Match": reopened.headers["etag"]},
    )
    assert rewritten.status_code == 200, rewritten.text
    resubmitted = await here.post(
        f"{report}/submission", headers={**reporter, "If-Match": rewritten.headers["etag"]}
    )
    assert resubmitted.status_code == 200, resubmitted.text
    reaccepted = await here.post(
        f"{report}/acceptance", headers={**reviewer, "If-Match": resubmitted.headers["etag"]}
    )
    assert reaccepted.status_code == 200, reaccepted.text

    # The province's figures are replaced nationally, not added to.
    second, took = await wait_for(
        there, f"/v1/rollups/{NATIONAL}/{YEAR}", viewer, lambda b: figure(b, FIGURE) == "5"
    )
    print(f"province correction → national rollup: {took:.2f} s")
    assert second["run_id"] != first["run_id"]
    provincial, _ = await wait_for(
        here, f"/v1/rollups/{BK}/{YEAR}", reviewer, lambda b: b["run_id"] != first_run
    )
    provenance = await there.get(
        f"/v1/rollups/{NATIONAL}/{YEAR}/provenance",
        params={"indicator": FIGURE},
        headers=viewer,
    )
    [source] = provenance.json()["items"]
    assert (source["source_id"], source["value"]) == (provincial["run_id"], "5")

    # Operators see what the province sent: its two runs, the later one current.
    listed = await there.get(f"/v1/national-intake/{BK}/{YEAR}", headers=operator)
    assert listed.status_code == 200, listed.text
    assert [(i["run_id"], i["status"], i["received_by"]) for i in listed.json()["items"]] == [
        (provincial["run_id"], "current", "bk-upstream"),
        (first_run, "superseded", "bk-upstream"),
    ]
