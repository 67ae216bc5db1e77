"""Signed bearer tokens: ES256 JWTs with a key id, verified against every key in force."""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import jwt
from cachetools import TTLCache
from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePrivateKey

from nscl_domain.errors import ProblemCode, Unauthenticated, Unavailable
from nscl_domain.identity.models import SigningKey
from nscl_domain.identity.sealing import KeySealer
from nscl_domain.identity.service import ALGORITHM, Grant
from nscl_domain.settings import Settings

ISSUER = "nscl"
AUDIENCE = "nscl-api"
LEEWAY_SECONDS = 5
DEFAULT_MAX_LIFETIME = int(Settings.model_fields["token_ttl_seconds"].default)


class UnknownSigningKey(Unauthenticated):
    """The token names a key this process does not hold (perhaps one rotated in elsewhere)."""


@dataclass(frozen=True)
class IssuedToken:
    access_token: str
    expires_in: int
    scope: str


@dataclass(frozen=True)
class VerifiedToken:
    client_id: str
    scopes: tuple[str, ...]


class KeyRing:
    """The keys in force: the newest signs, all verify. Replaced whole when the keys change.

    A token is accepted only if its lifetime (``exp - iat``) is no longer than this service
    issues (``max_lifetime_seconds``): a leaked or forged long-lived token is worthless.
    """

    def __init__(
        self,
        keys: Sequence[SigningKey],
        *,
        max_lifetime_seconds: int = DEFAULT_MAX_LIFETIME,
        sealer: KeySealer | None = None,
    ) -> None:
        self._signer_kid = keys[0].kid if keys else None
        self.max_lifetime_seconds = max_lifetime_seconds
        self._private: dict[str, EllipticCurvePrivateKey] = {}
        opener = sealer or KeySealer()
        for key in keys:
            self._private[key.kid] = opener.open(key.kid, key.private_pem)
        self.public_jwks = [key.public_jwk for key in keys]
        # A signature checked once need not be checked on every request: a verified token
        # is remembered for a minute, never past its own expiry. A reloaded ring starts empty,
        # so a retired key's tokens are forgotten with it.
        self._verified: TTLCache[str, tuple[VerifiedToken, float]] = TTLCache(
            maxsize=20_000, ttl=60
        )

    @property
    def kids(self) -> frozenset[str]:
        return frozenset(self._private)

    def issue(self, grant: Grant, *, now: datetime, ttl_seconds: int) -> IssuedToken:
        """Sign a token for ``grant`` with the newest key in force."""
        if self._signer_kid is None:
            raise Unavailable("No signing key is in force.", code="no_signing_key")
        issued_at = int(now.timestamp())
        scope = " ".join(sorted(grant.scopes))
        claims: dict[str, Any] = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": grant.client_id,
            "iat": issued_at,
            "nbf": issued_at,
            "exp": issued_at + ttl_seconds,
            "jti": str(uuid.uuid4()),
            "scope": scope,
            "unit": grant.unit_key,
            "roles": sorted(grant.roles),
        }
        token = jwt.encode(
            claims,
            self._private[self._signer_kid],
            algorithm=ALGORITHM,
            headers={"kid": self._signer_kid},
        )
        return IssuedToken(access_token=token, expires_in=ttl_seconds, scope=scope)

    def verify(self, token: str) -> VerifiedToken:
        """Check signature, key, issuer, audience and lifetime; say which failed."""
        remembered = self._verified.get(token)
        if remembered is not None and remembered[1] > time.time():
            return remembered[0]
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise _invalid("The bearer token is not a JWT.") from exc
        kid = header.get("kid")
        if header.get("alg") != ALGORITHM or not isinstance(kid, str):
            raise _invalid("The bearer token is not signed the way this service signs.")
        private = self._private.get(kid)
        if private is None:
            raise UnknownSigningKey(
                "The bearer token is signed by an unknown key.", code="invalid_token"
            )
        try:
            claims = jwt.decode(
                token,
                private.public_key(),
                algorithms=[ALGORITHM],
                audience=AUDIENCE,
                issuer=ISSUER,
                options={"require": ["exp", "iat", "sub", "scope"]},
                leeway=LEEWAY_SECONDS,
            )
        except jwt.ExpiredSignatureError as exc:
            raise _invalid("The bearer token has expired.", code="token_expired") from exc
        except jwt.InvalidSignatureError as exc:
            raise _invalid("The bearer token's signature does not match.") from exc
        except jwt.PyJWTError as exc:
            raise _invalid(f"The bearer token is invalid: {exc}.") from exc
        issued_at, expires = claims["iat"], claims["exp"]
        if not isinstance(issued_at, int | float) or not isinstance(expires, int | float):
            raise _invalid("The bearer token's iat and exp must be numbers.")
        if issued_at > time.time() + LEEWAY_SECONDS:
            raise _invalid("The bearer token is issued in the future.")
        if expires - issued_at > self.max_lifetime_seconds + LEEWAY_SECONDS:
            raise _invalid("The bearer token lives longer than this service's tokens do.")
        verified = VerifiedToken(
            client_id=str(claims["sub"]), scopes=tuple(str(claims["scope"]).split())
        )
        self._verified[token] = (verified, float(claims["exp"]))
        return verified


def _invalid(detail: str, code: ProblemCode = "invalid_token") -> Unauthenticated:
    return Unauthenticated(detail, code=code)
