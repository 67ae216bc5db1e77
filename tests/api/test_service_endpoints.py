"""Liveness, readiness, metrics and request ids."""

from __future__ import annotations

import uuid

import httpx
import pytest
from arq.connections import ArqRedis
from asgi_correlation_id import correlation_id

from nscl_api.main import add_request_id, create_app
from nscl_api.resources import Resources
from nscl_domain.db import create_engine
from nscl_domain.settings import Settings


class TestHealth:
    async def test_alive(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/health")
        assert response.status_code == 200
        assert response.json() == {"status": "alive"}


class TestReadiness:
    async def test_ready_when_database_schema_and_redis_answer(
        self, client: httpx.AsyncClient
    ) -> None:
        response = await client.get("/ready")
        assert response.status_code == 200
        assert response.json()["checks"] == {"database": "ok", "schema": "ok", "redis": "ok"}

    async def test_not_ready_names_unreachable_redis(
        self, settings: Settings, resources: Resources
    ) -> None:
        dead_redis = ArqRedis(host="127.0.0.1", port=1, socket_connect_timeout=1)
        broken = Resources(
            settings=settings,
            database_url=resources.database_url,
            engine=resources.engine,
            sessionmaker=resources.sessionmaker,
            redis=dead_redis,
            keys=resources.keys,
        )
        response = await _get(create_app(settings, broken), "/ready")
        assert response.status_code == 503
        assert response.headers["content-type"] == "application/problem+json"
        body = response.json()
        assert body["checks"] == {"database": "ok", "schema": "ok", "redis": "failed"}
        assert "redis unreachable" in body["detail"]

    async def test_not_ready_names_schema_behind_the_code(
        self, settings: Settings, resources: Resources, scratch_database: str
    ) -> None:
        empty = create_engine(scratch_database, pooled=False)
        behind = Resources(
            settings=settings,
            database_url=scratch_database,
            engine=empty,
            sessionmaker=resources.sessionmaker,
            redis=resources.redis,
            keys=resources.keys,
        )
        try:
            response = await _get(create_app(settings, behind), "/ready")
        finally:
            await empty.dispose()
        assert response.status_code == 503
        body = response.json()
        assert body["code"] == "not_ready"
        assert body["checks"]["schema"] == "failed"
        assert "schema is at nothing" in body["detail"]


class TestMetrics:
    async def test_prometheus_text_counts_requests(self, client: httpx.AsyncClient) -> None:
        await client.get("/health")
        response = await client.get("/metrics")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/plain")
        assert 'nscl_http_requests_total{handler="/health"' in response.text


class TestRequestId:
    async def test_generated_when_absent(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/health")
        assert len(response.headers["x-request-id"]) >= 32

    @pytest.mark.parametrize("sent", ["", "not-a-uuid", "0" * 33])
    async def test_replaced_by_a_uuid4_when_not_one(
        self, client: httpx.AsyncClient, sent: str
    ) -> None:
        answered = (await client.get("/health", headers={"X-Request-ID": sent})).headers
        assert answered["x-request-id"] != sent
        assert uuid.UUID(answered["x-request-id"]).version == 4

    async def test_echoed_and_put_in_problems(self, client: httpx.AsyncClient) -> None:
        request_id = "8b0e6d0a5e3f4c4e9f7e2b8d1c0a9f11"
        response = await client.get("/nowhere", headers={"X-Request-ID": request_id})
        assert response.headers["x-request-id"] == request_id
        assert response.json()["request_id"] == request_id


async def _get(app: object, path: str) -> httpx.Response:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://nscl.test",  # type: ignore[arg-type]
    ) as http:
        return await http.get(path)


class TestLogs:
    def test_log_lines_carry_the_request_id(self) -> None:
        token = correlation_id.set("abc123")
        try:
            assert add_request_id(None, "info", {"event": "x"})["request_id"] == "abc123"
        finally:
            correlation_id.reset(token)
        assert "request_id" not in add_request_id(None, "info", {"event": "x"})
