"""Signing keys at rest: private keys are stored as passphrase-encrypted PKCS#8 PEM, and
webhook signing secrets as Fernet tokens under a key derived from the same passphrase.

The passphrase comes from the environment (``NSCL_SIGNING_KEY_PASSPHRASE``, typically from a
secret store), never from the database, so a copy of the database (a backup, a replica, a
dump handed to a contractor) holds no usable signing key and no webhook secret a forger
could sign with. A previous passphrase may be given beside the current one while keys and
secrets are re-sealed under a new one (``nscl keys reseal``).
"""

from __future__ import annotations

import base64
import functools
from collections.abc import Sequence
from dataclasses import dataclass, field

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePrivateKey
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from nscl_domain.errors import Unavailable
from nscl_domain.settings import Settings

_ENCRYPTED_MARKER = "-----BEGIN ENCRYPTED PRIVATE KEY-----"
_SEALED_SECRET_PREFIX = "sealed:fernet:"
# A fixed salt, so that each process stretches a passphrase once (not once per secret it
# opens while delivering); the passphrase is a deployment secret, not a user's password.
_SECRET_KDF_SALT = b"nscl webhook signing secrets"


def is_sealed(pem: str) -> bool:
    return pem.lstrip().startswith(_ENCRYPTED_MARKER)


def is_sealed_secret(stored: str) -> bool:
    return stored.startswith(_SEALED_SECRET_PREFIX)


@functools.lru_cache(maxsize=8)
def _fernet(passphrase: str) -> Fernet:
    derived = Scrypt(salt=_SECRET_KDF_SALT, length=32, n=2**14, r=8, p=1).derive(
        passphrase.encode()
    )
    return Fernet(base64.urlsafe_b64encode(derived))


@dataclass(frozen=True)
class KeySealer:
    """Seals new private keys with ``passphrase``; opens keys sealed with it or ``previous``."""

    passphrase: str | None = field(default=None, repr=False)
    previous: Sequence[str] = field(default=(), repr=False)

    @classmethod
    def from_settings(cls, settings: Settings) -> KeySealer:
        current = settings.signing_key_passphrase
        return cls(
            passphrase=current.get_secret_value() if current else None,
            previous=tuple(p.get_secret_value() for p in settings.signing_key_previous_passphrases),
        )

    def seal(self, private: EllipticCurvePrivateKey) -> str:
        encryption: serialization.KeySerializationEncryption = (
            serialization.BestAvailableEncryption(self.passphrase.encode())
            if self.passphrase
            else serialization.NoEncryption()
        )
        return private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
        ).decode()

    def open(self, kid: str, pem: str) -> EllipticCurvePrivateKey:
        """The private key of a stored PEM; a sealed key needs one of the known passphrases."""
        candidates: list[bytes | None] = (
            [p.encode() for p in (self.passphrase, *self.previous) if p]
            if is_sealed(pem)
            else [None]
        )
        for password in candidates:
            try:
                private = serialization.load_pem_private_key(pem.encode(), password=password)
            except ValueError:
                continue
            if not isinstance(private, EllipticCurvePrivateKey):
                break
            return private
        raise Unavailable(
            f"Signing key {kid!r} is sealed with a passphrase this process does not have: "
            "set NSCL_SIGNING_KEY_PASSPHRASE (and NSCL_SIGNING_KEY_PREVIOUS_PASSPHRASES while "
            "re-sealing).",
            code="signing_key_sealed",
        )

    def reseal(self, kid: str, pem: str) -> str | None:
        """``pem`` sealed under the current passphrase, or None if it already is."""
        private = self.open(kid, pem)
        if self.passphrase and is_sealed(pem):
            try:
                serialization.load_pem_private_key(pem.encode(), password=self.passphrase.encode())
            except ValueError:
                return self.seal(private)
            return None
        if not self.passphrase and not is_sealed(pem):
            return None
        return self.seal(private)

    # --- webhook signing secrets: short strings rather than keys --------------------------

    def seal_secret(self, plain: str) -> str:
        """``plain`` as stored: a Fernet token under the passphrase, or as is without one."""
        if not self.passphrase:
            return plain
        return _SEALED_SECRET_PREFIX + _fernet(self.passphrase).encrypt(plain.encode()).decode()

    def open_secret(self, what: str, stored: str) -> str:
        """The secret a stored value holds; a sealed one needs one of the known passphrases."""
        if not is_sealed_secret(stored):
            return stored
        passphrases = [p for p in (self.passphrase, *self.previous) if p]
        token = stored.removeprefix(_SEALED_SECRET_PREFIX).encode()
        if passphrases:
            try:
                return MultiFernet([_fernet(p) for p in passphrases]).decrypt(token).decode()
            except InvalidToken:
                pass
        raise Unavailable(
            f"The secret of {what} is sealed with a passphrase this process does not have: "
            "set NSCL_SIGNING_KEY_PASSPHRASE (and NSCL_SIGNING_KEY_PREVIOUS_PASSPHRASES while "
            "re-sealing).",
            code="signing_key_sealed",
        )

    def reseal_secret(self, what: str, stored: str) -> str | None:
        """``stored`` sealed under the current passphrase, or None if it already is."""
        plain = self.open_secret(what, stored)
        if self.passphrase and is_sealed_secret(stored):
            try:
                _fernet(self.passphrase).decrypt(stored.removeprefix(_SEALED_SECRET_PREFIX))
            except InvalidToken:
                return self.seal_secret(plain)
            return None
        if not self.passphrase and not is_sealed_secret(stored):
            return None
        return self.seal_secret(plain)
