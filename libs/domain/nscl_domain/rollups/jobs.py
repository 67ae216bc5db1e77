"""Jobs the rollups context runs."""

from __future__ import annotations

from typing import Any

from nscl_domain.jobs import JobName
from nscl_domain.jobs.registry import JobContext, JobKind
from nscl_domain.rollups import service as rollups
from nscl_domain.rollups import upstream as pushing


def rollup_jobs(config: pushing.UpstreamConfig) -> tuple[JobKind, ...]:
    """The rollups jobs; provincial publications are pushed upstream when ``config`` names
    a national instance."""

    async def refresh(ctx: JobContext, args: rollups.RefreshRollupArgs) -> dict[str, Any]:
        return await rollups.refresh(ctx, args, upstream=config.enabled)

    async def rebuild(ctx: JobContext, args: rollups.RebuildRollupsArgs) -> dict[str, Any]:
        return await rollups.rebuild(ctx, args, upstream=config.enabled)

    async def push(ctx: JobContext, args: pushing.PushArgs) -> dict[str, Any]:
        return await pushing.push(ctx, args, config)

    return (
        JobKind(
            name=JobName.REFRESH_ROLLUP,
            args_model=rollups.RefreshRollupArgs,
            handler=refresh,
            validate=rollups.check_refresh,
            description="Recompute a programme-year's rollup: the cells changes touch, or all.",
            operator_may_schedule=True,
        ),
        JobKind(
            name=JobName.REBUILD_ROLLUPS,
            args_model=rollups.RebuildRollupsArgs,
            handler=rebuild,
            validate=rollups.check_rebuild,
            description="Recompute every programme-year whose inputs changed (nightly).",
            operator_may_schedule=True,
        ),
        JobKind(
            name=JobName.PUSH_UPSTREAM,
            args_model=pushing.PushArgs,
            handler=push,
            description="Send a programme-year's published provincial rollup to the national "
            "instance.",
        ),
    )


JOBS: tuple[JobKind, ...] = rollup_jobs(pushing.UpstreamConfig())
