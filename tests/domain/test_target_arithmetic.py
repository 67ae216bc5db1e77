"""Target arithmetic: properties of every target kind, and worked examples from the Bắc Kạn plan.

Pure functions, no database. Exact oracles use ``fractions.Fraction`` so that they do not
share the implementation's ``Decimal`` arithmetic.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal, localcontext
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from nscl_domain.catalogue.targets import (
    Achievement,
    RangePosition,
    TargetKind,
    TargetSpec,
    TargetStatus,
    judge,
    judge_baseline_percentage,
    judge_minimum,
    judge_phase_total,
    judge_share_percentage,
    judge_yearly_growth_range,
)

D = Decimal
Judge = Callable[[TargetSpec, Mapping[int, Decimal], int], Achievement]
FINAL = {TargetStatus.ACHIEVED, TargetStatus.MISSED}
# Worse to better; used only to check that more progress never reads as worse.
RANK = {
    TargetStatus.NO_DATA: 0,
    TargetStatus.OFF_TRACK: 1,
    TargetStatus.MISSED: 1,
    TargetStatus.AT_RISK: 2,
    TargetStatus.ON_TRACK: 3,
    TargetStatus.ACHIEVED: 4,
}

counts = st.decimals(min_value=0, max_value=10_000, places=2)
negatives = st.decimals(min_value=-10_000, max_value=D("-0.01"), places=2)
positive_goals = st.decimals(min_value=D("0.01"), max_value=1_000, places=2)


def _series(first: int, last: int) -> st.SearchStrategy[dict[int, Decimal]]:
    return st.dictionaries(st.integers(first, last), counts, max_size=last - first + 1)


def _round2(fraction: Fraction) -> Decimal:
    # round() on a Fraction rounds half to even, as the implementation must.
    return D(round(fraction * 100)) / 100


def _window_sum(values: dict[int, Decimal], start: int, last: int) -> Decimal:
    return sum((v for y, v in values.items() if start <= y <= last), D(0))


# Bắc Kạn plan (Decision 1852/QĐ-UBND), section 1.
EXPERTS_2021_2025 = TargetSpec(
    kind=TargetKind.PHASE_TOTAL, value=D(10), phase_start=2021, phase_end=2025, approximate=True
)
MODEL_ENTERPRISE = TargetSpec(kind=TargetKind.MINIMUM, value=D(1), phase_start=2021, phase_end=2030)
SUPPORTED_GROWTH = TargetSpec(
    kind=TargetKind.YEARLY_GROWTH_RANGE,
    min_pct=D("1.0"),
    max_pct=D("1.5"),
    phase_start=2021,
    phase_end=2030,
)
ISO_9001 = TargetSpec(
    kind=TargetKind.BASELINE_PERCENTAGE, min_pct=D(102), phase_start=2021, phase_end=2030
)
# National programme (Decision 1322/QĐ-TTg): the share kind is national only.
HARMONISED_2021_2025 = TargetSpec(
    kind=TargetKind.SHARE_PERCENTAGE,
    min_pct=D(65),
    phase_start=2021,
    phase_end=2025,
    approximate=True,
)
HARMONISED_2026_2030 = TargetSpec(
    kind=TargetKind.SHARE_PERCENTAGE, min_pct=D(70), max_pct=D(75), phase_start=2026, phase_end=2030
)


class TestPhaseTotal:
    def test_bac_kan_experts_seven_of_ten_by_2024_is_at_risk_with_the_arithmetic_shown(
        self,
    ) -> None:
        result = judge(
            EXPERTS_2021_2025, {2021: D(1), 2022: D(2), 2023: D(2), 2024: D(2)}, as_of_year=2024
        )
        assert result.status is TargetStatus.AT_RISK
        assert (result.actual, result.expected, result.ratio_pct) == (D(7), D(8), D("70.00"))
        assert "cumulative 7 of target about 10 (70.00 %)" in result.explanation
        assert "linear progress by 2024 (4 of 5 years) requires 8" in result.explanation

    def test_reaching_linear_progress_is_on_track_and_below_eighty_percent_is_off_track(
        self,
    ) -> None:
        assert judge(EXPERTS_2021_2025, {2021: D(2), 2022: D(2)}, 2022).status is (
            TargetStatus.ON_TRACK
        )
        assert judge(EXPERTS_2021_2025, {2021: D(3)}, 2022).status is TargetStatus.OFF_TRACK

    def test_about_ten_is_achieved_at_nine_after_the_phase_and_missed_at_eight(self) -> None:
        assert judge(EXPERTS_2021_2025, {2023: D(9)}, 2026).status is TargetStatus.ACHIEVED
        assert judge(EXPERTS_2021_2025, {2023: D(8)}, 2026).status is TargetStatus.MISSED

    def test_an_exact_target_has_no_tolerance(self) -> None:
        exact = TargetSpec(
            kind=TargetKind.PHASE_TOTAL, value=D(10), phase_start=2021, phase_end=2025
        )
        assert judge(exact, {2023: D(9)}, 2026).status is TargetStatus.MISSED

    def test_missing_years_add_nothing_and_nothing_reported_is_no_data(self) -> None:
        result = judge(EXPERTS_2021_2025, {2021: D(2), 2023: D(3)}, 2023)
        assert result.actual == D(5)
        assert [d.note for d in result.per_year] == ["", "not reported", ""]
        assert judge(EXPERTS_2021_2025, {}, 2023).status is TargetStatus.NO_DATA
        assert judge(EXPERTS_2021_2025, {}, 2023).ratio_pct is None

    def test_years_outside_the_phase_or_after_the_as_of_year_are_ignored(self) -> None:
        result = judge(EXPERTS_2021_2025, {2020: D(50), 2022: D(4), 2024: D(50)}, 2023)
        assert result.actual == D(4)

    @given(values=_series(2021, 2025), goal=positive_goals, as_of=st.integers(2025, 2030))
    def test_ratio_is_the_sum_over_the_target_times_a_hundred(
        self, values: dict[int, Decimal], goal: Decimal, as_of: int
    ) -> None:
        assume(values)
        spec = TargetSpec(kind=TargetKind.PHASE_TOTAL, value=goal, phase_start=2021, phase_end=2025)
        result = judge(spec, values, as_of)
        total = sum(values.values(), D(0))
        assert result.actual == total
        assert result.ratio_pct == _round2(Fraction(total) / Fraction(goal) * 100)

    @given(
        values=_series(2019, 2027),
        year=st.integers(2019, 2027),
        extra=counts,
        as_of=st.integers(2019, 2027),
        approximate=st.booleans(),
    )
    def test_adding_a_value_never_lowers_the_ratio_or_worsens_the_status(
        self,
        values: dict[int, Decimal],
        year: int,
        extra: Decimal,
        as_of: int,
        approximate: bool,
    ) -> None:
        spec = TargetSpec(
            kind=TargetKind.PHASE_TOTAL,
            value=D(10),
            phase_start=2021,
            phase_end=2025,
            approximate=approximate,
        )
        more = {**values, year: values.get(year, D(0)) + extra}
        _assert_not_worse(judge(spec, values, as_of), judge(spec, more, as_of))

    @given(values=_series(2021, 2025), as_of=st.integers(2026, 2040))
    def test_after_the_phase_only_achieved_or_missed(
        self, values: dict[int, Decimal], as_of: int
    ) -> None:
        assert judge(EXPERTS_2021_2025, values, as_of).status in FINAL

    @given(value=negatives)
    def test_negative_values_are_rejected(self, value: Decimal) -> None:
        with pytest.raises(ValueError, match="negative"):
            judge_phase_total(EXPERTS_2021_2025, {2021: D(1), 2022: value}, 2022)


class TestMinimum:
    def test_bac_kan_model_enterprise_over_the_phase(self) -> None:
        nothing_yet = {2021: D(0), 2022: D(0)}
        assert judge(MODEL_ENTERPRISE, {}, 2022).status is TargetStatus.NO_DATA
        assert judge(MODEL_ENTERPRISE, nothing_yet, 2022).status is TargetStatus.AT_RISK
        assert judge(MODEL_ENTERPRISE, nothing_yet, 2025).status is TargetStatus.AT_RISK
        # Past the midpoint with nothing to show.
        assert judge(MODEL_ENTERPRISE, nothing_yet, 2026).status is TargetStatus.OFF_TRACK
        assert judge(MODEL_ENTERPRISE, nothing_yet, 2031).status is TargetStatus.MISSED
        reached = judge(MODEL_ENTERPRISE, {**nothing_yet, 2023: D(1)}, 2023)
        assert reached.status is TargetStatus.ACHIEVED
        assert reached.ratio_pct == D("100.00")

    def test_linear_share_is_due_in_whole_units(self) -> None:
        hundred = TargetSpec(
            kind=TargetKind.MINIMUM, value=D(100), phase_start=2021, phase_end=2030
        )
        result = judge(hundred, {2021: D(10), 2022: D(10), 2023: D(9)}, 2023)
        assert result.expected == D(30)
        assert result.status is TargetStatus.AT_RISK
        assert judge(hundred, {2021: D(30)}, 2023).status is TargetStatus.ON_TRACK
        assert judge(hundred, {2021: D(28)}, 2023).status is TargetStatus.OFF_TRACK

    @given(values=_series(2021, 2030), reached_in=st.integers(2021, 2030), later=st.integers(0, 15))
    def test_once_reached_it_stays_achieved(
        self, values: dict[int, Decimal], reached_in: int, later: int
    ) -> None:
        values = {**values, reached_in: values.get(reached_in, D(0)) + 1}
        assert judge(MODEL_ENTERPRISE, values, reached_in + later).status is TargetStatus.ACHIEVED

    @given(
        values=_series(2019, 2032),
        year=st.integers(2019, 2032),
        extra=counts,
        as_of=st.integers(2019, 2032),
        goal=st.integers(1, 200),
    )
    def test_adding_a_value_never_lowers_the_ratio_or_worsens_the_status(
        self, values: dict[int, Decimal], year: int, extra: Decimal, as_of: int, goal: int
    ) -> None:
        spec = TargetSpec(kind=TargetKind.MINIMUM, value=D(goal), phase_start=2021, phase_end=2030)
        more = {**values, year: values.get(year, D(0)) + extra}
        _assert_not_worse(judge(spec, values, as_of), judge(spec, more, as_of))

    @given(values=_series(2021, 2030), as_of=st.integers(2031, 2040))
    def test_after_the_phase_only_achieved_or_missed(
        self, values: dict[int, Decimal], as_of: int
    ) -> None:
        assert judge(MODEL_ENTERPRISE, values, as_of).status in FINAL

    @given(value=negatives)
    def test_negative_values_are_rejected(self, value: Decimal) -> None:
        with pytest.raises(ValueError, match="negative"):
            judge_minimum(MODEL_ENTERPRISE, {2021: value}, 2022)


class TestYearlyGrowthRange:
    def test_bac_kan_supported_enterprises_growing_one_to_one_and_a_half_percent(self) -> None:
        values = {2020: D(200), 2021: D(202), 2022: D(205), 2023: D(208)}
        result = judge(SUPPORTED_GROWTH, values, 2023)
        assert result.status is TargetStatus.ON_TRACK
        assert [(d.year, d.growth_pct, d.position) for d in result.per_year] == [
            (2021, D("1.00"), RangePosition.IN_RANGE),
            (2022, D("1.49"), RangePosition.IN_RANGE),
            (2023, D("1.46"), RangePosition.IN_RANGE),
        ]
        assert result.actual == D("1.46")

    def test_growth_above_the_range_meets_the_target_but_is_reported_above(self) -> None:
        result = judge(SUPPORTED_GROWTH, {2020: D(200), 2021: D(220)}, 2021)
        assert result.per_year[0].position is RangePosition.ABOVE
        assert result.status is TargetStatus.ON_TRACK

    def test_one_year_below_is_at_risk_and_two_are_off_track(self) -> None:
        one = {2020: D(200), 2021: D(201), 2022: D(204)}
        two = {**one, 2023: D(204)}
        assert judge(SUPPORTED_GROWTH, one, 2022).status is TargetStatus.AT_RISK
        assert judge(SUPPORTED_GROWTH, two, 2023).status is TargetStatus.OFF_TRACK

    def test_a_missing_year_is_not_reported_rather_than_zero_growth(self) -> None:
        values = {2020: D(200), 2021: D(202), 2023: D(206), 2024: D(209)}
        result = judge(SUPPORTED_GROWTH, values, 2024)
        by_year = {d.year: d for d in result.per_year}
        assert by_year[2022].growth_pct is None
        assert by_year[2022].note == "not reported"
        assert by_year[2023].growth_pct is None
        assert by_year[2023].note == "2022 not reported"
        assert result.status is TargetStatus.ON_TRACK

    def test_previous_year_zero_is_undefined_and_zero_to_zero_is_zero_growth(self) -> None:
        result = judge(SUPPORTED_GROWTH, {2020: D(0), 2021: D(5), 2022: D(0), 2023: D(0)}, 2023)
        first, _, third = result.per_year
        assert (first.growth_pct, first.position, first.note) == (None, None, "2020 was zero")
        assert (third.growth_pct, third.position) == (D(0), RangePosition.BELOW)

    def test_no_defined_year_is_no_data(self) -> None:
        assert judge(SUPPORTED_GROWTH, {2021: D(5)}, 2022).status is TargetStatus.NO_DATA

    @given(values=_series(2019, 2031), as_of=st.integers(2019, 2031))
    def test_positions_and_status_follow_exact_growth_and_zero_never_divides(
        self, values: dict[int, Decimal], as_of: int
    ) -> None:
        result = judge(SUPPORTED_GROWTH, values, as_of)
        below = 0
        defined = 0
        for detail in result.per_year:
            current, previous = values.get(detail.year), values.get(detail.year - 1)
            if current is None or previous is None or (previous == 0 and current != 0):
                assert (detail.growth_pct, detail.position) == (None, None)
                continue
            growth = (
                Fraction(0) if previous == 0 else (Fraction(current) / Fraction(previous) - 1) * 100
            )
            expected = (
                RangePosition.BELOW
                if growth < Fraction(1)
                else RangePosition.ABOVE
                if growth > Fraction(3, 2)
                else RangePosition.IN_RANGE
            )
            assert detail.position is expected
            assert detail.growth_pct == _round2(growth)
            defined += 1
            below += expected is RangePosition.BELOW
        if as_of > 2030:
            met = defined > 0 and below == 0
            assert result.status is (TargetStatus.ACHIEVED if met else TargetStatus.MISSED)
        elif defined == 0:
            assert result.status is TargetStatus.NO_DATA
        elif below == 0:
            assert result.status is TargetStatus.ON_TRACK
        elif below == 1:
            assert result.status is TargetStatus.AT_RISK
        else:
            assert result.status is TargetStatus.OFF_TRACK

    @given(
        start=st.integers(100, 100_000),
        low=st.decimals(min_value=-5, max_value=20, places=2),
        width=st.decimals(min_value=D("0.1"), max_value=10, places=2),
        picks=st.lists(st.decimals(min_value=0, max_value=1, places=2), min_size=1, max_size=10),
    )
    def test_a_series_entirely_within_the_range_is_on_track(
        self, start: int, low: Decimal, width: Decimal, picks: list[Decimal]
    ) -> None:
        high = low + width
        spec = TargetSpec(
            kind=TargetKind.YEARLY_GROWTH_RANGE,
            min_pct=low,
            max_pct=high,
            phase_start=2021,
            phase_end=2030,
        )
        # Keep a margin of 0.01 point inside the range: the values are rounded to 4 places.
        growths = [low + D("0.01") + pick * (width - D("0.02")) for pick in picks]
        values = _grown(start, growths)
        result = judge(spec, values, 2020 + len(growths))
        assert result.status is TargetStatus.ON_TRACK
        assert all(d.position is RangePosition.IN_RANGE for d in result.per_year)

    @given(
        start=st.integers(100, 100_000),
        low=st.decimals(min_value=-5, max_value=20, places=2),
        shortfalls=st.lists(
            st.decimals(min_value=0, max_value=15, places=2), min_size=2, max_size=10
        ),
    )
    def test_a_series_entirely_below_the_range_is_off_track(
        self, start: int, low: Decimal, shortfalls: list[Decimal]
    ) -> None:
        # A margin of 0.01 point below the minimum, as above.
        growths = [low - D("0.01") - shortfall for shortfall in shortfalls]
        spec = TargetSpec(
            kind=TargetKind.YEARLY_GROWTH_RANGE,
            min_pct=low,
            max_pct=low + 1,
            phase_start=2021,
            phase_end=2030,
        )
        result = judge(spec, _grown(start, growths), 2020 + len(growths))
        assert result.status is TargetStatus.OFF_TRACK
        assert all(d.position is RangePosition.BELOW for d in result.per_year)

    @given(values=_series(2020, 2030), dropped=st.integers(2021, 2029))
    def test_dropping_a_year_leaves_only_it_and_the_next_year_undefined(
        self, values: dict[int, Decimal], dropped: int
    ) -> None:
        full = judge(SUPPORTED_GROWTH, values, 2030).per_year
        gappy = judge(SUPPORTED_GROWTH, {y: v for y, v in values.items() if y != dropped}, 2030)
        for before, after in zip(full, gappy.per_year, strict=True):
            if after.year in (dropped, dropped + 1):
                assert after.growth_pct is None
            else:
                assert (after.growth_pct, after.position) == (before.growth_pct, before.position)

    @given(values=_series(2020, 2030), as_of=st.integers(2031, 2040))
    def test_after_the_phase_only_achieved_or_missed(
        self, values: dict[int, Decimal], as_of: int
    ) -> None:
        assert judge(SUPPORTED_GROWTH, values, as_of).status in FINAL

    @given(value=negatives)
    def test_negative_values_are_rejected(self, value: Decimal) -> None:
        with pytest.raises(ValueError, match="negative"):
            judge_yearly_growth_range(SUPPORTED_GROWTH, {2020: D(5), 2021: value}, 2021)


class TestBaselinePercentage:
    def test_bac_kan_iso_9001_against_fifty_certificates_in_2011_2020(self) -> None:
        halfway = {2021: D(5), 2022: D(5), 2023: D(6), 2024: D(4), 2025: D(5)}
        result = judge(ISO_9001, halfway, 2025, baseline_total=D(50))
        assert (result.actual, result.expected, result.ratio_pct) == (D(25), D("25.50"), D(50))
        assert result.status is TargetStatus.AT_RISK
        assert "target ≥ 102 %, i.e. 51" in result.explanation
        assert judge(ISO_9001, {2021: D(51)}, 2022, D(50)).status is TargetStatus.ACHIEVED
        assert judge(ISO_9001, {2021: D(50)}, 2031, D(50)).status is TargetStatus.MISSED

    def test_zero_baseline_any_positive_total_achieves_and_ratio_is_undefined(self) -> None:
        result = judge(ISO_9001, {2022: D(1)}, 2022, baseline_total=D(0))
        assert (result.status, result.ratio_pct) == (TargetStatus.ACHIEVED, None)

    def test_zero_baseline_zero_total_is_at_risk_then_missed(self) -> None:
        zeros = {2021: D(0), 2022: D(0)}
        assert judge(ISO_9001, zeros, 2022, D(0)).status is TargetStatus.AT_RISK
        assert judge(ISO_9001, zeros, 2031, D(0)).status is TargetStatus.MISSED
        assert judge(ISO_9001, {}, 2022, D(0)).status is TargetStatus.NO_DATA

    def test_a_missing_baseline_is_rejected(self) -> None:
        with pytest.raises(ValueError, match="baseline_total"):
            judge(ISO_9001, {2021: D(1)}, 2021)
        with pytest.raises(ValueError, match="negative"):
            judge(ISO_9001, {2021: D(1)}, 2021, D(-1))

    @given(values=_series(2019, 2032), as_of=st.integers(2019, 2040))
    def test_zero_baseline_never_divides_by_zero(
        self, values: dict[int, Decimal], as_of: int
    ) -> None:
        result = judge(ISO_9001, values, as_of, baseline_total=D(0))
        assert result.ratio_pct is None
        total = _window_sum(values, 2021, min(as_of, 2030))
        assert (result.status is TargetStatus.ACHIEVED) == (total > 0)

    @given(values=_series(2021, 2030), baseline=st.integers(1, 10_000))
    def test_ratio_is_the_phase_total_over_the_baseline_times_a_hundred(
        self, values: dict[int, Decimal], baseline: int
    ) -> None:
        assume(values)
        result = judge(ISO_9001, values, 2030, D(baseline))
        total = sum(values.values(), D(0))
        assert result.ratio_pct == _round2(Fraction(total) / baseline * 100)
        reached = Fraction(total) >= Fraction(baseline) * Fraction(102, 100)
        assert (result.status is TargetStatus.ACHIEVED) == reached

    @given(
        values=_series(2019, 2032),
        year=st.integers(2019, 2032),
        extra=counts,
        as_of=st.integers(2019, 2032),
        baseline=st.integers(0, 500),
    )
    def test_adding_a_value_never_lowers_the_ratio_or_worsens_the_status(
        self, values: dict[int, Decimal], year: int, extra: Decimal, as_of: int, baseline: int
    ) -> None:
        more = {**values, year: values.get(year, D(0)) + extra}
        before = judge(ISO_9001, values, as_of, D(baseline))
        _assert_not_worse(before, judge(ISO_9001, more, as_of, D(baseline)))

    @given(values=_series(2021, 2030), as_of=st.integers(2031, 2040), baseline=counts)
    def test_after_the_phase_only_achieved_or_missed(
        self, values: dict[int, Decimal], as_of: int, baseline: Decimal
    ) -> None:
        assert judge(ISO_9001, values, as_of, baseline).status in FINAL

    @given(value=negatives)
    def test_negative_values_are_rejected(self, value: Decimal) -> None:
        with pytest.raises(ValueError, match="negative"):
            judge_baseline_percentage(ISO_9001, {2021: value}, 2021, D(50))


class TestSharePercentage:
    def test_national_harmonisation_seventy_to_seventy_five_percent(self) -> None:
        result = judge(HARMONISED_2026_2030, {2026: D(68), 2027: D("72.5")}, 2027)
        assert (result.status, result.actual, result.expected) == (
            TargetStatus.ON_TRACK,
            D("72.5"),
            D(70),
        )
        assert [d.position for d in result.per_year] == [
            RangePosition.BELOW,
            RangePosition.IN_RANGE,
        ]
        assert result.ratio_pct == D("103.57")

    def test_the_latest_reported_value_decides(self) -> None:
        result = judge(HARMONISED_2026_2030, {2026: D(80), 2027: D(60)}, 2028)
        assert (result.status, result.actual) == (TargetStatus.AT_RISK, D(60))
        assert judge(HARMONISED_2026_2030, {2026: D(50)}, 2026).status is TargetStatus.OFF_TRACK

    def test_about_sixty_five_is_achieved_at_ninety_percent_of_it(self) -> None:
        assert judge(HARMONISED_2021_2025, {2025: D(59)}, 2026).status is TargetStatus.ACHIEVED
        assert judge(HARMONISED_2021_2025, {2025: D(58)}, 2026).status is TargetStatus.MISSED
        assert judge(HARMONISED_2021_2025, {}, 2026).status is TargetStatus.MISSED

    def test_a_share_above_a_hundred_percent_is_rejected(self) -> None:
        with pytest.raises(ValueError, match="100"):
            judge(HARMONISED_2026_2030, {2026: D("100.01")}, 2026)

    @given(
        low=st.decimals(min_value=1, max_value=95, places=2),
        width=st.decimals(min_value=0, max_value=5, places=2),
        pick=st.decimals(min_value=0, max_value=1, places=2),
        as_of=st.integers(2026, 2030),
    )
    def test_a_share_within_the_range_is_on_track(
        self, low: Decimal, width: Decimal, pick: Decimal, as_of: int
    ) -> None:
        high = low + width
        spec = TargetSpec(
            kind=TargetKind.SHARE_PERCENTAGE,
            min_pct=low,
            max_pct=high,
            phase_start=2026,
            phase_end=2030,
        )
        share = low + pick * width
        result = judge(spec, {as_of: share}, as_of)
        assert result.status is TargetStatus.ON_TRACK
        assert result.per_year[-1].position is RangePosition.IN_RANGE

    @given(share=st.decimals(min_value=D("75.01"), max_value=100, places=2))
    def test_a_share_above_the_range_is_on_track_and_reported_above(self, share: Decimal) -> None:
        result = judge(HARMONISED_2026_2030, {2027: share}, 2027)
        assert result.status is TargetStatus.ON_TRACK
        assert result.per_year[-1].position is RangePosition.ABOVE

    @given(
        values=st.dictionaries(
            st.integers(2026, 2030), st.decimals(min_value=0, max_value=100, places=2)
        ),
        as_of=st.integers(2031, 2040),
    )
    def test_after_the_phase_only_achieved_or_missed(
        self, values: dict[int, Decimal], as_of: int
    ) -> None:
        assert judge(HARMONISED_2026_2030, values, as_of).status in FINAL

    @given(value=negatives)
    def test_negative_values_are_rejected(self, value: Decimal) -> None:
        with pytest.raises(ValueError, match="negative"):
            judge_share_percentage(HARMONISED_2026_2030, {2026: value}, 2026)


class TestTargetSpec:
    @pytest.mark.parametrize(
        ("fields", "message"),
        [
            ({"kind": TargetKind.PHASE_TOTAL, "value": D(0)}, "positive value"),
            ({"kind": TargetKind.PHASE_TOTAL, "value": D(10), "min_pct": D(1)}, "not min_pct"),
            ({"kind": TargetKind.MINIMUM}, "positive value"),
            (
                {"kind": TargetKind.YEARLY_GROWTH_RANGE, "min_pct": D("1.5"), "max_pct": D(1)},
                "below min_pct",
            ),
            ({"kind": TargetKind.YEARLY_GROWTH_RANGE, "value": D(1)}, "not a value"),
            ({"kind": TargetKind.YEARLY_GROWTH_RANGE}, "needs min_pct"),
            ({"kind": TargetKind.BASELINE_PERCENTAGE, "min_pct": D(0)}, "positive"),
            (
                {"kind": TargetKind.SHARE_PERCENTAGE, "min_pct": D(70), "max_pct": D(101)},
                "100",
            ),
            ({"kind": TargetKind.SHARE_PERCENTAGE, "min_pct": D("NaN")}, "finite"),
        ],
    )
    def test_inconsistent_figures_are_rejected(self, fields: dict[str, Any], message: str) -> None:
        with pytest.raises(ValueError, match=message):
            TargetSpec(phase_start=2021, phase_end=2030, **fields)

    def test_a_phase_that_ends_before_it_starts_is_rejected(self) -> None:
        with pytest.raises(ValueError, match="ends before it starts"):
            TargetSpec(kind=TargetKind.MINIMUM, value=D(1), phase_start=2030, phase_end=2021)

    def test_floats_are_rejected(self) -> None:
        one: Any = 1.0
        with pytest.raises(TypeError, match="Decimal"):
            TargetSpec(kind=TargetKind.MINIMUM, value=one, phase_start=2021, phase_end=2030)
        with pytest.raises(TypeError, match="Decimal"):
            judge(MODEL_ENTERPRISE, {2021: one}, 2021)


class TestJudge:
    @pytest.mark.parametrize(
        ("spec", "function"),
        [
            (EXPERTS_2021_2025, judge_phase_total),
            (MODEL_ENTERPRISE, judge_minimum),
            (SUPPORTED_GROWTH, judge_yearly_growth_range),
            (HARMONISED_2026_2030, judge_share_percentage),
        ],
    )
    def test_judge_dispatches_on_the_kind(self, spec: TargetSpec, function: Judge) -> None:
        values = {2025: D(1), 2026: D(2), 2027: D(3)}
        assert judge(spec, values, 2027) == function(spec, values, 2027)

    def test_a_per_kind_function_refuses_another_kind(self) -> None:
        with pytest.raises(ValueError, match="cannot be judged as minimum"):
            judge_minimum(EXPERTS_2021_2025, {}, 2021)


def _grown(start: int, growths: list[Decimal]) -> dict[int, Decimal]:
    values = {2020: D(start)}
    with localcontext() as context:
        context.prec = 60
        for offset, growth in enumerate(growths, start=1):
            grown = values[2020 + offset - 1] * (1 + growth / 100)
            values[2020 + offset] = grown.quantize(D("0.0001"))
    return values


def _assert_not_worse(before: Achievement, after: Achievement) -> None:
    if before.ratio_pct is not None:
        assert after.ratio_pct is not None
        assert after.ratio_pct >= before.ratio_pct
    assert RANK[after.status] >= RANK[before.status], (before.explanation, after.explanation)
