"""A short-lived cache of callers, so a request costs no identity query in the common case."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from nscl_api.singleflight import SingleFlight
from nscl_domain.identity import Caller


@dataclass
class CallerCache:
    """Callers by (client, scopes) for ``ttl_seconds``: a disabled client is refused after that."""

    ttl_seconds: float = 5.0
    _entries: dict[tuple[str, tuple[str, ...]], tuple[float, Caller]] = field(default_factory=dict)
    _loads: SingleFlight[Caller] = field(default_factory=SingleFlight)

    def get(self, client_id: str, scopes: tuple[str, ...]) -> Caller | None:
        entry = self._entries.get((client_id, scopes))
        if entry is None or entry[0] < time.monotonic():
            return None
        return entry[1]

    def put(self, client_id: str, scopes: tuple[str, ...], caller: Caller) -> None:
        if self.ttl_seconds <= 0:
            return
        if len(self._entries) > 10_000:
            self._entries.clear()
        self._entries[(client_id, scopes)] = (time.monotonic() + self.ttl_seconds, caller)

    async def get_or_load(
        self, client_id: str, scopes: tuple[str, ...], load: Callable[[], Awaitable[Caller]]
    ) -> Caller:
        """The cached caller; when it lapses under load, one request loads it again while
        the client's other requests wait for that answer instead of all querying at once."""
        found = self.get(client_id, scopes)
        if found is None:
            found = await self._loads.load((client_id, scopes), load)
            self.put(client_id, scopes, found)
        return found
