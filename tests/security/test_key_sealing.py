"""Token-signing keys are sealed at rest with a passphrase the database never sees."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import text

from nscl_api.auth.tokens import KeyRing
from nscl_domain import schema
from nscl_domain.db import create_engine, create_sessionmaker
from nscl_domain.errors import Unavailable
from nscl_domain.events import service as webhooks
from nscl_domain.events import signing
from nscl_domain.identity import SYSTEM, Permission, Role
from nscl_domain.identity import service as identity
from nscl_domain.identity.sealing import KeySealer, is_sealed
from nscl_domain.identity.service import Grant
from nscl_domain.settings import Settings
from nscl_domain.uow import UnitOfWork
from tests.conftest import Services, drop_database, recreate_database

GRANT = Grant(
    client_id="tn-doit-reporter",
    unit_key="tn-doit",
    roles=frozenset({Role.REPORTER}),
    scopes=frozenset({Permission.REPORTS_READ}),
)


@pytest.fixture(scope="module")
def keys_database(services: Services) -> Iterator[str]:
    """A database of this module's own: resealing touches every key in force."""
    name = f"nscl_keys_{os.getpid()}"
    url = recreate_database(services, name)
    schema.upgrade(url)
    yield url
    drop_database(services, name)


async def _stored_pems(url: str) -> dict[str, str]:
    engine = create_engine(url, pooled=False)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(
                text("SELECT kid, private_pem FROM signing_key WHERE retired_at IS NULL")
            )
            return {str(row.kid): str(row.private_pem) for row in rows}
    finally:
        await engine.dispose()


def _uow(url: str) -> UnitOfWork:
    return UnitOfWork(create_sessionmaker(create_engine(url, pooled=False)))


def _signs_and_verifies(ring: KeyRing) -> None:
    issued = ring.issue(GRANT, now=datetime.now(UTC), ttl_seconds=900)
    assert ring.verify(issued.access_token).client_id == GRANT.client_id


async def test_a_key_made_with_a_passphrase_is_stored_sealed(keys_database: str) -> None:
    sealer = KeySealer(passphrase="first passphrase")
    key = await identity.rotate_signing_key(_uow(keys_database), SYSTEM, sealer)

    stored = (await _stored_pems(keys_database))[key.kid]
    assert is_sealed(stored)
    _signs_and_verifies(KeyRing([key], sealer=sealer))
    with pytest.raises(Unavailable) as refused:
        KeyRing([key])  # a process without the passphrase cannot sign with it
    assert refused.value.code == "signing_key_sealed"
    with pytest.raises(Unavailable):
        KeyRing([key], sealer=KeySealer(passphrase="a wrong passphrase"))


async def test_reseal_moves_every_key_to_a_new_passphrase(keys_database: str) -> None:
    await identity.rotate_signing_key(_uow(keys_database), SYSTEM, KeySealer())  # unsealed
    await identity.rotate_signing_key(
        _uow(keys_database), SYSTEM, KeySealer(passphrase="first passphrase")
    )
    before = await _stored_pems(keys_database)
    assert any(not is_sealed(pem) for pem in before.values())

    moving = KeySealer(passphrase="second passphrase", previous=("first passphrase",))
    changed = await identity.reseal_signing_keys(_uow(keys_database), SYSTEM, moving)

    after = await _stored_pems(keys_database)
    assert set(changed) == set(before)
    assert all(is_sealed(pem) for pem in after.values())
    keys = await identity.signing_keys(_uow(keys_database))
    _signs_and_verifies(KeyRing(keys, sealer=KeySealer(passphrase="second passphrase")))
    with pytest.raises(Unavailable):
        KeyRing(keys, sealer=KeySealer(passphrase="first passphrase"))
    # Resealing again under the same passphrase changes nothing.
    assert await identity.reseal_signing_keys(_uow(keys_database), SYSTEM, moving) == []


