"""Bodies of the catalogue endpoints: organisation units, programmes, targets, tasks."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any, Literal

from pydantic import Field, StrictBool

from nscl_api.types import (
    IndicatorKey,
    Percent,
    PhaseKey,
    ProgrammeKey,
    Quantity,
    RequestModel,
    ResponseModel,
    TaskGroupNumber,
    TaskKey,
    UnitKey,
)
from nscl_domain.catalogue import models as m
from nscl_domain.catalogue.service import SuccessionView, TaskView, UnitDetail, UnitView
from nscl_domain.types import IsoDate

UnitKind = Literal[
    "government",
    "ministry",
    "provincial_peoples_committee",
    "department",
    "sub_department",
    "district_peoples_committee",
    "commune_peoples_committee",
    "office",
    "agency",
]
KEY_PATTERN = r"^[a-z0-9]+(-[a-z0-9]+)*$"


class SuccessionRead(ResponseModel):
    """A successor link between two units."""

    kind: Literal["merged_into", "split_into", "renamed_to", "absorbed_by_area"]
    effective: date
    predecessor: UnitKey
    successor: UnitKey
    note_en: str | None

    @classmethod
    def of(cls, view: SuccessionView) -> SuccessionRead:
        return cls(
            kind=view.succession.kind,  # type: ignore[arg-type]  # checked by the database
            effective=view.succession.effective,
            predecessor=view.predecessor.key,
            successor=view.successor.key,
            note_en=view.succession.note_en,
        )


class OrgUnitRead(ResponseModel):
    """An organisation unit and the period it existed in (valid_to exclusive, null = open)."""

    id: uuid.UUID
    key: str = Field(description="Stable identifier, usable in paths instead of the id.")
    kind: UnitKind = Field(examples=["district_peoples_committee"])
    code: str | None = Field(description="Official (GSO) code where one exists.", examples=["064"])
    name_vi: str = Field(examples=["Ủy ban nhân dân huyện Chợ Đồn"])
    name_en: str = Field(examples=["People's Committee of Chợ Đồn district"])
    abbreviation: str | None
    parent: UnitKey | None = Field(description="The parent unit; null: a root.")
    valid_from: date
    valid_to: date | None = Field(description="First day the unit no longer exists.")

    @classmethod
    def of(cls, view: UnitView | UnitDetail) -> OrgUnitRead:
        u = view.unit
        return cls(
            id=u.id,
            key=u.key,
            kind=u.kind,  # type: ignore[arg-type]  # written only through UnitKind
            code=u.code,
            name_vi=u.name_vi,
            name_en=u.name_en,
            abbreviation=u.abbreviation,
            parent=view.parent_key,
            valid_from=u.valid_from,
            valid_to=u.valid_to,
        )


class Contact(RequestModel):
    """A person reminded of the unit's deadlines."""

    name: str = Field(min_length=1, max_length=200, examples=["Nguyễn Văn An"])
    email: str = Field(
        max_length=320,
        pattern=r"^[^@\s<>,;]+@[^@\s<>,;]+\.[^@\s<>,;]+$",
        examples=["an.nv@backan.gov.vn"],
    )
    role: str = Field(default="", max_length=100, examples=["Chuyên viên phụ trách"])


class ContactRead(ResponseModel):
    """A person reminded of the unit's deadlines."""

    name: str
    email: str
    role: str


class OrgUnitDetail(OrgUnitRead):
    """A unit with the units it succeeded and that succeeded it."""

    predecessors: list[SuccessionRead]
    successors: list[SuccessionRead]
    contacts: list[ContactRead] | None = Field(
        description=(
            "Who is reminded of the unit's deadlines by e-mail; shown to administrators "
            "(catalogue.write) only, null to other readers."
        )
    )

    @classmethod
    def of_detail(cls, view: UnitDetail, *, show_contacts: bool = True) -> OrgUnitDetail:
        base = OrgUnitRead.of(view).model_dump()
        links = [SuccessionRead.of(s) for s in view.successions]
        contacts = (
            [ContactRead(**{"role": "", **c}) for c in view.unit.contacts or []]
            if show_contacts
            else None
        )
        return cls(
            **base,
            predecessors=[s for s in links if s.successor == view.unit.key],
            successors=[s for s in links if s.predecessor == view.unit.key],
            contacts=contacts,
        )


class OrgUnitCreate(RequestModel):
    key: str = Field(min_length=2, max_length=100, pattern=KEY_PATTERN, examples=["tn-xa-cho-don"])
    kind: UnitKind
    code: str | None = Field(default=None, max_length=20, pattern=r"^[0-9A-Za-z.-]+$")
    name_vi: str = Field(min_length=1, max_length=300)
    name_en: str = Field(min_length=1, max_length=300)
    abbreviation: str | None = Field(default=None, max_length=30)
    parent: str | None = Field(default=None, max_length=100, description="Parent id or key.")
    valid_from: IsoDate
    valid_to: IsoDate | None = None


