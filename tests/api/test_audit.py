"""Every write leaves an audit event in its own transaction; nobody can change the trail."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from nscl_api.auth.tokens import KeyRing
from tests.api.test_problems import assert_problem
from tests.conftest import mint_token

REQUEST_ID = "4f1d6c2e8a9b4c7d9e0f1a2b3c4d5e6f"


async def events(client: httpx.AsyncClient, **filters: str) -> list[dict[str, object]]:
    response = await client.get("/v1/audit-events", params=filters)
    assert response.status_code == 200, response.text
    return response.json()["items"]  # type: ignore[no-any-return]


class TestTrail:
    async def test_a_change_records_who_what_before_and_after(
        self, client: httpx.AsyncClient
    ) -> None:
        changed = await client.patch(
            "/v1/org-units/bk-doh",
            json={"abbreviation": "SYT"},
            headers={"X-Request-ID": REQUEST_ID},
        )
        assert changed.status_code == 200
        unit_id = changed.json()["id"]
        [event] = await events(client, object_type="org_unit", object_id=unit_id)
        assert event["action"] == "org_unit.updated"
        assert event["client_id"] == "test-all"
        assert event["unit"] == "bk-dost"
        assert event["request_id"] == REQUEST_ID
        assert event["before"]["abbreviation"] == "DOH"  # type: ignore[index]
        assert event["after"]["abbreviation"] == "SYT"  # type: ignore[index]

    async def test_a_refused_change_leaves_no_event(self, client: httpx.AsyncClient) -> None:
        refused = await client.patch("/v1/org-units/bk-doh", json={"valid_to": "1990-01-01"})
        assert refused.status_code == 422
        assert await events(client, action="org_unit.updated") == []

    async def test_filters_by_actor_action_and_time(
        self, client: httpx.AsyncClient, db_connection: AsyncConnection
    ) -> None:
        # Inside the test's transaction now() is its start: the events below share it.
        started = (await db_connection.scalar(text("SELECT now()"))).isoformat()
        await client.post("/v1/jobs", json={"name": "jobs.prune"})
        await client.patch("/v1/org-units/bk-doh", json={"abbreviation": "SYT"})
        assert [e["action"] for e in await events(client, action="job.scheduled")] == [
            "job.scheduled"
        ]
        assert len(await events(client, client_id="test-all", since=started)) == 2
        assert await events(client, client_id="someone-else") == []
        assert await events(client, since="2999-01-01T00:00:00Z") == []
        assert await events(client, client_id="test-all", until=started) == []
        page = (await client.get("/v1/audit-events", params={"limit": 1})).json()
        assert page["next_cursor"]
        second = await client.get(
            "/v1/audit-events", params={"limit": 1, "cursor": page["next_cursor"]}
        )
        assert second.json()["items"][0]["id"] != page["items"][0]["id"]

    async def test_only_auditors_read_the_trail(
        self, anonymous: httpx.AsyncClient, keys: KeyRing
    ) -> None:
        for client_id, status in (("test-auditor", 200), ("test-admin", 403), ("test-viewer", 403)):
            response = await anonymous.get(
                "/v1/audit-events",
                headers={"Authorization": f"Bearer {mint_token(keys, client_id)}"},
            )
            assert response.status_code == status, client_id

    async def test_naive_time_is_refused(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/v1/audit-events", params={"since": "2025-01-01T00:00:00"})
        assert_problem(response, 422, "validation_failed")


class TestAppendOnly:
    @pytest.mark.parametrize(
        "statement",
        [
            "UPDATE audit_event SET action = 'nothing.happened'",
            "DELETE FROM audit_event",
            "TRUNCATE audit_event",
        ],
    )
    async def test_postgresql_refuses_to_change_the_trail(
        self, client: httpx.AsyncClient, db_connection: AsyncConnection, statement: str
    ) -> None:
        await client.patch("/v1/org-units/bk-doh", json={"abbreviation": "SYT"})
        before = await db_connection.scalar(text("SELECT count(*) FROM audit_event"))
        # The service role is refused by its privileges; the owner by the trigger
        # (tests/security/test_audit_role.py tries both, and the owner's ways around).
        with pytest.raises(DBAPIError, match=r"permission denied|audit_event is append-only"):
            async with db_connection.begin_nested():
                await db_connection.execute(text(statement))
        after = await db_connection.scalar(text("SELECT count(*) FROM audit_event"))
        assert after == before
        changed = await db_connection.scalar(
            text("SELECT count(*) FROM audit_event WHERE action = 'nothing.happened'")
        )
        assert changed == 0
