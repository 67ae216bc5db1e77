"""Validation of a report on submission. The rules are data: severity and parameters are
stored per rule and listed by the API; the checks themselves are the functions below."""

# ruff: noqa: E501 - one finding per line reads better than wrapped message strings

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from nscl_domain.errors import FieldProblem, Invalid
from nscl_domain.reports.content import ReportContent, derived_figures, disaggregation_key

Severity = Literal["error", "warning"]
COUNT_UNITS_EXCEPT = frozenset({"percent"})


@dataclass(frozen=True)
class RuleSetting:
    """A rule as stored: errors block submission, warnings are kept with the version."""

    code: str
    severity: Severity
    enabled: bool
    description: str
    params: Mapping[str, Any] = field(default_factory=dict)


DEFAULT_RULES: tuple[RuleSetting, ...] = (
    RuleSetting("unknown_indicator", "error", True, "A figure names an indicator the programme does not have."),
    RuleSetting("derived_indicator_typed", "error", True, "A figure derived from records (enterprises, experts) is typed instead of reported as records."),
    RuleSetting("unknown_disaggregation", "error", True, "A disaggregation the indicator does not have."),
    RuleSetting("duplicate_figure", "error", True, "The same indicator and disaggregation twice."),
    RuleSetting("negative_value", "error", True, "A count or percentage below zero."),
    RuleSetting("fractional_count", "error", True, "A count that is not a whole number."),
    RuleSetting("percent_out_of_range", "error", True, "A percentage above 100."),
    RuleSetting("indicator_not_requested", "error", True, "An ad hoc report carries an indicator the request did not ask for."),
    RuleSetting("unknown_task", "error", True, "Progress reported on a task the programme does not have."),
    RuleSetting("record_outside_year", "error", True, "A certificate or expert certification dated outside the reporting year."),
    RuleSetting("iso_14001_above_certified", "error", True, "More ISO 14001 certificates than enterprises supported."),
    RuleSetting("yearly_jump", "warning", True, "A figure more than `factor` times, or less than 1/`factor` of, the unit's accepted figure for the previous year.", {"factor": 3}),
    RuleSetting("unanswered_question", "warning", True, "A question of an ad hoc request is left unanswered."),
)  # fmt: skip


