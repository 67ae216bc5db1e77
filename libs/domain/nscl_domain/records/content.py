"""What each kind of programme record holds, and the figures it determines.

A record's figures are counted from its content when it is submitted, never typed: each
measure here is what an indicator's ``derived_from`` names, as the measures of a report's
enterprises and experts are.
"""

from __future__ import annotations

from collections import Counter
from datetime import date
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import Field, TypeAdapter, field_validator, model_validator
from stdnum.exceptions import ValidationError as TaxCodeError
from stdnum.vn import mst

from nscl_domain.reports.content import CertificationLevel, Solution, disaggregation_key
from nscl_domain.text import fold
from nscl_domain.types import InputModel, IsoDate


class RecordKind(StrEnum):
    """The kinds of programme record (section II and IV of the plan)."""

    HONOUR = "honour"
    QUALITY_AWARD = "quality_award"
    TRAINING_COURSE = "training_course"
    COMMUNICATION = "communication"
    MODEL_ENTERPRISE = "model_enterprise"
    INSPECTION = "inspection"


class RecordEnterprise(InputModel):
    tax_code: str = Field(
        description="Mã số thuế: 10 digits, or 13 with a branch suffix (0100109106-001)."
    )
    name: str = Field(min_length=1, max_length=300)

    @field_validator("tax_code")
    @classmethod
    def _valid_tax_code(cls, value: str) -> str:
        try:
            return str(mst.validate(value))
        except TaxCodeError as exc:
            raise ValueError(f"{value!r} is not a valid Vietnamese tax code") from exc


# --- honours (khen thưởng) ---------------------------------------------------------------

HonourForm = Literal[
    "certificate_of_merit_chairman",  # Bằng khen of the provincial People's Committee Chairman
    "certificate_of_merit_director",  # Giấy khen of a department director
    "emulation_flag",
    "other",
]


class HonourRecipient(InputModel):
    recipient_kind: Literal["collective", "individual"]
    name: str = Field(min_length=1, max_length=300)
    organisation: str = Field(default="", max_length=300, description="Of an individual.")


class HonourRecord(InputModel):
    """A decision honouring collectives and individuals for the programme's work."""

    kind: Literal[RecordKind.HONOUR]
    decision_no: str = Field(min_length=1, max_length=50, examples=["1234/QĐ-UBND"])
    decision_date: IsoDate
    issued_by: str = Field(min_length=1, max_length=300, description="Who signed the decision.")
    form: HonourForm
    recipients: list[HonourRecipient] = Field(min_length=1, max_length=1000)


# --- National Quality Award (Giải thưởng Chất lượng Quốc gia) ---------------------------

AwardResult = Literal["gold", "silver", "not_awarded", "pending"]


class QualityAwardRecord(InputModel):
    """An enterprise the unit supported to enter the National Quality Award of a year."""

    kind: Literal[RecordKind.QUALITY_AWARD]
    enterprise: RecordEnterprise
    award_year: int = Field(ge=2000, le=2100, strict=True)
    result: AwardResult = Field(description="pending until the Ministry announces it.")
    support: str = Field(default="", max_length=5000, description="What support was given.")


# --- training courses ------------------------------------------------------------------


# Counts are strict: lax mode would read false as 0 trainees or 0 people reached.


class TraineeGroup(InputModel):
    group: Literal["manager", "worker"]
    trainees: int = Field(ge=0, le=1_000_000, strict=True)


class CourseExpert(InputModel):
    full_name: str = Field(min_length=1, max_length=200)
    level: CertificationLevel
    certified_on: IsoDate
    organisation: str = Field(default="", max_length=300)


class TrainingCourseRecord(InputModel):
    """A course held or joined, its trainees, and the experts it certified."""

    kind: Literal[RecordKind.TRAINING_COURSE]
    title: str = Field(min_length=1, max_length=500)
    organiser: str = Field(default="", max_length=300)
    starts_on: IsoDate
    ends_on: IsoDate
    trainee_groups: list[TraineeGroup] = Field(default_factory=list, max_length=10)
    experts: list[CourseExpert] = Field(default_factory=list, max_length=1000)

    @model_validator(mode="after")
    def _dates_in_order(self) -> TrainingCourseRecord:
        if self.ends_on < self.starts_on:
            raise ValueError("the course ends before it starts")
        for expert in self.experts:
            if expert.certified_on < self.starts_on:
                raise ValueError(f"{expert.full_name} is certified before the course starts")
        return self

    @property
    def trainees(self) -> int:
        """Trainees of every group: counted, not typed."""
        return sum(g.trainees for g in self.trainee_groups)


# --- communication -----------------------------------------------------------------------

Channel = Literal[
    "press", "television", "radio", "online", "social_media", "conference", "print", "other"
]


class CommunicationRecord(InputModel):
    """A communication activity of a campaign: its channel and how many it reached."""

    kind: Literal[RecordKind.COMMUNICATION]
    campaign: str = Field(min_length=1, max_length=500)
    channel: Channel
    held_on: IsoDate
    reach: int = Field(
        ge=0, le=1_000_000_000, strict=True, description="People reached (estimated)."
    )
    description: str = Field(default="", max_length=5000)


# --- model (pilot) enterprises ------------------------------------------------------------

ModelState = Literal["selected", "applying", "model", "discontinued"]


