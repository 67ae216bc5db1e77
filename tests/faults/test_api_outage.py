"""The API through database and Redis outages, on a real server with private servers.

The machine's PostgreSQL and Redis are shared and never stopped: this module starts its
own (initdb in a temporary directory, as the ``postgres`` user, since PostgreSQL refuses
to run as root; a redis-server on a free port), serves the API from them with uvicorn on
loopback, stops one while requests arrive, and starts it again. Every request must get an
answer — 503 with Retry-After while what it needs is down, never a 500 or a dropped
connection — and the first request after the database's restart must succeed.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from nscl_domain import schema
from tests.conftest import seed_database

pytestmark = pytest.mark.faults

ROOT = Path(__file__).resolve().parents[2]
PG_BIN = next(
    (
        Path(p).parent
        for p in (shutil.which("pg_ctl"), *sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl")))
        if p is not None
    ),
    None,
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _as_postgres(command: str) -> None:
    subprocess.run(["su", "postgres", "-c", command], check=True, capture_output=True, timeout=60)


@dataclass
class PrivatePostgres:
    """A PostgreSQL of this module only, on its own port and data directory."""

    data: Path
    port: int

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> None:
        _as_postgres(
            f"{PG_BIN}/pg_ctl -D {self.data}/db -l {self.data}/log -w -t 30 "
            f"-o '-p {self.port} -k {self.data} -c listen_addresses=127.0.0.1' start"
        )

    def stop(self) -> None:
        _as_postgres(f"{PG_BIN}/pg_ctl -D {self.data}/db -w -t 30 -m fast stop")


@pytest.fixture(scope="module")
def private_postgres() -> Iterator[PrivatePostgres]:
    if PG_BIN is None or os.geteuid() != 0 or shutil.which("su") is None:
        pytest.skip("needs PostgreSQL binaries and root (to run them as the postgres user)")
    data = Path(tempfile.mkdtemp(prefix="nscl-outage-"))
    shutil.chown(data, "postgres")
    server = PrivatePostgres(data, _free_port())
    _as_postgres(f"{PG_BIN}/initdb -D {data}/db -A trust -U postgres --no-sync")
    server.start()
    try:
        yield server
    finally:
        subprocess.run(
            ["su", "postgres", "-c", f"{PG_BIN}/pg_ctl -D {data}/db -m immediate stop"],
            capture_output=True,
            timeout=60,
        )
        shutil.rmtree(data, ignore_errors=True)


@dataclass
class PrivateRedis:
    """A Redis of this module only (the machine's is shared and never stopped)."""

    port: int
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        options = [
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ]
        self.process = subprocess.Popen(
            ["redis-server", *options],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port)):
                return
            time.sleep(0.05)
        pytest.fail("the private Redis did not start")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None


@pytest.fixture(scope="module")
def private_redis() -> Iterator[PrivateRedis]:
    if shutil.which("redis-server") is None:
        pytest.skip("needs redis-server")
    server = PrivateRedis(_free_port())
    server.start()
    try:
        yield server
    finally:
        server.stop()


@dataclass
class Served:
    base_url: str
    secrets: dict[str, str]


@pytest.fixture(scope="module")
def served(private_postgres: PrivatePostgres, private_redis: PrivateRedis) -> Iterator[Served]:
    """The API under uvicorn on loopback, migrated and seeded on the private database."""
    schema.upgrade(private_postgres.url)
    secrets = asyncio.run(seed_database(private_postgres.url))
    port = _free_port()
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(
            str(ROOT / part) for part in ("libs/domain", "services/api", "services/worker")
        ),
        "NSCL_DATABASE_URL": private_postgres.url,
        "NSCL_REDIS_URL": private_redis.url,
        "NSCL_QUEUE_NAME": f"nscl:outage-test:{os.getpid()}",
        "NSCL_SEED_ON_START": "false",
        "NSCL_ENVIRONMENT": "test",
        "NSCL_LOG_JSON": "false",
        "NSCL_DB_POOL_SIZE": "5",
        "NSCL_DB_MAX_OVERFLOW": "5",
    }
    log = (private_postgres.data / "api.log").open("wb")
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
                "the API did not become ready:\n" + (private_postgres.data / "api.log").read_text()
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
