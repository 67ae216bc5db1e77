"""The published-rollup read model of the API process: rendered bodies and their ETags.

Published runs never change, so a rendered body is good for as long as its run (and the
earlier years its targets are judged on) stay published. Readers see a run's budget at the
detail their class allows (nscl_domain.budget.visibility), so a run has a body per class:
the totals, every unit's rows, or one unit's. What is published is read at most once a
second per programme-year: a new publication reaches every reader within a second, and
always whole.
"""

from __future__ import annotations

import gzip
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from cachetools import LRUCache, TTLCache

from nscl_api.rollups.schemas import RollupRead
from nscl_api.singleflight import SingleFlight
from nscl_domain.budget.visibility import BudgetVisibility, budget_visibility
from nscl_domain.identity import Caller
from nscl_domain.rollups import service as rollups
from nscl_domain.rollups.views import Filters, PublishedState
from nscl_domain.uow import UnitOfWork


@dataclass(frozen=True)
class NotModified:
    """The caller's copy is current (its If-None-Match is the tag)."""

    etag: str


@dataclass(frozen=True)
class Rendered:
    """A body to send; ``etag`` None when a publication happened while it was rendered (it
    is answered, but neither tagged nor kept)."""

    body: bytes
    etag: str | None
    encoding: str | None = None  # "gzip" when the body is compressed


# Raised whenever the body's shape changes: a copy a client kept from before is then not
# answered 304, though the run it shows is still the published one.
REPRESENTATION = "3"
# Fast enough to compress a body once per run and class, small enough to pay on every poll.
GZIP_LEVEL = 6


def _etag(tag: str, visibility: BudgetVisibility, encoding: str | None = None) -> str:
    # Each class of budget visibility gets its own representation, so its own tag; so does
    # each content coding (a gzip body is other bytes).
    return f'"{tag}-{_variant(REPRESENTATION, visibility.cache_class, encoding)}"'


@lru_cache(maxsize=1024)
def _variant(representation: str, cache_class: tuple[str, ...], encoding: str | None) -> str:
    # Cached: polls repeat the same few, and a hash per request is measurable at 5,000 req/s.
    variant = "/".join((representation, *cache_class, encoding or "identity"))
    return hashlib.sha256(variant.encode()).hexdigest()[:12]


def accepts_gzip(accept_encoding: str | None) -> bool:
    """Whether the client takes gzip (and did not refuse it with q=0)."""
    if not accept_encoding:
        return False
    for part in accept_encoding.lower().split(","):
        coding, _, params = part.strip().partition(";")
        if coding.strip() == "gzip":
            return params.replace(" ", "") not in ("q=0", "q=0.0", "q=0.00", "q=0.000")
    return False


class PublishedRollups:
    """Published rollups as each reader sees them, shared by the requests of a process."""

    def __init__(self) -> None:
        self.published: TTLCache[tuple[str, int], PublishedState] = TTLCache(maxsize=4096, ttl=1.0)
        # Bodies as one class of budget visibility sees them: (run tag, filters, class) → bytes.
        self.rendered: LRUCache[tuple[Any, ...], bytes] = LRUCache(maxsize=512)
        # The whole rollup before the budget policy is applied: (run tag, filters) → model, so
        # a new class of reader costs a filter and a serialisation, not a database read.
        self.views: LRUCache[tuple[Any, ...], RollupRead] = LRUCache(maxsize=128)
        # The same bodies gzipped, compressed once per run rather than once per request.
        self.compressed: LRUCache[tuple[Any, ...], bytes] = LRUCache(maxsize=512)
        self._loads: SingleFlight[PublishedState] = SingleFlight()

    async def _published_run(
        self, new_uow: Callable[[], UnitOfWork], caller: Caller, programme: str, year: int
    ) -> PublishedState:
        """The published run of a programme-year; when the entry lapses under load, one
        request reads it again while the others wait for that answer."""
        key = (programme, year)
        found = self.published.get(key)
        if found is None:
            found = await self._loads.load(
                key, lambda: rollups.published_state(new_uow(), caller, programme, year)
            )
            self.published[key] = found
        return found

    async def read(
        self,
        new_uow: Callable[[], UnitOfWork],
        caller: Caller,
        programme: str,
        year: int,
        filters: Filters,
        if_none_match: str | None,
        encoding: str | None = None,
    ) -> Rendered | NotModified:
        """The published rollup as ``caller`` may see it, or NotModified when the tag they
        hold is current. A unit of work is opened only when the caches miss: most polls need
        no database at all. ``encoding`` "gzip": the body compressed (cached as it is)."""
        state = await self._published_run(new_uow, caller, programme, year)
        visibility = budget_visibility(caller)
        tag = _etag(state.tag, visibility, encoding)
        if if_none_match == tag:
            return NotModified(tag)
        key = (state.tag, filters.indicator, filters.unit, filters.task_group)
        if encoding is not None:
            compressed = self.compressed.get((*key, visibility.cache_class))
            if compressed is not None:
                return Rendered(compressed, tag, encoding)
        body = self.rendered.get((*key, visibility.cache_class))
        if body is not None:
            return self._encoded(key, visibility.cache_class, body, tag, encoding)
        whole = self.views.get(key)
        untagged = False
        if whole is None:
            view = await rollups.get_rollup(new_uow(), caller, programme, year, filters)
            if view.run.id != state.run_id:  # published in between: tag what was rendered
                state = await rollups.published_state(new_uow(), caller, programme, year)
                tag = _etag(state.tag, visibility, encoding)
                key = (state.tag, filters.indicator, filters.unit, filters.task_group)
            untagged = view.run.id != state.run_id  # and again: answer, but tag and keep nothing
            whole = RollupRead.of(view)
            if not untagged:
                self.views[key] = whole
        body = (
            whole.model_copy(
                update={
                    "budget": [
                        r for r in whole.budget if visibility.shows_row(r.unit, r.destination)
                    ]
                }
            )
            .model_dump_json()
            .encode()
        )
        if untagged:
            if encoding is not None:
                return Rendered(gzip.compress(body, GZIP_LEVEL, mtime=0), None, encoding)
            return Rendered(body, None)
        self.rendered[(*key, visibility.cache_class)] = body
        return self._encoded(key, visibility.cache_class, body, tag, encoding)

    def _encoded(
        self,
        key: tuple[Any, ...],
        cache_class: tuple[str, ...],
        body: bytes,
        tag: str,
        encoding: str | None,
    ) -> Rendered:
        if encoding is None:
            return Rendered(body, tag)
        # mtime 0: the same body always compresses to the same bytes under its tag.
        compressed = gzip.compress(body, GZIP_LEVEL, mtime=0)
        self.compressed[(*key, cache_class)] = compressed
        return Rendered(compressed, tag, encoding)
