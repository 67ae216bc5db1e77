"""Use cases of identity: manage clients, authenticate them, manage signing keys."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import os
import re
import secrets
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import anyio
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

from nscl_domain.audit.repository import AuditRepository, snapshot
from nscl_domain.errors import (
    Conflict,
    FieldProblem,
    Invalid,
    NotFound,
    Unauthenticated,
    Unavailable,
)
from nscl_domain.identity import SYSTEM, Caller, Permission, Role, permissions_of
from nscl_domain.identity.models import ApiClient, SigningKey
from nscl_domain.identity.repository import IdentityRepository
from nscl_domain.identity.sealing import KeySealer
from nscl_domain.identity.units import ClientUnit, ClientUnits
from nscl_domain.uow import UnitOfWork

_hasher = PasswordHasher()
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(32))
CLIENT_ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]{2,99}$")
ALGORITHM = "ES256"


@dataclass(frozen=True)
class ClientView:
    client: ApiClient
    unit: ClientUnit


@dataclass(frozen=True)
class Grant:
    """What a successful authentication grants: the basis of a token."""

    client_id: str
    unit_key: str
    roles: frozenset[Role]
    scopes: frozenset[Permission]


def _roles(values: Sequence[str]) -> frozenset[Role]:
    unknown = [v for v in values if v not in Role.__members__.values()]
    if unknown:
        raise Invalid(
            f"Unknown roles: {', '.join(unknown)}.",
            code="unknown_role",
            fields=[FieldProblem(("roles",), f"Use: {', '.join(Role)}.")],
        )
    return frozenset(Role(v) for v in values)


async def create_client(
    uow: UnitOfWork,
    actor: Caller,
    *,
    client_id: str,
    name: str,
    unit: str,
    roles: Sequence[str],
) -> tuple[ClientView, str]:
    """Register a client; return it with its secret, which is shown this once only."""
    actor.require(Permission.CLIENTS_MANAGE)
    if not CLIENT_ID_PATTERN.match(client_id):
        raise Invalid(
            "A client id is 3–100 lower-case letters, digits, '.', '_' or '-'.",
            code="invalid_client_id",
            fields=[FieldProblem(("client_id",), "Not a valid client id.")],
        )
    granted = _roles(roles)
    secret = secrets.token_urlsafe(32)
    async with uow:
        if await uow.get(IdentityRepository).client(client_id) is not None:
            raise Conflict(f"Client {client_id!r} exists.", code="client_exists")
        found = await uow.get(ClientUnits).by_ref(unit)
        if found is None:
            raise NotFound(f"Organisation unit {unit!r} does not exist.", code="unit_not_found")
        client = ApiClient(
            client_id=client_id,
            name=name,
            secret_hash=_hasher.hash(secret),
            unit_id=found.id,
            roles=sorted(granted),
            enabled=True,
        )
        uow.get(IdentityRepository).add(client)
        await uow.get(IdentityRepository).flush()
        uow.get(AuditRepository).record(
            actor, "client.created", "api_client", client_id, after=snapshot(client)
        )
        await uow.commit()
    return ClientView(client, found), secret


async def _client_and_unit(
    uow: UnitOfWork, client_id: str, *, for_update: bool = False
) -> tuple[ApiClient, ClientUnit] | None:
    """The client and its unit, or None when either is missing."""
    client = await uow.get(IdentityRepository).client(client_id, for_update=for_update)
    if client is None:
        return None
    unit = (await uow.get(ClientUnits).by_ids([client.unit_id])).get(client.unit_id)
    return (client, unit) if unit is not None else None


async def _client_for_change(uow: UnitOfWork, client_id: str) -> ClientView:
    found = await _client_and_unit(uow, client_id, for_update=True)
    if found is None:
        raise NotFound(f"Client {client_id!r} does not exist.", code="client_not_found")
    return ClientView(*found)


async def disable_client(uow: UnitOfWork, actor: Caller, client_id: str) -> ClientView:
    """Refuse the client's secret and every token it holds from now on."""
    actor.require(Permission.CLIENTS_MANAGE)
    async with uow:
        view = await _client_for_change(uow, client_id)
        before = snapshot(view.client)
        view.client.enabled = False
        view.client.disabled_at = uow.now()
        uow.get(AuditRepository).record(
            actor,
            "client.disabled",
            "api_client",
            client_id,
            before=before,
            after=snapshot(view.client),
        )
        await uow.commit()
    return view


