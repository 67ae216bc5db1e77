"""Where a webhook may be sent: no service of the province's own network by accident.

A target is refused when its scheme is not https (in production), when it carries
credentials, or when any address its host resolves to is private, loopback, link-local,
multicast, reserved or unspecified, unless the operators' allow-list names it. The check
runs when a subscription is made and again before every delivery, which then connects to
the very address it checked (so a name that resolves elsewhere a second later gains
nothing).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from nscl_domain.errors import ProblemCode

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class TargetRefused(Exception):
    """The URL may not be a webhook target; ``reason`` says why, for the subscriber."""

    def __init__(self, reason: str, code: ProblemCode = "webhook_target_refused") -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code


@dataclass(frozen=True)
class Target:
    """A checked target: the URL, its host and port, and the address to connect to."""

    url: str
    scheme: str
    host: str
    port: int
    address: IPAddress


def _is_internal(address: IPAddress) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
        or (isinstance(address, ipaddress.IPv6Address) and address.is_site_local)
    )


def address_allowed(address: IPAddress, allowed: Sequence[IPNetwork]) -> bool:
    """A public address, or an internal one the allow-list names."""
    if not _is_internal(address):
        return True
    return any(address.version == net.version and address in net for net in allowed)


def parse(url: str, *, require_https: bool) -> tuple[str, str, int]:
    """The scheme, host and port of a target URL, or TargetRefused."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise TargetRefused(f"Not a valid URL: {exc}.") from exc
    scheme = parts.scheme.lower()
    allowed_schemes = {"https"} if require_https else {"https", "http"}
    if scheme not in allowed_schemes:
        raise TargetRefused(
            "The target must be an https URL."
            if require_https
            else "The target must be an http or https URL."
        )
    if not parts.hostname:
        raise TargetRefused("The target URL names no host.")
    if parts.username or parts.password:
        raise TargetRefused("The target URL may not carry credentials.")
    if parts.fragment:
        raise TargetRefused("The target URL may not have a fragment.")
    return scheme, parts.hostname, port or (443 if scheme == "https" else 80)


async def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address ``host`` resolves to (an IP literal is its own)."""
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise TargetRefused(f"The target's host {host!r} does not resolve.") from exc
    found: list[IPAddress] = []
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        if address not in found:
            found.append(address)
    if not found:
        raise TargetRefused(f"The target's host {host!r} does not resolve.")
    return found


async def check(url: str, *, require_https: bool, allowed: Sequence[IPNetwork]) -> Target:
    """Check a target URL now; every address it resolves to must be allowed."""
    scheme, host, port = parse(url, require_https=require_https)
    addresses = await resolve(host, port)
    refused = [a for a in addresses if not address_allowed(a, allowed)]
    if refused:
        raise TargetRefused(
            f"The target resolves to {refused[0]}, a private, loopback or link-local address "
            "that webhooks may not reach.",
            code="webhook_target_internal",
        )
    return Target(url=url, scheme=scheme, host=host, port=port, address=addresses[0])
