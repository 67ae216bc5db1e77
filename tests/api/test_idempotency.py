"""Idempotency-Key on creating POSTs: concurrent retries replay the first answer, a key
reused for another request is refused, a failed first request leaves the key free."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import Counter

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text

from nscl_api import idempotency
from nscl_api.auth.tokens import KeyRing
from nscl_api.resources import Resources
from nscl_domain import idempotency as stored
from tests.api.test_problems import assert_problem
from tests.conftest import OWN_UNIT, mint_token

BK = "/v1/programmes/bac-kan-nscl"


def auth(keys: KeyRing, client_id: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {mint_token(keys, client_id)}"}


async def obligation_of_own_unit(http: httpx.AsyncClient, keys: KeyRing, year: int) -> str:
    await http.post(
        f"{BK}/obligations/generation",
        json={"year": year, "regime": "bk-annual"},
        headers=auth(keys, "test-reviewer"),
    )
    items = (
        await http.get(f"{BK}/obligations?year={year}", headers=auth(keys, "test-reporter"))
    ).json()["items"]
    assert [o["unit"] for o in items] == [OWN_UNIT]
    return str(items[0]["id"])


class TestConcurrentRetries:
    async def test_a_hundred_retries_create_one_report_and_all_get_its_answer(
        self, shared_app: FastAPI, committed_resources: Resources, keys: KeyRing
    ) -> None:
        shared_app.state.resources = committed_resources
        transport = httpx.ASGITransport(app=shared_app)
        async with httpx.AsyncClient(transport=transport, base_url="http://nscl.test") as http:
            obligation = await obligation_of_own_unit(http, keys, 2024)
            headers = {**auth(keys, "test-reporter"), "Idempotency-Key": f"retry-{uuid.uuid4()}"}

            answers = await asyncio.gather(
                *(
                    http.post("/v1/reports", json={"obligation_id": obligation}, headers=headers)
                    for _ in range(100)
                )
            )

        statuses = Counter(a.status_code for a in answers)
        assert set(statuses) <= {201, 409}, [a.text for a in answers if a.status_code != 201]
        created = [a for a in answers if a.status_code == 201]
        assert {a.json()["id"] for a in created} == {created[0].json()["id"]}
        assert {a.headers["location"] for a in created} == {created[0].headers["location"]}
        assert {a.content for a in created} == {created[0].content}
        # Exactly one ran; the others are replays of its answer.
        assert sum("idempotent-replayed" not in a.headers for a in created) == 1
        for waiting in (a for a in answers if a.status_code == 409):
            assert_problem(waiting, 409, "request_in_progress")
            assert waiting.headers["retry-after"]
        async with committed_resources.sessionmaker() as session:
            reports = await session.scalar(
                text("SELECT count(*) FROM report WHERE obligation_id = :o"),
                {"o": uuid.UUID(obligation)},
            )
        assert reports == 1


class TestAKeyInUse:
    async def test_a_retry_while_the_first_runs_is_asked_to_come_back(
        self,
        anonymous: httpx.AsyncClient,
        keys: KeyRing,
        resources: Resources,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        monkeypatch.setattr(idempotency, "WAIT_SECONDS", 0.2)
        obligation = await obligation_of_own_unit(anonymous, keys, 2024)
        body = json.dumps({"obligation_id": obligation}).encode()
        key = "in-progress-0000001"
        # The first request with the key holds it (still running, as far as anyone knows).
        fingerprint = idempotency.request_fingerprint("POST", "/v1/reports", "", body)
        claimed = await stored.claim(resources.sessionmaker, "test-reporter", key, fingerprint)
        assert isinstance(claimed, stored.Claimed)

        retry = await anonymous.post(
            "/v1/reports",
            content=body,
            headers={
                **auth(keys, "test-reporter"),
                "Idempotency-Key": key,
                "Content-Type": "application/json",
            },
        )

        assert_problem(retry, 409, "request_in_progress")
        assert int(retry.headers["retry-after"]) > 0

    async def test_an_abandoned_claim_is_taken_over_after_its_lease(
        self, anonymous: httpx.AsyncClient, keys: KeyRing, resources: Resources
    ) -> None:
        obligation = await obligation_of_own_unit(anonymous, keys, 2024)
        body = json.dumps({"obligation_id": obligation}).encode()
        key = "abandoned-00000001"
        fingerprint = idempotency.request_fingerprint("POST", "/v1/reports", "", body)
        await stored.claim(resources.sessionmaker, "test-reporter", key, fingerprint)
        async with resources.sessionmaker() as session:
            await session.execute(
                text(
                    "UPDATE idempotency_key SET created_at = now() - CAST(:lease AS interval) "
                    "WHERE key = :k"
                ),
                {"lease": stored.CLAIM_LEASE * 2, "k": key},
            )
            await session.commit()

        retry = await anonymous.post(
            "/v1/reports",
            content=body,
            headers={
                **auth(keys, "test-reporter"),
                "Idempotency-Key": key,
                "Content-Type": "application/json",
            },
        )

        assert retry.status_code == 201, retry.text
        assert "idempotent-replayed" not in retry.headers


class TestReuse:
    async def test_the_same_key_with_another_body_is_refused(
        self, anonymous: httpx.AsyncClient, keys: KeyRing
    ) -> None:
        headers = {**auth(keys, "test-reporter"), "Idempotency-Key": "reused-key-00000001"}
        first = await anonymous.post(
            "/v1/reports",
            json={"obligation_id": await obligation_of_own_unit(anonymous, keys, 2024)},
            headers=headers,
        )
        assert first.status_code == 201, first.text
        other = await anonymous.post(
            "/v1/reports",
            json={"obligation_id": await obligation_of_own_unit(anonymous, keys, 2023)},
            headers=headers,
        )
        assert_problem(other, 422, "idempotency_key_reused")

    async def test_the_same_key_on_another_route_is_refused(
        self, anonymous: httpx.AsyncClient, keys: KeyRing
    ) -> None:
        headers = {**auth(keys, "test-all"), "Idempotency-Key": "reused-key-00000002"}
        first = await anonymous.post(
            "/v1/jobs", json={"name": "jobs.prune", "args": {"older_than_days": 7}}, headers=headers
        )
        assert first.status_code == 202, first.text
        other = await anonymous.post(
            "/v1/rollups", json={"programme": "bac-kan-nscl", "year": 2024}, headers=headers
        )
        assert_problem(other, 422, "idempotency_key_reused")

    async def test_a_failed_first_request_leaves_the_key_free(
        self, anonymous: httpx.AsyncClient, keys: KeyRing
    ) -> None:
        headers = {**auth(keys, "test-reporter"), "Idempotency-Key": "failed-first-0000001"}
        missing = await anonymous.post(
            "/v1/reports", json={"obligation_id": str(uuid.uuid4())}, headers=headers
        )
        assert_problem(missing, 404, "obligation_not_found")
        obligation = await obligation_of_own_unit(anonymous, keys, 2024)
        created = await anonymous.post(
            "/v1/reports", json={"obligation_id": obligation}, headers=headers
        )
        assert created.status_code == 201, created.text
        assert "idempotent-replayed" not in created.headers

    async def test_keys_of_one_client_are_not_another_clients(
        self, anonymous: httpx.AsyncClient, keys: KeyRing
    ) -> None:
        body = {"name": "jobs.prune", "args": {"older_than_days": 7}}
        key = {"Idempotency-Key": "shared-key-00000001"}
        mine = await anonymous.post(
            "/v1/jobs", json=body, headers={**auth(keys, "test-all"), **key}
        )
        theirs = await anonymous.post(
            "/v1/jobs", json=body, headers={**auth(keys, "test-operator"), **key}
        )
        assert mine.status_code == theirs.status_code == 202
        assert mine.json()["id"] != theirs.json()["id"]
        assert "idempotent-replayed" not in theirs.headers


# Every creating POST, with a body it accepts from the client that sends it.
CREATING_POSTS = [
    ("test-reporter", f"{BK}/plans", {"kind": "five_year", "start_year": 2021}),
    ("test-reporter", f"{BK}/budget-estimates", {"budget_year": 2025}),
    (
        "test-reporter",
        f"{BK}/records",
        {
            "content": {
                "kind": "communication",
                "campaign": "Tháng chất lượng",
                "channel": "radio",
                "held_on": "2024-10-01",
                "reach": 900,
            }
        },
    ),
    ("test-all", "/v1/jobs", {"name": "jobs.prune", "args": {"older_than_days": 7}}),
    ("test-operator", "/v1/rollups", {"programme": "bac-kan-nscl", "year": 2024}),
    ("test-reviewer", f"{BK}/budget-dossiers/builds", {"budget_year": 2025}),
    (
        "test-reviewer",
        f"{BK}/reporting-requests",
        {
            "title_vi": "Báo cáo đột xuất về đào tạo",
            "title_en": "Ad hoc report on training",
            "year": 2024,
            "due_date": "2024-08-15",
            "units": [OWN_UNIT],
            "indicators": ["training-courses"],
        },
    ),
]


class TestEveryCreatingPostReplays:
    @pytest.mark.parametrize(("client_id", "path", "body"), CREATING_POSTS)
    async def test_a_repeated_request_replays_the_first_answer(
        self,
        anonymous: httpx.AsyncClient,
        keys: KeyRing,
        client_id: str,
        path: str,
        body: dict[str, object],
    ) -> None:
        headers = {**auth(keys, client_id), "Idempotency-Key": f"replay-{uuid.uuid4()}"}
        first = await anonymous.post(path, json=body, headers=headers)
        assert first.status_code in (201, 202), first.text
        again = await anonymous.post(path, json=body, headers=headers)
        assert again.status_code == first.status_code
        assert again.content == first.content
        assert again.headers.get("location") == first.headers.get("location")
        assert again.headers["idempotent-replayed"] == "true"
        assert "idempotent-replayed" not in first.headers
        fresh = await anonymous.post(path, json=body, headers=auth(keys, client_id))
        assert fresh.content != first.content  # without the key: another request

    def test_every_creating_operation_takes_the_header(self, shared_app: FastAPI) -> None:
        document = shared_app.openapi()
        takes_key = {
            operation["operationId"]
            for path_item in document["paths"].values()
            for operation in path_item.values()
            if any(p["name"] == "Idempotency-Key" for p in operation.get("parameters", []))
        }
        assert takes_key == {
            "createReport",
            "createReportingRequest",
            "createPlan",
            "proposePlanChange",
            "createRecord",
            "createBudgetEstimate",
            "buildBudgetDossiers",
            "recordSpending",
            "createJob",
            "requestRollup",
            "requestAnnualReport",
            "requestReview",
            # A province's push names its run as the key; its replays are tested with the
            # intake (tests/api/test_national_intake.py), which needs a national programme.
            "receiveProvincialRollup",
        }