async def rotate_secret(uow: UnitOfWork, actor: Caller, client_id: str) -> tuple[ClientView, str]:
    """Give the client a new secret; the old one stops working at once."""
    actor.require(Permission.CLIENTS_MANAGE)
    secret = secrets.token_urlsafe(32)
    async with uow:
        view = await _client_for_change(uow, client_id)
        view.client.secret_hash = _hasher.hash(secret)
        view.client.secret_rotated_at = uow.now()
        uow.get(AuditRepository).record(actor, "client.secret_rotated", "api_client", client_id)
        await uow.commit()
    return view, secret


async def list_clients(uow: UnitOfWork) -> Sequence[ClientView]:
    async with uow:
        clients = await uow.get(IdentityRepository).clients()
        units = await uow.get(ClientUnits).by_ids({c.unit_id for c in clients})
        return [ClientView(c, units[c.unit_id]) for c in clients if c.unit_id in units]


def _argon2_matches(stored_hash: str, secret: str) -> bool:
    try:
        return _hasher.verify(stored_hash, secret)
    except (VerificationError, InvalidHashError):
        return False


# Argon2 spends tens of milliseconds of CPU on every check, on several threads of its own.
# Linux schedules each thread by its own niceness (and threads inherit it), so checks run at
# the lowest priority: under a flood they share what the event loop leaves, never the reverse.
SECRET_CHECK_NICENESS = 19


def _lower_thread_priority() -> None:
    with contextlib.suppress(OSError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), SECRET_CHECK_NICENESS)


@dataclass
class SecretChecker:
    """Checks secrets in low-priority threads, a bounded number at once: the event loop stays free.

    Argon2 costs tens of milliseconds of CPU by design (and releases the GIL). Callers at an
    address they are known at use a lane of their own, so a flood of strangers cannot keep
    them waiting; a check that finds no free thread within ``wait_seconds`` is refused as
    busy instead of queueing without bound.
    """

    concurrency: int = 2
    wait_seconds: float = 2.0
    matches: Callable[[str, str], bool] = _argon2_matches
    _lanes: dict[bool, anyio.CapacityLimiter] = field(default_factory=dict)
    _threads: ThreadPoolExecutor | None = None

    def _lane(self, known: bool) -> anyio.CapacityLimiter:
        # Made on first use: a limiter belongs to the event loop that runs it.
        if known not in self._lanes:
            self._lanes[known] = anyio.CapacityLimiter(self.concurrency)
        return self._lanes[known]

    async def check(self, stored_hash: str, secret: str, *, known: bool = False) -> bool:
        """Whether ``secret`` matches ``stored_hash``; Unavailable when every thread is busy."""
        lane = self._lane(known)
        try:
            with anyio.fail_after(self.wait_seconds):
                await lane.acquire()
        except TimeoutError:
            raise Unavailable(
                "Too many token requests are being checked; retry in a moment.", code="busy"
            ) from None
        if self._threads is None:
            self._threads = ThreadPoolExecutor(
                max_workers=2 * self.concurrency,  # a lane each for known and unknown callers
                thread_name_prefix="nscl-secret-check",
                initializer=_lower_thread_priority,
            )
        try:
            return await asyncio.get_running_loop().run_in_executor(
                self._threads, self.matches, stored_hash, secret
            )
        finally:
            lane.release()


async def authenticate(
    uow: UnitOfWork,
    client_id: str,
    secret: str,
    requested: Sequence[str] | None,
    *,
    checker: SecretChecker,
    known: bool = False,
) -> Grant:
    """Check a client's secret; grant the scopes asked for (all its roles allow, by default).

    ``known`` says the caller is at an address this client succeeded from before.
    """
    async with uow:
        found = await _client_and_unit(uow, client_id)
    # Verifying an unknown client costs as much as a known one: no timing oracle.
    stored_hash = found[0].secret_hash if found else _DUMMY_HASH
    verified = await checker.check(stored_hash, secret, known=known) and found is not None
    if not verified or found is None:
        raise Unauthenticated("Unknown client or wrong secret.", code="invalid_client")
    client, unit = found
    if not client.enabled:
        raise Unauthenticated("The client is disabled.", code="invalid_client")
    roles = frozenset(Role(r) for r in client.roles)
    allowed = permissions_of(roles)
    if requested:
        unknown = [s for s in requested if s not in Permission.__members__.values()]
        refused = [s for s in requested if s not in unknown and Permission(s) not in allowed]
        if unknown or refused:
            raise Invalid(
                f"Scopes not available to this client: {', '.join(unknown + refused)}.",
                code="invalid_scope",
                fields=[FieldProblem(("body", "scope"), "Ask only for scopes the roles allow.")],
            )
        scopes = frozenset(Permission(s) for s in requested)
    else:
        scopes = allowed
    return Grant(client_id=client.client_id, unit_key=unit.key, roles=roles, scopes=scopes)