class OrgUnitUpdate(RequestModel):
    """Fields to change; a field sent as null is cleared, a field left out is kept."""

    code: str | None = Field(default=None, max_length=20, pattern=r"^[0-9A-Za-z.-]+$")
    name_vi: str | None = Field(default=None, min_length=1, max_length=300)
    name_en: str | None = Field(default=None, min_length=1, max_length=300)
    abbreviation: str | None = Field(default=None, max_length=30)
    parent: str | None = Field(default=None, max_length=100)
    valid_from: IsoDate | None = None
    valid_to: IsoDate | None = None
    contacts: list[Contact] | None = Field(
        default=None,
        max_length=50,
        description="Replaces the people reminded of the unit's deadlines; null clears them.",
    )


class SuccessionCreate(RequestModel):
    successor: str = Field(max_length=100, description="Successor's id or key.")
    kind: Literal["merged_into", "split_into", "renamed_to", "absorbed_by_area"]
    effective: IsoDate
    note_en: str | None = Field(default=None, max_length=2000)


class PhaseRead(ResponseModel):
    id: uuid.UUID
    key: str
    name_vi: str
    name_en: str
    start_year: int
    end_year: int

    @classmethod
    def of(cls, phase: m.Phase | m.BaselinePeriod) -> PhaseRead:
        return cls(
            id=phase.id,
            key=phase.key,
            name_vi=phase.name_vi,
            name_en=phase.name_en,
            start_year=phase.start_year,
            end_year=phase.end_year,
        )


class ProgrammeRead(ResponseModel):
    """The national programme or a provincial plan implementing it."""

    id: uuid.UUID
    key: str = Field(examples=["bac-kan-nscl"])
    level: Literal["national", "provincial"]
    parent: ProgrammeKey | None = Field(description="The programme it implements.")
    owner_unit: UnitKey
    decision_no: str = Field(examples=["1852/QĐ-UBND"])
    decision_date: date
    decided_by_vi: str
    decided_by_en: str
    name_vi: str
    name_en: str
    start_year: int
    end_year: int
    four_eyes: bool = Field(
        description="Whether the client that submitted a report, plan, estimate or change "
        "request is refused its review (on unless an administrator waived it)."
    )

    @classmethod
    def of(cls, p: m.Programme) -> ProgrammeRead:
        return cls(
            id=p.id,
            key=p.key,
            level=p.level,  # type: ignore[arg-type]  # checked by the database
            parent=p.parent_key,
            owner_unit=p.owner_unit_key,
            decision_no=p.decision_no,
            decision_date=p.decision_date,
            decided_by_vi=p.decided_by_vi,
            decided_by_en=p.decided_by_en,
            name_vi=p.name_vi,
            name_en=p.name_en,
            start_year=p.start_year,
            end_year=p.end_year,
            four_eyes=p.four_eyes,
        )


class FourEyesUpdate(RequestModel):
    """Require or waive four eyes on a programme's reviews; the reason is audited."""

    required: StrictBool = Field(description="false lets a client review what it submitted.")
    reason: str = Field(min_length=3, max_length=2000, examples=["One officer runs the programme."])


class ProgrammeDetail(ProgrammeRead):
    phases: list[PhaseRead]


class Disaggregation(ResponseModel):
    dimension: str = Field(examples=["certification_level"])
    values: list[str] = Field(examples=[["national", "regional", "international"]])


class IndicatorRead(ResponseModel):
    id: uuid.UUID
    key: str = Field(examples=["experts-certified"])
    name_vi: str
    name_en: str
    unit_of_measure: str = Field(examples=["person"])
    aggregation_across_units: Literal["sum", "latest", "maximum", "minimum", "average"]
    aggregation_across_time: Literal["sum", "latest", "maximum"]
    disaggregations: list[Disaggregation]
    derived_from: str | None = Field(description="Records the values are derived from.")

    @classmethod
    def of(cls, i: m.Indicator) -> IndicatorRead:
        return cls(
            id=i.id,
            key=i.key,
            name_vi=i.name_vi,
            name_en=i.name_en,
            unit_of_measure=i.unit,
            aggregation_across_units=i.aggregation_across_units,  # type: ignore[arg-type]  # checked by the database
            aggregation_across_time=i.aggregation_across_time,  # type: ignore[arg-type]  # checked by the database
            disaggregations=[Disaggregation.model_validate(d) for d in i.disaggregations],
            derived_from=i.derived_from,
        )


