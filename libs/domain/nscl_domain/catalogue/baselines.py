"""Baseline figures: what an indicator stood at before the programme, with their source.

The plan judges two kinds of target against the past: "ISO certificates at least 2 % above
2011–2020" (a *baseline period*) and "supported enterprises grow 1–1.5 % every year",
whose first year needs 2020 (a *base year*). Those years are not reporting years of the
programme: their figures are not reports, they are recorded here once, per unit or as a
provincial total, each with the document it was taken from.

How the figures combine (:func:`combine`), for each disaggregation a target covers:
- a provincial total recorded for it is the figure, whatever the units' figures say;
- otherwise the sum of the units' figures for it;
- a period's total is the figure recorded for the period; without one, the sum of the
  figures of every year of the period (a year missing leaves the period without a total).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from pydantic import Field, ValidationError, model_validator
from sqlalchemy import (
    CheckConstraint,
    ForeignKey,
    Index,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    func,
    select,
)
from sqlalchemy.orm import Mapped, mapped_column

from nscl_domain.audit.repository import AuditRepository, snapshot
from nscl_domain.catalogue import models as cm
from nscl_domain.catalogue.service import programme_or_404
from nscl_domain.db import Base, new_id
from nscl_domain.errors import FieldProblem, Invalid
from nscl_domain.identity import Caller, Permission
from nscl_domain.repositories import SessionRepository
from nscl_domain.types import InputModel, IsoDate
from nscl_domain.uow import UnitOfWork

_ZERO = Decimal(0)


class BaselineFigure(Base):
    """An indicator's figure for a baseline period or a base year, per unit or provincial."""

    __tablename__ = "baseline_figure"
    __table_args__ = (
        CheckConstraint("(baseline_period_id IS NULL) <> (year IS NULL)", name="period_or_year"),
        CheckConstraint("value >= 0", name="value_not_negative"),
        # One figure per indicator, breakdown, unit (NULL: the provincial total) and period
        # or year: recording it again replaces it (the audit trail keeps the old one).
        UniqueConstraint(
            "programme_id",
            "indicator_id",
            "disaggregation",
            "unit_id",
            "baseline_period_id",
            "year",
            name="uq_baseline_figure_identity",
            postgresql_nulls_not_distinct=True,
        ),
        Index("ix_baseline_figure_programme_id_indicator_id", "programme_id", "indicator_id"),
    )
    __mapper_args__ = {"eager_defaults": True}  # noqa: RUF012 - SQLAlchemy's declarative API

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    programme_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("programme.id"))
    indicator_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("indicator.id"))
    # Canonical "dimension=value" pairs joined by ";", "" for the total.
    disaggregation: Mapped[str] = mapped_column(String(200))
    unit_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("org_unit.id"))
    baseline_period_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("baseline_period.id"))
    year: Mapped[int | None]
    value: Mapped[Decimal] = mapped_column(Numeric(20, 4))
    source_document: Mapped[str] = mapped_column(Text)
    source_date: Mapped[date]
    note: Mapped[str] = mapped_column(Text)
    recorded_by: Mapped[str] = mapped_column(String(100))
    recorded_at: Mapped[datetime] = mapped_column(server_default=func.now())


# --- combining -----------------------------------------------------------------------------


@dataclass(frozen=True)
class FigureUsed:
    """A recorded figure as a judgement used it."""

    id: uuid.UUID
    unit: str | None  # None: the provincial total
    disaggregation: str
    period: str | None
    year: int | None
    value: Decimal
    source_document: str
    source_date: date


@dataclass(frozen=True)
class BaselineUsed:
    """What a target was compared with: a period's or a year's total, and its figures."""

    label: str  # "2011–2020" or "2020"
    period: str | None
    year: int | None
    total: Decimal
    figures: tuple[FigureUsed, ...]

    def describe(self) -> str:
        """The figures in words, for the explanation of a judgement."""
        provincial = [f for f in self.figures if f.unit is None]
        units = [f for f in self.figures if f.unit is not None]
        parts = []
        if provincial:
            sources = sorted({f"{f.source_document} ({f.source_date})" for f in provincial})
            parts.append("provincial total from " + "; ".join(sources))
        if units:
            parts.append(f"sum of {len({f.unit for f in units})} units' figures")
        return f"baseline {self.label}: {_fmt(self.total)} ({', '.join(parts)})"


def _fmt(number: Decimal) -> str:
    return f"{number.normalize():f}"


