"""/v1/jobs: operators start maintenance jobs and watch every job."""

from __future__ import annotations

import httpx
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from nscl_domain.jobs.models import Job
from tests.api.test_problems import assert_problem


class TestCreateJob:
    async def test_accepted_with_location_of_the_job(
        self, client: httpx.AsyncClient, db_connection: AsyncConnection
    ) -> None:
        response = await client.post(
            "/v1/jobs", json={"name": "jobs.prune", "args": {"older_than_days": 7}}
        )
        assert response.status_code == 202
        body = response.json()
        assert response.headers["location"] == f"/v1/jobs/{body['id']}"
        assert body["status"] == "pending"
        assert body["args"] == {"older_than_days": 7}
        stored = (await db_connection.execute(select(Job.name, Job.args))).all()
        assert stored == [("jobs.prune", {"older_than_days": 7})]

        followed = await client.get(response.headers["location"])
        assert followed.status_code == 200
        assert followed.json()["id"] == body["id"]

    async def test_defaults_of_the_job_are_filled_in(self, client: httpx.AsyncClient) -> None:
        response = await client.post("/v1/jobs", json={"name": "jobs.prune"})
        assert response.json()["args"] == {"older_than_days": 30}

    async def test_unknown_job_name_is_refused(
        self, client: httpx.AsyncClient, db_connection: AsyncConnection
    ) -> None:
        body = assert_problem(
            await client.post("/v1/jobs", json={"name": "drop.everything"}), 422, "unknown_job"
        )
        assert body["errors"][0]["location"] == ["body", "name"]  # type: ignore[index]
        assert (await db_connection.execute(select(Job.id))).first() is None

    async def test_invalid_arguments_name_the_argument(self, client: httpx.AsyncClient) -> None:
        response = await client.post(
            "/v1/jobs", json={"name": "jobs.prune", "args": {"older_than_days": -1}}
        )
        body = assert_problem(response, 422, "invalid_job_args")
        assert body["errors"][0]["location"] == ["body", "args", "older_than_days"]  # type: ignore[index]


class TestReadJobs:
    async def test_unknown_job_is_404(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/v1/jobs/01930000-0000-7000-8000-000000000000")
        assert_problem(response, 404, "job_not_found")

    async def test_list_pages_newest_first_and_filters(self, client: httpx.AsyncClient) -> None:
        created = [
            (
                await client.post(
                    "/v1/jobs", json={"name": "jobs.prune", "args": {"older_than_days": d}}
                )
            ).json()["id"]
            for d in range(1, 6)
        ]
        seen: list[str] = []
        url = "/v1/jobs?limit=2&name=jobs.prune"
        while url:
            page = (await client.get(url)).json()
            assert len(page["items"]) <= 2
            seen += [item["id"] for item in page["items"]]
            url = (
                f"/v1/jobs?limit=2&name=jobs.prune&cursor={page['next_cursor']}"
                if page.get("next_cursor")
                else ""
            )
        assert seen == list(reversed(created))

        none = (await client.get("/v1/jobs?status=succeeded")).json()
        assert none["items"] == []

    async def test_cursor_that_was_not_issued_is_422(self, client: httpx.AsyncClient) -> None:
        for cursor in ("garbage!", "eyJ4IjoxfQ", "W10"):
            assert_problem(await client.get(f"/v1/jobs?cursor={cursor}"), 422, "invalid_cursor")


class TestCancelAndRetry:
    async def _job(self, client: httpx.AsyncClient, db: AsyncConnection, **row: object) -> str:
        job_id = (await client.post("/v1/jobs", json={"name": "jobs.prune"})).json()["id"]
        if row:
            await db.execute(update(Job).where(Job.id == job_id).values(**row))
        return str(job_id)

    async def test_a_running_job_is_asked_to_stop(
        self, client: httpx.AsyncClient, db_connection: AsyncConnection
    ) -> None:
        job_id = await self._job(client, db_connection, status="running", attempts=1)
        response = await client.post(f"/v1/jobs/{job_id}/cancellation")
        assert response.status_code == 200
        assert response.json()["status"] == "running"
        assert response.json()["cancel_requested"] is True

    async def test_a_finished_job_cannot_be_cancelled(
        self, client: httpx.AsyncClient, db_connection: AsyncConnection
    ) -> None:
        job_id = await self._job(client, db_connection, status="succeeded")
        response = await client.post(f"/v1/jobs/{job_id}/cancellation")
        assert_problem(response, 409, "job_not_cancellable")

    async def test_a_failed_job_is_retried_with_fresh_attempts(
        self, client: httpx.AsyncClient, db_connection: AsyncConnection
    ) -> None:
        job_id = await self._job(
            client, db_connection, status="failed", attempts=5, max_attempts=5, error="boom"
        )
        response = await client.post(f"/v1/jobs/{job_id}/retry")
        assert response.status_code == 202
        assert response.headers["location"] == f"/v1/jobs/{job_id}"
        body = response.json()
        assert body["status"] == "pending"
        assert body["attempts"] == 5
        assert body["max_attempts"] > 5

    async def test_a_pending_job_is_not_retried(self, client: httpx.AsyncClient) -> None:
        job_id = (await client.post("/v1/jobs", json={"name": "jobs.prune"})).json()["id"]
        response = await client.post(f"/v1/jobs/{job_id}/retry")
        assert_problem(response, 409, "job_not_retryable")
