"""SQL of programme records. Every read is scoped to a unit unless the caller may see
every unit: a district never sees another district's drafts."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert

from nscl_domain.catalogue import models as cm
from nscl_domain.records import models as m
from nscl_domain.records.content import RecordKind
from nscl_domain.workflow import ReviewedRepository, ReviewStatus


class RecordRepository(ReviewedRepository):
    async def record(self, record_id: uuid.UUID, unit_scope: uuid.UUID | None) -> m.ProgrammeRecord:
        """The record if the unit scope (None: every unit) may see it, else NotFound."""
        return await self.load(m.ProgrammeRecord, record_id, unit_scope)

    async def record_for_change(
        self, record_id: uuid.UUID, unit_scope: uuid.UUID | None, expected_revision: int | None
    ) -> m.ProgrammeRecord:
        """Lock the record in scope and check the caller read its current revision."""
        return await self.load_for_change(
            m.ProgrammeRecord, record_id, unit_scope, expected_revision
        )

    async def records(
        self,
        programme_id: uuid.UUID,
        *,
        unit_scope: uuid.UUID | None,
        unit_id: uuid.UUID | None,
        year: int | None,
        kind: RecordKind | None,
        status: ReviewStatus | None,
        words: Sequence[str],
        offset: int,
        limit: int,
    ) -> Sequence[tuple[m.ProgrammeRecord, str]]:
        """Records of a programme with their unit's key, in a stable order (year, then when
        they were opened); ``limit + 1`` rows, so the caller knows whether more follow."""
        stmt = (
            select(m.ProgrammeRecord, cm.OrgUnit.key)
            .join(cm.OrgUnit, cm.OrgUnit.id == m.ProgrammeRecord.unit_id)
            .where(m.ProgrammeRecord.programme_id == programme_id)
        )
        if unit_scope is not None:
            stmt = stmt.where(m.ProgrammeRecord.unit_id == unit_scope)
        if unit_id is not None:
            stmt = stmt.where(m.ProgrammeRecord.unit_id == unit_id)
        if year is not None:
            stmt = stmt.where(m.ProgrammeRecord.year == year)
        if kind is not None:
            stmt = stmt.where(m.ProgrammeRecord.kind == kind)
        if status is not None:
            stmt = stmt.where(m.ProgrammeRecord.status == status)
        for word in words:
            # Every word, in any order; the words were folded as the stored text was.
            escaped = word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            stmt = stmt.where(m.ProgrammeRecord.search_text.like(f"%{escaped}%", escape="\\"))
        stmt = stmt.order_by(
            m.ProgrammeRecord.year, m.ProgrammeRecord.created_at, m.ProgrammeRecord.id
        )
        return [
            (record, key)
            for record, key in (await self.session.execute(stmt.offset(offset).limit(limit + 1)))
        ]

    async def versions(self, record_id: uuid.UUID) -> Sequence[m.ProgrammeRecordVersion]:
        stmt = (
            select(m.ProgrammeRecordVersion)
            .where(m.ProgrammeRecordVersion.record_id == record_id)
            .order_by(m.ProgrammeRecordVersion.version_no)
        )
        return (await self.session.scalars(stmt)).all()

    async def version(
        self, record_id: uuid.UUID, version_no: int
    ) -> m.ProgrammeRecordVersion | None:
        stmt = select(m.ProgrammeRecordVersion).where(
            m.ProgrammeRecordVersion.record_id == record_id,
            m.ProgrammeRecordVersion.version_no == version_no,
        )
        return (await self.session.scalars(stmt)).one_or_none()

    async def figures_of(self, version_id: uuid.UUID) -> Sequence[tuple[str, str, Any]]:
        """A version's figures as (indicator key, disaggregation, value)."""
        stmt = (
            select(cm.Indicator.key, m.RecordFigure.disaggregation, m.RecordFigure.value)
            .join(cm.Indicator, cm.Indicator.id == m.RecordFigure.indicator_id)
            .where(m.RecordFigure.version_id == version_id)
            .order_by(cm.Indicator.key, m.RecordFigure.disaggregation)
        )
        return [(k, d, v) for k, d, v in await self.session.execute(stmt)]

    async def add_figures(self, rows: Sequence[dict[str, Any]]) -> None:
        if rows:
            await self.session.execute(insert(m.RecordFigure).values(list(rows)))

    async def derived_indicators(self, programme_id: uuid.UUID) -> Sequence[cm.Indicator]:
        """The programme's indicators counted from records (those naming a measure)."""
        stmt = select(cm.Indicator).where(
            cm.Indicator.programme_id == programme_id, cm.Indicator.derived_from.is_not(None)
        )
        return (await self.session.scalars(stmt)).all()

    async def unit_key(self, unit_id: uuid.UUID) -> str:
        """The key of a unit the record names (its filer)."""
        key = await self.session.scalar(select(cm.OrgUnit.key).where(cm.OrgUnit.id == unit_id))
        assert key is not None, "a record's unit is a foreign key"
        return key

    async def programme(self, programme_id: uuid.UUID) -> cm.Programme:
        """The programme a record belongs to."""
        found = await self.session.get(cm.Programme, programme_id)
        assert found is not None, "a record's programme is a foreign key"
        return found
