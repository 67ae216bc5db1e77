"""Bodies of the budget endpoints: estimates and their lines, totals, dossiers, spending."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, Field

from nscl_api.types import Money, RequestModel, TaskGroupNumber, TaskKey, UnitKey
from nscl_domain.budget.dossiers import DossierView
from nscl_domain.budget.estimates import EstimateView, LineInput
from nscl_domain.budget.models import DossierStatus
from nscl_domain.types import STORED, IsoDate
from nscl_domain.workflow import ReviewStatus


class EstimateCreate(RequestModel):
    budget_year: int = Field(ge=2000, le=2100)


class EstimateLines(RequestModel):
    lines: list[LineInput] = Field(max_length=2000)


class LineRead(LineInput):
    id: uuid.UUID
    position: int
    amount: Money  # the same int as the line's input, described as money on the way out
    destination: UnitKey | None = Field(
        description="Unit key, set at submission by the routing of the budget year; null: "
        "other sources, or not submitted yet."
    )


class EstimateRead(BaseModel):
    id: uuid.UUID
    unit: UnitKey
    budget_year: int
    status: ReviewStatus
    revision: int
    total: Money = Field(description="Sum of the lines, whole đồng.")
    returned_reason: str | None
    submitted_at: datetime | None
    accepted_at: datetime | None
    lines: list[LineRead]

    @classmethod
    def of(cls, view: EstimateView) -> EstimateRead:
        e = view.estimate
        return cls(
            id=e.id,
            unit=view.unit_key,
            budget_year=e.budget_year,
            status=e.status,
            revision=e.revision,
            total=view.total,
            returned_reason=e.returned_reason,
            submitted_at=e.submitted_at,
            accepted_at=e.accepted_at,
            # Stored lines were checked when written: reading them back checks nothing again.
            lines=[
                LineRead.model_validate(
                    {
                        "id": line.id,
                        "position": line.position,
                        "destination": line.destination_key,
                        "task": line.task_key,
                        "activity": line.activity,
                        "amount": line.amount,
                        "funding_source": line.funding_source,
                        "chapter": line.chapter,
                        "loai_khoan": line.loai_khoan,
                        "muc_tieu_muc": line.muc_tieu_muc,
                    },
                    context=STORED,
                )
                for line in view.lines
            ],
        )


class TotalRow(BaseModel):
    funding_source: str
    destination: UnitKey | None = Field(
        description="Unit key; null: other sources, routed to neither."
    )
    unit: UnitKey
    task_group: TaskGroupNumber = Field(description="0: lines not tied to a task.")
    amount: Money
    lines: int


class BuildRequest(RequestModel):
    budget_year: int = Field(ge=2000, le=2100)


class AllocationRead(BaseModel):
    id: uuid.UUID = Field(description="Record spending against this id.")
    line_id: uuid.UUID
    amount: Money


def _task_group(value: Any) -> Any:
    # Dossiers built before task groups were numbers here said "3", and "none" for no task.
    if value == "none":
        return 0
    return int(value) if isinstance(value, str) and value.isdigit() else value


class DossierLine(BaseModel):
    """A line of the dossier, frozen as it was when built."""

    line_id: uuid.UUID
    unit: UnitKey
    task_group: Annotated[TaskGroupNumber, BeforeValidator(_task_group)] = Field(
        description="0: a line tied to no task."
    )
    activity: str
    amount: Money
    funding_source: str
    chapter: str | None
    loai_khoan: str | None
    muc_tieu_muc: str | None


class DossierDocument(BaseModel):
    """What the dossier says: its totals by unit, task group and funding source, its lines."""

    total: Money
    by_unit: dict[str, int] = Field(description="Unit key → whole đồng.")
    by_task_group: dict[str, int] = Field(
        description='Task group number, as a string since it is a map key ("0": no task) → '
        "whole đồng."
    )
    by_funding_source: dict[str, int] = Field(description="Funding source → whole đồng.")
    lines: list[DossierLine]
    fingerprint: str = Field(
        description="Of the lines and amounts: a rebuild that finds it "
        "unchanged makes no new version."
    )

    @classmethod
    def of(cls, document: dict[str, Any]) -> DossierDocument:
        groups: dict[str, int] = {}
        for group, amount in document["by_task_group"].items():
            number = str(_task_group(group))
            groups[number] = groups.get(number, 0) + amount
        return cls.model_validate({**document, "by_task_group": groups}, context=STORED)


class DossierRead(BaseModel):
    """A dossier: frozen totals by unit, task group and funding source, and its lines."""

    id: uuid.UUID
    budget_year: int
    destination: UnitKey
    version_no: int
    status: DossierStatus
    total: Money
    document: DossierDocument
    built_at: datetime
    sent_at: datetime | None
    acknowledged_at: datetime | None
    allocations: list[AllocationRead] = Field(default_factory=list)

    @classmethod
    def of(cls, view: DossierView) -> DossierRead:
        d = view.dossier
        return cls(
            id=d.id,
            budget_year=d.budget_year,
            destination=view.destination.key,
            version_no=d.version_no,
            status=d.status,
            total=d.total,
            document=DossierDocument.of(d.document),
            built_at=d.built_at,
            sent_at=d.sent_at,
            acknowledged_at=d.acknowledged_at,
            allocations=[
                AllocationRead(id=a.id, line_id=a.line_id, amount=a.amount)
                for a in view.allocations
            ],
        )


class Acknowledgement(RequestModel):
    allocations: dict[str, int] = Field(description="Line id → allocated whole đồng.")


class SpendingCreate(RequestModel):
    amount: int = Field(gt=0, le=10**15, strict=True, description="Whole đồng.")
    spent_on: IsoDate
    note: str = Field(default="", max_length=2000)


class SpendingRead(BaseModel):
    id: uuid.UUID
    allocation_id: uuid.UUID
    amount: Money
    spent_on: datetime
    note: str


class FollowUpRow(BaseModel):
    """Where the money of a task stands: estimated, allocated, spent (whole đồng)."""

    task: TaskKey | None
    unit: UnitKey
    estimated: Money
    allocated: Money
    spent: Money
