"""Judge how far a programme target is achieved, from the values reported year by year.

Pure arithmetic: no I/O, every number a ``Decimal``. The one entry point is :func:`judge`;
it dispatches on :class:`TargetKind` to one function per kind.

Which values count
    Only years of the phase up to the as-of year (inclusive) count: the as-of year's own
    report is part of the picture, later years are not yet known. A year missing from
    ``values`` was not reported; it adds nothing to a total and is never read as zero
    growth. Values must be finite, non-negative ``Decimal`` (they are counts or shares):
    a negative value raises ``ValueError``, a float raises ``TypeError``.

Linear progress
    ``elapsed`` is the number of phase years up to and including the as-of year, clamped
    to ``0..length``; a count target of N requires ``N * elapsed / length`` by then.
    Statuses use exact cross-multiplied comparisons; ``expected`` and ``ratio_pct`` are
    rounded to 2 places (ROUND_HALF_EVEN) for reporting only.

Statuses, while the phase runs (as-of year <= phase end)
    - ``no_data``: nothing reported yet in the phase.
    - ``phase_total`` ("about N over the phase"): ``on_track`` if the cumulative total
      reaches the linear requirement, ``at_risk`` if it reaches 80 % of it, else
      ``off_track``. Reaching N early still reads ``on_track``: an "about N" total is
      judged at the end.
    - ``minimum`` ("at least N"): ``achieved`` as soon as the cumulative total reaches N,
      because reported counts cannot go down; otherwise ``on_track`` if it reaches the
      linear requirement rounded up to a whole unit, ``ceil(N * elapsed / length)``;
      ``at_risk`` if it is at most one unit short and either something has been achieved
      or the phase is not past its midpoint; else ``off_track``.
    - ``baseline_percentage`` ("phase total >= P % of the baseline period total"): the
      required total is ``baseline * P / 100``; ``achieved`` once reached (as for
      ``minimum``), otherwise judged by linear progress as ``phase_total``.
      **Zero baseline**: the ratio is undefined and reported as ``None``; any positive
      phase total achieves the target, since it exceeds every percentage of nothing; a
      phase total of zero is ``at_risk`` while the phase runs (one unit would do) and
      ``missed`` at the end, because an increase over nothing has to be something.
    - ``yearly_growth_range`` ("+min % to max % every year"): growth of a year is
      ``(v_y - v_{y-1}) / v_{y-1} * 100``, undefined when either year was not reported or
      the previous year is zero (zero to zero is 0 % growth). A defined year is
      ``below``, ``in_range`` or ``above``; above the range meets the target. ``on_track``
      if no defined year is below min, ``at_risk`` if exactly one is, else ``off_track``;
      ``no_data`` if no year has a defined growth. The year before the phase may be
      reported so that the first phase year has a growth.
    - ``share_percentage`` (a level such as "about 65 %" or "70–75 %"): the latest
      reported value of the phase is compared with min_pct: ``on_track`` if it reaches
      it (above max_pct is reported as ``above`` and still on track), ``at_risk`` if it
      reaches 80 % of it, else ``off_track``.

Statuses once the phase is over (as-of year > phase end): only ``achieved`` or ``missed``.
    A target with ``approximate`` set ("about N") is achieved at 90 % of its final bar
    (N, P % of the baseline, or min_pct); ``yearly_growth_range`` ignores the flag and is
    achieved when at least one year has a defined growth and none is below min_pct.
    Nothing reported means missed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_HALF_EVEN, Context, Decimal, localcontext
from enum import StrEnum
from typing import assert_never

APPROXIMATE_TOLERANCE = Decimal("0.10")
AT_RISK_SHARE = Decimal("0.80")

_HUNDRED = Decimal(100)
_ZERO = Decimal(0)
_CENT = Decimal("0.01")
# Inputs are at most Numeric(20, 4): 50 digits keep every product in the comparisons exact.
_ARITHMETIC = Context(prec=50, rounding=ROUND_HALF_EVEN)


class TargetKind(StrEnum):
    """How a target is expressed, and so how its achievement is judged."""

    PHASE_TOTAL = "phase_total"
    MINIMUM = "minimum"
    YEARLY_GROWTH_RANGE = "yearly_growth_range"
    BASELINE_PERCENTAGE = "baseline_percentage"
    SHARE_PERCENTAGE = "share_percentage"


class TargetStatus(StrEnum):
    """Where a target stands as of a year."""

    ON_TRACK = "on_track"
    AT_RISK = "at_risk"
    OFF_TRACK = "off_track"
    ACHIEVED = "achieved"
    MISSED = "missed"
    NO_DATA = "no_data"


class RangePosition(StrEnum):
    """Where a yearly growth or a share lies relative to the target range."""

    BELOW = "below"
    IN_RANGE = "in_range"
    ABOVE = "above"


@dataclass(frozen=True, kw_only=True)
class TargetSpec:
    """A target as the judge needs it: kind, figures and phase (years inclusive)."""

    kind: TargetKind
    value: Decimal | None = None
    min_pct: Decimal | None = None
    max_pct: Decimal | None = None
    phase_start: int
    phase_end: int
    approximate: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.kind, TargetKind):
            raise TypeError(f"kind must be a TargetKind, not {self.kind!r}")
        if self.phase_end < self.phase_start:
            raise ValueError(f"phase {self.phase_start}–{self.phase_end} ends before it starts")
        for name in ("value", "min_pct", "max_pct"):
            figure = getattr(self, name)
            if figure is not None:
                _check_decimal(figure, name)
        if self.kind in (TargetKind.PHASE_TOTAL, TargetKind.MINIMUM):
            self._check_count()
        else:
            self._check_percentages()

    def _check_count(self) -> None:
        if self.value is None or self.value <= 0:
            raise ValueError(f"a {self.kind} target needs a positive value, got {self.value}")
        if self.min_pct is not None or self.max_pct is not None:
            raise ValueError(f"a {self.kind} target takes a value, not min_pct/max_pct")

    def _check_percentages(self) -> None:
        if self.value is not None:
            raise ValueError(f"a {self.kind} target takes min_pct/max_pct, not a value")
        if self.min_pct is None:
            raise ValueError(f"a {self.kind} target needs min_pct")
        if self.max_pct is not None and self.max_pct < self.min_pct:
            raise ValueError(f"max_pct {self.max_pct} is below min_pct {self.min_pct}")
        if self.kind is TargetKind.BASELINE_PERCENTAGE:
            if self.min_pct <= 0:
                raise ValueError(
                    f"min_pct of a baseline_percentage must be positive: {self.min_pct}"
                )
            if self.max_pct is not None:
                raise ValueError("a baseline_percentage target takes no max_pct")
        if self.kind is TargetKind.SHARE_PERCENTAGE:
            top = self.min_pct if self.max_pct is None else self.max_pct
            if self.min_pct <= 0 or top > _HUNDRED:
                raise ValueError(
                    f"a share_percentage range must lie in (0, 100]: {self.min_pct}–{self.max_pct}"
                )


@dataclass(frozen=True, kw_only=True)
class YearDetail:
    """One phase year as the judge saw it; fields that do not apply to the kind are None."""

    year: int
    value: Decimal | None
    cumulative: Decimal | None = None
    growth_pct: Decimal | None = None
    position: RangePosition | None = None
    note: str = ""


@dataclass(frozen=True, kw_only=True)
class Achievement:
    """The verdict on a target as of a year, with the arithmetic that led to it."""

    kind: TargetKind
    status: TargetStatus
    actual: Decimal | None
    expected: Decimal | None
    ratio_pct: Decimal | None
    explanation: str
    per_year: tuple[YearDetail, ...] = ()


@dataclass(frozen=True)
class _Window:
    years: tuple[int, ...]
    elapsed: int
    length: int
    over: bool


def judge(
    target: TargetSpec,
    values: Mapping[int, Decimal],
    as_of_year: int,
    baseline_total: Decimal | None = None,
) -> Achievement:
    """Judge the achievement of ``target`` from yearly ``values`` as of ``as_of_year``."""
    match target.kind:
        case TargetKind.PHASE_TOTAL:
            return judge_phase_total(target, values, as_of_year)
        case TargetKind.MINIMUM:
            return judge_minimum(target, values, as_of_year)
        case TargetKind.YEARLY_GROWTH_RANGE:
            return judge_yearly_growth_range(target, values, as_of_year)
        case TargetKind.BASELINE_PERCENTAGE:
            return judge_baseline_percentage(target, values, as_of_year, baseline_total)
        case TargetKind.SHARE_PERCENTAGE:
            return judge_share_percentage(target, values, as_of_year)
        case _:
            assert_never(target.kind)


def judge_phase_total(
    target: TargetSpec, values: Mapping[int, Decimal], as_of_year: int
) -> Achievement:
    """Judge an "about N over the phase" target against the cumulative reported total."""
    _expect_kind(target, TargetKind.PHASE_TOTAL)
    with localcontext(_ARITHMETIC):
        checked = _checked(values)
        window = _window(target, as_of_year)
        goal = _present(target.value, "value")
        total, reported, details = _cumulate(checked, window.years)
        expected = goal * window.elapsed / window.length
        ratio = _round2(total / goal * _HUNDRED) if reported else None
        about = "about " if target.approximate else ""
        head = f"cumulative {_fmt(total)} of target {about}{_fmt(goal)}"
        if ratio is not None:
            head += f" ({ratio:f} %)"
        if window.over:
            bar = _final_bar(goal, target.approximate)
            status = TargetStatus.ACHIEVED if total >= bar else TargetStatus.MISSED
            tail = _final_words(target, bar)
        elif not reported:
            status = TargetStatus.NO_DATA
            tail = _nothing_words(target, as_of_year)
        else:
            status = _linear_status(total, goal, window)
            tail = _linear_words(as_of_year, window, expected)
        return Achievement(
            kind=target.kind,
            status=status,
            actual=total if reported else None,
            expected=_round2(expected),
            ratio_pct=ratio,
            explanation=f"{head}; {tail}",
            per_year=details,
        )


def judge_minimum(
    target: TargetSpec, values: Mapping[int, Decimal], as_of_year: int
) -> Achievement:
    """Judge an "at least N" target, achieved as soon as the cumulative total reaches N."""
    _expect_kind(target, TargetKind.MINIMUM)
    with localcontext(_ARITHMETIC):
        checked = _checked(values)
        window = _window(target, as_of_year)
        goal = _present(target.value, "value")
        total, reported, details = _cumulate(checked, window.years)
        # A fraction of a model enterprise cannot exist: the linear share is due in whole units.
        required = (goal * window.elapsed / window.length).to_integral_value(ROUND_CEILING)
        ratio = _round2(total / goal * _HUNDRED) if reported else None
        head = f"cumulative {_fmt(total)} of at least {_fmt(goal)}"
        if ratio is not None:
            head += f" ({ratio:f} %)"
        early = 2 * window.elapsed <= window.length
        if reported and total >= goal:
            status = TargetStatus.ACHIEVED
            tail = "reached, and a count cannot fall back"
        elif window.over:
            bar = _final_bar(goal, target.approximate)
            status = TargetStatus.ACHIEVED if total >= bar else TargetStatus.MISSED
            tail = _final_words(target, bar)
        elif not reported:
            status = TargetStatus.NO_DATA
            tail = _nothing_words(target, as_of_year)
        else:
            if total >= required:
                status = TargetStatus.ON_TRACK
            elif total >= required - 1 and (total > 0 or early):
                status = TargetStatus.AT_RISK
            else:
                status = TargetStatus.OFF_TRACK
            tail = (
                f"linear progress by {as_of_year} ({window.elapsed} of {window.length} years) "
                f"requires {_fmt(required)} (rounded up)"
            )
        return Achievement(
            kind=target.kind,
            status=status,
            actual=total if reported else None,
            expected=required,
            ratio_pct=ratio,
            explanation=f"{head}; {tail}",
            per_year=details,
        )


def judge_baseline_percentage(
    target: TargetSpec,
    values: Mapping[int, Decimal],
    as_of_year: int,
    baseline_total: Decimal | None,
) -> Achievement:
    """Judge a "phase total >= P % of the baseline period total" target."""
    _expect_kind(target, TargetKind.BASELINE_PERCENTAGE)
    if baseline_total is None:
        raise ValueError("a baseline_percentage target needs baseline_total")
    _check_decimal(baseline_total, "baseline_total")
    if baseline_total < 0:
        raise ValueError(f"baseline_total is negative ({baseline_total}): a count cannot be")
    with localcontext(_ARITHMETIC):
        checked = _checked(values)
        window = _window(target, as_of_year)
        pct = _present(target.min_pct, "min_pct")
        required = baseline_total * pct / _HUNDRED
        total, reported, details = _cumulate(checked, window.years)
        expected = required * window.elapsed / window.length
        head = f"cumulative {_fmt(total)} against baseline {_fmt(baseline_total)}"
        ratio: Decimal | None = None
        if baseline_total.is_zero():
            head += f" (ratio undefined; target ≥ {_fmt(pct)} % of nothing)"
            status = _zero_baseline_status(total, reported, window)
            if status is TargetStatus.ACHIEVED:
                tail = "any positive total exceeds a zero baseline"
            elif status is TargetStatus.NO_DATA:
                tail = _nothing_words(target, as_of_year)
            else:
                tail = (
                    "nothing achieved yet; against a zero baseline any positive total achieves it"
                )
        else:
            ratio = _round2(total / baseline_total * _HUNDRED) if reported else None
            if ratio is not None:
                head += f" = {ratio:f} %"
            head += f" (target ≥ {_fmt(pct)} %, i.e. {_fmt(_round2(required))})"
            if reported and total >= required:
                status = TargetStatus.ACHIEVED
                tail = "reached, and a count cannot fall back"
            elif window.over:
                bar = _final_bar(required, target.approximate)
                status = TargetStatus.ACHIEVED if total >= bar else TargetStatus.MISSED
                tail = _final_words(target, bar)
            elif not reported:
                status = TargetStatus.NO_DATA
                tail = _nothing_words(target, as_of_year)
            else:
                status = _linear_status(total, required, window)
                tail = _linear_words(as_of_year, window, expected)
        return Achievement(
            kind=target.kind,
            status=status,
            actual=total if reported else None,
            expected=_round2(expected),
            ratio_pct=ratio,
            explanation=f"{head}; {tail}",
            per_year=details,
        )


def judge_yearly_growth_range(
    target: TargetSpec, values: Mapping[int, Decimal], as_of_year: int
) -> Achievement:
    """Judge a "+min % to max % every year versus the previous year" target."""
    _expect_kind(target, TargetKind.YEARLY_GROWTH_RANGE)
    with localcontext(_ARITHMETIC):
        checked = _checked(values)
        window = _window(target, as_of_year)
        low = _present(target.min_pct, "min_pct")
        high = target.max_pct
        details = tuple(_growth_year(checked, year, low, high) for year in window.years)
        defined = [d for d in details if d.growth_pct is not None]
        below = [d.year for d in details if d.position is RangePosition.BELOW]
        span = f"{_fmt(low)}–{_fmt(high)} %" if high is not None else f"≥ {_fmt(low)} %"
        head = (
            f"growth defined for {len(defined)} of {len(details)} phase years "
            f"to {as_of_year} (target {span} a year)"
        )
        if below:
            head += "; below in " + ", ".join(str(year) for year in below)
        if window.over:
            met = bool(defined) and not below
            status = TargetStatus.ACHIEVED if met else TargetStatus.MISSED
            tail = f"phase {target.phase_start}–{target.phase_end} is over"
        elif not defined:
            status = TargetStatus.NO_DATA
            tail = "no year yet has both its own and the previous year's value"
        else:
            if not below:
                status, tail = TargetStatus.ON_TRACK, "no year below the minimum so far"
            elif len(below) == 1:
                status, tail = TargetStatus.AT_RISK, "one year below the minimum"
            else:
                status, tail = TargetStatus.OFF_TRACK, f"{len(below)} years below the minimum"
        latest = defined[-1] if defined else None
        if latest is not None and latest.growth_pct is not None:
            head += f"; latest {latest.year}: {latest.growth_pct:+f} % ({latest.position})"
        return Achievement(
            kind=target.kind,
            status=status,
            actual=latest.growth_pct if latest is not None else None,
            expected=low,
            ratio_pct=None,
            explanation=f"{head}; {tail}",
            per_year=details,
        )


def judge_share_percentage(
    target: TargetSpec, values: Mapping[int, Decimal], as_of_year: int
) -> Achievement:
    """Judge a percentage level by the latest value reported in the phase."""
    _expect_kind(target, TargetKind.SHARE_PERCENTAGE)
    with localcontext(_ARITHMETIC):
        checked = _checked(values)
        for year, share in checked.items():
            if share > _HUNDRED:
                raise ValueError(f"share for {year} is {share} %: a share cannot exceed 100 %")
        window = _window(target, as_of_year)
        low = _present(target.min_pct, "min_pct")
        high = target.max_pct
        details = tuple(
            YearDetail(
                year=year, value=checked[year], position=_position_of(checked[year], low, high)
            )
            if year in checked
            else YearDetail(year=year, value=None, note="not reported")
            for year in window.years
        )
        reported = [d for d in details if d.value is not None]
        about = "about " if target.approximate else ""
        span = f"{_fmt(low)}–{_fmt(high)} %" if high is not None else f"{_fmt(low)} %"
        latest = reported[-1] if reported else None
        if latest is None or latest.value is None:
            status = TargetStatus.MISSED if window.over else TargetStatus.NO_DATA
            return Achievement(
                kind=target.kind,
                status=status,
                actual=None,
                expected=low,
                ratio_pct=None,
                explanation=f"{_nothing_words(target, as_of_year)} (target {about}{span})",
                per_year=details,
            )
        share = latest.value
        ratio = _round2(share / low * _HUNDRED)
        head = (
            f"latest {latest.year}: {_fmt(share)} % against target {about}{span} "
            f"({latest.position}; {ratio:f} % of the minimum)"
        )
        if window.over:
            bar = _final_bar(low, target.approximate)
            status = TargetStatus.ACHIEVED if share >= bar else TargetStatus.MISSED
            tail = _final_words(target, bar)
        elif share >= low:
            status = TargetStatus.ON_TRACK
            tail = "at or above the minimum"
        else:
            status = (
                TargetStatus.AT_RISK if share >= low * AT_RISK_SHARE else TargetStatus.OFF_TRACK
            )
            tail = f"at risk from {_fmt(_round2(low * AT_RISK_SHARE))} %"
        return Achievement(
            kind=target.kind,
            status=status,
            actual=share,
            expected=low,
            ratio_pct=ratio,
            explanation=f"{head}; {tail}",
            per_year=details,
        )


def _expect_kind(target: TargetSpec, kind: TargetKind) -> None:
    if target.kind is not kind:
        raise ValueError(f"a {target.kind} target cannot be judged as {kind}")


def _check_decimal(number: object, name: str) -> None:
    # A float has already lost the decimal digits the plan and the reports were written in.
    if not isinstance(number, Decimal):
        raise TypeError(f"{name} must be a Decimal, not {type(number).__name__}")
    if not number.is_finite():
        raise ValueError(f"{name} must be finite, got {number}")


def _checked(values: Mapping[int, Decimal]) -> dict[int, Decimal]:
    checked: dict[int, Decimal] = {}
    for year, number in values.items():
        _check_decimal(number, f"the value for {year}")
        if number < 0:
            raise ValueError(f"the value for {year} is negative ({number}): a count cannot be")
        # -0 would print as "-0" in explanations.
        checked[year] = _ZERO if number.is_zero() else number
    return checked


def _present(figure: Decimal | None, name: str) -> Decimal:
    if figure is None:
        raise ValueError(f"the target has no {name}")
    return figure


def _window(target: TargetSpec, as_of_year: int) -> _Window:
    length = target.phase_end - target.phase_start + 1
    elapsed = min(max(as_of_year - target.phase_start + 1, 0), length)
    years = tuple(range(target.phase_start, target.phase_start + elapsed))
    return _Window(years=years, elapsed=elapsed, length=length, over=as_of_year > target.phase_end)


def _cumulate(
    values: Mapping[int, Decimal], years: tuple[int, ...]
) -> tuple[Decimal, bool, tuple[YearDetail, ...]]:
    total = _ZERO
    reported = False
    details: list[YearDetail] = []
    for year in years:
        number = values.get(year)
        if number is not None:
            total += number
            reported = True
        details.append(
            YearDetail(
                year=year,
                value=number,
                cumulative=total,
                note="" if number is not None else "not reported",
            )
        )
    return total, reported, tuple(details)


def _linear_status(total: Decimal, required: Decimal, window: _Window) -> TargetStatus:
    # Cross-multiplied so that no rounded quotient decides a boundary case.
    have = total * window.length
    need = required * window.elapsed
    if have >= need:
        return TargetStatus.ON_TRACK
    if have >= need * AT_RISK_SHARE:
        return TargetStatus.AT_RISK
    return TargetStatus.OFF_TRACK


def _zero_baseline_status(total: Decimal, reported: bool, window: _Window) -> TargetStatus:
    if total > 0:
        return TargetStatus.ACHIEVED
    if window.over:
        return TargetStatus.MISSED
    return TargetStatus.AT_RISK if reported else TargetStatus.NO_DATA


def _growth_year(
    values: Mapping[int, Decimal], year: int, low: Decimal, high: Decimal | None
) -> YearDetail:
    current = values.get(year)
    previous = values.get(year - 1)
    if current is None:
        return YearDetail(year=year, value=None, note="not reported")
    if previous is None:
        return YearDetail(year=year, value=current, note=f"{year - 1} not reported")
    if previous.is_zero():
        if not current.is_zero():
            return YearDetail(year=year, value=current, note=f"{year - 1} was zero")
        return YearDetail(
            year=year,
            value=current,
            growth_pct=_round2(_ZERO),
            position=_position_of(_ZERO, low, high),
        )
    # Classified on (v_y - v_prev) * 100 against pct * v_prev: exact, unlike the quotient.
    change = (current - previous) * _HUNDRED
    if change < low * previous:
        position = RangePosition.BELOW
    elif high is not None and change > high * previous:
        position = RangePosition.ABOVE
    else:
        position = RangePosition.IN_RANGE
    return YearDetail(
        year=year,
        value=current,
        growth_pct=_round2(change / previous),
        position=position,
    )


def _position_of(number: Decimal, low: Decimal, high: Decimal | None) -> RangePosition:
    if number < low:
        return RangePosition.BELOW
    if high is not None and number > high:
        return RangePosition.ABOVE
    return RangePosition.IN_RANGE


def _final_bar(goal: Decimal, approximate: bool) -> Decimal:
    return goal * (1 - APPROXIMATE_TOLERANCE) if approximate else goal


def _final_words(target: TargetSpec, bar: Decimal) -> str:
    words = f"phase {target.phase_start}–{target.phase_end} is over; achieved at ≥ {_fmt(bar)}"
    if target.approximate:
        words += " (about: 10 % tolerance)"
    return words


def _linear_words(as_of_year: int, window: _Window, expected: Decimal) -> str:
    return (
        f"linear progress by {as_of_year} ({window.elapsed} of {window.length} years) "
        f"requires {_fmt(_round2(expected))}"
    )


def _nothing_words(target: TargetSpec, as_of_year: int) -> str:
    last = min(as_of_year, target.phase_end)
    if last < target.phase_start:
        return f"the phase {target.phase_start}–{target.phase_end} has not started by {as_of_year}"
    return f"nothing reported for {target.phase_start}–{last}"


def _round2(number: Decimal) -> Decimal:
    rounded = number.quantize(_CENT, rounding=ROUND_HALF_EVEN)
    return rounded.copy_abs() if rounded.is_zero() else rounded


def _fmt(number: Decimal) -> str:
    return f"{number.normalize():f}"
