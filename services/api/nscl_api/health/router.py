"""Service endpoints: liveness and readiness."""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy import text
from starlette.responses import Response

from nscl_api.deps import ResourcesDep
from nscl_api.errors import responses
from nscl_api.health.schemas import CheckResult, Health, Readiness
from nscl_api.problems import problem_response
from nscl_domain.schema import schema_state

router = APIRouter(tags=["service"])


@router.get("/health", operation_id="getHealth", summary="Liveness")
async def health() -> Health:
    """Answer 200 while the process is alive; it checks nothing else."""
    return Health()


@router.get(
    "/ready",
    operation_id="getReadiness",
    summary="Readiness",
    response_model=Readiness,
    responses=responses(503),
)
async def ready(resources: ResourcesDep) -> Readiness | Response:
    """Answer 200 when the database is reachable, its schema current and Redis reachable."""
    checks: dict[str, CheckResult] = {}
    reasons: list[str] = []
    try:
        async with resources.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
            checks["database"] = "ok"
            state = await schema_state(conn)
        if state.is_current:
            checks["schema"] = "ok"
        else:
            checks["schema"] = "failed"
            reasons.append(f"schema is at {state.current or 'nothing'}, code needs {state.head}")
    except Exception as exc:
        checks["database"] = checks["schema"] = "failed"
        reasons.append(f"database unreachable ({type(exc).__name__})")
    try:
        await resources.redis.ping()
        checks["redis"] = "ok"
    except Exception as exc:
        checks["redis"] = "failed"
        reasons.append(f"redis unreachable ({type(exc).__name__})")
    if reasons:
        return problem_response(
            503,
            "not_ready",
            "Not ready: " + "; ".join(reasons) + ".",
            instance="/ready",
            extra={"checks": checks},
        )
    return Readiness(checks=checks)
