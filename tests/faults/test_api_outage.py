"""The API through a database outage, on a real server with a private PostgreSQL.

The machine's PostgreSQL is shared and never stopped: this module starts its own (initdb
in a temporary directory, as the ``postgres`` user, since PostgreSQL refuses to run as
root), serves the API from it with uvicorn on loopback, stops it while requests arrive,
and starts it again. Every request must get an answer — 503 with Retry-After while the
database is down, never a 500 or a dropped connection — and the first request after the
restart must succeed.
"""

from __future__ import annotations

import asyncio
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
class Served:
    base_url: str
    secrets: dict[str, str]


@pytest.fixture(scope="module")
def served(private_postgres: PrivatePostgres) -> Iterator[Served]:
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
        "NSCL_REDIS_URL": "redis://127.0.0.1:6379/0",
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