class RuleParams(BaseModel):
    """Parameters of a rule: none unless the rule's own model names some. Strict, so a
    boolean is not taken for a number, and closed, so a misspelt key is an error."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class YearlyJumpParams(RuleParams):
    factor: float = Field(
        default=3,
        gt=1,
        le=1000,
        allow_inf_nan=False,
        description="How many times the previous year's figure a figure may be, either way.",
    )


RULE_PARAMS: dict[str, type[RuleParams]] = {"yearly_jump": YearlyJumpParams}
"""The parameter model of each rule by code; a rule not listed takes no parameters."""


def params_model(code: str) -> type[RuleParams]:
    """The model of the parameters rule ``code`` takes."""
    return RULE_PARAMS.get(code, RuleParams)


def validate_params(code: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """Check parameters given for rule ``code``; return the ones given, typed."""
    try:
        parsed = params_model(code).model_validate(dict(params))
    except ValidationError as exc:
        raise Invalid(
            f"The parameters of {code!r} are invalid in {exc.error_count()} place(s).",
            code="invalid_rule_params",
            fields=FieldProblem.all_of(exc, ("body", "params")),
        ) from exc
    # The numbers as given (20 stays 20, not 20.0): the model has checked them.
    return {name: params[name] for name in parsed.model_fields_set}


def effective_params(setting: RuleSetting) -> RuleParams:
    """The parameters a check runs with: stored ones that fit the rule, defaults for the rest.

    Rows written before parameters were typed may hold keys or values the rule no longer
    takes; a submission is checked with the defaults for those rather than failing."""
    model = params_model(setting.code)
    kept = {}
    for name, value in setting.params.items():
        if name in model.model_fields:
            try:
                model.model_validate({name: value})
            except ValidationError:
                continue
            kept[name] = value
    return model.model_validate(kept)


@dataclass(frozen=True)
class IndicatorRule:
    key: str
    unit: str
    derived_from: str | None
    disaggregations: Mapping[str, Sequence[str]]


@dataclass(frozen=True)
class CheckContext:
    year: int
    indicators: Mapping[str, IndicatorRule]
    task_keys: frozenset[str]
    requested_indicators: frozenset[str] | None = None
    questions: Sequence[str] = ()
    previous_year: Mapping[tuple[str, str], Decimal] = field(default_factory=dict)


@dataclass(frozen=True)
class Finding:
    code: str
    severity: Severity
    location: tuple[str | int, ...]
    message: str

    def as_json(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "severity": self.severity,
            "location": list(self.location),
            "message": self.message,
        }


Check = Callable[[ReportContent, CheckContext, RuleSetting], list[Finding]]


def final_figures(
    content: ReportContent, indicators: Mapping[str, IndicatorRule]
) -> dict[tuple[str, str], Decimal]:
    """Every figure of the report by (indicator key, disaggregation): typed ones and derived ones."""
    figures = {
        (entry.indicator, disaggregation_key(entry.disaggregation)): entry.value
        for entry in content.indicator_values
        if entry.indicator in indicators and indicators[entry.indicator].derived_from is None
    }
    derived = derived_figures(content)
    for key, indicator in indicators.items():
        if indicator.derived_from is None:
            continue
        for (measure, parts), value in derived.items():
            if measure == indicator.derived_from:
                figures[(key, parts)] = value
    return figures


def _entries(content: ReportContent) -> list[tuple[int, Any]]:
    return list(enumerate(content.indicator_values))


def _check_unknown_indicator(c: ReportContent, ctx: CheckContext, r: RuleSetting) -> list[Finding]:
    return [
        Finding(r.code, r.severity, ("indicator_values", i, "indicator"), f"No indicator {e.indicator!r} in this programme.")
        for i, e in _entries(c)
        if e.indicator not in ctx.indicators
    ]  # fmt: skip


def _check_derived_typed(c: ReportContent, ctx: CheckContext, r: RuleSetting) -> list[Finding]:
    return [
        Finding(r.code, r.severity, ("indicator_values", i, "indicator"), f"{e.indicator!r} is counted from the report's records; report the records instead.")
        for i, e in _entries(c)
        if e.indicator in ctx.indicators and ctx.indicators[e.indicator].derived_from is not None
    ]  # fmt: skip


def _check_disaggregation(c: ReportContent, ctx: CheckContext, r: RuleSetting) -> list[Finding]:
    found = []
    for i, e in _entries(c):
        indicator = ctx.indicators.get(e.indicator)
        if indicator is None:
            continue
        for dimension, value in e.disaggregation.items():
            allowed = indicator.disaggregations.get(dimension)
            if allowed is None or value not in allowed:
                found.append(Finding(r.code, r.severity, ("indicator_values", i, "disaggregation"), f"{dimension}={value} is not a disaggregation of {e.indicator!r}."))  # fmt: skip
    return found


def _check_duplicates(c: ReportContent, ctx: CheckContext, r: RuleSetting) -> list[Finding]:
    seen: dict[tuple[str, str], int] = {}
    found = []
    for i, e in _entries(c):
        key = (e.indicator, disaggregation_key(e.disaggregation))
        if key in seen:
            found.append(Finding(r.code, r.severity, ("indicator_values", i), f"{e.indicator!r} {key[1] or 'total'} is already given at position {seen[key]}."))  # fmt: skip
        else:
            seen[key] = i
    return found


def _check_negative(c: ReportContent, ctx: CheckContext, r: RuleSetting) -> list[Finding]:
    return [
        Finding(r.code, r.severity, ("indicator_values", i, "value"), f"{e.indicator!r} cannot be negative ({e.value}).")
        for i, e in _entries(c)
        if e.value < 0
    ]  # fmt: skip


def _check_fractional(c: ReportContent, ctx: CheckContext, r: RuleSetting) -> list[Finding]:
    return [
        Finding(r.code, r.severity, ("indicator_values", i, "value"), f"{e.indicator!r} counts whole {ctx.indicators[e.indicator].unit}s, not {e.value}.")
        for i, e in _entries(c)
        if e.indicator in ctx.indicators
        and ctx.indicators[e.indicator].unit not in COUNT_UNITS_EXCEPT
        and e.value != e.value.to_integral_value()
    ]  # fmt: skip


def _check_percent(c: ReportContent, ctx: CheckContext, r: RuleSetting) -> list[Finding]:
    return [
        Finding(r.code, r.severity, ("indicator_values", i, "value"), f"{e.indicator!r} is a percentage; {e.value} is above 100.")
        for i, e in _entries(c)
        if e.indicator in ctx.indicators and ctx.indicators[e.indicator].unit == "percent" and e.value > 100
    ]  # fmt: skip


def _check_requested(c: ReportContent, ctx: CheckContext, r: RuleSetting) -> list[Finding]:
    if ctx.requested_indicators is None:
        return []
    return [
        Finding(r.code, r.severity, ("indicator_values", i, "indicator"), f"The request did not ask for {e.indicator!r}.")
        for i, e in _entries(c)
        if e.indicator not in ctx.requested_indicators
    ]  # fmt: skip


def _check_tasks(c: ReportContent, ctx: CheckContext, r: RuleSetting) -> list[Finding]:
    return [
        Finding(r.code, r.severity, ("task_progress", i, "task"), f"No task {t.task!r} in this programme.")
        for i, t in enumerate(c.task_progress)
        if t.task not in ctx.task_keys
    ]  # fmt: skip


def _check_record_years(c: ReportContent, ctx: CheckContext, r: RuleSetting) -> list[Finding]:
    found = [
        Finding(r.code, r.severity, ("enterprises", i, "certified_on"), f"Certified on {e.certified_on}, outside {ctx.year}.")
        for i, e in enumerate(c.enterprises)
        if e.certified_on is not None and e.certified_on.year != ctx.year
    ]  # fmt: skip
    found += [
        Finding(r.code, r.severity, ("experts", i, "certified_on"), f"Certified on {x.certified_on}, outside {ctx.year}.")
        for i, x in enumerate(c.experts)
        if x.certified_on.year != ctx.year
    ]  # fmt: skip
    return found


def _figure_of(
    figures: Mapping[tuple[str, str], Decimal], ctx: CheckContext, measure: str
) -> Decimal:
    """Total of the figures that measure ``measure``: derived from records, or typed under it."""
    return sum(
        (
            value
            for (key, parts), value in figures.items()
            if parts == "" and (ctx.indicators[key].derived_from or key) == measure
        ),
        Decimal(0),
    )


def _check_iso_14001(c: ReportContent, ctx: CheckContext, r: RuleSetting) -> list[Finding]:
    figures = final_figures(c, ctx.indicators)
    iso = _figure_of(figures, ctx, "iso_14001_certificates")
    supported = _figure_of(figures, ctx, "enterprises_supported")
    if iso > supported:
        return [Finding(r.code, r.severity, ("indicator_values",), f"{iso} ISO 14001 certificates but {supported} enterprises supported.")]  # fmt: skip
    return []


def _check_jump(c: ReportContent, ctx: CheckContext, r: RuleSetting) -> list[Finding]:
    params = effective_params(r)
    factor = Decimal(str(params.factor if isinstance(params, YearlyJumpParams) else 3))
    found = []
    for (key, parts), value in sorted(final_figures(c, ctx.indicators).items()):
        before = ctx.previous_year.get((key, parts))
        if before is None or before == 0 or value == 0:
            continue
        if value > before * factor or value * factor < before:
            found.append(Finding(r.code, r.severity, ("indicator_values", key, parts or "total"), f"{key} {parts or 'total'}: {value} against {before} in {ctx.year - 1} (beyond ×{factor})."))  # fmt: skip
    return found


def _check_answers(c: ReportContent, ctx: CheckContext, r: RuleSetting) -> list[Finding]:
    return [
        Finding(r.code, r.severity, ("answers", str(n)), f"Question {n} is not answered: {q}")
        for n, q in enumerate(ctx.questions, start=1)
        if not c.answers.get(str(n), "").strip()
    ]  # fmt: skip


CHECKS: dict[str, Check] = {
    "unknown_indicator": _check_unknown_indicator,
    "derived_indicator_typed": _check_derived_typed,
    "unknown_disaggregation": _check_disaggregation,
    "duplicate_figure": _check_duplicates,
    "negative_value": _check_negative,
    "fractional_count": _check_fractional,
    "percent_out_of_range": _check_percent,
    "indicator_not_requested": _check_requested,
    "unknown_task": _check_tasks,
    "record_outside_year": _check_record_years,
    "iso_14001_above_certified": _check_iso_14001,
    "yearly_jump": _check_jump,
    "unanswered_question": _check_answers,
}


def run_checks(
    content: ReportContent, ctx: CheckContext, settings: Sequence[RuleSetting]
) -> list[Finding]:
    """Every finding of every enabled rule, errors and warnings alike."""
    findings: list[Finding] = []
    for setting in settings:
        if setting.enabled and setting.code in CHECKS:
            findings += CHECKS[setting.code](content, ctx, setting)
    return findings
