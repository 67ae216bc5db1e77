"""Bodies of the budget endpoints: estimates and their lines, totals, dossiers, spending."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import Field

from nscl_api.types import RequestModel, ResponseModel
from nscl_domain.budget.dossiers import DossierView
from nscl_domain.budget.estimates import EstimateView, LineInput
from nscl_domain.budget.models import DossierStatus, FundingSource
from nscl_domain.types import STORED, IsoDate
from nscl_domain.workflow import ReviewStatus


class EstimateCreate(RequestModel):
    budget_year: int = Field(ge=2000, le=2100)


class EstimateLines(RequestModel):
    lines: list[LineInput] = Field(max_length=2000)


class LineRead(LineInput):
    id: uuid.UUID
    position: int
    destination_unit_id: uuid.UUID | None = Field(
        description="Set at submission by the routing of the budget year; null: other sources."
    )


class EstimateRead(ResponseModel):
    id: uuid.UUID
    unit_id: uuid.UUID
    budget_year: int
    status: ReviewStatus
    revision: int
    total: int = Field(description="Sum of the lines, whole đồng.")
    returned_reason: str | None
    submitted_at: datetime | None
    accepted_at: datetime | None
    lines: list[LineRead]

    @classmethod
    def of(cls, view: EstimateView) -> EstimateRead:
        e = view.estimate
        return cls(
            id=e.id,
            unit_id=e.unit_id,
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
                        "destination_unit_id": line.destination_unit_id,
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


class TotalRow(ResponseModel):
    funding_source: FundingSource
    destination: str | None = Field(description="Unit key; null: other sources, routed to neither.")
    unit: str
    task_group: int = Field(description="0: lines not tied to a task.")
    amount: int
    lines: int


class BuildRequest(RequestModel):
    budget_year: int = Field(ge=2000, le=2100)


class AllocationRead(ResponseModel):
    id: uuid.UUID = Field(description="Record spending against this id.")
    line_id: uuid.UUID
    amount: int


class DossierRead(ResponseModel):
    """A dossier: frozen totals by unit, task group and funding source, and its lines."""

    id: uuid.UUID
    budget_year: int
    destination_unit_key: str
    version_no: int
    status: DossierStatus
    total: int
    document: dict[str, Any]
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
            destination_unit_key=view.destination.key,
            version_no=d.version_no,
            status=d.status,
            total=d.total,
            document=d.document,
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


class SpendingRead(ResponseModel):
    id: uuid.UUID
    allocation_id: uuid.UUID
    amount: int
    spent_on: datetime
    note: str


class FollowUpRow(ResponseModel):
    """Where the money of a task stands: estimated, allocated, spent (whole đồng)."""

    task: str | None
    unit: str
    estimated: int
    allocated: int
    spent: int
