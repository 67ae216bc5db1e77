"""Every error is an RFC 9457 problem+json body with a 4xx status, never a 500."""

from __future__ import annotations

import json

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.requests import Request

from nscl_api.auth.tokens import KeyRing
from nscl_api.errors import _on_integrity_error
from nscl_api.main import create_app
from nscl_api.resources import Resources
from nscl_domain.settings import Settings
from tests.conftest import mint_token

PROBLEM = "application/problem+json"


def assert_problem(response: httpx.Response, status: int, code: str) -> dict[str, object]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["status"] == status
    assert body["code"] == code
    assert body["type"] == f"urn:nscl:problem:{code}"
    assert body["title"]
    assert body["detail"]
    return body  # type: ignore[no-any-return]


class TestRequestErrors:
    async def test_unknown_path_is_404(self, client: httpx.AsyncClient) -> None:
        body = assert_problem(await client.get("/v1/no-such-thing"), 404, "not_found")
        assert body["instance"] == "/v1/no-such-thing"

    async def test_wrong_method_is_405_listing_every_allowed_method(
        self, client: httpx.AsyncClient
    ) -> None:
        response = await client.delete("/v1/jobs")
        assert_problem(response, 405, "method_not_allowed")
        assert response.headers["allow"] == "GET, HEAD, POST"

    async def test_malformed_json_is_400(self, client: httpx.AsyncClient) -> None:
        response = await client.post(
            "/v1/jobs",
            content=b'{"name": "jobs.prune",',
            headers={"content-type": "application/json"},
        )
        assert_problem(response, 400, "malformed_json")

    @pytest.mark.parametrize(
        "content_type", ["text/plain", "application/x-www-form-urlencoded", None]
    )
    async def test_body_that_is_not_json_is_415(
        self, client: httpx.AsyncClient, content_type: str | None
    ) -> None:
        headers = {"content-type": content_type} if content_type else {}
        response = await client.post("/v1/jobs", content=b"name=jobs.prune", headers=headers)
        assert_problem(response, 415, "unsupported_media_type")

    async def test_invalid_field_is_422_naming_it(self, client: httpx.AsyncClient) -> None:
        response = await client.post("/v1/jobs", json={"name": 7, "surprise": True})
        body = assert_problem(response, 422, "validation_failed")
        locations = {tuple(e["location"]) for e in body["errors"]}  # type: ignore[attr-defined]
        assert ("body", "name") in locations
        assert ("body", "surprise") in locations

    async def test_invalid_query_parameter_is_422(self, client: httpx.AsyncClient) -> None:
        body = assert_problem(await client.get("/v1/jobs?limit=0"), 422, "validation_failed")
        assert body["errors"][0]["location"] == ["query", "limit"]  # type: ignore[index]

    async def test_invalid_path_parameter_is_422(self, client: httpx.AsyncClient) -> None:
        assert_problem(await client.get("/v1/jobs/not-a-uuid"), 422, "validation_failed")


class TestBodySizeLimit:
    @pytest.fixture
    async def small_client(
        self, settings: Settings, resources: Resources, keys: KeyRing
    ) -> httpx.AsyncClient:
        limited = settings.model_copy(update={"max_body_bytes": 1024})
        return httpx.AsyncClient(
            transport=httpx.ASGITransport(app=create_app(limited, resources)),
            base_url="http://nscl.test",
            headers={"Authorization": f"Bearer {mint_token(keys, 'test-all')}"},
        )

    async def test_declared_oversized_body_is_413(self, small_client: httpx.AsyncClient) -> None:
        big = {"name": "jobs.prune", "args": {"pad": "x" * 2000}}
        assert_problem(await small_client.post("/v1/jobs", json=big), 413, "payload_too_large")

    async def test_streamed_oversized_body_is_413(self, small_client: httpx.AsyncClient) -> None:
        async def chunks():  # type: ignore[no-untyped-def]
            for _ in range(4):
                yield b"x" * 512

        response = await small_client.post(
            "/v1/jobs", content=chunks(), headers={"content-type": "application/json"}
        )
        assert_problem(response, 413, "payload_too_large")

    async def test_body_under_the_limit_passes(self, small_client: httpx.AsyncClient) -> None:
        response = await small_client.post("/v1/jobs", json={"name": "jobs.prune"})
        assert response.status_code == 202


class TestUnstorableText:
    async def test_nul_in_a_query_parameter_is_422(self, client: httpx.AsyncClient) -> None:
        body = assert_problem(
            await client.get("/v1/org-units", params={"q": "ch\x00o"}), 422, "validation_failed"
        )
        assert body["errors"][0]["location"] == ["query", "q"]  # type: ignore[index]

    async def test_unpaired_surrogate_in_a_body_is_422(self, client: httpx.AsyncClient) -> None:
        response = await client.post(
            "/v1/jobs",
            content=b'{"name": "jobs.prune\\udad5"}',
            headers={"content-type": "application/json"},
        )
        body = assert_problem(response, 422, "validation_failed")
        assert body["errors"][0]["location"] == ["body", "name"]  # type: ignore[index]


class TestLostRaces:
    async def test_unique_violation_is_409_not_500(self, db_connection: AsyncConnection) -> None:
        duplicate = text(
            "INSERT INTO org_unit (id, key, kind, name_vi, name_en, valid_from, search_text) "
            "SELECT gen_random_uuid(), key, kind, name_vi, name_en, valid_from, '' "
            "FROM org_unit WHERE key = 'bk-doh'"
        )
        with pytest.raises(IntegrityError) as raised:
            async with db_connection.begin_nested():
                await db_connection.execute(duplicate)
        request = Request({"type": "http", "path": "/v1/org-units", "headers": []})
        response = await _on_integrity_error(request, raised.value)
        assert response.status_code == 409
        body = json.loads(bytes(response.body))
        assert body["code"] == "conflict"
        assert "at the same time" in body["detail"]
