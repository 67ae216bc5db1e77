"""The API through database and Redis outages, on a real server with private servers.

The machine's PostgreSQL and Redis are shared and never stopped: this module starts its
own (``bench.private_services``, as the worker's fault tests do), serves the API from them
with uvicorn on loopback, stops one while requests arrive, and starts it again. Every
request must get an answer — 503 with Retry-After while what it needs is down, never a 500
or a dropped connection — and the first request after the database's restart must succeed.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from bench.private_services import PrivatePostgres, PrivateRedis, free_port

from nscl_domain import schema
from tests.conftest import seed_database

pytestmark = pytest.mark.faults

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def private_postgres() -> Iterator[PrivatePostgres]:
    server = PrivatePostgres()
    server.start()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(scope="module")
def private_redis() -> Iterator[PrivateRedis]:
    server = PrivateRedis()
    server.start()
    try:
        yield server
    finally:
        server.close()


@dataclass
class Served:
    base_url: str
    secrets: dict[str, str]


@pytest.fixture(scope="module")
def served(private_postgres: PrivatePostgres, private_redis: PrivateRedis) -> Iterator[Served]:
    """The API under uvicorn on loopback, migrated and seeded on the private database."""
    schema.upgrade(private_postgres.url())
    secrets = asyncio.run(seed_database(private_postgres.url()))
    port = free_port()
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(
            str(ROOT / part) for part in ("libs/domain", "services/api", "services/worker")
        ),
        "NSCL_DATABASE_URL": private_postgres.url(),
        "NSCL_REDIS_URL": private_redis.url,
        "NSCL_QUEUE_NAME": f"nscl:outage-test:{os.getpid()}",
        "NSCL_SEED_ON_START": "false",
        "NSCL_ENVIRONMENT": "test",
        "NSCL_LOG_JSON": "false",
        "NSCL_DB_POOL_SIZE": "5",
        "NSCL_DB_MAX_OVERFLOW": "5",
    }
    log = (private_postgres.folder / "api.log").open("wb")
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "nscl_api.asgi:app", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/ready", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        else:
            pytest.fail(
                "the API did not become ready:\n"
                + (private_postgres.folder / "api.log").read_text()
            )
        yield Served(f"http://127.0.0.1:{port}", secrets)
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


async def _token(http: httpx.AsyncClient, secrets: dict[str, str]) -> str:
    answer = await http.post(
        "/v1/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": "test-all",
            "client_secret": secrets["test-all"],
        },
    )
    assert answer.status_code == 200, answer.text
    return str(answer.json()["access_token"])


# What clients ask while the database is down: reads, writes, token requests, liveness.
def _requests(token: str) -> list[tuple[str, str, dict[str, object] | None]]:
    reads = [
        ("GET", "/v1/programmes/bac-kan-nscl/obligations?year=2024", None),
        ("GET", "/v1/programmes/bac-kan-nscl/plans", None),
        ("GET", "/v1/jobs", None),
        ("GET", "/v1/org-units", None),
        ("GET", "/v1/rollups/bac-kan-nscl/2024", None),
    ]
    writes = [
        ("POST", "/v1/reports", {"obligation_id": "00000000-0000-7000-8000-000000000000"}),
        ("POST", "/v1/jobs", {"name": "jobs.prune"}),
    ]
    return (
        (reads * 6) + (writes * 4) + [("GET", "/health", None)] * 5 + [("GET", "/ready", None)] * 2
    )


async def test_a_database_outage_answers_503_and_recovery_is_immediate(
    served: Served, private_postgres: PrivatePostgres
) -> None:
    # Kept-alive connections: a server that closes a connection after an error shows up
    # as requests dropped without an answer on the connections reused.
    async with httpx.AsyncClient(base_url=served.base_url, timeout=30) as http:
        token = await _token(http, served.secrets)
        headers = {"Authorization": f"Bearer {token}"}
        before = await http.get("/v1/jobs", headers=headers)
        assert before.status_code == 200, before.text

        private_postgres.stop()
        try:
            requests = _requests(token)
            answers: list[httpx.Response | BaseException] = []
            for _ in range(3):
                answers += await asyncio.gather(
                    *(http.request(m, p, json=b, headers=headers) for m, p, b in requests),
                    return_exceptions=True,
                )
        finally:
            private_postgres.start()

        dropped = [repr(a) for a in answers if not isinstance(a, httpx.Response)]
        assert dropped == []
        for (_, path, _), answer in zip(requests * 3, answers, strict=True):
            assert isinstance(answer, httpx.Response)
            if path == "/health":
                assert answer.status_code == 200
                continue
            assert answer.status_code == 503, (path, answer.text)
            assert answer.headers["content-type"] == "application/problem+json"
            if path != "/ready":
                assert answer.json()["code"] == "database_unavailable", answer.text
                assert int(answer.headers["retry-after"]) > 0

        after = await http.get("/v1/jobs", headers=headers)
        assert after.status_code == 200, after.text


async def test_a_redis_outage_answers_503_where_redis_is_needed(
    served: Served, private_redis: PrivateRedis
) -> None:
    async with httpx.AsyncClient(base_url=served.base_url, timeout=30) as http:
        token = await _token(http, served.secrets)
        headers = {"Authorization": f"Bearer {token}"}

        private_redis.stop()
        try:
            # Issuing a token counts failed attempts in Redis: it cannot answer without it.
            refused = await asyncio.gather(
                *(
                    http.post(
                        "/v1/oauth/token",
                        data={
                            "grant_type": "client_credentials",
                            "client_id": "test-all",
                            "client_secret": served.secrets["test-all"],
                        },
                    )
                    for _ in range(10)
                )
            )
            # Reads need only the database; a job waits in the outbox for the queue.
            reads = await asyncio.gather(
                *(http.get("/v1/jobs", headers=headers) for _ in range(10))
            )
            queued = await http.post("/v1/jobs", json={"name": "jobs.prune"}, headers=headers)
        finally:
            private_redis.start()

        for answer in refused:
            assert answer.status_code == 503, answer.text
            assert answer.json()["code"] == "queue_unavailable"
            assert int(answer.headers["retry-after"]) > 0
        assert {r.status_code for r in reads} == {200}
        assert queued.status_code == 202, queued.text

        # The pool's connections died with the server: the first use finds out and
        # reconnects; within a few attempts tokens are issued again.
        recovered = []
        for _ in range(3):
            recovered.append(
                (
                    await http.post(
                        "/v1/oauth/token",
                        data={
                            "grant_type": "client_credentials",
                            "client_id": "test-all",
                            "client_secret": served.secrets["test-all"],
                        },
                    )
                ).status_code
            )
            if recovered[-1] == 200:
                break
        assert recovered[-1] == 200, recovered
