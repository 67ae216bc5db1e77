"""Jobs the documents context runs."""

from __future__ import annotations

from nscl_domain.documents import service as documents
from nscl_domain.jobs import JobName
from nscl_domain.jobs.registry import JobKind

JOBS: tuple[JobKind, ...] = (
    JobKind(
        name=JobName.BUILD_DOCUMENT,
        args_model=documents.BuildDocumentArgs,
        handler=documents.build,
        validate=documents.check_build,
        description="Render the annual report or a phase review from the published rollups.",
        operator_may_schedule=True,
    ),
)
