"""Bodies of the plan endpoints: plans, their versions and change requests."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import Field

from nscl_api.types import IndicatorKey, Quantity, RequestModel, ResponseModel, UnitKey
from nscl_domain.plans import models as m
from nscl_domain.plans.changes import Decision
from nscl_domain.plans.content import PlanContent
from nscl_domain.plans.models import ChangeRequestStatus, PlanKind
from nscl_domain.plans.service import PlanView
from nscl_domain.types import STORED
from nscl_domain.workflow import ReviewStatus


class PlanCreate(RequestModel):
    kind: PlanKind
    start_year: int = Field(
        ge=2000, le=2100, description="Five-year: the first year of a phase; annual: the year."
    )


class PlanContentWrite(RequestModel):
    content: PlanContent


class PlannedTotal(ResponseModel):
    indicator: IndicatorKey
    year: int
    value: Quantity = Field(description="Combined over activities by the indicator's rule.")


class PlanSummary(ResponseModel):
    id: uuid.UUID
    unit: UnitKey
    kind: PlanKind
    start_year: int
    end_year: int
    status: ReviewStatus
    revision: int
    accepted_version_no: int | None = Field(description="The version in force, once accepted.")
    submitted_at: datetime | None
    submitted_by: str | None = Field(
        description="The client that submitted what is under review; four eyes: it may not "
        "accept or return it."
    )
    accepted_at: datetime | None

    @classmethod
    def of(cls, plan: m.Plan, unit: str) -> PlanSummary:
        return cls(
            id=plan.id,
            unit=unit,
            kind=plan.kind,
            start_year=plan.start_year,
            end_year=plan.end_year,
            status=plan.status,
            revision=plan.revision,
            accepted_version_no=plan.accepted_version_no,
            submitted_at=plan.submitted_at,
            submitted_by=plan.submitted_by,
            accepted_at=plan.accepted_at,
        )


class PlanRead(PlanSummary):
    returned_reason: str | None
    content: PlanContent
    planned_outputs: list[PlannedTotal]

    @classmethod
    def of_view(cls, view: PlanView) -> PlanRead:
        plan = view.plan
        return cls(
            **PlanSummary.of(plan, view.unit_key).model_dump(),
            returned_reason=plan.returned_reason,
            content=PlanContent.model_validate(plan.content, context=STORED),
            planned_outputs=[
                PlannedTotal(indicator=indicator, year=year, value=value)
                for (indicator, year), value in view.planned.items()
            ],
        )


class PlanVersionRead(ResponseModel):
    version_no: int
    kind: m.PlanVersionKind
    change_request_id: uuid.UUID | None = Field(description="Set on versions made by a change.")
    created_at: datetime
    created_by: str
    content: PlanContent

    @classmethod
    def of(cls, version: m.PlanVersion) -> PlanVersionRead:
        return cls(
            version_no=version.version_no,
            kind=version.kind,
            change_request_id=version.change_request_id,
            created_at=version.created_at,
            created_by=version.created_by,
            content=PlanContent.model_validate(version.content, context=STORED),
        )


class ChangeRequestCreate(RequestModel):
    reason: str = Field(min_length=3, max_length=5000, description="Why the plan must change.")
    content: PlanContent = Field(description="The plan as it would read after the change.")


class ChangeDecision(RequestModel):
    decision: Decision
    note: str = Field(min_length=3, max_length=5000, description="DOST's reasoning, kept.")


class ChangeRequestRead(ResponseModel):
    id: uuid.UUID
    plan_id: uuid.UUID
    unit: UnitKey
    status: ChangeRequestStatus
    reason: str
    base_version_no: int = Field(description="The version in force when it was proposed.")
    proposed_by: str
    proposed_at: datetime
    decided_by: str | None
    decided_at: datetime | None
    decision_note: str | None
    resulting_version_no: int | None = Field(description="The version an approval made.")
    proposed_content: PlanContent

    @classmethod
    def of(cls, request: m.PlanChangeRequest, unit: str) -> ChangeRequestRead:
        return cls(
            id=request.id,
            plan_id=request.plan_id,
            unit=unit,
            status=request.status,
            reason=request.reason,
            base_version_no=request.base_version_no,
            proposed_by=request.proposed_by,
            proposed_at=request.proposed_at,
            decided_by=request.decided_by,
            decided_at=request.decided_at,
            decision_note=request.decision_note,
            resulting_version_no=request.resulting_version_no,
            proposed_content=PlanContent.model_validate(request.proposed_content, context=STORED),
        )
