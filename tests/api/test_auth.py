"""OAuth2 client credentials, bearer tokens and their refusals."""

from __future__ import annotations

import base64
import json
from datetime import timedelta

import httpx
import jwt
import pytest
from arq.connections import ArqRedis

from nscl_api.auth.tokens import KeyRing
from nscl_api.resources import Resources
from nscl_domain.clock import utcnow
from nscl_domain.identity import SYSTEM, Permission, Role
from nscl_domain.identity import service as identity
from nscl_domain.identity.service import Grant
from nscl_domain.settings import Settings
from tests.api.test_problems import assert_problem
from tests.conftest import mint_token

TOKEN_URL = "/v1/oauth/token"


async def token_request(
    http: httpx.AsyncClient, client_id: str, secret: str, **extra: str
) -> httpx.Response:
    form = {"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret}
    return await http.post(TOKEN_URL, data=form | extra)


@pytest.fixture(autouse=True)
async def _forget_failures(redis: ArqRedis, settings: Settings) -> None:
    await forget_token_limits(redis, settings)


async def forget_token_limits(redis: ArqRedis, settings: Settings) -> None:
    """Start a test with no failures, hold-offs or usual addresses remembered."""
    async for key in redis.scan_iter(match=f"{settings.auth_redis_prefix}:*"):
        await redis.delete(key)


class TestTokenEndpoint:
    async def test_client_credentials_give_a_bearer_token_that_works(
        self, anonymous: httpx.AsyncClient, client_secrets: dict[str, str]
    ) -> None:
        response = await token_request(anonymous, "test-viewer", client_secrets["test-viewer"])
        assert response.status_code == 200, response.text
        assert response.headers["cache-control"] == "no-store"
        body = response.json()
        assert body["token_type"] == "Bearer"
        assert body["expires_in"] == 900
        assert body["scope"] == "catalogue.read rollups.read webhooks.subscribe"
        header = jwt.get_unverified_header(body["access_token"])
        assert header["alg"] == "ES256"
        assert header["kid"]
        authorised = {"Authorization": f"Bearer {body['access_token']}"}
        assert (await anonymous.get("/v1/programmes", headers=authorised)).status_code == 200

    async def test_http_basic_client_authentication(
        self, anonymous: httpx.AsyncClient, client_secrets: dict[str, str]
    ) -> None:
        basic = base64.b64encode(f"test-operator:{client_secrets['test-operator']}".encode())
        response = await anonymous.post(
            TOKEN_URL,
            data={"grant_type": "client_credentials"},
            headers={"Authorization": f"Basic {basic.decode()}"},
        )
        assert response.status_code == 200, response.text
        assert set(response.json()["scope"].split()) == {
            "catalogue.read",
            "rollups.read",
            "jobs.read",
            "jobs.run",
            "webhooks.subscribe",
            "webhooks.manage",
        }

    async def test_asking_for_fewer_scopes_narrows_the_token(
        self, anonymous: httpx.AsyncClient, client_secrets: dict[str, str]
    ) -> None:
        response = await token_request(
            anonymous, "test-operator", client_secrets["test-operator"], scope="jobs.read"
        )
        assert response.json()["scope"] == "jobs.read"
        token = response.json()["access_token"]
        refused = await anonymous.post(
            "/v1/jobs", json={"name": "jobs.prune"}, headers={"Authorization": f"Bearer {token}"}
        )
        assert_problem(refused, 403, "insufficient_scope")

    async def test_scope_the_roles_do_not_allow_is_invalid_scope(
        self, anonymous: httpx.AsyncClient, client_secrets: dict[str, str]
    ) -> None:
        response = await token_request(
            anonymous, "test-viewer", client_secrets["test-viewer"], scope="audit.read"
        )
        body = assert_problem(response, 400, "invalid_scope")
        assert body["error"] == "invalid_scope"

    async def test_wrong_secret_is_invalid_client_and_logged_without_it(
        self,
        anonymous: httpx.AsyncClient,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        response = await token_request(anonymous, "test-viewer", "not-the-secret-123")
        body = assert_problem(response, 401, "invalid_client")
        assert body["error"] == "invalid_client"
        assert "not-the-secret-123" not in caplog.text
        assert "not-the-secret-123" not in response.text

    async def test_unknown_client_is_invalid_client(self, anonymous: httpx.AsyncClient) -> None:
        assert_problem(await token_request(anonymous, "nobody", "x"), 401, "invalid_client")

    @pytest.mark.parametrize(
        ("form", "error"),
        [
            ({}, "invalid_request"),
            ({"grant_type": "client_credentials", "client_id": "test-viewer"}, "invalid_request"),
            (
                {"grant_type": "password", "client_id": "test-viewer", "client_secret": "x"},
                "unsupported_grant_type",
            ),
        ],
    )
    async def test_malformed_requests_are_400(
        self, anonymous: httpx.AsyncClient, form: dict[str, str], error: str
    ) -> None:
        body = assert_problem(await anonymous.post(TOKEN_URL, data=form), 400, error)
        assert body["error"] == error

    async def test_json_body_is_not_a_token_request(self, anonymous: httpx.AsyncClient) -> None:
        response = await anonymous.post(TOKEN_URL, json={"grant_type": "client_credentials"})
        assert_problem(response, 400, "invalid_request")

    async def test_repeated_failures_hold_the_client_off_at_that_address(
        self, anonymous: httpx.AsyncClient, client_secrets: dict[str, str]
    ) -> None:
        for _ in range(5):
            assert (await token_request(anonymous, "test-auditor", "wrong")).status_code == 401
        held = await token_request(anonymous, "test-auditor", client_secrets["test-auditor"])
        assert_problem(held, 429, "too_many_attempts")
        assert int(held.headers["retry-after"]) > 0
        other = await token_request(anonymous, "test-viewer", client_secrets["test-viewer"])
        assert other.status_code == 200


class TestRefusedTokens:
    async def test_no_token_is_401(self, anonymous: httpx.AsyncClient) -> None:
        response = await anonymous.get("/v1/programmes")
        assert_problem(response, 401, "missing_token")
        assert response.headers["www-authenticate"].startswith("Bearer")

    async def test_expired_token(self, anonymous: httpx.AsyncClient, keys: KeyRing) -> None:
        grant = Grant("test-viewer", "bk-doh", frozenset({Role.VIEWER}), frozenset())
        old = keys.issue(grant, now=utcnow() - timedelta(hours=1), ttl_seconds=900)
        response = await anonymous.get(
            "/v1/programmes", headers={"Authorization": f"Bearer {old.access_token}"}
        )
        assert_problem(response, 401, "token_expired")

    async def test_token_signed_by_an_unknown_key(
        self, anonymous: httpx.AsyncClient, keys: KeyRing
    ) -> None:
        stranger = KeyRing([identity._new_key()])
        forged = stranger.issue(
            Grant("test-all", "bk-dost", frozenset(Role), frozenset(Permission)),
            now=utcnow(),
            ttl_seconds=900,
        )
        response = await anonymous.get(
            "/v1/programmes", headers={"Authorization": f"Bearer {forged.access_token}"}
        )
        body = assert_problem(response, 401, "invalid_token")
        assert "unknown key" in str(body["detail"])

    async def test_tampered_token(self, anonymous: httpx.AsyncClient, keys: KeyRing) -> None:
        token = mint_token(keys, "test-viewer")
        header, payload, signature = token.split(".")
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        claims["scope"] = "catalogue.read catalogue.write audit.read"
        forged_payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
        response = await anonymous.get(
            "/v1/audit-events",
            headers={"Authorization": f"Bearer {header}.{forged_payload}.{signature}"},
        )
        assert_problem(response, 401, "invalid_token")

    async def test_garbage_token(self, anonymous: httpx.AsyncClient) -> None:
        response = await anonymous.get(
            "/v1/programmes", headers={"Authorization": "Bearer not.a.jwt"}
        )
        assert_problem(response, 401, "invalid_token")

    async def test_disabled_client(
        self, anonymous: httpx.AsyncClient, keys: KeyRing, resources: Resources
    ) -> None:
        token = mint_token(keys, "test-reporter")
        headers = {"Authorization": f"Bearer {token}"}
        assert (await anonymous.get("/v1/programmes", headers=headers)).status_code == 200
        await identity.disable_client(resources.new_uow(), SYSTEM, "test-reporter")
        assert_problem(await anonymous.get("/v1/programmes", headers=headers), 401, "invalid_token")

    async def test_missing_scope(self, anonymous: httpx.AsyncClient, keys: KeyRing) -> None:
        token = mint_token(keys, "test-viewer")
        response = await anonymous.get(
            "/v1/audit-events", headers={"Authorization": f"Bearer {token}"}
        )
        assert_problem(response, 403, "insufficient_scope")
        assert "insufficient_scope" in response.headers["www-authenticate"]


class TestKeyRotation:
    async def test_an_instance_picks_up_a_key_rotated_in_elsewhere(
        self, anonymous: httpx.AsyncClient, resources: Resources
    ) -> None:
        await identity.rotate_signing_key(resources.new_uow(), SYSTEM)
        elsewhere = KeyRing(await identity.signing_keys(resources.new_uow()))
        token = mint_token(elsewhere, "test-viewer")
        response = await anonymous.get(
            "/v1/programmes", headers={"Authorization": f"Bearer {token}"}
        )
        assert response.status_code == 200, response.text

    async def test_tokens_of_the_old_key_work_until_it_is_retired(
        self, anonymous: httpx.AsyncClient, resources: Resources
    ) -> None:
        old_token = mint_token(resources.keys, "test-viewer")
        new_key = await identity.rotate_signing_key(resources.new_uow(), SYSTEM)
        resources.keys = KeyRing(await identity.signing_keys(resources.new_uow()))
        new_token = mint_token(resources.keys, "test-viewer")
        assert jwt.get_unverified_header(new_token)["kid"] == new_key.kid
        for token in (old_token, new_token):
            response = await anonymous.get(
                "/v1/programmes", headers={"Authorization": f"Bearer {token}"}
            )
            assert response.status_code == 200
        jwks = (await anonymous.get("/.well-known/jwks.json")).json()["keys"]
        assert new_key.kid in {k["kid"] for k in jwks}
        assert len(jwks) == 2

        old_kid = jwt.get_unverified_header(old_token)["kid"]
        await identity.retire_signing_key(resources.new_uow(), SYSTEM, old_kid)
        resources.keys = KeyRing(await identity.signing_keys(resources.new_uow()))
        refused = await anonymous.get(
            "/v1/programmes", headers={"Authorization": f"Bearer {old_token}"}
        )
        assert_problem(refused, 401, "invalid_token")
