"""`nscl serve` with nothing configured: embedded PostgreSQL, in-memory Redis, worker in-process."""

from __future__ import annotations

import asyncio
import json
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from bench.hostile_files import XLSX_MEDIA_TYPE, xfd_column_rows
from sqlalchemy import text

from nscl_domain import embedded, schema
from nscl_domain.db import create_engine
from tests.e2e.embedded_process import start_service, stop_leftovers, wait_until_gone


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("nscl-data")


@pytest.fixture(scope="module")
def embedded_service(data_dir: Path) -> Iterator[str]:
    service = start_service(data_dir)
    try:
        yield service.base
    finally:
        # What Docker and systemd send: the service stops, and its PostgreSQL with it.
        code = service.signal(signal.SIGTERM)
        left = wait_until_gone(data_dir)
        stop_leftovers(data_dir)
        assert code == 0, service.output()
        assert left == [], f"PostgreSQL of {data_dir} outlived nscl serve: {left}"


def test_service_is_alive_ready_and_documented(embedded_service: str) -> None:
    assert httpx.get(f"{embedded_service}/health").status_code == 200
    ready = httpx.get(f"{embedded_service}/ready").json()
    assert ready["checks"] == {"database": "ok", "schema": "ok", "redis": "ok"}
    docs = httpx.get(f"{embedded_service}/docs")
    assert docs.status_code == 200
    assert "swagger-ui" in docs.text
    assert httpx.get(f"{embedded_service}/openapi.json").json()["info"]["title"] == "nscl"


@pytest.fixture(scope="module")
def bearer(embedded_service: str, data_dir: Path) -> dict[str, str]:
    """The development client's token: its credentials are in a file only the owner reads."""
    credentials_file = data_dir / "dev-client.json"
    assert credentials_file.stat().st_mode & 0o077 == 0
    credentials = json.loads(credentials_file.read_text())
    response = httpx.post(
        f"{embedded_service}/v1/oauth/token",
        data={"grant_type": "client_credentials", **credentials},
    )
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def test_seeded_plan_is_served(embedded_service: str, bearer: dict[str, str]) -> None:
    groups = httpx.get(
        f"{embedded_service}/v1/programmes/bac-kan-nscl/task-groups", headers=bearer
    ).json()
    assert [g["number"] for g in groups["items"]] == [1, 2, 3, 4, 5]
    districts = httpx.get(
        f"{embedded_service}/v1/org-units",
        params={"kind": "district_peoples_committee", "as_of": "2024-12-31"},
        headers=bearer,
    ).json()["items"]
    assert sorted(u["code"] for u in districts) == [
        "058",
        "060",
        "061",
        "062",
        "063",
        "064",
        "065",
        "066",
    ]


def test_in_process_worker_runs_jobs(embedded_service: str, bearer: dict[str, str]) -> None:
    created = httpx.post(f"{embedded_service}/v1/jobs", json={"name": "jobs.prune"}, headers=bearer)
    assert created.status_code == 202
    location = created.headers["location"]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        job = httpx.get(f"{embedded_service}{location}", headers=bearer).json()
        if job["status"] == "succeeded":
            break
        time.sleep(0.2)
    assert job["status"] == "succeeded", job
    assert job["result"]["deleted"] == 0


def test_service_connects_as_a_role_that_owns_nothing(
    embedded_service: str, data_dir: Path
) -> None:
    """The API and its worker hold connections as nscl_app; the superuser only migrated."""
    assert httpx.get(f"{embedded_service}/ready").json()["checks"]["schema"] == "ok"
    superuser_url = (
        f"postgresql+asyncpg://postgres@/postgres?host={(data_dir / 'postgres').resolve()}"
    )

    async def inspect() -> tuple[set[str], bool, list[str]]:
        engine = create_engine(superuser_url, pooled=False)
        async with engine.connect() as conn:
            users = set(
                (
                    await conn.execute(
                        text(
                            "SELECT usename FROM pg_stat_activity WHERE datname = 'postgres' "
                            "AND backend_type = 'client backend' AND pid <> pg_backend_pid()"
                        )
                    )
                ).scalars()
            )
            superuser = bool(
                await conn.scalar(
                    text("SELECT rolsuper FROM pg_roles WHERE rolname = :r"),
                    {"r": embedded.SERVICE_ROLE},
                )
            )
            owned = await schema.service_role_owns(conn, embedded.SERVICE_ROLE)
        await engine.dispose()
        return users, superuser, owned

    users, superuser, owned = asyncio.run(inspect())
    assert users == {embedded.SERVICE_ROLE}
    assert not superuser
    assert owned == []


def test_uploads_are_read_in_the_parser_processes(
    embedded_service: str, bearer: dict[str, str]
) -> None:
    """`nscl serve` starts its parser processes on first use (spawned: its main is a script)."""
    # A report of the development client's own unit: an upload is read only for a report
    # its sender may write to.
    with httpx.Client(base_url=embedded_service, headers=bearer, timeout=30) as http:
        requested = http.post(
            "/v1/programmes/bac-kan-nscl/reporting-requests",
            json={"title_vi": "Báo cáo nhanh", "title_en": "Quick report", "year": 2026,
                  "due_date": "2027-01-31", "units": ["tn-dost"]},
        )  # fmt: skip
        assert requested.status_code == 201, requested.text
        obligations = http.get(
            "/v1/programmes/bac-kan-nscl/obligations",
            params={"request_id": requested.json()["id"]},
        )
        report = http.post(
            "/v1/reports", json={"obligation_id": obligations.json()["items"][0]["id"]}
        )
        assert report.status_code == 201, report.text
    answer = httpx.post(
        f"{embedded_service}/v1/reports/{report.json()['id']}/indicator-values/import",
        content=xfd_column_rows(),
        headers={**bearer, "Content-Type": XLSX_MEDIA_TYPE},
        timeout=30,
    )
    assert answer.status_code == 413, answer.text
    assert (answer.json()["code"], answer.json()["limit"]) == ("upload_too_many_columns", 100)
    assert httpx.get(f"{embedded_service}/health").status_code == 200
