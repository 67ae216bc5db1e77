"""How recorded baseline figures combine into what a target is compared with."""

from __future__ import annotations

import uuid
from datetime import date
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from nscl_domain.catalogue.baselines import FigureUsed, combine

PERIOD = ("bp-2011-2020", 2011, 2020)


def figure(
    value: int,
    *,
    unit: str | None = None,
    period: str | None = None,
    year: int | None = None,
    disaggregation: str = "",
) -> FigureUsed:
    return FigureUsed(
        id=uuid.uuid4(), unit=unit, disaggregation=disaggregation, period=period, year=year,
        value=Decimal(value), source_document="BC", source_date=date(2021, 1, 15),
    )  # fmt: skip


class TestCombine:
    def test_a_provincial_total_wins_over_the_units_figures(self) -> None:
        figures = [
            figure(50, period="bp-2011-2020"),
            figure(20, unit="bk-doit", period="bp-2011-2020"),
        ]
        used = combine(figures, [""], period=PERIOD)
        assert used is not None
        assert used.total == 50
        assert [f.unit for f in used.figures] == [None]
        assert used.describe().startswith("baseline 2011–2020: 50 (provincial total from BC")

    def test_without_a_provincial_total_the_units_are_summed(self) -> None:
        figures = [
            figure(6, unit="bk-doit", period="bp-2011-2020"),
            figure(4, unit="bk-dard", period="bp-2011-2020"),
        ]
        used = combine(figures, [""], period=PERIOD)
        assert used is not None
        assert used.total == 10
        assert "sum of 2 units' figures" in used.describe()

    def test_a_period_without_its_own_figure_is_the_sum_of_every_year(self) -> None:
        figures = [figure(year - 2000, year=year) for year in range(2011, 2021)]
        used = combine(figures, [""], period=PERIOD)
        assert used is not None
        assert used.total == sum(range(11, 21))
        assert combine(figures[:-1], [""], period=PERIOD) is None

    def test_only_the_breakdowns_a_target_covers_count(self) -> None:
        figures = [
            figure(1, year=2020, disaggregation="certification_level=national"),
            figure(2, year=2020, disaggregation="certification_level=regional"),
            figure(3, year=2020, disaggregation="certification_level=international"),
        ]
        wanted = ["certification_level=regional", "certification_level=international"]
        used = combine(figures, wanted, year=2020)
        assert used is not None
        assert used.total == 5

    def test_nothing_recorded_is_no_baseline(self) -> None:
        assert combine([], [""], period=PERIOD) is None
        assert combine([figure(3, year=2019)], [""], year=2020) is None

    @given(st.lists(st.integers(0, 10_000), min_size=1, max_size=14))
    def test_units_sum_exactly(self, values: list[int]) -> None:
        figures = [figure(v, unit=f"u{i}", year=2020) for i, v in enumerate(values)]
        used = combine(figures, [""], year=2020)
        assert used is not None
        assert used.total == sum(values)
