"""The typed TypeScript client (contract/ts/client.ts) compiled from the contract's types and
run by Node against the live service: token, organisation units, a report opened, its draft
written (and a stale write refused) and submitted under If-Match, a published rollup read and
revalidated, a job polled. `make contract` proves it compiles; this proves it works."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from nscl_domain import schema as db_schema
from nscl_domain.db import create_engine, create_sessionmaker
from nscl_domain.settings import Settings
from tests.conftest import (
    IN_CI,
    Services,
    drop_database,
    recreate_database,
    seed_database,
    serve_in_thread,
)
from tests.e2e.test_rollups import accept, refresh

ROOT = Path(__file__).resolve().parents[2]
CONTRACT = ROOT / "contract"
TOOLS = CONTRACT / "node_modules" / ".bin"
BUILT = CONTRACT / "generated" / "js"
DB = f"nscl_tsclient_{os.getpid()}"
BK = "bac-kan-nscl"


def _tools() -> str:
    """Node, once the contract's tools are installed (make contract installs them)."""
    node = shutil.which("node")
    if node is None or not (TOOLS / "tsc").exists():
        message = "Node or the contract tools are missing: run `make contract`"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return node


def _run(*command: str | Path, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        [str(part) for part in command],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False,
        env={**os.environ, **(env or {})},
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def compiled() -> Path:
    """The client compiled to JavaScript from the contract as it is now."""
    _tools()
    _run(
        TOOLS / "openapi-typescript", "openapi.json", "--default-non-nullable", "false",
        "--output", CONTRACT / "generated" / "schema.ts",
    )  # fmt: skip
    shutil.rmtree(BUILT, ignore_errors=True)
    _run(TOOLS / "tsc", "--project", CONTRACT, "--noEmit", "false", "--outDir", BUILT)
    return BUILT / "ts" / "walk.js"


@dataclass(frozen=True)
class Live:
    url: str
    secrets: dict[str, str]


async def _publish(url: str, year: int) -> None:
    """An accepted report of bk-doh for ``year``, rolled up and published."""
    engine = create_engine(url, pooled=False)
    async with create_sessionmaker(engine)() as session:
        await accept(session, "bk-doh", year, {"training-courses": "3"})
        await refresh(session, BK, year)
        await session.commit()
    await engine.dispose()


@pytest.fixture(scope="module")
def live(services: Services) -> Iterator[Live]:
    """The real service on a database of its own, on loopback, with a published 2023."""
    url = recreate_database(services, DB)
    db_schema.upgrade(url)
    secrets = asyncio.run(seed_database(url))
    asyncio.run(_publish(url, 2023))
    settings = Settings(
        database_url=url,  # type: ignore[arg-type]
        redis_url=services.redis_url,  # type: ignore[arg-type]
        environment="test",
        log_json=False,
        log_level="WARNING",
        queue_name=f"nscl:tsclient:{os.getpid()}:jobs",
        auth_redis_prefix=f"nscl:tsclient:{os.getpid()}:auth",
        seed_on_start=False,
    )
    try:
        with serve_in_thread(settings) as base:
            yield Live(base, secrets)
    finally:
        drop_database(services, DB)


def _bearer(live: Live, client_id: str) -> dict[str, str]:
    form = {
        "grant_type": "client_credentials",
        "client_id": client_id,
        "client_secret": live.secrets[client_id],
    }
    token = httpx.post(f"{live.url}/v1/oauth/token", data=form).json()["access_token"]
    return {"Authorization": f"Bearer {token}"}


def test_the_typed_client_walks_a_reporting_round(compiled: Path, live: Live) -> None:
    reviewer, reporter = _bearer(live, "test-reviewer"), _bearer(live, "test-reporter")
    programme = f"{live.url}/v1/programmes/{BK}"
    httpx.post(
        f"{programme}/obligations/generation",
        json={"year": 2024, "regime": "bk-annual"},
        headers=reviewer,
    ).raise_for_status()
    [obligation] = httpx.get(
        f"{programme}/obligations", params={"year": 2024}, headers=reporter
    ).json()["items"]
    job = httpx.post(
        f"{live.url}/v1/rollups",
        json={"programme": BK, "year": 2023},
        headers=_bearer(live, "test-operator"),
    )
    assert job.status_code == 202, job.text

    printed = _run(
        _tools(),
        compiled,
        env={
            "NSCL_URL": live.url,
            "NSCL_CLIENT_ID": "test-reporter",
            "NSCL_CLIENT_SECRET": live.secrets["test-reporter"],
            "NSCL_OBLIGATION": obligation["id"],
            "NSCL_PROGRAMME": BK,
            "NSCL_YEAR": "2023",
            "NSCL_JOB": job.json()["id"],
            "NSCL_OPERATOR_ID": "test-operator",
            "NSCL_OPERATOR_SECRET": live.secrets["test-operator"],
        },
    )
    walked: dict[str, Any] = json.loads(printed.strip().splitlines()[-1])

    assert "bk-doh" in walked["units"]
    first, second = walked["revisions"]
    assert second > first
    assert walked["stale"] == 412  # the draft written with the first ETag again
    assert walked["status"] == "submitted"
    published = httpx.get(f"{live.url}/v1/rollups/{BK}/2023", headers=reporter).json()
    assert walked["rollup"] == published["run_id"]
    assert walked["unchanged"] == "304"
    # No worker takes this server's queue: the poll gives up at its timeout with the job as is.
    assert walked["job"] == "pending"
    report = httpx.get(f"{live.url}/v1/reports/{walked['report']}", headers=reporter).json()
    assert report["status"] == "submitted"
