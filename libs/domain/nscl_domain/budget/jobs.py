"""Jobs the budget context runs."""

from __future__ import annotations

from nscl_domain.budget import dossiers as budget
from nscl_domain.jobs import JobName
from nscl_domain.jobs.registry import JobKind

JOBS: tuple[JobKind, ...] = (
    JobKind(
        name=JobName.BUILD_DOSSIERS,
        args_model=budget.BuildDossiersArgs,
        handler=budget.build_dossiers,
        validate=budget.check_dossier_build,
        description="Build the budget year's dossiers for Finance and Planning and Investment.",
    ),
)