async def test_reseal_moves_every_webhook_secret_to_a_new_passphrase(keys_database: str) -> None:
    first = KeySealer(passphrase="first passphrase")
    plain, previous = signing.new_secret(), signing.new_secret()
    engine = create_engine(keys_database, pooled=False)
    try:
        async with engine.begin() as conn:
            sub_id = await conn.scalar(
                text(
                    "INSERT INTO webhook_subscription (id, owner_client_id, url, event_types, "
                    "secret, previous_secret, created_by) VALUES (gen_random_uuid(), 'op', "
                    "'https://example.org/hook', ARRAY['job.failed'], :secret, :previous, 'op') "
                    "RETURNING id"
                ),
                # One sealed under the old passphrase, one stored before any was set.
                {"secret": first.seal_secret(plain), "previous": previous},
            )
        moving = KeySealer(passphrase="second passphrase", previous=("first passphrase",))
        assert await webhooks.reseal_secrets(_uow(keys_database), SYSTEM, moving) == [str(sub_id)]
        async with engine.connect() as conn:
            row = (
                await conn.execute(
                    text("SELECT secret, previous_secret FROM webhook_subscription WHERE id = :i"),
                    {"i": sub_id},
                )
            ).one()
    finally:
        await engine.dispose()
    second = KeySealer(passphrase="second passphrase")
    assert second.open_secret("it", row.secret) == plain
    assert second.open_secret("it", row.previous_secret) == previous
    with pytest.raises(Unavailable):
        first.open_secret("it", row.secret)
    assert await webhooks.reseal_secrets(_uow(keys_database), SYSTEM, moving) == []


def test_production_refuses_the_embedded_defaults_and_unsealed_keys() -> None:
    production = Settings(environment="production")
    with pytest.raises(RuntimeError) as refused:
        production.refuse_unsafe_production(signs_tokens=True)
    for variable in ("NSCL_DATABASE_URL", "NSCL_REDIS_URL", "NSCL_SIGNING_KEY_PASSPHRASE"):
        assert variable in str(refused.value)
    configured = Settings(
        environment="production",
        database_url="postgresql+asyncpg://nscl_app@db:5432/nscl",  # type: ignore[arg-type]
        redis_url="redis://redis:6379/0",  # type: ignore[arg-type]
    )
    configured.refuse_unsafe_production(signs_tokens=False)  # the worker signs no token
    with pytest.raises(RuntimeError, match="NSCL_SIGNING_KEY_PASSPHRASE"):
        configured.refuse_unsafe_production(signs_tokens=True)
    Settings(environment="development").refuse_unsafe_production(signs_tokens=True)


def test_nscl_serve_in_production_without_services_exits_at_once() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NSCL_")}
    env["NSCL_ENVIRONMENT"] = "production"
    result = subprocess.run(
        [str(Path(sys.executable).parent / "nscl"), "serve", "--port", "1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "refuses the embedded database" in result.stderr


def test_the_service_signs_with_a_sealed_key_only_given_its_passphrase() -> None:
    # The sealer the service builds from its settings opens what it sealed.
    settings = Settings(
        environment="test",
        signing_key_passphrase="current",  # type: ignore[arg-type]  # validated from str
        signing_key_previous_passphrases=["older"],  # type: ignore[list-item]
    )
    sealer = KeySealer.from_settings(settings)
    assert (sealer.passphrase, tuple(sealer.previous)) == ("current", ("older",))
    older = identity._new_key(KeySealer(passphrase="older"))
    _signs_and_verifies(KeyRing([older], sealer=sealer))


def test_settings_read_secrets_from_mounted_files(tmp_path: Path) -> None:
    # What a Kubernetes Secret mounted as a volume looks like: one file per key.
    (tmp_path / "nscl_signing_key_passphrase").write_text("from a mounted secret")
    (tmp_path / "nscl_redis_url").write_text("redis://redis:6379/3")
    script = (
        "from nscl_domain.settings import Settings; s = Settings(); "
        "print(s.signing_key_passphrase.get_secret_value(), s.redis_url)"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("NSCL_")}
    env["NSCL_SECRETS_DIR"] = str(tmp_path)
    result = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "from a mounted secret redis://redis:6379/3"
