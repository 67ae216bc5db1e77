"""What readers of published rollups share within a process."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from cachetools import LRUCache, TTLCache

from nscl_api.singleflight import SingleFlight
from nscl_domain.rollups.service import PublishedState


@dataclass
class RolledUpCache:
    """Published runs never change, so a rendered body is good for as long as its run (and
    the earlier years its targets are judged on) stay published. Readers see a run's budget
    at the detail their class allows (nscl_domain.budget.visibility), so a run has a body
    per class: the totals, every unit's rows, or one unit's. What is published is read
    at most once a second per programme-year: a new publication reaches every reader within
    a second, and always whole."""

    published: TTLCache[tuple[str, int], PublishedState] = field(
        default_factory=lambda: TTLCache(maxsize=4096, ttl=1.0)
    )
    # Bodies as one class of budget visibility sees them: (run tag, filters, class) → bytes.
    rendered: LRUCache[tuple[Any, ...], bytes] = field(
        default_factory=lambda: LRUCache(maxsize=512)
    )
    # The whole rollup before the budget policy is applied: (run tag, filters) → model, so
    # a new class of reader costs a filter and a serialisation, not a database read.
    views: LRUCache[tuple[Any, ...], Any] = field(default_factory=lambda: LRUCache(maxsize=128))
    _loads: SingleFlight[PublishedState] = field(default_factory=SingleFlight)

    async def published_run(
        self, key: tuple[str, int], load: Callable[[], Awaitable[PublishedState]]
    ) -> PublishedState:
        """The published run of a programme-year; when the entry lapses under load, one
        request reads it again while the others wait for that answer."""
        found = self.published.get(key)
        if found is None:
            found = await self._loads.load(key, load)
            self.published[key] = found
        return found
