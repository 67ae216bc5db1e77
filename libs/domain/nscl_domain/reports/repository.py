"""SQL of reporting. Every read of a report or an obligation is scoped to a unit unless the
caller may see every unit: a district never sees another district's drafts."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Select, and_, or_, select
from sqlalchemy.dialects.postgresql import insert

from nscl_domain.catalogue import models as cm
from nscl_domain.catalogue.repository import unit_ids
from nscl_domain.reports import models as m
from nscl_domain.workflow import ReviewedRepository, Scope, in_scope


def _scoped(
    stmt: Select[*tuple[Any, ...]], unit_column: Any, unit_scope: Scope
) -> Select[*tuple[Any, ...]]:
    return stmt if unit_scope is None else stmt.where(in_scope(unit_column, unit_scope))


class ReportRepository(ReviewedRepository):
    # --- regimes and rules ---------------------------------------------------------------

    async def regime(self, programme_id: uuid.UUID, key: str) -> m.ReportingRegime | None:
        stmt = select(m.ReportingRegime).where(
            m.ReportingRegime.programme_id == programme_id, m.ReportingRegime.key == key
        )
        return (await self.session.scalars(stmt)).one_or_none()

    async def regimes(self, programme_id: uuid.UUID) -> Sequence[m.ReportingRegime]:
        stmt = (
            select(m.ReportingRegime)
            .where(m.ReportingRegime.programme_id == programme_id)
            .order_by(m.ReportingRegime.key)
        )
        return (await self.session.scalars(stmt)).all()

    async def rules(self) -> Sequence[m.ValidationRule]:
        return (
            await self.session.scalars(select(m.ValidationRule).order_by(m.ValidationRule.code))
        ).all()

    async def rule_for_update(self, code: str) -> m.ValidationRule | None:
        return await self.session.get(m.ValidationRule, code, with_for_update=True)

    # --- obligations ---------------------------------------------------------------------

    async def reporting_units_on(self, programme_id: uuid.UUID, day: date) -> Sequence[uuid.UUID]:
        stmt = select(cm.ProgrammeRole.unit_id).where(
            cm.ProgrammeRole.programme_id == programme_id,
            cm.ProgrammeRole.role == "reporting_unit",
            cm.ProgrammeRole.valid_from <= day,
            or_(cm.ProgrammeRole.valid_to.is_(None), cm.ProgrammeRole.valid_to > day),
        )
        return (await self.session.scalars(stmt)).all()

    async def units_existing_on(self, keys: Sequence[str], day: date) -> Sequence[cm.OrgUnit]:
        stmt = select(cm.OrgUnit).where(
            cm.OrgUnit.key.in_(keys),
            cm.OrgUnit.valid_from <= day,
            or_(cm.OrgUnit.valid_to.is_(None), cm.OrgUnit.valid_to > day),
        )
        return (await self.session.scalars(stmt)).all()

    async def add_obligations(self, rows: Sequence[dict[str, Any]]) -> int:
        """Insert obligations that do not exist yet; return how many were new."""
        if not rows:
            return 0
        stmt = (
            insert(m.Obligation)
            .values(list(rows))
            .on_conflict_do_nothing()
            .returning(m.Obligation.id)
        )
        return len((await self.session.scalars(stmt)).all())

    def _obligations(self) -> Select[*tuple[Any, ...]]:
        return (
            select(m.Obligation, cm.OrgUnit, m.Report, m.ReportingRegime, m.ReportingRequest)
            .join(cm.OrgUnit, cm.OrgUnit.id == m.Obligation.unit_id)
            .outerjoin(m.Report, m.Report.obligation_id == m.Obligation.id)
            .outerjoin(m.ReportingRegime, m.ReportingRegime.id == m.Obligation.regime_id)
            .outerjoin(m.ReportingRequest, m.ReportingRequest.id == m.Obligation.request_id)
        )

    async def obligations(
        self,
        programme_id: uuid.UUID,
        *,
        year: int | None,
        regime_key: str | None,
        request_id: uuid.UUID | None,
        unit_scope: Scope,
        offset: int,
        limit: int,
    ) -> Sequence[Any]:
        stmt = self._obligations().where(m.Obligation.programme_id == programme_id)
        if year is not None:
            stmt = stmt.where(m.Obligation.year == year)
        if regime_key is not None:
            stmt = stmt.where(m.ReportingRegime.key == regime_key)
        if request_id is not None:
            stmt = stmt.where(m.Obligation.request_id == request_id)
        stmt = _scoped(stmt, m.Obligation.unit_id, unit_scope)
        stmt = stmt.order_by(m.Obligation.year, m.Obligation.due_date, cm.OrgUnit.key)
        return list((await self.session.execute(stmt.offset(offset).limit(limit + 1))).all())

    async def obligation(self, obligation_id: uuid.UUID, unit_scope: uuid.UUID | None) -> Any:
        stmt = _scoped(
            self._obligations().where(m.Obligation.id == obligation_id),
            m.Obligation.unit_id,
            unit_scope,
        )
        return (await self.session.execute(stmt)).first()

    async def request(self, request_id: uuid.UUID) -> m.ReportingRequest | None:
        return await self.session.get(m.ReportingRequest, request_id)

    # --- reports -------------------------------------------------------------------------

    async def report(
        self, report_id: uuid.UUID, unit_scope: Scope, *, for_update: bool = False
    ) -> m.Report:
        """The report if the unit scope (None: every unit) may see it, else NotFound."""
        return await self.load(m.Report, report_id, unit_scope, for_update=for_update)

    async def report_for_change(
        self, report_id: uuid.UUID, unit_scope: uuid.UUID | None, expected_revision: int | None
    ) -> m.Report:
        """Lock the report in scope and check the caller read its current revision."""
        return await self.load_for_change(m.Report, report_id, unit_scope, expected_revision)

    async def reports(
        self,
        *,
        programme_id: uuid.UUID | None,
        unit: str | None,
        subtree: bool,
        year: int | None,
        status: str | None,
        regime_key: str | None,
        request_id: uuid.UUID | None,
        updated_since: datetime | None,
        unit_scope: uuid.UUID | None,
        before_id: uuid.UUID | None,
        limit: int,
    ) -> Sequence[m.Report]:
        """Reports newest first (ids are time-ordered), ``limit`` + 1 of them."""
        stmt = select(m.Report).join(m.Obligation, m.Obligation.id == m.Report.obligation_id)
        if programme_id is not None:
            stmt = stmt.where(m.Obligation.programme_id == programme_id)
        if unit is not None:
            stmt = stmt.where(m.Report.unit_id.in_(unit_ids(unit, subtree=subtree)))
        if year is not None:
            stmt = stmt.where(m.Obligation.year == year)
        if status is not None:
            stmt = stmt.where(m.Report.status == status)
        if regime_key is not None:
            regimes = select(m.ReportingRegime.id).where(m.ReportingRegime.key == regime_key)
            stmt = stmt.where(m.Obligation.regime_id.in_(regimes))
        if request_id is not None:
            stmt = stmt.where(m.Obligation.request_id == request_id)
        if updated_since is not None:
            stmt = stmt.where(m.Report.updated_at >= updated_since)
        if before_id is not None:
            stmt = stmt.where(m.Report.id < before_id)
        stmt = _scoped(stmt, m.Report.unit_id, unit_scope)
        return (
            await self.session.scalars(stmt.order_by(m.Report.id.desc()).limit(limit + 1))
        ).all()

    async def report_of(self, obligation_id: uuid.UUID) -> m.Report | None:
        stmt = select(m.Report).where(m.Report.obligation_id == obligation_id)
        return (await self.session.scalars(stmt)).one_or_none()

    async def versions(self, report_id: uuid.UUID) -> Sequence[m.ReportVersion]:
        stmt = (
            select(m.ReportVersion)
            .where(m.ReportVersion.report_id == report_id)
            .order_by(m.ReportVersion.version_no)
        )
        return (await self.session.scalars(stmt)).all()

    async def version(self, report_id: uuid.UUID, version_no: int) -> m.ReportVersion | None:
        stmt = select(m.ReportVersion).where(
            m.ReportVersion.report_id == report_id, m.ReportVersion.version_no == version_no
        )
        return (await self.session.scalars(stmt)).one_or_none()

    async def add_figures(self, rows: Sequence[dict[str, Any]]) -> None:
        if rows:
            await self.session.execute(insert(m.IndicatorValue).values(list(rows)))

    async def add_task_progress(self, rows: Sequence[dict[str, Any]]) -> None:
        if rows:
            await self.session.execute(insert(m.TaskProgress).values(list(rows)))

    async def accepted_figures(
        self, unit_id: uuid.UUID, year: int, indicator_ids: Sequence[uuid.UUID]
    ) -> dict[tuple[uuid.UUID, str], Decimal]:
        """Figures of the unit's accepted annual report of ``year`` (for the jump warning)."""
        stmt = (
            select(
                m.IndicatorValue.indicator_id,
                m.IndicatorValue.disaggregation,
                m.IndicatorValue.value,
            )
            .join(m.ReportVersion, m.ReportVersion.id == m.IndicatorValue.version_id)
            .join(
                m.Report,
                and_(
                    m.Report.id == m.ReportVersion.report_id,
                    m.Report.accepted_version_no == m.ReportVersion.version_no,
                ),
            )
            .join(m.Obligation, m.Obligation.id == m.Report.obligation_id)
            .where(
                m.IndicatorValue.unit_id == unit_id,
                m.IndicatorValue.year == year,
                m.IndicatorValue.indicator_id.in_(indicator_ids),
                m.Obligation.regime_id.is_not(None),
            )
        )
        return {(i, d): v for i, d, v in (await self.session.execute(stmt)).all()}

    async def accepted_narratives(
        self,
        programme_id: uuid.UUID,
        *,
        version_ids: Sequence[uuid.UUID] | None = None,
        year: int | None = None,
        regime_kinds: Sequence[str] = (),
    ) -> Sequence[Any]:
        """The narrative of accepted versions (a run's sources, or a year's reports under
        regimes of the kinds given), with the unit that wrote it: (version_id, unit,
        year, version_no, narrative), in unit order."""
        stmt = (
            select(
                m.ReportVersion.id.label("version_id"),
                cm.OrgUnit.key.label("unit"),
                m.Obligation.year,
                m.ReportVersion.version_no,
                m.ReportVersion.content["narrative"].label("narrative"),
            )
            .join(
                m.Report,
                and_(
                    m.Report.id == m.ReportVersion.report_id,
                    m.Report.accepted_version_no == m.ReportVersion.version_no,
                ),
            )
            .join(m.Obligation, m.Obligation.id == m.Report.obligation_id)
            .join(cm.OrgUnit, cm.OrgUnit.id == m.Report.unit_id)
            .where(m.Obligation.programme_id == programme_id)
            .order_by(m.Obligation.year, cm.OrgUnit.key, m.ReportVersion.id)
        )
        if version_ids is not None:
            stmt = stmt.where(m.ReportVersion.id.in_(list(version_ids)))
        if year is not None:
            stmt = stmt.where(m.Obligation.year == year)
        if regime_kinds:
            stmt = stmt.join(
                m.ReportingRegime, m.ReportingRegime.id == m.Obligation.regime_id
            ).where(m.ReportingRegime.kind.in_(list(regime_kinds)))
        return list((await self.session.execute(stmt)).all())

    # --- timeliness ----------------------------------------------------------------------

    async def timeliness(
        self, programme_id: uuid.UUID, year: int, regime_key: str, unit_scope: uuid.UUID | None
    ) -> Sequence[Any]:
        stmt = (
            self._obligations()
            .where(
                m.Obligation.programme_id == programme_id,
                m.Obligation.year == year,
                m.ReportingRegime.key == regime_key,
            )
            .order_by(cm.OrgUnit.key)
        )
        return list(
            (await self.session.execute(_scoped(stmt, m.Obligation.unit_id, unit_scope))).all()
        )
