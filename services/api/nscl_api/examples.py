"""Request examples of every write, by operation id, drawn from the Bắc Kạn seed.

Kept in one table rather than on each model so that an example is written for an operation
(a PATCH shows the fields one would change, not every field of the model), and so that a test
can run each through the operation's own body model: an example that no longer validates
fails the build instead of misleading a client's developer.
"""

from __future__ import annotations

from typing import Any

# Ids in examples: the reader substitutes the ones the service gave them.
_LINE_ID = "0191a2b3-c4d5-7e6f-8a9b-0c1d2e3f4a5b"
_OBLIGATION_ID = "0191a2b3-c4d5-7e6f-8a9b-0c1d2e3f4a60"

_REPORT_CONTENT: dict[str, Any] = {
    "indicator_values": [
        {"indicator": "enterprises-supported", "value": "12"},
        {"indicator": "iso-9001-certificates", "value": "3"},
        {
            "indicator": "people-trained",
            "disaggregation": {"trainee_group": "manager"},
            "value": "25",
        },
        {
            "indicator": "people-trained",
            "disaggregation": {"trainee_group": "worker"},
            "value": "140",
        },
    ],
    "task_progress": [
        {
            "task": "t-1-1",
            "status": "in_progress",
            "narrative": "Hai lớp tập huấn về công cụ cải tiến năng suất cho doanh nghiệp"
            " huyện Ba Bể.",
        }
    ],
    "narrative": {
        "results": "Hỗ trợ 12 doanh nghiệp áp dụng công cụ 5S và Kaizen.",
        "shortcomings": "Số doanh nghiệp đăng ký còn ít.",
        "causes": "Doanh nghiệp nhỏ, thiếu kinh phí đối ứng.",
        "proposals": "Tăng mức hỗ trợ cho hợp tác xã nông sản.",
    },
    "enterprises": [
        {
            "tax_code": "0100109106",
            "name": "Hợp tác xã Nông nghiệp Ba Bể",
            "solution": "5s",
            "certificate_issued": False,
            "model_enterprise": False,
        }
    ],
    "experts": [],
    "answers": {},
}

_PLAN_CONTENT: dict[str, Any] = {
    "focal_agency": "Phòng Kinh tế và Hạ tầng huyện Ba Bể",
    "summary": "Hỗ trợ doanh nghiệp và hợp tác xã áp dụng công cụ cải tiến năng suất.",
    "activities": [
        {
            "task": "t-1-1",
            "title": "Tập huấn áp dụng 5S cho hợp tác xã nông sản",
            "key_products": ["Hai lớp tập huấn", "Tài liệu hướng dẫn 5S"],
            "integrated_with": [{"programme": "ocop", "detail": ""}],
            "planned_outputs": [
                {"indicator": "enterprises-supported", "year": 2026, "value": "10"},
                {"indicator": "people-trained", "year": 2026, "value": "120"},
            ],
        }
    ],
}

