"""Limits on token requests, kept in Redis so every API process sees the same counts.

Three limits, so that no stranger can lock a client out and no address can try secrets
without end:

- per client *and* address: after ``auth_failures_limit`` wrong secrets the address is held
  off for that client, doubling with each further failure; other addresses are not;
- per address, whatever the client id: failures (and attempts not yet decided) beyond
  ``auth_address_failures_limit`` hold the address off, so fresh unknown ids meet a limit;
- across all callers: ``token_rate_limit`` requests per window.

An address a client has succeeded from is remembered as its usual one; from there the
client is spared the per-address and global limits (failures elsewhere never touch it).
"""

from __future__ import annotations

import ipaddress
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

from redis.asyncio import Redis

from nscl_domain.errors import ProblemCode
from nscl_domain.settings import Settings

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def client_address(
    peer: str | None, forwarded_for: str | None, trusted: Sequence[IpNetwork]
) -> str:
    """The caller's address: the socket peer, or X-Forwarded-For's nearest untrusted hop."""
    address = peer or "unknown"
    if not trusted or not forwarded_for or not _is_trusted(address, trusted):
        return address
    # Each proxy appends the address it saw; read from the right past our own proxies.
    for hop in reversed([h.strip() for h in forwarded_for.split(",") if h.strip()]):
        try:
            ipaddress.ip_address(hop)
        except ValueError:
            return address  # a hop that is no address: believe only the socket
        if not _is_trusted(hop, trusted):
            return hop
        address = hop
    return address


def _is_trusted(address: str, trusted: Sequence[IpNetwork]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in trusted)


@dataclass(frozen=True)
class HeldOff:
    """Why a token request is refused before its secret is checked, and for how long."""

    code: ProblemCode
    detail: str
    retry_after: int


@dataclass(frozen=True)
class Attempt:
    """One token request of ``client_id`` from ``address`` that passed the limits."""

    client_id: str
    address: str
    usual: bool
    counted_at_address: bool


class TokenGuard:
    """Checks and records token requests against the limits above."""

    def __init__(self, redis: Redis, settings: Settings) -> None:
        self.redis = redis
        self.settings = settings
        self.prefix = settings.auth_redis_prefix

    def _pair(self, client_id: str, address: str) -> str:
        return f"{self.prefix}:pair:{client_id}:{address}"

    def _usual(self, client_id: str, address: str) -> str:
        return f"{self.prefix}:usual:{client_id}:{address}"

    def _address(self, address: str) -> str:
        return f"{self.prefix}:address:{address}"

    async def admit(self, client_id: str, address: str) -> Attempt | HeldOff:
        """Let the request through to the secret check, or say why it is held off."""
        settings = self.settings
        pair = self._pair(client_id, address)
        usual = bool(await self.redis.exists(self._usual(client_id, address)))
        locked_ms = int(await self.redis.pttl(f"{pair}:lock"))
        if locked_ms > 0:
            return HeldOff(
                "too_many_attempts",
                "Too many failed attempts for this client from this address.",
                _seconds(locked_ms),
            )
        if usual:
            return Attempt(client_id, address, usual=True, counted_at_address=False)

        # Counted before the check, given back on success: concurrent attempts cannot all
        # slip under the limit while their secrets are being checked.
        key = self._address(address)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.set(key, 0, ex=settings.auth_failures_window_seconds, nx=True)
            pipe.incr(key)
            pipe.pttl(key)
            _, pending, ttl_ms = await pipe.execute()
        if int(pending) > settings.auth_address_failures_limit:
            await self._give_back(address)
            return HeldOff(
                "too_many_attempts",
                "Too many failed token requests from this address.",
                _seconds(int(ttl_ms)),
            )

        window = settings.token_rate_window_seconds
        now = time.time()
        index = int(now // window)
        rate_key = f"{self.prefix}:rate:{index}"
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.incr(rate_key)
            pipe.expire(rate_key, window + 1)
            count, _ = await pipe.execute()
        if int(count) > settings.token_rate_limit:
            await self._give_back(address)
            return HeldOff(
                "rate_limited",
                "The token endpoint is busy; retry later.",
                max(1, math.ceil((index + 1) * window - now)),
            )
        return Attempt(client_id, address, usual=False, counted_at_address=True)

    async def failed(self, attempt: Attempt) -> None:
        """Record a wrong secret: count it for the client at this address, maybe hold off."""
        settings = self.settings
        pair = self._pair(attempt.client_id, attempt.address)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.incr(pair)
            pipe.expire(pair, settings.auth_failures_window_seconds)
            failures, _ = await pipe.execute()
        over = int(failures) - settings.auth_failures_limit
        if over >= 0:
            hold = min(
                settings.auth_backoff_max_seconds,
                settings.auth_backoff_base_seconds * 2 ** min(over, 30),
            )
            await self.redis.set(f"{pair}:lock", 1, ex=hold)

    async def undecided(self, attempt: Attempt) -> None:
        """Give back an attempt that was never judged (the secret check was busy)."""
        if attempt.counted_at_address:
            await self._give_back(attempt.address)

    async def _give_back(self, address: str) -> None:
        key = self._address(address)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.decr(key)
            # Should the count have lapsed meanwhile, the decrement must not live for ever.
            pipe.expire(key, self.settings.auth_failures_window_seconds, nx=True)
            await pipe.execute()

    async def succeeded(self, attempt: Attempt) -> None:
        """Forget the client's failures at this address and remember it as a usual one."""
        pair = self._pair(attempt.client_id, attempt.address)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(pair, f"{pair}:lock")
            pipe.set(
                self._usual(attempt.client_id, attempt.address),
                1,
                ex=self.settings.auth_usual_address_days * 86_400,
            )
            await pipe.execute()
        if attempt.counted_at_address:
            await self._give_back(attempt.address)


def _seconds(milliseconds: int) -> int:
    return max(1, math.ceil(milliseconds / 1000))