def _one(figures: Sequence[FigureUsed], wanted: Iterable[str]) -> tuple[Decimal, list[FigureUsed]]:
    total, used = _ZERO, []
    for disaggregation in wanted:
        mine = [f for f in figures if f.disaggregation == disaggregation]
        provincial = [f for f in mine if f.unit is None]
        chosen = provincial or mine
        total += sum((f.value for f in chosen), _ZERO)
        used += chosen
    return total, used


def combine(
    figures: Sequence[FigureUsed],
    wanted: Iterable[str],
    *,
    period: tuple[str, int, int] | None = None,
    year: int | None = None,
) -> BaselineUsed | None:
    """The total of a period (key, first and last year) or of a year, over the wanted
    disaggregations, and the figures it came from; None when nothing is recorded."""
    wanted = sorted(set(wanted))
    if year is not None:
        own = [f for f in figures if f.year == year and f.period is None]
        total, used = _one(own, wanted)
        if not used:
            return None
        return BaselineUsed(str(year), None, year, total, tuple(used))
    if period is None:
        raise ValueError("name a period or a year")
    key, start, end = period
    label = f"{start}–{end}"
    whole = [f for f in figures if f.period == key]
    total, used = _one(whole, wanted)
    if used:
        return BaselineUsed(label, key, None, total, tuple(used))
    # No figure for the period as a whole: every one of its years must have one.
    total, used = _ZERO, []
    for each in range(start, end + 1):
        found = combine(figures, wanted, year=each)
        if found is None:
            return None
        total += found.total
        used += found.figures
    return BaselineUsed(label, key, None, total, tuple(used))


# --- persistence ---------------------------------------------------------------------------


class BaselineRepository(SessionRepository):
    async def period(self, key: str) -> cm.BaselinePeriod | None:
        stmt = select(cm.BaselinePeriod).where(cm.BaselinePeriod.key == key)
        return (await self.session.scalars(stmt)).one_or_none()

    async def indicators(self, programme_id: uuid.UUID) -> dict[str, cm.Indicator]:
        stmt = select(cm.Indicator).where(cm.Indicator.programme_id == programme_id)
        return {i.key: i for i in (await self.session.scalars(stmt)).all()}

    async def units(self, keys: Iterable[str]) -> dict[str, cm.OrgUnit]:
        stmt = select(cm.OrgUnit).where(cm.OrgUnit.key.in_(list(keys)))
        return {u.key: u for u in (await self.session.scalars(stmt)).all()}

    async def figure_for_update(
        self,
        programme_id: uuid.UUID,
        indicator_id: uuid.UUID,
        disaggregation: str,
        unit_id: uuid.UUID | None,
        period_id: uuid.UUID | None,
        year: int | None,
    ) -> BaselineFigure | None:
        f = BaselineFigure
        stmt = (
            select(f)
            .where(
                f.programme_id == programme_id,
                f.indicator_id == indicator_id,
                f.disaggregation == disaggregation,
                f.unit_id.is_(None) if unit_id is None else f.unit_id == unit_id,
                (
                    f.baseline_period_id.is_(None)
                    if period_id is None
                    else f.baseline_period_id == period_id
                ),
                f.year.is_(None) if year is None else f.year == year,
            )
            .with_for_update()
        )
        return (await self.session.scalars(stmt)).one_or_none()

    async def figures(
        self,
        programme_id: uuid.UUID,
        *,
        indicator_id: uuid.UUID | None = None,
        unit: str | None = None,
        period: str | None = None,
        year: int | None = None,
    ) -> list[tuple[BaselineFigure, str, str | None, str | None]]:
        """Figures with their indicator's key, unit's key and period's key, in a stable
        order."""
        f = BaselineFigure
        stmt = (
            select(f, cm.Indicator.key, cm.OrgUnit.key, cm.BaselinePeriod.key)
            .join(cm.Indicator, cm.Indicator.id == f.indicator_id)
            .outerjoin(cm.OrgUnit, cm.OrgUnit.id == f.unit_id)
            .outerjoin(cm.BaselinePeriod, cm.BaselinePeriod.id == f.baseline_period_id)
            .where(f.programme_id == programme_id)
        )
        if indicator_id is not None:
            stmt = stmt.where(f.indicator_id == indicator_id)
        if unit is not None:
            stmt = stmt.where(cm.OrgUnit.key == unit)
        if period is not None:
            stmt = stmt.where(cm.BaselinePeriod.key == period)
        if year is not None:
            stmt = stmt.where(f.year == year)
        stmt = stmt.order_by(
            cm.Indicator.key,
            cm.BaselinePeriod.key.nulls_last(),
            f.year.nulls_first(),
            f.disaggregation,
            cm.OrgUnit.key.nulls_first(),
        )
        return [(row[0], row[1], row[2], row[3]) for row in (await self.session.execute(stmt))]

    async def used_figures(
        self, programme_id: uuid.UUID, indicator_id: uuid.UUID
    ) -> list[FigureUsed]:
        """Every figure of an indicator, as judgements use them."""
        return [
            FigureUsed(
                id=figure.id,
                unit=unit,
                disaggregation=figure.disaggregation,
                period=period,
                year=figure.year,
                value=figure.value,
                source_document=figure.source_document,
                source_date=figure.source_date,
            )
            for figure, _, unit, period in await self.figures(
                programme_id, indicator_id=indicator_id
            )
        ]


