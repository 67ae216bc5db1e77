"""The documents repository: the artefacts kept."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import select

from nscl_domain.documents.models import DocumentArtefact
from nscl_domain.repositories import SessionRepository


class DocumentRepository(SessionRepository):
    async def latest(
        self, programme_id: uuid.UUID, kinds: Sequence[str], period: str
    ) -> DocumentArtefact | None:
        """The newest document of the kinds given for a programme's year or phase."""
        stmt = (
            select(DocumentArtefact)
            .where(
                DocumentArtefact.programme_id == programme_id,
                DocumentArtefact.kind.in_(list(kinds)),
                DocumentArtefact.period == period,
            )
            .order_by(DocumentArtefact.created_at.desc(), DocumentArtefact.id.desc())
            .limit(1)
        )
        return (await self.session.scalars(stmt)).one_or_none()

    async def by_fingerprint(
        self, programme_id: uuid.UUID, kind: str, period: str, fingerprint: str
    ) -> DocumentArtefact | None:
        stmt = select(DocumentArtefact).where(
            DocumentArtefact.programme_id == programme_id,
            DocumentArtefact.kind == kind,
            DocumentArtefact.period == period,
            DocumentArtefact.fingerprint == fingerprint,
        )
        return (await self.session.scalars(stmt)).one_or_none()
