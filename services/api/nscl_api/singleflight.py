"""One load at a time per key: concurrent requests for a lapsed cache entry share a load."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

T = TypeVar("T")


class SingleFlight(Generic[T]):
    """Every caller that asks for a key while its load runs awaits that same load.

    Waiters are woken together when it ends; queueing them on a lock instead would hand
    the result on one event-loop turn at a time and stretch the tail under load.
    """

    def __init__(self) -> None:
        self._loading: dict[Hashable, asyncio.Future[T]] = {}

    async def load(self, key: Hashable, loader: Callable[[], Awaitable[T]]) -> T:
        pending = self._loading.get(key)
        if pending is None:
            pending = asyncio.ensure_future(loader())
            self._loading[key] = pending
            pending.add_done_callback(lambda _: self._loading.pop(key, None))
        # Shielded: one caller going away does not cancel the load the others wait for.
        return await asyncio.shield(pending)
