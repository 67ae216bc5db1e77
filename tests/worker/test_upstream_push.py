"""The upstream push against a stand-in national instance on loopback: what it sends, how
it keeps its token, what it retries and what fails the job at once."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from sqlalchemy import text

from nscl_api.resources import Resources
from nscl_domain.jobs import PermanentJobError
from nscl_domain.jobs.registry import JobContext
from nscl_domain.rollups import service as rollups
from nscl_domain.rollups import upstream
from tests.e2e.test_rollups import BK, accept, refresh

YEAR = 2023


@dataclass
class National:
    """Answers the token endpoint and the intake as told, and keeps what it was sent."""

    intake_status: int = 201
    intake_body: dict[str, Any] = field(default_factory=lambda: {"id": str(uuid.uuid4())})
    token_status: int = 200
    tokens_issued: int = 0
    received: list[tuple[str, dict[str, str], Any]] = field(default_factory=list)


@pytest.fixture
def national() -> Iterator[tuple[National, str]]:
    state = National()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            headers = {k.lower(): v for k, v in self.headers.items()}
            if self.path == "/v1/oauth/token":
                state.tokens_issued += 1
                status = state.token_status
                answer: Any = {"access_token": f"t{state.tokens_issued}", "expires_in": 900}
                if status != 200:
                    answer = {"code": "invalid_client", "detail": "Unknown client."}
            else:
                state.received.append((self.path, headers, json.loads(body)))
                status, answer = state.intake_status, state.intake_body
            payload = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    thread.join(timeout=5)


async def push(resources: Resources, config: upstream.UpstreamConfig) -> dict[str, Any]:
    async with resources.sessionmaker() as session:
        programme_id = await session.scalar(
            text("SELECT id FROM programme WHERE key = :k"), {"k": BK}
        )
        run_id = await session.scalar(
            text("SELECT run_id FROM rollup_publication WHERE programme_id = :p AND year = :y"),
            {"p": programme_id, "y": YEAR},
        )
        context = JobContext(session=session, job_id=uuid.uuid4(), attempt=1, now=datetime.now(UTC))
        return await upstream.push(
            context, upstream.PushArgs(programme_id=programme_id, year=YEAR, run_id=run_id), config
        )


@pytest.fixture
async def published(resources: Resources) -> str:
    """A published Bắc Kạn run of the year: its id."""
    async with resources.sessionmaker() as session:
        await accept(session, "bk-doh", YEAR, {"enterprises-supported": "4"})
        await accept(session, "bk-na-ri", YEAR, {"enterprises-supported": "3"})
        done = await refresh(session, BK, YEAR)
        await session.commit()
    return str(done["run_id"])


def config_for(url: str) -> upstream.UpstreamConfig:
    return upstream.UpstreamConfig(
        url=url, client_id="bk-upstream", client_secret="s3cret", programme="bk-national-key"
    )


async def test_the_published_run_is_sent_with_a_kept_token(
    resources: Resources, published: str, national: tuple[National, str]
) -> None:
    state, url = national
    config = config_for(url)
    result = await push(resources, config)
    assert (result["pushed"], result["run_id"]) == (True, published)
    [(path, headers, body)] = state.received
    assert path == f"/v1/national-intake/bk-national-key/{YEAR}"
    assert headers["idempotency-key"] == published
    assert headers["authorization"] == "Bearer t1"
    assert (body["run_id"], body["seq"]) == (published, 1)
    totals = {c["indicator"]: c for c in body["cells"] if not c["disaggregation"]}
    assert totals["enterprises-supported"]["value"] == "7"
    assert totals["enterprises-supported"]["value_count"] == 2
    # A second push reuses the token while it is valid.
    await push(resources, config)
    assert state.tokens_issued == 1


async def test_an_outdated_answer_ends_the_push(
    resources: Resources, published: str, national: tuple[National, str]
) -> None:
    state, url = national
    state.intake_status, state.intake_body = 409, {"code": "intake_outdated", "detail": "Later."}
    result = await push(resources, config_for(url))
    assert result["pushed"] is False


@pytest.mark.parametrize("status", [500, 503, 429])
async def test_what_a_retry_may_mend_is_retried(
    resources: Resources, published: str, national: tuple[National, str], status: int
) -> None:
    state, url = national
    state.intake_status, state.intake_body = status, {"code": "unavailable"}
    with pytest.raises(upstream.UpstreamUnavailable):
        await push(resources, config_for(url))


async def test_a_refusal_fails_the_job_with_the_answer(
    resources: Resources, published: str, national: tuple[National, str]
) -> None:
    state, url = national
    state.intake_status, state.intake_body = 403, {"code": "forbidden", "detail": "Not yours."}
    with pytest.raises(PermanentJobError, match=r"403.*Not yours"):
        await push(resources, config_for(url))
    # Wrong credentials are no better the next time either.
    state.token_status = 401
    with pytest.raises(PermanentJobError, match="token endpoint answered 401"):
        await push(resources, config_for(url))


async def test_an_unreachable_national_instance_is_retried(
    resources: Resources, published: str
) -> None:
    with pytest.raises(upstream.UpstreamUnavailable):
        await push(resources, config_for("http://127.0.0.1:9"))


async def test_nothing_is_sent_without_a_national_instance(
    resources: Resources, published: str
) -> None:
    with pytest.raises(PermanentJobError, match="NSCL_UPSTREAM_URL"):
        await push(resources, upstream.UpstreamConfig())


async def _pushes(resources: Resources) -> list[dict[str, Any]]:
    async with resources.sessionmaker() as session:
        rows = await session.execute(
            text("SELECT args FROM job WHERE name = 'rollups.push_upstream' ORDER BY created_at")
        )
        return [row.args for row in rows]


async def test_a_publication_queues_one_push_per_programme_year_when_configured(
    resources: Resources,
) -> None:
    async with resources.sessionmaker() as session:
        await accept(session, "bk-doh", YEAR, {"enterprises-supported": "4"})
        await refresh(session, BK, YEAR)
        await session.commit()
    assert await _pushes(resources) == []  # no upstream: nothing queued

    async with resources.sessionmaker() as session:
        programme_id = await session.scalar(
            text("SELECT id FROM programme WHERE key = :k"), {"k": BK}
        )
        runs = []
        for enterprises in ("5", "6"):
            await accept(session, "bk-doh", YEAR, {"enterprises-supported": enterprises})
            context = JobContext(
                session=session, job_id=uuid.uuid4(), attempt=1, now=datetime.now(UTC)
            )
            done = await upstream_refresh(context, programme_id)
            runs.append(done["run_id"])
        await session.commit()
    # The second publication joined the pending push: one push, which sends whatever run
    # is published when it runs.
    assert [p["run_id"] for p in await _pushes(resources)] == [runs[0]]


async def upstream_refresh(context: JobContext, programme_id: uuid.UUID) -> dict[str, Any]:
    return await rollups.refresh(
        context, rollups.RefreshRollupArgs(programme_id=programme_id, year=YEAR), upstream=True
    )
