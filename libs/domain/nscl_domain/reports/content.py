"""What a report holds, and the figures its records determine."""

from __future__ import annotations

from collections import Counter
from decimal import Decimal
from typing import Literal

from pydantic import Field, StrictBool, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError
from stdnum.exceptions import ValidationError as TaxCodeError
from stdnum.vn import mst

from nscl_domain.types import InputModel, IsoDate, ItemText, Quantity

Solution = Literal[
    "iso_9001",
    "iso_14001",
    "iso_22000_haccp",
    "iso_50001",
    "iso_45001",
    "vietgap_globalgap",
    "organic",
    "traceability",
    "5s",
    "kaizen",
    "lean",
    "digital_management",
    "other",
]
CertificationLevel = Literal["national", "regional", "international"]
TaskStatus = Literal["not_started", "in_progress", "completed", "suspended"]


class IndicatorEntry(InputModel):
    indicator: str = Field(max_length=100, description="Indicator key.")
    disaggregation: dict[str, ItemText] = Field(
        default_factory=dict, description='e.g. {"trainee_group": "manager"}; {} is the total.'
    )
    value: Quantity = Field(max_digits=20, decimal_places=4)


class TaskProgressEntry(InputModel):
    task: str = Field(max_length=100, description="Task key of the programme.")
    status: TaskStatus
    narrative: str = Field(default="", max_length=20_000)


class Narrative(InputModel):
    """The sections of a Vietnamese report."""

    results: str = Field(default="", max_length=50_000, description="Kết quả đạt được.")
    shortcomings: str = Field(default="", max_length=50_000, description="Tồn tại, hạn chế.")
    causes: str = Field(default="", max_length=50_000, description="Nguyên nhân.")
    proposals: str = Field(default="", max_length=50_000, description="Đề xuất, kiến nghị.")


class SupportedEnterprise(InputModel):
    """An enterprise the unit supported, and what came of it."""

    tax_code: str = Field(
        description="Mã số thuế: 10 digits, or 13 with a branch suffix (0100109106-001)."
    )
    name: str = Field(min_length=1, max_length=300)
    solution: Solution
    certificate_issued: StrictBool = False
    certified_on: IsoDate | None = None
    model_enterprise: StrictBool = Field(
        default=False, description="Became a model (pilot) enterprise."
    )

    @field_validator("tax_code")
    @classmethod
    def _valid_tax_code(cls, value: str) -> str:
        try:
            return str(mst.validate(value))
        except TaxCodeError as exc:
            raise ValueError(f"{value!r} is not a valid Vietnamese tax code") from exc


class CertifiedExpert(InputModel):
    full_name: str = Field(min_length=1, max_length=200)
    level: CertificationLevel
    certified_on: IsoDate
    organisation: str = Field(default="", max_length=300)


# The most typed indicator values a report holds, however they are written (the draft's
# PUT, a spreadsheet import: its reader's row limit is this too) and read back.
MAX_INDICATOR_VALUES = 20_000


class ReportContent(InputModel):
    """The whole of a report; a draft holds it as it is being written."""

    indicator_values: list[IndicatorEntry] = Field(
        default_factory=list, json_schema_extra={"maxItems": MAX_INDICATOR_VALUES}
    )
    task_progress: list[TaskProgressEntry] = Field(default_factory=list, max_length=1000)
    narrative: Narrative = Field(default_factory=Narrative)
    enterprises: list[SupportedEnterprise] = Field(default_factory=list, max_length=20_000)
    experts: list[CertifiedExpert] = Field(default_factory=list, max_length=5000)
    answers: dict[str, ItemText] = Field(
        default_factory=dict, description="Answers to an ad hoc request's questions, by number."
    )

    @field_validator("indicator_values")
    @classmethod
    def _at_most_max_values(
        cls, values: list[IndicatorEntry], info: ValidationInfo
    ) -> list[IndicatorEntry]:
        # Checked on input only (not as max_length): a draft already stored is read back
        # whatever the limit became, never answered with a 500.
        if len(values) > MAX_INDICATOR_VALUES and not (info.context or {}).get("stored"):
            raise PydanticCustomError(
                "too_long",
                "List should have at most {max_length} items after validation, "
                "not {actual_length}",
                {"field_type": "List", "max_length": MAX_INDICATOR_VALUES,
                 "actual_length": len(values)},
            )  # fmt: skip
        return values


def disaggregation_key(parts: dict[str, str]) -> str:
    """Canonical form of a disaggregation: "dimension=value" pairs sorted, joined by ";"."""
    return ";".join(f"{k}={v}" for k, v in sorted(parts.items()))


# What an indicator's ``derived_from`` may name: a count over the report's records.
DERIVED_MEASURES = (
    "enterprises_supported",
    "model_enterprises",
    "iso_9001_certificates",
    "iso_14001_certificates",
    "experts_certified",
)


def derived_figures(content: ReportContent) -> dict[tuple[str, str], Decimal]:
    """Counts the records determine, by (measure, disaggregation); absent counts are zero."""
    figures: Counter[tuple[str, str]] = Counter({(measure, ""): 0 for measure in DERIVED_MEASURES})
    for enterprise in content.enterprises:
        figures[("enterprises_supported", "")] += 1
        if enterprise.model_enterprise:
            figures[("model_enterprises", "")] += 1
        if enterprise.certificate_issued and enterprise.solution == "iso_9001":
            figures[("iso_9001_certificates", "")] += 1
        if enterprise.certificate_issued and enterprise.solution == "iso_14001":
            figures[("iso_14001_certificates", "")] += 1
    for expert in content.experts:
        figures[("experts_certified", "")] += 1
        figures[("experts_certified", f"certification_level={expert.level}")] += 1
    return {key: Decimal(count) for key, count in figures.items()}