# --- use cases -----------------------------------------------------------------------------


class BaselineFigureInput(InputModel):
    """One figure to record: for a baseline period or for a base year, of a unit or of the
    province as a whole."""

    indicator: str = Field(max_length=100, description="Indicator key of the programme.")
    period: str | None = Field(
        default=None, max_length=100, description="Baseline period key (bp-2011-2020)."
    )
    year: int | None = Field(
        default=None,
        ge=1990,
        le=2100,
        description="A base year before the programme (2020); not with `period`.",
    )
    unit: str | None = Field(
        default=None, max_length=100, description="Unit key; absent: the provincial total."
    )
    disaggregation: dict[str, str] = Field(
        default_factory=dict, description='e.g. {"certification_level": "national"}; {} total.'
    )
    value: Decimal = Field(ge=0, max_digits=20, decimal_places=4)
    source_document: str = Field(
        min_length=1,
        max_length=500,
        description="The document the figure is taken from (số, ký hiệu, trích yếu).",
    )
    source_date: IsoDate = Field(description="The date of that document.")
    note: str = Field(default="", max_length=5000)

    @model_validator(mode="after")
    def _period_or_year(self) -> BaselineFigureInput:
        if (self.period is None) == (self.year is None):
            raise ValueError("give either a baseline period or a base year, not both or neither")
        return self


@dataclass(frozen=True)
class BaselineView:
    figure: BaselineFigure
    indicator: str
    unit: str | None
    period: str | None


def parse_figures(raw: Sequence[Mapping[str, Any]]) -> list[BaselineFigureInput]:
    """Figures as given, or Invalid naming each field at fault."""
    problems: list[FieldProblem] = []
    parsed = []
    for position, item in enumerate(raw):
        try:
            parsed.append(BaselineFigureInput.model_validate(item))
        except ValidationError as exc:
            problems += FieldProblem.all_of(exc, ("body", "figures", position))
    if problems:
        raise Invalid(
            f"{len(problems)} problem(s) in the figures; nothing was recorded.",
            code="invalid_baseline",
            fields=problems,
        )
    return parsed


def _disaggregation_key(parts: Mapping[str, str]) -> str:
    return ";".join(f"{k}={v}" for k, v in sorted(parts.items()))


async def record_figures(
    uow: UnitOfWork,
    actor: Caller,
    programme_ref: str,
    figures: Sequence[BaselineFigureInput],
) -> list[BaselineView]:
    """Record baseline figures, replacing those with the same indicator, breakdown, unit and
    period or year; all or nothing."""
    actor.require(Permission.REPORTS_MANAGE)
    async with uow:
        repo = uow.get(BaselineRepository)
        programme = await programme_or_404(uow, programme_ref)
        indicators = await repo.indicators(programme.id)
        units = await repo.units({f.unit for f in figures if f.unit is not None})
        periods: dict[str, cm.BaselinePeriod | None] = {}
        for key in {f.period for f in figures if f.period is not None}:
            periods[key] = await repo.period(key)
        today = uow.now().date()
        problems: list[FieldProblem] = []
        seen: dict[tuple[Any, ...], int] = {}
        for position, figure in enumerate(figures):
            at = ("body", "figures", position)
            problems += _check_figure(figure, at, programme, indicators, units, periods, today)
            identity = (
                figure.indicator,
                _disaggregation_key(figure.disaggregation),
                figure.unit,
                figure.period,
                figure.year,
            )
            earlier = seen.setdefault(identity, position)
            if earlier != position:
                problems.append(
                    FieldProblem(
                        at, f"The same figure is given at position {earlier}.", "duplicate"
                    )
                )
        if problems:
            raise Invalid(
                f"{len(problems)} problem(s) in the figures; nothing was recorded.",
                code="invalid_baseline",
                fields=problems,
            )
        recorded = []
        audit = uow.get(AuditRepository)
        for figure in figures:
            indicator = indicators[figure.indicator]
            unit = units[figure.unit] if figure.unit is not None else None
            period = periods[figure.period] if figure.period is not None else None
            disaggregation = _disaggregation_key(figure.disaggregation)
            row = await repo.figure_for_update(
                programme.id,
                indicator.id,
                disaggregation,
                unit.id if unit else None,
                period.id if period else None,
                figure.year,
            )
            before = snapshot(row) if row is not None else None
            if row is None:
                row = BaselineFigure(
                    programme_id=programme.id,
                    indicator_id=indicator.id,
                    disaggregation=disaggregation,
                    unit_id=unit.id if unit else None,
                    baseline_period_id=period.id if period else None,
                    year=figure.year,
                )
                repo.add(row)
            row.value = figure.value
            row.source_document = figure.source_document
            row.source_date = figure.source_date
            row.note = figure.note
            row.recorded_by = actor.client_id
            row.recorded_at = uow.now()
            await repo.flush()
            audit.record(
                actor,
                "baseline.recorded",
                "baseline_figure",
                row.id,
                before=before,
                after=snapshot(row),
            )
            recorded.append(BaselineView(row, indicator.key, figure.unit, figure.period))
        await uow.commit()
    return recorded


