"""One structured access event per request, in place of uvicorn's preformatted line."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import httpx
import pytest
import structlog

from nscl_api.auth.tokens import KeyRing
from nscl_domain.logs import configure_logging
from tests.conftest import mint_token


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    """The process's logs as JSON lines, as `nscl serve` writes them; restored afterwards."""
    root = logging.getLogger()
    handlers, level, config = root.handlers[:], root.level, structlog.get_config()
    stream = io.StringIO()
    configure_logging("INFO", json=True, stream=stream)
    yield stream
    structlog.configure(**config)
    root.handlers[:] = handlers
    root.setLevel(level)


def access_events(stream: io.StringIO) -> list[dict[str, object]]:
    events = [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]
    return [e for e in events if e.get("event") == "http.access"]


async def test_the_access_event_names_route_template_status_duration_client_and_bytes(
    anonymous: httpx.AsyncClient, keys: KeyRing, log_lines: io.StringIO
) -> None:
    token = mint_token(keys, "test-viewer")
    answer = await anonymous.get(
        "/v1/org-units/bk-doh",
        headers={"Authorization": f"Bearer {token}", "X-Request-ID": "a" * 32},
    )
    assert answer.status_code == 200
    (event,) = access_events(log_lines)
    assert event["method"] == "GET"
    assert event["route"] == "/v1/org-units/{unit}"
    assert event["status"] == 200
    duration = event["duration_ms"]
    assert isinstance(duration, float)
    assert duration > 0
    assert event["client_id"] == "test-viewer"
    assert event["request_id"] == "a" * 32
    assert event["bytes"] == len(answer.content)
    assert event["level"] == "info"


async def test_refusals_of_the_outer_middleware_are_logged_too(
    anonymous: httpx.AsyncClient, log_lines: io.StringIO
) -> None:
    answer = await anonymous.get("/nowhere/at/all")
    assert answer.status_code == 404
    (event,) = access_events(log_lines)
    assert (event["route"], event["status"], event["client_id"]) == ("none", 404, None)
    assert event["request_id"] == answer.headers["x-request-id"]


def test_uvicorn_writes_no_line_of_its_own_beside_the_event(log_lines: io.StringIO) -> None:
    access = logging.getLogger("uvicorn.access")
    # As uvicorn's default configuration leaves it, before the application is imported.
    access.addHandler(logging.StreamHandler(io.StringIO()))
    configure_logging("INFO", json=True, stream=log_lines)
    # uvicorn formats its line only for a logger with somewhere to write it.
    assert not access.hasHandlers()
