"""What a run is computed from, what is published, and which runs to make: values only.

Full computation handles any number of programme-years in one statement per step (the
nightly rebuild); incremental computation copies the previous run's cells and recomputes
only those the changed sources touch. A programme-year whose inputs' fingerprint equals the
published run's gets no new run.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from nscl_domain.db import new_id

ProgrammeYear = tuple[uuid.UUID, int]
Digests = dict[ProgrammeYear, tuple[str, ...]]


@dataclass(frozen=True)
class Source:
    source_id: uuid.UUID
    unit_id: uuid.UUID | None
    breakdown: str


@dataclass(frozen=True)
class Inputs:
    """What a programme-year's run would be computed from, and its fingerprint.

    ``sources`` is None when they were left in the database (full computation reads them
    there); an incremental computation fetches them to compare with the previous run's.
    """

    programme_id: uuid.UUID
    year: int
    source_count: int
    fingerprint: str
    sources: frozenset[Source] | None = None
    other_inputs: str = ""


@dataclass(frozen=True)
class Published:
    run_id: uuid.UUID
    seq: int
    fingerprint: str
    other_inputs: str = ""
    # Received from the province's own instance (national intake): nothing here computes it.
    pushed: bool = False


@dataclass(frozen=True)
class NewRun:
    inputs: Inputs
    run_id: uuid.UUID
    seq: int


def fingerprint(sources: Sequence[Source], digest: Sequence[Any]) -> str:
    """The fingerprint of a run's inputs: its sources and the digests of the rest."""
    hashed = hashlib.sha256()
    for source in sorted(sources, key=lambda s: s.source_id):
        hashed.update(f"{source.source_id}:{source.breakdown};".encode())
    hashed.update("|".join(str(part) for part in digest).encode())
    return hashed.hexdigest()


def source_digest(sources: set[Source]) -> str:
    """What sql.BUILD_DIGEST computes in PostgreSQL (uuids order as their bytes do)."""
    ordered = sorted(sources, key=lambda source: source.source_id.bytes)
    joined = ",".join(f"{source.source_id}:{source.breakdown}" for source in ordered)
    return hashlib.md5(joined.encode(), usedforsecurity=False).hexdigest()


def plan_runs(inputs: Sequence[Inputs], previous: dict[ProgrammeYear, Published]) -> list[NewRun]:
    """A new run for each programme-year whose fingerprint differs from the published one;
    none where the published run was pushed by the province's instance (the province's
    figures are not here to compute one from)."""
    planned = []
    for item in inputs:
        before = previous.get((item.programme_id, item.year))
        if before is not None and (before.pushed or before.fingerprint == item.fingerprint):
            continue
        planned.append(NewRun(item, new_id(), before.seq + 1 if before else 1))
    return planned