def _check_figure(
    figure: BaselineFigureInput,
    at: tuple[str | int, ...],
    programme: cm.Programme,
    indicators: Mapping[str, cm.Indicator],
    units: Mapping[str, cm.OrgUnit],
    periods: Mapping[str, cm.BaselinePeriod | None],
    today: date,
) -> list[FieldProblem]:
    problems = []
    indicator = indicators.get(figure.indicator)
    if indicator is None:
        problems.append(
            FieldProblem(
                (*at, "indicator"),
                f"No indicator {figure.indicator!r} in {programme.key}.",
                "unknown_indicator",
            )
        )
    else:
        allowed = {d["dimension"]: d["values"] for d in indicator.disaggregations}
        for dimension, value in figure.disaggregation.items():
            if value not in allowed.get(dimension, ()):
                problems.append(
                    FieldProblem(
                        (*at, "disaggregation", dimension),
                        f"{dimension}={value} is not a disaggregation of {indicator.key!r}.",
                        "unknown_disaggregation",
                    )
                )
        if indicator.unit != "percent" and figure.value != figure.value.to_integral_value():
            problems.append(
                FieldProblem(
                    (*at, "value"),
                    f"{indicator.key!r} counts whole {indicator.unit}s, not {figure.value}.",
                    "fractional_count",
                )
            )
    first, last = programme.start_year, programme.start_year
    if figure.period is not None:
        period = periods.get(figure.period)
        if period is None:
            problems.append(
                FieldProblem(
                    (*at, "period"), f"No baseline period {figure.period!r}.", "unknown_period"
                )
            )
        else:
            first, last = period.start_year, period.end_year
    if figure.year is not None:
        first = last = figure.year
        if figure.year >= programme.start_year:
            problems.append(
                FieldProblem(
                    (*at, "year"),
                    f"{figure.year} is a year of the programme ({programme.start_year}–"
                    f"{programme.end_year}): its figures come from the reports, not a baseline.",
                    "year_inside_programme",
                )
            )
    if figure.unit is not None:
        unit = units.get(figure.unit)
        if unit is None:
            problems.append(
                FieldProblem(
                    (*at, "unit"), f"No organisation unit {figure.unit!r}.", "unit_not_found"
                )
            )
        elif unit.valid_from > date(last, 12, 31) or (
            unit.valid_to is not None and unit.valid_to <= date(first, 1, 1)
        ):
            problems.append(
                FieldProblem(
                    (*at, "unit"),
                    f"{unit.key} existed from {unit.valid_from} to {unit.valid_to or 'now'}, "
                    f"not in {first}–{last}.",
                    "unit_not_in_period",
                )
            )
    if figure.source_date > today:
        problems.append(
            FieldProblem((*at, "source_date"), "The source is dated in the future.", "future_date")
        )
    return problems


async def list_figures(
    uow: UnitOfWork,
    caller: Caller,
    programme_ref: str,
    *,
    indicator: str | None,
    unit: str | None,
    period: str | None,
    year: int | None,
) -> list[BaselineView]:
    """The baseline figures recorded for a programme, with their sources."""
    caller.require(Permission.CATALOGUE_READ)
    async with uow:
        repo = uow.get(BaselineRepository)
        programme = await programme_or_404(uow, programme_ref)
        indicator_id = None
        if indicator is not None:
            found = (await repo.indicators(programme.id)).get(indicator)
            if found is None:
                return []
            indicator_id = found.id
        rows = await repo.figures(
            programme.id, indicator_id=indicator_id, unit=unit, period=period, year=year
        )
    return [BaselineView(f, i, u, p) for f, i, u, p in rows]
