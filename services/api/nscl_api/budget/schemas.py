"""Bodies of the budget endpoints: estimates and their lines, totals, dossiers, spending."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field

from nscl_api.types import Money, RequestModel, ResponseModel, TaskGroupNumber, TaskKey, UnitKey
from nscl_domain.budget.dossiers import DossierView
from nscl_domain.budget.estimates import EstimateView, LineInput
from nscl_domain.budget.models import AccountCode, Allocation, DossierStatus, FundingSource
from nscl_domain.budget.routing import Route
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


class EstimateRead(ResponseModel):
    id: uuid.UUID
    unit: UnitKey
    budget_year: int
    status: ReviewStatus
    revision: int
    total: Money = Field(description="Sum of the lines, whole đồng.")
    returned_reason: str | None
    submitted_at: datetime | None
    submitted_by: str | None = Field(
        description="The client that submitted what is under review; four eyes: it may not "
        "accept or return it."
    )
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
            submitted_by=e.submitted_by,
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


class TotalRow(ResponseModel):
    funding_source: FundingSource
    destination: UnitKey | None = Field(
        description="Unit key; null: other sources, routed to neither."
    )
    unit: UnitKey
    task_group: TaskGroupNumber = Field(description="0: lines not tied to a task.")
    amount: Money
    lines: int


class BuildRequest(RequestModel):
    budget_year: int = Field(ge=2000, le=2100)


class AllocationRead(ResponseModel):
    id: uuid.UUID = Field(description="Record spending against this id.")
    line_id: uuid.UUID
    amount: Money
    dossier_id: uuid.UUID = Field(description="The dossier it was recorded against.")
    recorded_at: datetime

    @classmethod
    def of(cls, a: Allocation) -> AllocationRead:
        return cls(
            id=a.id, line_id=a.line_id, amount=a.amount, dossier_id=a.dossier_id,
            recorded_at=a.recorded_at,
        )  # fmt: skip


def _task_group(value: Any) -> Any:
    # Dossiers built before task groups were numbers here said "3", and "none" for no task.
    if value == "none":
        return 0
    return int(value) if isinstance(value, str) and value.isdigit() else value


class DossierLine(ResponseModel):
    """A line of the dossier, frozen as it was when built."""

    line_id: uuid.UUID
    unit: UnitKey
    task_group: Annotated[TaskGroupNumber, BeforeValidator(_task_group)] = Field(
        description="0: a line tied to no task."
    )
    activity: str
    amount: Money
    funding_source: FundingSource
    chapter: str | None
    loai_khoan: str | None
    muc_tieu_muc: str | None


class DossierDocument(ResponseModel):
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


class DossierRead(ResponseModel):
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
            allocations=[AllocationRead.of(a) for a in view.allocations],
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
    amount: Money
    spent_on: datetime
    note: str


class FollowUpRow(ResponseModel):
    """Where the money of a task stands: estimated, allocated, spent (whole đồng)."""

    task: TaskKey | None
    unit: UnitKey
    estimated: Money
    allocated: Money
    spent: Money


AccountCodeKind = Literal["chapter", "loai_khoan", "muc_tieu_muc"]


class AccountCodeRead(ResponseModel):
    """A code of the state budget chart of accounts that estimate lines may name."""

    kind: AccountCodeKind = Field(
        description="chapter: chương; loai_khoan: loại–khoản; muc_tieu_muc: mục–tiểu mục. "
        "An estimate line names it in the field of the same name.",
        examples=["loai_khoan"],
    )
    code: str = Field(examples=["100-104"])
    name_vi: str = Field(examples=["Hoạt động khoa học và công nghệ"])
    valid_from_year: int = Field(description="First budget year it is valid.", examples=[2026])
    valid_to_year: int | None = Field(
        description="Last budget year it is valid; null: still valid.", examples=[None]
    )
    source: str = Field(
        description="The circular that defines it.", examples=["TT 130/2025/TT-BTC"]
    )

    @classmethod
    def of(cls, c: AccountCode) -> AccountCodeRead:
        return cls(
            kind=c.kind,  # type: ignore[arg-type]  # str column, CHECK-limited to the Literal
            code=c.code, name_vi=c.name_vi, valid_from_year=c.valid_from_year,
            valid_to_year=c.valid_to_year, source=c.source,
        )  # fmt: skip


class BudgetRouteRead(ResponseModel):
    """Where estimate lines of one funding source go in a budget year."""

    funding_source: str = Field(examples=["recurrent_science"])
    role: str | None = Field(
        description="The programme role that receives the lines; null: routed to neither "
        "destination (other sources).",
        examples=["recurrent_estimate_recipient"],
    )
    destination: UnitKey | None = Field(
        description="Key of the unit holding the role on 1 January of the budget year.",
        examples=["tn-dof"],
    )

    @classmethod
    def of(cls, route: Route) -> BudgetRouteRead:
        return cls(
            funding_source=route.funding_source,
            role=route.role,
            destination=route.destination.key if route.destination else None,
        )
