"""Jobs the rollups context runs."""

from __future__ import annotations

from nscl_domain.jobs import JobName
from nscl_domain.jobs.registry import JobKind
from nscl_domain.rollups import service as rollups

JOBS: tuple[JobKind, ...] = (
    JobKind(
        name=JobName.REFRESH_ROLLUP,
        args_model=rollups.RefreshRollupArgs,
        handler=rollups.refresh,
        validate=rollups.check_refresh,
        description="Recompute a programme-year's rollup: the cells changes touch, or all.",
        operator_may_schedule=True,
    ),
    JobKind(
        name=JobName.REBUILD_ROLLUPS,
        args_model=rollups.RebuildRollupsArgs,
        handler=rollups.rebuild,
        validate=rollups.check_rebuild,
        description="Recompute every programme-year whose inputs changed (nightly).",
        operator_may_schedule=True,
    ),
)
