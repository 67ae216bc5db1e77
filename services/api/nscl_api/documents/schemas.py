"""Documents officials sign: what the API says of one kept, and how to ask for one."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import Field

from nscl_api.types import PhaseKey, ProgrammeKey, RequestModel, ResponseModel
from nscl_domain.documents.models import DOCX_TYPE, XLSX_TYPE
from nscl_domain.documents.service import Artefact


class AnnualReportRequest(RequestModel):
    year: int = Field(
        ge=2000, le=2100, description="The year reported on; its rollup must be published."
    )


class ReviewRequest(RequestModel):
    phase: PhaseKey = Field(max_length=100, description="The phase reviewed.")


class DocumentFile(ResponseModel):
    format: Literal["docx", "xlsx"]
    media_type: str
    size: int = Field(description="Bytes.")
    sha256: str = Field(description="Hex SHA-256 of the file: the same run gives the same bytes.")
    href: str


class DocumentRead(ResponseModel):
    """A document kept as it was generated, tied to the published runs it reports on."""

    id: uuid.UUID
    kind: Literal["annual_report", "mid_term_review", "final_review"]
    programme: ProgrammeKey
    period: str = Field(description='The year ("2024") or the phase key.')
    run_id: uuid.UUID = Field(description="The run of the year reported on (a review: its last).")
    run_ids: list[uuid.UUID] = Field(description="Every published run read, in year order.")
    fingerprint: str = Field(description="SHA-256 of the document's content.")
    created_at: datetime
    job_id: uuid.UUID | None
    files: list[DocumentFile]

    @classmethod
    def of(cls, artefact: Artefact, base: str) -> DocumentRead:
        row = artefact.row
        return cls(
            id=row.id,
            kind=row.kind,  # type: ignore[arg-type]  # str column, CHECK-limited to the Literal
            programme=artefact.programme_key,
            period=row.period,
            run_id=row.run_id,
            run_ids=list(row.run_ids),
            fingerprint=row.fingerprint,
            created_at=row.created_at,
            job_id=row.job_id,
            files=[
                DocumentFile(
                    format="docx",
                    media_type=DOCX_TYPE,
                    size=len(row.docx),
                    sha256=row.docx_sha256,
                    href=f"{base}.docx",
                ),
                DocumentFile(
                    format="xlsx",
                    media_type=XLSX_TYPE,
                    size=len(row.xlsx),
                    sha256=row.xlsx_sha256,
                    href=f"{base}.xlsx",
                ),
            ],
        )