class TargetRead(ResponseModel):
    """What an indicator must reach in a phase, and how achievement is judged."""

    id: uuid.UUID
    key: str
    indicator: IndicatorKey
    phase: PhaseKey
    kind: Literal[
        "phase_total", "minimum", "yearly_growth_range", "baseline_percentage", "share_percentage"
    ]
    value: Quantity | None = Field(description="For phase_total and minimum.")
    min_pct: Percent | None
    max_pct: Percent | None
    baseline_period: str | None = Field(description="Baseline period key.")
    disaggregation: dict[str, Any] | None
    approximate: bool = Field(description='The plan says "about".')
    text_vi: str
    text_en: str

    @classmethod
    def of(cls, row: tuple[m.Target, str, str, str | None]) -> TargetRead:
        t, indicator_key, phase_key, baseline_key = row
        return cls(
            id=t.id,
            key=t.key,
            indicator=indicator_key,
            phase=phase_key,
            kind=t.kind,  # type: ignore[arg-type]  # checked by the database
            value=t.value,
            min_pct=t.min_pct,
            max_pct=t.max_pct,
            baseline_period=baseline_key,
            disaggregation=t.disaggregation,
            approximate=t.approximate,
            text_vi=t.text_vi,
            text_en=t.text_en,
        )


class TaskGroupRead(ResponseModel):
    id: uuid.UUID
    key: str
    number: int
    name_vi: str
    name_en: str

    @classmethod
    def of(cls, g: m.TaskGroup) -> TaskGroupRead:
        return cls.model_validate(g, from_attributes=True)


class TaskRead(ResponseModel):
    id: uuid.UUID
    key: str
    number: str = Field(examples=["3.2"])
    task_group: TaskGroupNumber
    text_vi: str
    text_en: str
    lead_units: list[UnitKey]
    cooperating_units: list[UnitKey]

    @classmethod
    def of(cls, view: TaskView) -> TaskRead:
        return cls(
            id=view.task.id,
            key=view.task.key,
            number=view.task.number,
            task_group=view.group.number,
            text_vi=view.task.text_vi,
            text_en=view.task.text_en,
            lead_units=[u.key for u in view.lead_units],
            cooperating_units=[u.key for u in view.cooperating_units],
        )


RoleName = Literal[
    "lead",
    "standing_body",
    "recurrent_estimate_recipient",
    "investment_estimate_recipient",
    "reporting_unit",
    "cooperating_unit",
    "receives_provincial_report",
]


class RoleRead(ResponseModel):
    """A unit's part in a programme for a period (valid_to exclusive)."""

    id: uuid.UUID
    role: RoleName
    unit: UnitKey
    focal_agency: UnitKey | None = Field(
        description="For reporting units: the designated focal agency."
    )
    valid_from: date
    valid_to: date | None

    @classmethod
    def of(cls, row: tuple[m.ProgrammeRole, m.OrgUnit, m.OrgUnit | None]) -> RoleRead:
        role, unit, focal = row
        return cls(
            id=role.id,
            role=role.role,  # type: ignore[arg-type]  # checked by the database
            unit=unit.key,
            focal_agency=focal.key if focal else None,
            valid_from=role.valid_from,
            valid_to=role.valid_to,
        )


class RoleCreate(RequestModel):
    role: RoleName
    unit: str = Field(max_length=100, description="Unit id or key.")
    focal_agency: str | None = Field(
        default=None, max_length=100, description="For reporting units: focal agency id or key."
    )
    valid_from: IsoDate
    valid_to: IsoDate | None = None


class RoleUpdate(RequestModel):
    """Set or clear the first day the role no longer applies."""

    valid_to: IsoDate | None


class TaskExtensionCreate(RequestModel):
    key: str = Field(min_length=2, max_length=100, pattern=KEY_PATTERN)
    title_vi: str = Field(min_length=1, max_length=2000)
    title_en: str = Field(min_length=1, max_length=2000)
    unit: str = Field(max_length=100, description="Unit whose task continues (id or key).")
    decided_by: str = Field(
        max_length=100,
        description="The unit itself, or the provincial People's Committee (id or key).",
    )
    decision_no: str = Field(min_length=1, max_length=50, examples=["123/QĐ-UBND"])
    decision_date: IsoDate
    extended_to_year: int = Field(ge=2021, le=2030)
    task: str | None = Field(
        default=None, max_length=100, description="Task of this programme it continues as."
    )


class TaskExtensionRead(ResponseModel):
    """A task of the previous programme (to 2020) extended into this one."""

    id: uuid.UUID
    key: str
    title_vi: str
    title_en: str
    unit: UnitKey
    decided_by: UnitKey
    decision_no: str
    decision_date: date
    extended_to_year: int
    task: TaskKey | None = Field(description="Task of this programme it continues as.")

    @classmethod
    def of(cls, row: tuple[m.TaskExtension, m.OrgUnit, m.OrgUnit, str | None]) -> TaskExtensionRead:
        extension, unit, decider, task_key = row
        return cls(
            id=extension.id,
            key=extension.key,
            title_vi=extension.title_vi,
            title_en=extension.title_en,
            unit=unit.key,
            decided_by=decider.key,
            decision_no=extension.decision_no,
            decision_date=extension.decision_date,
            extended_to_year=extension.extended_to_year,
            task=task_key,
        )
