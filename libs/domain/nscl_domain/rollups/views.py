"""What readers of published rollups are given: figures, targets judged, provenance."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from nscl_domain.catalogue import models as cm
from nscl_domain.catalogue.baselines import BaselineUsed
from nscl_domain.catalogue.targets import Achievement
from nscl_domain.rollups.models import RollupRun


@dataclass(frozen=True)
class Cell:
    indicator: str
    disaggregation: str
    breakdown: str
    value: Decimal
    contributors: int


@dataclass(frozen=True)
class TargetProgress:
    key: str
    indicator: str
    phase: str
    text_en: str
    achievement: Achievement | None
    note: str = ""
    baseline: BaselineUsed | None = None


@dataclass(frozen=True)
class RollupView:
    run: RollupRun
    # The latest acceptance of a report version in the run: how fresh it is.
    includes_accepted_until: datetime | None
    programme_key: str
    published_at: Any
    cells: list[Cell]
    targets: list[TargetProgress]
    sections: dict[str, Any]


@dataclass(frozen=True)
class Filters:
    indicator: str | None = None
    unit: str | None = None  # a unit whose subtree the figures are limited to
    task_group: int | None = None


@dataclass(frozen=True)
class PublishedState:
    """The run published for a year, and a tag of every year's publication up to it: the
    targets of a year are judged on the years before it, so their change changes it too."""

    run_id: uuid.UUID
    tag: str


@dataclass(frozen=True)
class Contribution:
    """One submission (or provincial run) behind a figure, with what it contributed."""

    source_id: uuid.UUID
    kind: str  # "report_version", "record_version" or "rollup_run"
    unit: str | None
    programme: str | None
    report_id: uuid.UUID | None
    version_no: int | None
    value: Decimal
    record_id: uuid.UUID | None = None
    record_kind: str | None = None
    # Of a provincial run the province's instance pushed: its seq and fingerprint there.
    pushed_seq: int | None = None
    pushed_fingerprint: str | None = None


@dataclass(frozen=True)
class RunInput:
    """One source a run was computed from: an accepted report version (a provincial run) or
    a provincial run (a national one)."""

    source_id: uuid.UUID
    kind: str  # "report_version" or "rollup_run"
    unit: str | None
    programme: str | None
    report_id: uuid.UUID | None
    version_no: int | None


@dataclass(frozen=True)
class PhaseView:
    phase: cm.Phase
    programme_key: str
    years: dict[int, uuid.UUID]  # the published run of each year counted
    cells: list[Cell]
    targets: list[TargetProgress]
