"""/v1/national-intake: a province's instance sends its published rollup to this one.

The submission is kept once per province run, a run older than the latest is refused, only
the province's own client may send, and the figures become the provincial programme's
published run here, which the national refresh combines and whose provenance names the
province's run.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import select, text

from nscl_api.auth.tokens import KeyRing
from nscl_api.resources import Resources
from nscl_domain.identity import SYSTEM, Role, permissions_of
from nscl_domain.identity import service as identity
from nscl_domain.identity.service import Grant
from nscl_domain.jobs.models import Job
from nscl_domain.jobs.registry import JobContext
from nscl_domain.rollups import service as rollups
from tests.api.test_problems import assert_problem
from tests.conftest import mint_token

BK, NATIONAL, YEAR = "bac-kan-nscl", "national-nscl", 2024
INTAKE = f"/v1/national-intake/{BK}/{YEAR}"
PROVINCE_UNIT = "bk-ppc"  # owns the Bắc Kạn programme


def cell(indicator: str, value: str, *, count: int = 1) -> dict[str, Any]:
    return {
        "indicator": indicator,
        "disaggregation": "",
        "value": value,
        "value_sum": value,
        "value_count": count,
        "value_min": value,
        "value_max": value,
    }


def submission(seq: int, enterprises: str, run_id: uuid.UUID | None = None) -> dict[str, Any]:
    return {
        "run_id": str(run_id or uuid.uuid4()),
        "seq": seq,
        "fingerprint": f"{seq:064x}",
        "computed_at": "2024-11-14T08:00:00Z",
        "cells": [
            cell("enterprises-supported", enterprises, count=2),
            cell("training-courses", "4"),
        ],
    }


@pytest.fixture
async def province(resources: Resources, keys: KeyRing) -> dict[str, str]:
    """The province's client on this instance: a reporter of the programme's owner unit."""
    client_id = f"upstream-{uuid.uuid4().hex[:6]}"
    await identity.create_client(
        resources.new_uow(), SYSTEM, client_id=client_id, name=client_id,
        unit=PROVINCE_UNIT, roles=[Role.REPORTER.value],
    )  # fmt: skip
    roles = frozenset({Role.REPORTER})
    issued = keys.issue(
        Grant(client_id, PROVINCE_UNIT, roles, permissions_of(roles)),
        now=datetime.now(UTC),
        ttl_seconds=900,
    )
    return {"Authorization": f"Bearer {issued.access_token}"}


def totals(body: dict[str, Any]) -> dict[str, str]:
    return {
        c["indicator"]: c["value"]
        for c in body["cells"]
        if c["breakdown"] == "" and not c["disaggregation"]
    }


async def national_total(client: httpx.AsyncClient, expected: str) -> str:
    """The national enterprises figure, once it shows ``expected`` (readers see a new
    publication within a second) or as it stands after a few seconds."""
    value = ""
    for _ in range(40):
        national = await client.get(f"/v1/rollups/{NATIONAL}/{YEAR}")
        value = totals(national.json()).get("national-enterprises-supported", "")
        if value == expected:
            break
        await asyncio.sleep(0.1)
    return value


async def refresh_national(resources: Resources) -> None:
    async with resources.sessionmaker() as session:
        programme_id = await session.scalar(
            text("SELECT id FROM programme WHERE key = :k"), {"k": NATIONAL}
        )
        context = JobContext(session=session, job_id=uuid.uuid4(), attempt=1, now=datetime.now(UTC))
        done = await rollups.refresh(
            context, rollups.RefreshRollupArgs(programme_id=programme_id, year=YEAR)
        )
        assert done["unchanged"] is False
        await session.commit()


async def test_a_submission_is_published_and_the_national_refresh_queued(
    client: httpx.AsyncClient, province: dict[str, str], resources: Resources
) -> None:
    sent = submission(3, "5")
    created = await client.post(INTAKE, json=sent, headers=province)
    assert created.status_code == 201, created.text
    body = created.json()
    assert (body["run_id"], body["seq"], body["status"]) == (sent["run_id"], 3, "current")
    assert body["received_by"].startswith("upstream-")
    assert body["cells"] == 2
    assert 'rel="monitor"' in created.headers["link"]

    # The national refresh is queued at once, not left to a sweep.
    async with resources.sessionmaker() as session:
        queued = (await session.scalars(select(Job).where(Job.name == "rollups.refresh"))).all()
        national_id = await session.scalar(
            text("SELECT id FROM programme WHERE key = :k"), {"k": NATIONAL}
        )
    assert [job.args["programme_id"] for job in queued] == [str(national_id)]

    # The province's figures are the provincial programme's published run here.
    provincial = await client.get(f"/v1/rollups/{BK}/{YEAR}")
    assert provincial.status_code == 200, provincial.text
    assert provincial.json()["run_id"] == sent["run_id"]
    assert totals(provincial.json())["enterprises-supported"] == "5"

    await refresh_national(resources)
    national = await client.get(f"/v1/rollups/{NATIONAL}/{YEAR}")
    assert totals(national.json())["national-enterprises-supported"] == "5"
    provenance = await client.get(
        f"/v1/rollups/{NATIONAL}/{YEAR}/provenance",
        params={"indicator": "national-enterprises-supported"},
    )
    [source] = provenance.json()["items"]
    assert (source["kind"], source["programme"], source["source_id"]) == (
        "rollup_run",
        BK,
        sent["run_id"],
    )
    assert (source["province_seq"], source["province_fingerprint"]) == (3, sent["fingerprint"])

    # A later run replaces the figures; the earlier submission is kept, superseded.
    later = submission(4, "9")
    assert (await client.post(INTAKE, json=later, headers=province)).status_code == 201
    await refresh_national(resources)
    assert await national_total(client, "9") == "9"
    listed = await client.get(INTAKE)
    assert listed.status_code == 200, listed.text
    assert [(i["run_id"], i["seq"], i["status"]) for i in listed.json()["items"]] == [
        (later["run_id"], 4, "current"),
        (sent["run_id"], 3, "superseded"),
    ]


async def test_a_repeated_run_answers_its_stored_submission(
    client: httpx.AsyncClient, province: dict[str, str]
) -> None:
    sent = submission(2, "5")
    first = await client.post(INTAKE, json=sent, headers=province)
    assert first.status_code == 201, first.text
    # The push retried under another key (a new attempt): the run id is what is unique.
    again = await client.post(
        INTAKE, json=sent, headers={**province, "Idempotency-Key": str(uuid.uuid4())}
    )
    assert again.status_code == 200, again.text
    assert again.json()["id"] == first.json()["id"]
    assert len((await client.get(INTAKE)).json()["items"]) == 1


async def test_a_run_not_later_than_the_latest_is_outdated(
    client: httpx.AsyncClient, province: dict[str, str]
) -> None:
    assert (await client.post(INTAKE, json=submission(5, "5"), headers=province)).status_code == 201
    problem = assert_problem(
        await client.post(INTAKE, json=submission(4, "7"), headers=province), 409, "intake_outdated"
    )
    assert problem["latest_seq"] == 5
    provincial = await client.get(f"/v1/rollups/{BK}/{YEAR}")
    assert totals(provincial.json())["enterprises-supported"] == "5"


async def test_only_the_programme_owner_unit_sends(
    client: httpx.AsyncClient, keys: KeyRing
) -> None:
    # A district's reporter holds the scope, but is not the province.
    reporter = {"Authorization": f"Bearer {mint_token(keys, 'test-reporter')}"}
    assert_problem(
        await client.post(INTAKE, json=submission(1, "5"), headers=reporter), 403, "forbidden"
    )
    viewer = {"Authorization": f"Bearer {mint_token(keys, 'test-viewer')}"}
    assert_problem(
        await client.post(INTAKE, json=submission(1, "5"), headers=viewer),
        403,
        "insufficient_scope",
    )
    # Listing is for operators.
    assert_problem(await client.get(INTAKE, headers=viewer), 403, "insufficient_scope")


async def test_bad_bodies_are_problems(client: httpx.AsyncClient, province: dict[str, str]) -> None:
    without_cells = {k: v for k, v in submission(1, "5").items() if k != "cells"}
    assert_problem(
        await client.post(INTAKE, json=without_cells, headers=province), 422, "validation_failed"
    )
    bad_value = submission(1, "5")
    bad_value["cells"][0]["value"] = "many"
    assert_problem(
        await client.post(INTAKE, json=bad_value, headers=province), 422, "validation_failed"
    )
    unknown = submission(1, "5")
    unknown["cells"].append(cell("national-enterprises-supported", "1"))
    problem = assert_problem(
        await client.post(INTAKE, json=unknown, headers=province), 422, "unknown_indicator"
    )
    assert problem["errors"][0]["location"] == ["body", "cells", 2, "indicator"]
    assert_problem(
        await client.post(f"/v1/national-intake/{NATIONAL}/{YEAR}", json=submission(1, "5"),
                          headers=province),
        422,
        "intake_not_provincial",
    )  # fmt: skip
    assert_problem(
        await client.post(f"/v1/national-intake/nowhere/{YEAR}", json=submission(1, "5"),
                          headers=province),
        404,
        "programme_not_found",
    )  # fmt: skip
    # Nothing of these was kept.
    assert (await client.get(INTAKE)).json()["items"] == []