async def caller_for_token(
    uow: UnitOfWork, client_id: str, token_scopes: Sequence[str], request_id: str | None
) -> Caller:
    """The caller behind a verified token; a disabled client or lost role takes effect here."""
    async with uow:
        found = await _client_and_unit(uow, client_id)
    if found is None or not found[0].enabled:
        raise Unauthenticated("The token's client is unknown or disabled.", code="invalid_token")
    client, unit = found
    roles = frozenset(Role(r) for r in client.roles)
    still_allowed = permissions_of(roles)
    scopes = frozenset(
        Permission(s)
        for s in token_scopes
        if s in Permission.__members__.values() and Permission(s) in still_allowed
    )
    return Caller(
        client_id=client.client_id,
        unit_id=unit.id,
        unit_key=unit.key,
        roles=roles,
        scopes=scopes,
        request_id=request_id,
    )


# --- signing keys ---------------------------------------------------------------------


def _new_key(sealer: KeySealer | None = None) -> SigningKey:
    private = ec.generate_private_key(ec.SECP256R1())
    public_der = private.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    kid = base64.urlsafe_b64encode(hashlib.sha256(public_der).digest()[:12]).decode().rstrip("=")
    jwk: dict[str, Any] = ECAlgorithm.to_jwk(private.public_key(), as_dict=True)
    jwk |= {"kid": kid, "use": "sig", "alg": ALGORITHM}
    pem = (sealer or KeySealer()).seal(private)
    return SigningKey(kid=kid, algorithm=ALGORITHM, private_pem=pem, public_jwk=jwk)


async def signing_key_version(uow: UnitOfWork) -> tuple[object, ...]:
    """A cheap fingerprint of the key table: it changes whenever a key is added or retired."""
    async with uow:
        return await uow.get(IdentityRepository).signing_key_version()


async def signing_keys(uow: UnitOfWork) -> Sequence[SigningKey]:
    """Keys in force, newest (the signer) first."""
    async with uow:
        return await uow.get(IdentityRepository).signing_keys()


async def ensure_signing_key(
    uow: UnitOfWork, sealer: KeySealer | None = None
) -> Sequence[SigningKey]:
    """Create the first signing key if there is none; return the keys in force."""
    async with uow:
        keys = await uow.get(IdentityRepository).signing_keys()
        if keys:
            return keys
    return [await rotate_signing_key(uow, SYSTEM, sealer)]


async def rotate_signing_key(
    uow: UnitOfWork, actor: Caller, sealer: KeySealer | None = None
) -> SigningKey:
    """Add a key that signs from now on; older keys keep verifying until retired."""
    actor.require(Permission.CLIENTS_MANAGE)
    key = _new_key(sealer)
    async with uow:
        uow.get(IdentityRepository).add(key)
        await uow.get(IdentityRepository).flush()
        uow.get(AuditRepository).record(
            actor, "signing_key.created", "signing_key", key.kid, after=snapshot(key)
        )
        await uow.commit()
    return key


async def reseal_signing_keys(uow: UnitOfWork, actor: Caller, sealer: KeySealer) -> list[str]:
    """Seal every key in force under the sealer's current passphrase; return the kids changed.

    Run after a passphrase change, with the old one given as previous, before the old one is
    withdrawn from the processes' environment.
    """
    actor.require(Permission.CLIENTS_MANAGE)
    changed: list[str] = []
    async with uow:
        for key in await uow.get(IdentityRepository).signing_keys():
            resealed = sealer.reseal(key.kid, key.private_pem)
            if resealed is not None:
                key.private_pem = resealed
                changed.append(key.kid)
        if changed:
            uow.get(AuditRepository).record(
                actor, "signing_key.resealed", "signing_key", ",".join(changed)
            )
        await uow.commit()
    return changed


async def retire_signing_key(uow: UnitOfWork, actor: Caller, kid: str) -> SigningKey:
    """Stop accepting tokens signed by ``kid``, in every process within seconds."""
    actor.require(Permission.CLIENTS_MANAGE)
    async with uow:
        key = await uow.get(IdentityRepository).signing_key(kid)
        if key is None or key.retired_at is not None:
            raise NotFound(f"No signing key {kid!r} in force.", code="signing_key_not_found")
        if [k.kid for k in await uow.get(IdentityRepository).signing_keys()] == [kid]:
            # With no key in force no token could be issued or verified.
            raise Conflict(
                f"Signing key {kid!r} is the only one in force; rotate in a new key first.",
                code="last_signing_key",
            )
        key.retired_at = uow.now()
        uow.get(AuditRepository).record(actor, "signing_key.retired", "signing_key", kid)
        await uow.commit()
    return key
