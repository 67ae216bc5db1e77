"""/v1/jobs: operators start maintenance jobs and watch every job."""

from __future__ import annotations

import httpx
from sqlalchemy import select
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
