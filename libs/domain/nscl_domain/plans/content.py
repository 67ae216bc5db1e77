"""What a plan holds: activities tied to programme tasks, key products, integrated
programmes and planned outputs per indicator."""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal
from typing import Literal

from pydantic import Field, model_validator

from nscl_domain.types import InputModel, ItemText, Quantity

IntegratedProgramme = Literal[
    "new_rural_development",
    "sustainable_poverty_reduction",
    "ethnic_minority_mountainous",
    "ocop",
    "digital_transformation",
    "other",
]
"""National target programmes and provincial programmes an activity is carried out with:
Nông thôn mới, Giảm nghèo bền vững, Phát triển KT-XH vùng đồng bào DTTS và miền núi,
Mỗi xã một sản phẩm (OCOP), Chuyển đổi số; any other is named in ``detail``."""


class Integration(InputModel):
    programme: IntegratedProgramme
    detail: str = Field(default="", max_length=500, description="Name it when 'other'.")

    @model_validator(mode="after")
    def _other_is_named(self) -> Integration:
        if self.programme == "other" and not self.detail:
            raise ValueError("name the programme in 'detail' when it is 'other'")
        return self


class PlannedOutput(InputModel):
    indicator: str = Field(max_length=100, description="Indicator key.")
    year: int = Field(ge=2000, le=2100)
    value: Quantity = Field(ge=0, max_digits=20, decimal_places=4)


class Activity(InputModel):
    task: str | None = Field(default=None, max_length=100, description="Programme task key.")
    title: str = Field(min_length=1, max_length=2000)
    key_products: list[ItemText] = Field(
        default_factory=list,
        max_length=50,
        description="Key products of the sector or locality it targets (sản phẩm chủ lực).",
    )
    integrated_with: list[Integration] = Field(default_factory=list, max_length=20)
    planned_outputs: list[PlannedOutput] = Field(default_factory=list, max_length=200)

    @model_validator(mode="after")
    def _products_are_named(self) -> Activity:
        if any(not p.strip() or len(p) > 300 for p in self.key_products):
            raise ValueError("each key product is 1 to 300 characters")
        return self


class PlanContent(InputModel):
    focal_agency: str = Field(
        default="", max_length=500, description="The agency the unit designated to run it."
    )
    summary: str = Field(default="", max_length=50_000)
    activities: list[Activity] = Field(default_factory=list, max_length=500)


def planned_totals(content: PlanContent, rule_of: dict[str, str]) -> dict[tuple[str, int], Decimal]:
    """Planned outputs per indicator and year, combined over the activities by the
    indicator's rule across units (a sum for counts, the maximum for a ceiling, ...)."""
    values: dict[tuple[str, int], list[Decimal]] = defaultdict(list)
    for activity in content.activities:
        for output in activity.planned_outputs:
            values[(output.indicator, output.year)].append(output.value)
    return {
        key: _combine(rule_of.get(key[0], "sum"), found) for key, found in sorted(values.items())
    }


def _combine(rule: str, found: list[Decimal]) -> Decimal:
    if rule == "maximum":
        return max(found)
    if rule == "minimum":
        return min(found)
    if rule == "latest":
        return found[-1]
    if rule == "average":
        return sum(found, Decimal(0)) / len(found)
    return sum(found, Decimal(0))
