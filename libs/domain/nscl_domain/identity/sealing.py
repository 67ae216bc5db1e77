"""Signing keys at rest: private keys are stored as passphrase-encrypted PKCS#8 PEM.

The passphrase comes from the environment (``NSCL_SIGNING_KEY_PASSPHRASE``, typically from a
secret store), never from the database, so a copy of the database (a backup, a replica, a
dump handed to a contractor) holds no usable signing key. A previous passphrase may be given
beside the current one while keys are re-sealed under a new one (``nscl keys reseal``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePrivateKey

from nscl_domain.errors import Unavailable
from nscl_domain.settings import Settings

_ENCRYPTED_MARKER = "-----BEGIN ENCRYPTED PRIVATE KEY-----"


def is_sealed(pem: str) -> bool:
    return pem.lstrip().startswith(_ENCRYPTED_MARKER)


@dataclass(frozen=True)
class KeySealer:
    """Seals new private keys with ``passphrase``; opens keys sealed with it or ``previous``."""

    passphrase: str | None = None
    previous: Sequence[str] = ()

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
