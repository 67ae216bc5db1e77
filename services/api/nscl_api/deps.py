"""Dependencies of the routes, as Annotated aliases."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.exceptions import HTTPException, RequestValidationError

from nscl_api.auth.deps import authorize
from nscl_api.resources import Resources
from nscl_api.types import UNSTORABLE_MESSAGE, unstorable
from nscl_domain.identity import Caller, Permission
from nscl_domain.jobs.registry import JobRegistry
from nscl_domain.settings import Settings
from nscl_domain.uow import UnitOfWork

_BODY_METHODS = {"POST", "PUT", "PATCH"}


# Dependencies are coroutines even when they do no I/O: FastAPI runs plain functions in
# its thread pool, a hand-off that costs more than the work and queues under load.
async def get_resources(request: Request) -> Resources:
    resources = request.app.state.resources
    assert isinstance(resources, Resources)
    return resources


ResourcesDep = Annotated[Resources, Depends(get_resources)]


async def get_settings(resources: ResourcesDep) -> Settings:
    return resources.settings


async def get_uow(resources: ResourcesDep) -> UnitOfWork:
    return resources.new_uow()


async def get_registry(resources: ResourcesDep) -> JobRegistry:
    return resources.registry


SettingsDep = Annotated[Settings, Depends(get_settings)]


# Every route takes exactly one of these: the permission it needs is declared, and checked.
CatalogueReader = Annotated[Caller, Security(authorize, scopes=[Permission.CATALOGUE_READ.value])]
CatalogueWriter = Annotated[Caller, Security(authorize, scopes=[Permission.CATALOGUE_WRITE.value])]
JobsReader = Annotated[Caller, Security(authorize, scopes=[Permission.JOBS_READ.value])]
JobsRunner = Annotated[Caller, Security(authorize, scopes=[Permission.JOBS_RUN.value])]
AuditReader = Annotated[Caller, Security(authorize, scopes=[Permission.AUDIT_READ.value])]
ReportsReader = Annotated[Caller, Security(authorize, scopes=[Permission.REPORTS_READ.value])]
ReportsWriter = Annotated[Caller, Security(authorize, scopes=[Permission.REPORTS_WRITE.value])]
ReportsReviewer = Annotated[Caller, Security(authorize, scopes=[Permission.REPORTS_REVIEW.value])]
ReportsManager = Annotated[Caller, Security(authorize, scopes=[Permission.REPORTS_MANAGE.value])]
BudgetReader = Annotated[Caller, Security(authorize, scopes=[Permission.BUDGET_READ.value])]
BudgetWriter = Annotated[Caller, Security(authorize, scopes=[Permission.BUDGET_WRITE.value])]
BudgetReviewer = Annotated[Caller, Security(authorize, scopes=[Permission.BUDGET_REVIEW.value])]
DossiersReader = Annotated[Caller, Security(authorize, scopes=[Permission.DOSSIERS_READ.value])]
AllocationsWriter = Annotated[
    Caller, Security(authorize, scopes=[Permission.ALLOCATIONS_WRITE.value])
]
PlansReader = Annotated[Caller, Security(authorize, scopes=[Permission.PLANS_READ.value])]
PlansWriter = Annotated[Caller, Security(authorize, scopes=[Permission.PLANS_WRITE.value])]
PlansReviewer = Annotated[Caller, Security(authorize, scopes=[Permission.PLANS_REVIEW.value])]
RollupsReader = Annotated[Caller, Security(authorize, scopes=[Permission.ROLLUPS_READ.value])]
ClientsManager = Annotated[Caller, Security(authorize, scopes=[Permission.CLIENTS_MANAGE.value])]
UowDep = Annotated[UnitOfWork, Depends(get_uow)]
RegistryDep = Annotated[JobRegistry, Depends(get_registry)]


async def reject_unstorable_parameters(request: Request) -> None:
    """Refuse query and path parameters PostgreSQL could not compare or store."""
    problems = [
        {"type": "unstorable_text", "loc": (part, name), "msg": UNSTORABLE_MESSAGE, "input": value}
        for part, items in (
            ("query", request.query_params.multi_items()),
            ("path", list(request.path_params.items())),
        )
        for name, value in items
        if isinstance(value, str) and unstorable(value)
    ]
    if problems:
        raise RequestValidationError(problems)


async def require_json_body(request: Request) -> None:
    """Refuse a request body that is not JSON with 415 rather than a confusing 422."""
    if request.method not in _BODY_METHODS:
        return
    has_body = request.headers.get("content-length", "0") != "0" or (
        "transfer-encoding" in request.headers
    )
    if not has_body:
        return
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type == "application/json" or (
        media_type.startswith("application/") and media_type.endswith("+json")
    ):
        return
    raise HTTPException(
        415, f"The body must be application/json, not {media_type or 'unspecified'}."
    )


async def check_v1_request(request: Request) -> None:
    """Both checks of JSON routes as one dependency: each dependency is solved per request."""
    await require_json_body(request)
    await reject_unstorable_parameters(request)
