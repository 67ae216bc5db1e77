"""Which errors are outages: the database or Redis unreachable answers 503 with
Retry-After and a code naming the dependency; anything else stays a 500."""

from __future__ import annotations

import errno

import httpx
import pytest
import redis.exceptions
from fastapi import FastAPI
from sqlalchemy import exc as sa_exc

from nscl_api.errors import install_error_handlers, outage_of
from tests.api.test_problems import assert_problem


def _refused() -> OSError:
    return ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused")


def _invalidated() -> sa_exc.DBAPIError:
    return sa_exc.DBAPIError("SELECT 1", None, Exception("gone"), connection_invalidated=True)


class TestOutageOf:
    @pytest.mark.parametrize(
        ("error", "dependency"),
        [
            (_refused(), "database"),
            (OSError("Multiple exceptions: [Errno 111] Connect call failed"), "database"),
            (TimeoutError(), "database"),
            (_invalidated(), "database"),
            (sa_exc.OperationalError("SELECT 1", None, _refused()), "database"),
            (sa_exc.TimeoutError("QueuePool limit reached"), "database"),
            (redis.exceptions.ConnectionError("Error 111 connecting"), "queue"),
            (redis.exceptions.TimeoutError("Timeout reading"), "queue"),
            (FileNotFoundError(errno.ENOENT, "No such file"), None),
            (ValueError("a bug"), None),
            (sa_exc.DBAPIError("SELECT 1", None, Exception("syntax")), None),
        ],
    )
    def test_names_the_unreachable_dependency(
        self, error: BaseException, dependency: str | None
    ) -> None:
        assert outage_of(error) == dependency

    def test_looks_through_the_cause(self) -> None:
        wrapped = RuntimeError("while loading")
        wrapped.__cause__ = _refused()
        assert outage_of(wrapped) == "database"


def _app(error: Exception) -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/boom")
    async def boom() -> None:
        raise error

    return app


class TestAnswers:
    @pytest.mark.parametrize(
        ("error", "code"),
        [
            (_refused(), "database_unavailable"),
            (sa_exc.OperationalError("SELECT 1", None, _refused()), "database_unavailable"),
            (_invalidated(), "database_unavailable"),
            (redis.exceptions.ConnectionError("Error 111 connecting"), "queue_unavailable"),
        ],
    )
    async def test_an_outage_answers_503_with_retry_after(
        self, error: Exception, code: str
    ) -> None:
        transport = httpx.ASGITransport(app=_app(error))
        async with httpx.AsyncClient(transport=transport, base_url="http://nscl.test") as http:
            answer = await http.get("/boom")
        assert_problem(answer, 503, code)
        assert int(answer.headers["retry-after"]) > 0

    async def test_any_other_error_is_still_a_500(self) -> None:
        transport = httpx.ASGITransport(app=_app(ValueError("a bug")), raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://nscl.test") as http:
            answer = await http.get("/boom")
        assert_problem(answer, 500, "internal_error")
        assert "retry-after" not in answer.headers
