"""Bodies of the programme record endpoints."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pydantic import Field

from nscl_api.types import (
    IndicatorKey,
    ProgrammeKey,
    Quantity,
    RequestModel,
    ResponseModel,
    UnitKey,
)
from nscl_domain.records import models as m
from nscl_domain.records.content import RecordContent, RecordKind
from nscl_domain.records.service import RecordView, parse_stored
from nscl_domain.workflow import ReviewStatus


class RecordWrite(RequestModel):
    content: RecordContent = Field(description="One kind of record, named by its `kind`.")


class RecordFigureRead(ResponseModel):
    indicator: IndicatorKey
    disaggregation: str = Field(description='"dimension=value" pairs joined by ";"; "" total.')
    value: Quantity


class RecordSummary(ResponseModel):
    id: uuid.UUID
    programme: ProgrammeKey
    unit: UnitKey = Field(description="The unit that filed it.")
    kind: RecordKind
    year: int = Field(description="The programme year it counts in (from its own dates).")
    title: str
    status: ReviewStatus
    revision: int
    latest_version_no: int
    accepted_version_no: int | None = Field(description="The version that counts, once accepted.")
    first_submitted_at: datetime | None
    accepted_at: datetime | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, record: m.ProgrammeRecord, unit: str, programme: str) -> RecordSummary:
        return cls(
            id=record.id,
            programme=programme,
            unit=unit,
            kind=record.kind,
            year=record.year,
            title=record.title,
            status=record.status,
            revision=record.revision,
            latest_version_no=record.latest_version_no,
            accepted_version_no=record.accepted_version_no,
            first_submitted_at=record.first_submitted_at,
            accepted_at=record.accepted_at,
            created_at=record.created_at,
            updated_at=record.updated_at,
        )


class RecordRead(RecordSummary):
    returned_reason: str | None
    correction_reason: str | None
    content: RecordContent
    figures: list[RecordFigureRead] = Field(
        description="What the working content counts, by indicator (derived, never typed)."
    )

    @classmethod
    def of_view(cls, view: RecordView) -> RecordRead:
        record = view.record
        return cls(
            **RecordSummary.of(record, view.unit_key, view.programme_key).model_dump(),
            returned_reason=record.returned_reason,
            correction_reason=record.correction_reason,
            content=parse_stored(record.draft),
            figures=[
                RecordFigureRead(
                    indicator=f.indicator, disaggregation=f.disaggregation, value=f.value
                )
                for f in view.figures
            ],
        )


class RecordVersionRead(ResponseModel):
    version_no: int
    kind: m.RecordVersionKind
    year: int
    reason: str | None = Field(description="Why a correction was made.")
    submitted_at: datetime
    submitted_by: str
    content: RecordContent
    figures: list[RecordFigureRead] = Field(description="What this version counts, frozen.")

    @classmethod
    def of(
        cls, version: m.ProgrammeRecordVersion, figures: Sequence[tuple[str, str, Any]]
    ) -> RecordVersionRead:
        return cls(
            version_no=version.version_no,
            kind=version.kind,
            year=version.year,
            reason=version.reason,
            submitted_at=version.submitted_at,
            submitted_by=version.submitted_by,
            content=parse_stored(version.content),
            figures=[
                RecordFigureRead(indicator=i, disaggregation=d, value=v) for i, d, v in figures
            ],
        )


# One example per kind: what a client sends to open or rewrite a record.
EXAMPLES: dict[str, dict[str, Any]] = {
    "honour": {
        "summary": "Honours (khen thưởng) by a decision",
        "value": {
            "content": {
                "kind": "honour",
                "decision_no": "1234/QĐ-UBND",
                "decision_date": "2024-12-20",
                "issued_by": "Chủ tịch UBND tỉnh Bắc Kạn",
                "form": "certificate_of_merit_chairman",
                "recipients": [
                    {
                        "recipient_kind": "collective",
                        "name": "Chi cục Tiêu chuẩn Đo lường Chất lượng",
                    },
                    {
                        "recipient_kind": "individual",
                        "name": "Nguyễn Thị Hoa",
                        "organisation": "Sở Khoa học và Công nghệ",
                    },
                ],
            }
        },
    },
    "quality_award": {
        "summary": "An enterprise entering the National Quality Award",
        "value": {
            "content": {
                "kind": "quality_award",
                "enterprise": {"tax_code": "4700123406", "name": "Công ty CP Miến dong Bắc Kạn"},
                "award_year": 2024,
                "result": "silver",
                "support": "Hướng dẫn lập hồ sơ, đánh giá nội bộ",
            }
        },
    },
    "training_course": {
        "summary": "A training course and the experts it certified",
        "value": {
            "content": {
                "kind": "training_course",
                "title": "Đào tạo chuyên gia năng suất chất lượng",
                "organiser": "Sở Khoa học và Công nghệ",
                "starts_on": "2024-05-06",
                "ends_on": "2024-05-17",
                "trainee_groups": [
                    {"group": "manager", "trainees": 12},
                    {"group": "worker", "trainees": 30},
                ],
                "experts": [
                    {
                        "full_name": "Hoàng Văn Nam",
                        "level": "national",
                        "certified_on": "2024-05-17",
                    },
                ],
            }
        },
    },
    "communication": {
        "summary": "A communication activity of a campaign",
        "value": {
            "content": {
                "kind": "communication",
                "campaign": "Tháng chất lượng 2024",
                "channel": "television",
                "held_on": "2024-10-10",
                "reach": 15000,
                "description": "Phóng sự trên Đài Phát thanh - Truyền hình tỉnh",
            }
        },
    },
    "model_enterprise": {
        "summary": "The model (pilot) enterprise and its progress",
        "value": {
            "content": {
                "kind": "model_enterprise",
                "enterprise": {"tax_code": "4700123406", "name": "Công ty CP Miến dong Bắc Kạn"},
                "solutions": ["iso_9001", "5s", "kaizen"],
                "state": "model",
                "started_on": "2023-03-01",
                "recognised_on": "2024-11-15",
                "progress": "Áp dụng đồng bộ ISO 9001, 5S, Kaizen; năng suất tăng 12%",
            }
        },
    },
    "inspection": {
        "summary": "An inspection of a unit's implementation",
        "value": {
            "content": {
                "kind": "inspection",
                "inspected_unit": "bk-cho-don",
                "inspected_on": "2024-09-12",
                "findings": "Chưa xây dựng kế hoạch hằng năm đúng hạn",
                "recommendations": [
                    {"text": "Ban hành kế hoạch năm 2025 trước 31/12", "follow_up": "pending"},
                ],
            }
        },
    },
}