class ModelEnterpriseRecord(InputModel):
    """The enterprise guided to apply the full set of solutions and become a model."""

    kind: Literal[RecordKind.MODEL_ENTERPRISE]
    enterprise: RecordEnterprise
    solutions: list[Solution] = Field(min_length=1, max_length=20)
    state: ModelState
    started_on: IsoDate
    recognised_on: IsoDate | None = Field(
        default=None, description="When it was recognised as a model; required once it is."
    )
    progress: str = Field(default="", max_length=20_000, description="Its state, in words.")

    @model_validator(mode="after")
    def _recognised_when_model(self) -> ModelEnterpriseRecord:
        if self.state == "model" and self.recognised_on is None:
            raise ValueError("a model enterprise needs the date it was recognised")
        if self.recognised_on is not None and self.recognised_on < self.started_on:
            raise ValueError("recognised before it started")
        return self


# --- inspections (kiểm tra) ----------------------------------------------------------------

FollowUp = Literal["pending", "in_progress", "done"]


class Recommendation(InputModel):
    text: str = Field(min_length=1, max_length=5000)
    follow_up: FollowUp = "pending"
    note: str = Field(default="", max_length=5000, description="What was done about it.")


class InspectionRecord(InputModel):
    """DOST's inspection of a unit's implementation: findings, recommendations, follow-up."""

    kind: Literal[RecordKind.INSPECTION]
    inspected_unit: str = Field(max_length=100, description="Key of the unit inspected.")
    inspected_on: IsoDate
    findings: str = Field(min_length=1, max_length=50_000)
    recommendations: list[Recommendation] = Field(default_factory=list, max_length=200)


RecordContent = Annotated[
    HonourRecord
    | QualityAwardRecord
    | TrainingCourseRecord
    | CommunicationRecord
    | ModelEnterpriseRecord
    | InspectionRecord,
    Field(discriminator="kind"),
]
RECORD_CONTENT: TypeAdapter[RecordContent] = TypeAdapter(RecordContent)


def reference_date(content: RecordContent) -> date:
    """The day that places a record in a programme year."""
    match content:
        case HonourRecord():
            return content.decision_date
        case QualityAwardRecord():
            return date(content.award_year, 12, 31)
        case TrainingCourseRecord():
            return content.ends_on
        case CommunicationRecord():
            return content.held_on
        case ModelEnterpriseRecord():
            return content.recognised_on or content.started_on
        case InspectionRecord():
            return content.inspected_on


def title_of(content: RecordContent) -> str:
    """One line naming the record in lists."""
    match content:
        case HonourRecord():
            return f"{content.decision_no} ({len(content.recipients)} recipient(s))"
        case QualityAwardRecord():
            return f"{content.enterprise.name} — {content.award_year}"
        case TrainingCourseRecord():
            return content.title
        case CommunicationRecord():
            return content.campaign
        case ModelEnterpriseRecord():
            return content.enterprise.name
        case InspectionRecord():
            return f"{content.inspected_unit} — {content.inspected_on}"


def searchable(content: RecordContent) -> str:
    """The words a record is found by, folded (no diacritics, lower case)."""
    words: list[str] = [title_of(content)]
    match content:
        case HonourRecord():
            words += [content.issued_by, *(r.name for r in content.recipients)]
            words += [r.organisation for r in content.recipients]
        case QualityAwardRecord() | ModelEnterpriseRecord():
            words += [content.enterprise.tax_code]
        case TrainingCourseRecord():
            words += [content.organiser, *(e.full_name for e in content.experts)]
        case CommunicationRecord():
            words += [content.description]
        case InspectionRecord():
            words += [content.findings]
    return fold(" ".join(words))[:20_000]


# What an indicator's ``derived_from`` may name, counted over accepted programme records.
RECORD_MEASURES = (
    "honour_recipients",
    "quality_award_entrants",
    "experts_certified",
    "communication_activities",
    "communication_reach",
    "model_enterprises",
    "inspections_held",
    "inspection_recommendations",
)


def record_figures(content: RecordContent) -> dict[tuple[str, str], Decimal]:
    """What one record counts, by (measure, disaggregation); "" is the total. Zero counts
    are left out: a record feeds only what it adds to."""
    figures: Counter[tuple[str, str]] = Counter()

    def count(measure: str, by: dict[str, str] | None = None, n: int = 1) -> None:
        figures[(measure, "")] += n
        if by:
            figures[(measure, disaggregation_key(by))] += n

    match content:
        case HonourRecord():
            for recipient in content.recipients:
                count("honour_recipients", {"recipient_kind": recipient.recipient_kind})
        case QualityAwardRecord():
            count("quality_award_entrants", {"award_result": content.result})
        case TrainingCourseRecord():
            for expert in content.experts:
                count("experts_certified", {"certification_level": expert.level})
        case CommunicationRecord():
            count("communication_activities", {"channel": content.channel})
            count("communication_reach", n=content.reach)
        case ModelEnterpriseRecord():
            if content.state == "model":
                count("model_enterprises")
        case InspectionRecord():
            count("inspections_held")
            for recommendation in content.recommendations:
                count("inspection_recommendations", {"follow_up": recommendation.follow_up})
    return {key: Decimal(n) for key, n in figures.items() if n}
