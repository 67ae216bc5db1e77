"""Hardened authentication: secret checks, lock-out, key retirement, token lifetime, If-Match."""

from __future__ import annotations

import asyncio
import ipaddress
import threading
import time
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import jwt
import pytest
from arq.connections import ArqRedis
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from nscl_api.auth.guard import HeldOff, TokenGuard, client_address
from nscl_api.auth.tokens import KeyRing
from nscl_api.resources import Resources, open_resources
from nscl_domain import schema
from nscl_domain.clock import utcnow
from nscl_domain.composition.seed import load_seed
from nscl_domain.db import create_engine, create_sessionmaker
from nscl_domain.errors import Conflict
from nscl_domain.identity import SYSTEM, Permission, Role
from nscl_domain.identity import service as identity
from nscl_domain.identity.service import Grant, SecretChecker, _argon2_matches
from nscl_domain.settings import Settings
from nscl_domain.uow import UnitOfWork
from tests.api.test_auth import forget_token_limits
from tests.api.test_problems import assert_problem
from tests.api.test_reports import Desk, courses
from tests.conftest import mint_token

TOKEN_URL = "/v1/oauth/token"
USUAL, ELSEWHERE, ATTACKER = "10.0.0.1", "10.0.0.2", "10.6.6.6"


def form(client_id: str, secret: str) -> dict[str, str]:
    return {"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret}


@pytest.fixture
async def limits(
    committed_resources: Resources, settings: Settings, redis: ArqRedis
) -> AsyncIterator[Resources]:
    """Resources for concurrent token requests (each its own session; token requests write
    nothing), starting and ending with no token-request limits remembered."""
    await forget_token_limits(redis, settings)
    yield committed_resources
    await forget_token_limits(redis, settings)


@pytest.fixture
async def from_address(
    shared_app: FastAPI, limits: Resources
) -> AsyncIterator[dict[str, httpx.AsyncClient]]:
    """HTTP clients of the app, one per caller address, made on demand."""
    shared_app.state.resources = limits
    opened: dict[str, httpx.AsyncClient] = {}

    class Clients(dict[str, httpx.AsyncClient]):
        def __missing__(self, address: str) -> httpx.AsyncClient:
            transport = httpx.ASGITransport(app=shared_app, client=(address, 40_000))
            http = httpx.AsyncClient(transport=transport, base_url="http://nscl.test")
            opened[address] = self[address] = http
            return http

    yield Clients()
    for http in opened.values():
        await http.aclose()


def tune(resources: Resources, **changes: object) -> None:
    resources.settings = resources.settings.model_copy(update=changes)


class TestSecretChecksLeaveTheLoopFree:
    async def test_a_flood_of_unknown_client_ids_never_stalls_the_event_loop(
        self, limits: Resources, from_address: dict[str, httpx.AsyncClient]
    ) -> None:
        ticks = 0
        starved = checked = 0

        def watched(stored_hash: str, secret: str) -> bool:
            # Wait for the probe on the event loop to move: if this check ran on the loop,
            # the probe could not, and the check would be counted as starving it.
            nonlocal starved, checked
            start, deadline = ticks, time.monotonic() + 5
            while ticks == start and time.monotonic() < deadline:
                time.sleep(0.001)
            starved += ticks == start
            checked += 1
            return _argon2_matches(stored_hash, secret)

        limits.secrets = SecretChecker(concurrency=2, wait_seconds=60, matches=watched)
        stop = asyncio.Event()

        async def probe() -> None:
            nonlocal ticks
            while not stop.is_set():
                ticks += 1
                await asyncio.sleep(0.001)

        http = from_address[ATTACKER]
        probing = asyncio.create_task(probe())
        responses = await asyncio.gather(
            *(
                http.post(TOKEN_URL, data=form(f"nobody-{uuid.uuid4().hex}", "guess"))
                for _ in range(60)
            )
        )
        stop.set()
        await probing

        statuses = [r.status_code for r in responses]
        assert starved == 0
        limit = limits.settings.auth_address_failures_limit
        # Unknown ids are checked like known ones (no timing oracle), up to the address's
        # limit; the rest are held off without a check.
        assert checked == statuses.count(401) == limit
        assert statuses.count(429) == 60 - limit
        held = next(r for r in responses if r.status_code == 429)
        assert_problem(held, 429, "too_many_attempts")
        assert int(held.headers["retry-after"]) > 0

    async def test_when_every_check_is_busy_a_stranger_gets_503_and_a_usual_client_gets_in(
        self,
        limits: Resources,
        from_address: dict[str, httpx.AsyncClient],
        client_secrets: dict[str, str],
    ) -> None:
        release = threading.Event()

        def slow_for_strangers(stored_hash: str, secret: str) -> bool:
            if secret == "stranger":
                release.wait(timeout=30)
            return _argon2_matches(stored_hash, secret)

        limits.secrets = SecretChecker(concurrency=1, wait_seconds=0.2, matches=slow_for_strangers)
        right = form("test-viewer", client_secrets["test-viewer"])
        assert (await from_address[USUAL].post(TOKEN_URL, data=right)).status_code == 200

        blocking = asyncio.create_task(
            from_address[ATTACKER].post(TOKEN_URL, data=form("nobody-1", "stranger"))
        )
        while limits.secrets._lane(False).borrowed_tokens == 0:  # noqa: ASYNC110 - no event to wait on
            await asyncio.sleep(0.01)
        busy = await from_address[ELSEWHERE].post(TOKEN_URL, data=form("nobody-2", "x"))
        assert_problem(busy, 503, "temporarily_unavailable")
        assert int(busy.headers["retry-after"]) >= 1
        usual = await from_address[USUAL].post(TOKEN_URL, data=right)
        assert usual.status_code == 200, usual.text
        release.set()
        assert (await blocking).status_code == 401


class TestLockOut:
    async def test_a_strangers_failures_never_lock_the_real_client_out(
        self,
        limits: Resources,
        from_address: dict[str, httpx.AsyncClient],
        client_secrets: dict[str, str],
    ) -> None:
        right = form("test-auditor", client_secrets["test-auditor"])
        assert (await from_address[USUAL].post(TOKEN_URL, data=right)).status_code == 200
        for _ in range(limits.settings.auth_failures_limit):
            wrong = await from_address[ATTACKER].post(TOKEN_URL, data=form("test-auditor", "no"))
            assert wrong.status_code == 401
        held = await from_address[ATTACKER].post(TOKEN_URL, data=right)
        assert_problem(held, 429, "too_many_attempts")
        assert int(held.headers["retry-after"]) >= limits.settings.auth_backoff_base_seconds - 1

        from_usual = await from_address[USUAL].post(TOKEN_URL, data=right)
        assert from_usual.status_code == 200, from_usual.text
        from_a_new_address = await from_address[ELSEWHERE].post(TOKEN_URL, data=right)
        assert from_a_new_address.status_code == 200, from_a_new_address.text

    async def test_each_further_failure_doubles_the_hold_off(
        self, limits: Resources, redis: ArqRedis
    ) -> None:
        tune(limits, auth_backoff_base_seconds=10, auth_backoff_max_seconds=25)
        guard = TokenGuard(redis, limits.settings)
        holds = []
        for _ in range(limits.settings.auth_failures_limit + 2):
            attempt = await guard.admit("test-auditor", ATTACKER)
            assert not isinstance(attempt, HeldOff)
            await guard.failed(attempt)
            held = await guard.admit("test-auditor", ATTACKER)
            if isinstance(held, HeldOff):
                holds.append(held.retry_after)
                # Let the test try again at once instead of waiting the hold-off out.
                await redis.delete(f"{guard._pair('test-auditor', ATTACKER)}:lock")
        # Doubled, then capped (a second may pass between setting and reading a hold-off).
        assert len(holds) == 3
        assert [h in (want - 1, want) for h, want in zip(holds, (10, 20, 25), strict=True)] == [
            True
        ] * 3

    async def test_one_address_trying_many_client_ids_is_held_off(
        self,
        limits: Resources,
        from_address: dict[str, httpx.AsyncClient],
        client_secrets: dict[str, str],
    ) -> None:
        tune(limits, auth_address_failures_limit=3)
        right = form("test-viewer", client_secrets["test-viewer"])
        assert (await from_address[ATTACKER].post(TOKEN_URL, data=right)).status_code == 200
        for n in range(3):
            response = await from_address[ATTACKER].post(TOKEN_URL, data=form(f"x-{n}", "y"))
            assert response.status_code == 401
        held = await from_address[ATTACKER].post(TOKEN_URL, data=form("test-operator", "y"))
        assert_problem(held, 429, "too_many_attempts")
        assert "address" in held.json()["detail"]
        # A client that succeeded from this address before is not held off by its neighbours.
        assert (await from_address[ATTACKER].post(TOKEN_URL, data=right)).status_code == 200
        other = await from_address[ELSEWHERE].post(TOKEN_URL, data=form("x-9", "y"))
        assert other.status_code == 401

    async def test_the_token_endpoint_has_a_global_rate_limit(
        self,
        limits: Resources,
        from_address: dict[str, httpx.AsyncClient],
        client_secrets: dict[str, str],
    ) -> None:
        right = form("test-viewer", client_secrets["test-viewer"])
        assert (await from_address[USUAL].post(TOKEN_URL, data=right)).status_code == 200
        tune(limits, token_rate_limit=2, token_rate_window_seconds=3600)
        for n in range(2):
            passed = await from_address[f"10.9.0.{n}"].post(TOKEN_URL, data=form("x-1", "y"))
            assert passed.status_code == 401
        limited = await from_address["10.9.0.9"].post(TOKEN_URL, data=right)
        assert_problem(limited, 429, "rate_limited")
        assert int(limited.headers["retry-after"]) > 0
        assert (await from_address[USUAL].post(TOKEN_URL, data=right)).status_code == 200

    async def test_x_forwarded_for_counts_only_behind_a_trusted_proxy(
        self, limits: Resources, from_address: dict[str, httpx.AsyncClient]
    ) -> None:
        tune(limits, auth_address_failures_limit=1)
        spoofed = {"X-Forwarded-For": "192.0.2.1"}
        proxy = from_address["10.0.0.50"]
        first = await proxy.post(TOKEN_URL, data=form("x-1", "y"), headers=spoofed)
        assert first.status_code == 401
        # Untrusted: the header is ignored and the failure counted against the socket peer.
        second = await proxy.post(
            TOKEN_URL, data=form("x-1", "y"), headers={"X-Forwarded-For": "192.0.2.2"}
        )
        assert_problem(second, 429, "too_many_attempts")

        tune(limits, trusted_proxies=[ipaddress.ip_network("10.0.0.0/24")])
        behind = await proxy.post(
            TOKEN_URL, data=form("x-1", "y"), headers={"X-Forwarded-For": "192.0.2.3"}
        )
        assert behind.status_code == 401

    def test_client_address_reads_forwarded_hops_from_the_right(self) -> None:
        trusted = [ipaddress.ip_network("10.0.0.0/8")]
        assert client_address("10.0.0.5", "192.0.2.9, 10.1.1.1", trusted) == "192.0.2.9"
        assert client_address("10.0.0.5", "6.6.6.6, 192.0.2.9", trusted) == "192.0.2.9"
        assert client_address("192.0.2.7", "6.6.6.6", trusted) == "192.0.2.7"
        assert client_address("10.0.0.5", "not-an-ip", trusted) == "10.0.0.5"
        assert client_address("10.0.0.5", "6.6.6.6", []) == "10.0.0.5"


class TestKeyRetirement:
    async def test_a_retired_key_is_refused_by_another_process_within_seconds(
        self, shared_app: FastAPI, settings: Settings, scratch_database: str
    ) -> None:
        url = scratch_database
        await asyncio.to_thread(schema.upgrade, url)
        admin_engine = create_engine(url, pooled=False)
        admin = create_sessionmaker(admin_engine)
        async with admin() as session:
            await load_seed(session)
            await session.commit()
        await identity.ensure_signing_key(UnitOfWork(admin))
        _, secret = await identity.create_client(
            UnitOfWork(admin),
            SYSTEM,
            client_id="keys-test",
            name="k",
            unit="bk-dost",
            roles=["viewer"],
        )
        scratch_settings = settings.model_copy(
            update={"database_url": url, "auth_redis_prefix": f"{settings.auth_redis_prefix}:k"}
        )
        try:
            async with open_resources(scratch_settings) as second:
                shared_app.state.resources = second
                transport = httpx.ASGITransport(app=shared_app, client=(USUAL, 40_000))
                async with httpx.AsyncClient(transport=transport, base_url="http://n.test") as http:
                    await self._check_retirement(http, admin, secret)
        finally:
            await admin_engine.dispose()

    async def _check_retirement(
        self, http: httpx.AsyncClient, admin: async_sessionmaker[AsyncSession], secret: str
    ) -> None:
        loop = asyncio.get_running_loop()

        async def token() -> str:
            response = await http.post(TOKEN_URL, data=form("keys-test", secret))
            assert response.status_code == 200, response.text
            return str(response.json()["access_token"])

        async def programmes(bearer: str) -> httpx.Response:
            return await http.get("/v1/programmes", headers={"Authorization": f"Bearer {bearer}"})

        # Rotated in elsewhere: this process starts signing with the new key by itself.
        rotated = await identity.rotate_signing_key(UnitOfWork(admin), SYSTEM)
        deadline = loop.time() + 5
        while jwt.get_unverified_header(signed := await token())["kid"] != rotated.kid:
            assert loop.time() < deadline, "the rotated key was not picked up"
            await asyncio.sleep(0.1)
        assert (await programmes(signed)).status_code == 200

        # Retired elsewhere; this process sees no failing token that would make it reload.
        await identity.retire_signing_key(UnitOfWork(admin), SYSTEM, rotated.kid)
        deadline = loop.time() + 5
        while (refused := await programmes(signed)).status_code == 200:
            assert loop.time() < deadline, "the retired key was still accepted after 5 s"
            await asyncio.sleep(0.1)
        assert_problem(refused, 401, "invalid_token")

        forged = KeyRing([rotated]).issue(
            Grant("keys-test", "bk-dost", frozenset({Role.VIEWER}), frozenset(Permission)),
            now=utcnow(),
            ttl_seconds=900,
        )
        assert_problem(await programmes(forged.access_token), 401, "invalid_token")
        fresh = await token()
        assert jwt.get_unverified_header(fresh)["kid"] != rotated.kid
        assert (await programmes(fresh)).status_code == 200

    async def test_the_last_key_in_force_cannot_be_retired(self, resources: Resources) -> None:
        keys = await identity.signing_keys(resources.new_uow())
        for key in keys[1:]:
            await identity.retire_signing_key(resources.new_uow(), SYSTEM, key.kid)
        with pytest.raises(Conflict) as refused:
            await identity.retire_signing_key(resources.new_uow(), SYSTEM, keys[0].kid)
        assert refused.value.code == "last_signing_key"


class TestTokenLifetime:
    async def test_a_token_living_ten_years_is_refused(
        self, anonymous: httpx.AsyncClient, keys: KeyRing
    ) -> None:
        grant = Grant("test-all", "bk-dost", frozenset(Role), frozenset(Permission))
        forged = keys.issue(grant, now=utcnow(), ttl_seconds=10 * 366 * 86_400)
        response = await anonymous.get(
            "/v1/programmes", headers={"Authorization": f"Bearer {forged.access_token}"}
        )
        body = assert_problem(response, 401, "invalid_token")
        assert "longer" in str(body["detail"])

    async def test_a_token_issued_in_the_future_is_refused(
        self, anonymous: httpx.AsyncClient, keys: KeyRing
    ) -> None:
        grant = Grant("test-all", "bk-dost", frozenset(Role), frozenset(Permission))
        early = keys.issue(grant, now=utcnow() + timedelta(hours=1), ttl_seconds=900)
        response = await anonymous.get(
            "/v1/programmes", headers={"Authorization": f"Bearer {early.access_token}"}
        )
        assert_problem(response, 401, "invalid_token")

    async def test_a_token_of_the_issued_lifetime_is_accepted(
        self, anonymous: httpx.AsyncClient, keys: KeyRing
    ) -> None:
        response = await anonymous.get(
            "/v1/programmes", headers={"Authorization": f"Bearer {mint_token(keys, 'test-all')}"}
        )
        assert response.status_code == 200


class TestStrongIfMatch:
    @pytest.mark.parametrize("if_match", ['W/"1"', "*"])
    async def test_a_weak_or_wildcard_if_match_is_412(
        self, anonymous: httpx.AsyncClient, keys: KeyRing, if_match: str
    ) -> None:
        desk = Desk(anonymous, keys)
        created = await desk.draft(2024)
        assert created.headers["etag"] == '"1"'
        response = await desk.http.put(
            f"/v1/reports/{created.json()['id']}/draft",
            json=courses("1"),
            headers={**desk.reporter, "If-Match": if_match},
        )
        assert_problem(response, 412, "stale_revision")
        strong = await desk.http.put(
            f"/v1/reports/{created.json()['id']}/draft",
            json=courses("1"),
            headers={**desk.reporter, "If-Match": '"1"'},
        )
        assert strong.status_code == 200, strong.text