# operationId → (summary, value).
REQUEST_EXAMPLES: dict[str, tuple[str, Any]] = {
    "requestAnnualReport": ("The province's report on 2024", {"year": 2024}),
    "requestReview": ("The mid-term review of 2021–2025", {"phase": "bk-2021-2025"}),
    "backfillReport": (
        "Ba Bể's 2022 report, received late by letter",
        {
            "unit": "bk-ba-be",
            "year": 2022,
            "regime": "bk-annual",
            "letter": {"number": "152/BC-UBND", "date": "2022-12-05", "issuer": None},
            "received_on": "2022-12-08",
            "content": {
                "indicator_values": [
                    {"indicator": "enterprises-supported", "value": "4"},
                    {"indicator": "training-courses", "value": "2"},
                ]
            },
            "reason": None,
        },
    ),
    "recordBaselineFigures": (
        "ISO 9001 certificates of 2011–2020 and enterprises supported in 2020, province-wide",
        {
            "figures": [
                {
                    "indicator": "iso-9001-certificates",
                    "period": "bp-2011-2020",
                    "year": None,
                    "unit": None,
                    "disaggregation": {},
                    "value": "50",
                    "source_document": "Báo cáo tổng kết 10 năm 2011-2020 số 25/BC-SKHCN",
                    "source_date": "2020-10-30",
                    "note": "",
                },
                {
                    "indicator": "enterprises-supported",
                    "period": None,
                    "year": 2020,
                    "unit": None,
                    "disaggregation": {},
                    "value": "100",
                    "source_document": "Báo cáo năm 2020 số 210/BC-SKHCN",
                    "source_date": "2020-12-15",
                    "note": "",
                },
            ]
        },
    ),
    "createSchedule": (
        "Prune finished jobs every Sunday at 03:00, Hà Nội time",
        {
            "key": "weekly-jobs-prune",
            "job_name": "jobs.prune",
            "args": {"older_than_days": 90},
            "cron": "0 3 * * 0",
            "enabled": True,
            "description": "Xoá các công việc đã xong quá 90 ngày.",
        },
    ),
    "updateSchedule": ("Pause the nightly rebuild during a migration", {"enabled": False}),
    "setFourEyes": (
        "Waive four eyes while one officer runs the programme",
        {"required": False, "reason": "Một cán bộ phụ trách chương trình trong năm 2026."},
    ),
    "issueToken": (
        "A unit's reporter asks for a token",
        {
            "grant_type": "client_credentials",
            "client_id": "bk-ba-be-reporter",
            "client_secret": "s3cret-from-nscl-clients-create",
            "scope": "reports.write catalogue.read",
        },
    ),
    "receiveProvincialRollup": (
        "Bắc Kạn's instance sends its published 2024 rollup",
        {
            "run_id": "0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b",
            "seq": 7,
            "fingerprint": "9f2c1e7a4b5d6c8e0f1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f70",
            "computed_at": "2024-11-20T08:15:00Z",
            "cells": [
                {
                    "indicator": "enterprises-supported",
                    "disaggregation": "",
                    "value": "12",
                    "value_sum": "12",
                    "value_count": 3,
                    "value_min": "2",
                    "value_max": "6",
                },
                {
                    "indicator": "people-trained",
                    "disaggregation": "trainee_group=worker",
                    "value": "140",
                    "value_sum": "140",
                    "value_count": 2,
                    "value_min": "40",
                    "value_max": "100",
                },
            ],
        },
    ),
    "requestRollup": (
        "Refresh the Bắc Kạn rollup of 2025",
        {"programme": "bac-kan-nscl", "year": 2025, "full": False},
    ),
    "createOrgUnit": (
        "A commune of Thái Nguyên after the 2025 merger",
        {
            "key": "tn-xa-cho-don",
            "kind": "commune_peoples_committee",
            "code": None,
            "name_vi": "Ủy ban nhân dân xã Chợ Đồn",
            "name_en": "People's Committee of Chợ Đồn commune",
            "abbreviation": None,
            "parent": "tn-ppc",
            "valid_from": "2025-07-01",
            "valid_to": None,
        },
    ),
    "updateOrgUnit": (
        "Correct the English name of Ba Bể district",
        {"name_en": "People's Committee of Ba Bể District"},
    ),
    "createSuccession": (
        "Ba Bể district merges into Thái Nguyên province",
        {
            "successor": "tn-ppc",
            "kind": "merged_into",
            "effective": "2025-07-01",
            "note_en": "Districts abolished; Bắc Kạn merged into Thái Nguyên.",
        },
    ),
    "createProgrammeRole": (
        "Ba Bể district reports on the Bắc Kạn plan",
        {
            "role": "reporting_unit",
            "unit": "bk-ba-be",
            "focal_agency": "bk-ba-be-phong-ktht",
            "valid_from": "2021-01-01",
            "valid_to": "2025-07-01",
        },
    ),
    "updateProgrammeRole": ("End the role on the day the unit ends", {"valid_to": "2025-07-01"}),
    "createTaskExtension": (
        "A task the province added for Ba Bể",
        {
            "key": "t-1-1-ba-be-ocop",
            "title_vi": "Hỗ trợ sản phẩm OCOP huyện Ba Bể áp dụng truy xuất nguồn gốc",
            "title_en": "Support Ba Bể's OCOP products in adopting traceability",
            "unit": "bk-ba-be",
            "decided_by": "bk-ppc",
            "decision_no": "123/QĐ-UBND",
            "decision_date": "2023-03-15",
            "extended_to_year": 2025,
            "task": "t-1-1",
        },
    ),
    "updateReportingRegime": (
        "Annual reports due on 15 December, closing 10 days before",
        {"due_month": 12, "due_day": 15, "cutoff_days_before_due": 10},
    ),
    "updateValidationRule": (
        "Make the outlier rule a warning at four times the previous year",
        {"severity": "warning", "enabled": True, "params": {"factor": 4}},
    ),
    "generateObligations": (
        "The annual reports of 2025",
        {"year": 2025, "regime": "bk-annual"},
    ),
    "createReportingRequest": (
        "An ad hoc request to the districts",
        {
            "title_vi": "Báo cáo nhanh kết quả hỗ trợ doanh nghiệp 6 tháng đầu năm 2025",
            "title_en": "Quick report on enterprise support in the first half of 2025",
            "year": 2025,
            "due_date": "2025-06-20",
            "units": ["bk-ba-be", "bk-cho-don"],
            "indicators": ["enterprises-supported"],
            "questions": ["Những khó khăn chính khi triển khai?"],
        },
    ),
    "createReport": ("Start the report of an obligation", {"obligation_id": _OBLIGATION_ID}),
    "updateReportDraft": ("Ba Bể's 2025 figures", _REPORT_CONTENT),
    "returnReport": (
        "Send the report back to Ba Bể",
        {"reason": "Số doanh nghiệp được hỗ trợ chưa khớp với danh sách kèm theo."},
    ),
    "correctReport": (
        "Reopen an accepted report for a correction",
        {"reason": "Bổ sung hai doanh nghiệp được cấp chứng chỉ ISO 9001 sau hạn báo cáo."},
    ),
    "createPlan": ("Ba Bể's annual plan for 2026", {"kind": "annual", "start_year": 2026}),
    "writePlanContent": ("Ba Bể's activities for 2026", {"content": _PLAN_CONTENT}),
    "returnPlan": (
        "Send the plan back to Ba Bể",
        {"reason": "Chưa gắn hoạt động với nhiệm vụ của Kế hoạch tỉnh."},
    ),
    "proposePlanChange": (
        "Ba Bể raises its 2026 training target",
        {
            "reason": "Bổ sung một lớp tập huấn theo đề nghị của hợp tác xã.",
            "content": _PLAN_CONTENT,
        },
    ),
    "decidePlanChange": (
        "DOST approves the change",
        {"decision": "approve", "note": "Phù hợp với dự toán được giao."},
    ),
    "createBudgetEstimate": ("Ba Bể's estimate for 2026", {"budget_year": 2026}),
    "replaceBudgetEstimateLines": (
        "Two lines, one per funding source",
        {
            "lines": [
                {
                    "task": "t-1-1",
                    "activity": "Tập huấn 5S cho hợp tác xã nông sản",
                    "amount": 150000000,
                    "funding_source": "recurrent_science",
                    "chapter": "417",
                    "loai_khoan": "100-104",
                    "muc_tieu_muc": "7000-7012",
                },
                {
                    "task": None,
                    "activity": "Đối ứng của doanh nghiệp",
                    "amount": 50000000,
                    "funding_source": "other_enterprise",
                    "chapter": None,
                    "loai_khoan": None,
                    "muc_tieu_muc": None,
                },
            ]
        },
    ),
    "returnBudgetEstimate": (
        "Send the estimate back to Ba Bể",
        {"reason": "Dòng chi tập huấn vượt định mức; đề nghị điều chỉnh."},
    ),
    "buildBudgetDossiers": ("Build the 2026 dossiers", {"budget_year": 2026}),
    "acknowledgeBudgetDossier": (
        "Finance allocates part of a line",
        {"allocations": {_LINE_ID: 120000000}},
    ),
    "recordSpending": (
        "Spending on a training course",
        {"amount": 45000000, "spent_on": "2026-04-10", "note": "Lớp tập huấn 5S tại xã Chợ Rã."},
    ),
    "createJob": (
        "Prune jobs older than 30 days",
        {"name": "jobs.prune", "args": {"older_than_days": 30}},
    ),
    "createWebhook": (
        "The province's portal hears of Ba Bể's accepted reports and of published rollups",
        {
            "url": "https://portal.backan.gov.vn/nscl-events",
            "event_types": ["report.accepted", "rollup.published"],
            "unit": "bk-ba-be",
            "description": "Cổng thông tin tỉnh",
            "max_concurrency": 4,
        },
    ),
    "rotateWebhookSecret": ("A new secret; the old one signs too for a day", {"overlap_hours": 24}),
    "replayWebhook": (
        "Send again what the endpoint was sent on 29 November",
        {"since": "2026-11-29T00:00:00Z", "until": "2026-11-30T00:00:00Z"},
    ),
}
