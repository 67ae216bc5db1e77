"""/v1/org-units, /v1/programmes and their parts: the programme catalogue."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query

from nscl_api.catalogue.schemas import (
    FourEyesUpdate,
    IndicatorRead,
    OrgUnitCreate,
    OrgUnitDetail,
    OrgUnitRead,
    OrgUnitUpdate,
    PhaseRead,
    ProgrammeDetail,
    ProgrammeRead,
    RoleCreate,
    RoleName,
    RoleRead,
    RoleUpdate,
    SuccessionCreate,
    SuccessionRead,
    TargetRead,
    TaskExtensionCreate,
    TaskExtensionRead,
    TaskGroupRead,
    TaskRead,
    UnitKind,
)
from nscl_api.deps import CatalogueReader, CatalogueWriter, UowDep
from nscl_api.errors import responses
from nscl_api.pagination import (
    Page,
    after_key_of,
    encode_cursor,
    offset_of,
    offset_page,
    split_page,
)
from nscl_domain.catalogue import service as catalogue
from nscl_domain.errors import Conflict, Invalid, NotFound
from nscl_domain.identity import Permission
from nscl_domain.types import IsoDate

units_router = APIRouter(prefix="/v1/org-units", tags=["organisation units"])
programmes_router = APIRouter(prefix="/v1/programmes", tags=["programmes"])
periods_router = APIRouter(prefix="/v1/baseline-periods", tags=["programmes"])

Limit = Annotated[int, Query(ge=1, le=200, description="Page size.")]
Cursor = Annotated[
    str | None, Query(max_length=500, description="`next_cursor` of the previous page.")
]
AsOf = Annotated[
    IsoDate | None,
    Query(description="Return the structure of this day. Without it: every period."),
]
Ref = Annotated[str, Query(max_length=100)]


@units_router.get(
    "",
    operation_id="listOrgUnits",
    summary="List organisation units",
    responses=responses(Invalid),
)
async def list_org_units(
    uow: UowDep,
    caller: CatalogueReader,
    as_of: AsOf = None,
    kind: UnitKind | None = None,
    parent: Annotated[str | None, Query(max_length=100, description="Parent id or key.")] = None,
    code: Annotated[str | None, Query(max_length=20, description="Official code.")] = None,
    q: Annotated[
        str | None,
        Query(
            max_length=100,
            description="Name search: every word, in any order, with or without diacritics "
            '("chat luong bac kan").',
        ),
    ] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[OrgUnitRead]:
    """List units in key order, as of a day, by kind, parent, code or name."""
    after_key = after_key_of(cursor)
    rows = await catalogue.list_units(
        uow,
        caller,
        as_of=as_of,
        kind=kind,
        parent=parent,
        code=code,
        q=q,
        after_key=after_key,
        limit=limit,
    )
    page, more = split_page(rows, limit)
    return Page[OrgUnitRead](
        items=[OrgUnitRead.of(view) for view in page],
        next_cursor=encode_cursor({"after": page[-1].unit.key}) if more else None,
    )


@units_router.get(
    "/{unit}",
    operation_id="getOrgUnit",
    summary="Get an organisation unit",
    responses=responses(NotFound),
)
async def get_org_unit(unit: str, uow: UowDep, caller: CatalogueReader) -> OrgUnitDetail:
    """Show a unit (by id or key) with its predecessors and successors."""
    return OrgUnitDetail.of_detail(
        await catalogue.get_unit(uow, caller, unit),
        show_contacts=caller.can(Permission.CATALOGUE_WRITE),
    )


@units_router.post(
    "",
    status_code=201,
    operation_id="createOrgUnit",
    summary="Add an organisation unit",
    responses=responses(Invalid, Conflict),
)
async def create_org_unit(
    body: OrgUnitCreate, uow: UowDep, actor: CatalogueWriter
) -> OrgUnitDetail:
    """Add a unit; its period must lie within its parent's and its code must not clash."""
    detail = await catalogue.create_unit(uow, actor, **body.model_dump())
    return OrgUnitDetail.of_detail(detail)


@units_router.patch(
    "/{unit}",
    operation_id="updateOrgUnit",
    summary="Change an organisation unit",
    responses=responses(NotFound, Invalid, Conflict),
)
async def update_org_unit(
    unit: str, body: OrgUnitUpdate, uow: UowDep, actor: CatalogueWriter
) -> OrgUnitDetail:
    """Change names, code, parent or period; a field sent as null is cleared."""
    sent = body.model_dump(exclude_unset=True)
    changes = catalogue.UnitChanges(
        **{k: v for k, v in sent.items() if v is not None},
        clear=frozenset(k for k, v in sent.items() if v is None),
    )
    return OrgUnitDetail.of_detail(await catalogue.update_unit(uow, actor, unit, changes))


@units_router.post(
    "/{unit}/successions",
    status_code=201,
    operation_id="createSuccession",
    summary="Record a successor",
    responses=responses(NotFound, Invalid, Conflict),
)
async def create_succession(
    unit: str, body: SuccessionCreate, uow: UowDep, actor: CatalogueWriter
) -> SuccessionRead:
    """Record that another unit takes over from this one (merger, split, renaming)."""
    view = await catalogue.add_succession(uow, actor, unit, **body.model_dump())
    return SuccessionRead.of(view)


@programmes_router.get(
    "", operation_id="listProgrammes", summary="List programmes", responses=responses(Invalid)
)
async def list_programmes(
    uow: UowDep, caller: CatalogueReader, limit: Limit = 50, cursor: Cursor = None
) -> Page[ProgrammeRead]:
    """List the national programme and the provincial plans that implement it."""
    offset = offset_of(cursor)
    items, next_cursor = offset_page(
        await catalogue.list_programmes(uow, caller, offset=offset, limit=limit), offset, limit
    )
    return Page[ProgrammeRead](items=[ProgrammeRead.of(p) for p in items], next_cursor=next_cursor)


@programmes_router.get(
    "/{programme}",
    operation_id="getProgramme",
    summary="Get a programme",
    responses=responses(NotFound),
)
async def get_programme(programme: str, uow: UowDep, caller: CatalogueReader) -> ProgrammeDetail:
    """Show a programme (by id or key) with its phases."""
    found, phases = await catalogue.get_programme(uow, caller, programme)
    return ProgrammeDetail(
        **ProgrammeRead.of(found).model_dump(), phases=[PhaseRead.of(p) for p in phases]
    )


@programmes_router.put(
    "/{programme}/four-eyes",
    operation_id="setFourEyes",
    summary="Require or waive four eyes on reviews",
    responses=responses(NotFound, Invalid),
)
async def set_four_eyes(
    programme: str, body: FourEyesUpdate, uow: UowDep, actor: CatalogueWriter
) -> ProgrammeRead:
    """Require (the default) or waive the rule that the client that submitted a report,
    plan, estimate or change request may not accept or return it; the change and every
    review it lets through are audited."""
    found = await catalogue.set_four_eyes(
        uow, actor, programme, required=body.required, reason=body.reason
    )
    return ProgrammeRead.of(found)


@programmes_router.get(
    "/{programme}/indicators",
    operation_id="listIndicators",
    summary="List a programme's indicators",
    responses=responses(NotFound, Invalid),
)
async def list_indicators(
    programme: str, uow: UowDep, caller: CatalogueReader, limit: Limit = 50, cursor: Cursor = None
) -> Page[IndicatorRead]:
    """List the indicators the programme measures, with units and aggregation rules."""
    offset = offset_of(cursor)
    rows = await catalogue.list_indicators(uow, caller, programme, offset=offset, limit=limit)
    items, next_cursor = offset_page(rows, offset, limit)
    return Page[IndicatorRead](items=[IndicatorRead.of(i) for i in items], next_cursor=next_cursor)


@programmes_router.get(
    "/{programme}/targets",
    operation_id="listTargets",
    summary="List a programme's targets",
    responses=responses(NotFound, Invalid),
)
async def list_targets(
    programme: str,
    uow: UowDep,
    caller: CatalogueReader,
    phase: Annotated[str | None, Query(max_length=100, description="Phase id or key.")] = None,
    indicator: Annotated[
        str | None, Query(max_length=100, description="Indicator id or key.")
    ] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[TargetRead]:
    """List targets by phase and indicator, each with its kind and the plan's wording."""
    offset = offset_of(cursor)
    rows = await catalogue.list_targets(
        uow, caller, programme, phase=phase, indicator=indicator, offset=offset, limit=limit
    )
    items, next_cursor = offset_page(rows, offset, limit)
    return Page[TargetRead](items=[TargetRead.of(t) for t in items], next_cursor=next_cursor)


@programmes_router.get(
    "/{programme}/task-groups",
    operation_id="listTaskGroups",
    summary="List a programme's task groups",
    responses=responses(NotFound),
)
async def list_task_groups(
    programme: str, uow: UowDep, caller: CatalogueReader
) -> Page[TaskGroupRead]:
    """List the groups of tasks and solutions, in the plan's order."""
    groups = await catalogue.list_task_groups(uow, caller, programme)
    return Page[TaskGroupRead](items=[TaskGroupRead.of(g) for g in groups])


@programmes_router.get(
    "/{programme}/tasks",
    operation_id="listTasks",
    summary="List a programme's tasks",
    responses=responses(NotFound, Invalid),
)
async def list_tasks(
    programme: str,
    uow: UowDep,
    caller: CatalogueReader,
    group: Annotated[str | None, Query(max_length=100, description="Task group id or key.")] = None,
    unit: Annotated[
        str | None, Query(max_length=100, description="Tasks this unit leads or co-operates on.")
    ] = None,
    q: Annotated[
        str | None,
        Query(
            max_length=100,
            description="Text search: every word, in any order, with or without diacritics.",
        ),
    ] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[TaskRead]:
    """List tasks in plan order with their lead and co-operating units."""
    offset = offset_of(cursor)
    rows = await catalogue.list_tasks(
        uow, caller, programme, group=group, unit=unit, q=q, offset=offset, limit=limit
    )
    items, next_cursor = offset_page(rows, offset, limit)
    return Page[TaskRead](items=[TaskRead.of(t) for t in items], next_cursor=next_cursor)


@programmes_router.get(
    "/{programme}/roles",
    operation_id="listProgrammeRoles",
    summary="List who does what in a programme",
    responses=responses(NotFound, Invalid),
)
async def list_roles(
    programme: str,
    uow: UowDep,
    caller: CatalogueReader,
    as_of: AsOf = None,
    role: RoleName | None = None,
    unit: Annotated[str | None, Query(max_length=100, description="Unit id or key.")] = None,
    limit: Limit = 100,
    cursor: Cursor = None,
) -> Page[RoleRead]:
    """List programme roles (lead, recipients of estimates, reporting units …) on a day."""
    offset = offset_of(cursor)
    rows = await catalogue.list_roles(
        uow, caller, programme, as_of=as_of, role=role, unit=unit, offset=offset, limit=limit
    )
    items, next_cursor = offset_page(rows, offset, limit)
    return Page[RoleRead](items=[RoleRead.of(r) for r in items], next_cursor=next_cursor)


@periods_router.get("", operation_id="listBaselinePeriods", summary="List baseline periods")
async def list_baseline_periods(uow: UowDep, caller: CatalogueReader) -> Page[PhaseRead]:
    """List the periods targets compare against (2011–2020)."""
    return Page[PhaseRead](
        items=[PhaseRead.of(p) for p in await catalogue.list_baseline_periods(uow, caller)]
    )


@programmes_router.post(
    "/{programme}/roles",
    status_code=201,
    operation_id="createProgrammeRole",
    summary="Give a unit a role in a programme",
    responses=responses(NotFound, Invalid, Conflict),
)
async def create_role(
    programme: str, body: RoleCreate, uow: UowDep, actor: CatalogueWriter
) -> RoleRead:
    """Give a unit a role from a day; single-holder roles (lead, recipients) must not overlap."""
    return RoleRead.of(await catalogue.add_role(uow, actor, programme, **body.model_dump()))


@programmes_router.patch(
    "/{programme}/roles/{role_id}",
    operation_id="updateProgrammeRole",
    summary="End a programme role",
    responses=responses(NotFound, Invalid, Conflict),
)
async def update_role(
    programme: str, role_id: uuid.UUID, body: RoleUpdate, uow: UowDep, actor: CatalogueWriter
) -> RoleRead:
    """Set the first day a role no longer applies (or clear it)."""
    return RoleRead.of(
        await catalogue.end_role(uow, actor, programme, role_id, valid_to=body.valid_to)
    )


@programmes_router.get(
    "/{programme}/task-extensions",
    operation_id="listTaskExtensions",
    summary="List extended tasks of the previous programme",
    responses=responses(NotFound, Invalid),
)
async def list_task_extensions(
    programme: str, uow: UowDep, caller: CatalogueReader, limit: Limit = 50, cursor: Cursor = None
) -> Page[TaskExtensionRead]:
    """List tasks of the programme to 2020 that continue, with who decided and when."""
    offset = offset_of(cursor)
    rows = await catalogue.list_task_extensions(uow, caller, programme, offset=offset, limit=limit)
    items, next_cursor = offset_page(rows, offset, limit)
    return Page[TaskExtensionRead](
        items=[TaskExtensionRead.of(e) for e in items], next_cursor=next_cursor
    )


@programmes_router.post(
    "/{programme}/task-extensions",
    status_code=201,
    operation_id="createTaskExtension",
    summary="Record an extended task",
    responses=responses(NotFound, Invalid, Conflict),
)
async def create_task_extension(
    programme: str, body: TaskExtensionCreate, uow: UowDep, actor: CatalogueWriter
) -> TaskExtensionRead:
    """Record a previous-programme task extended by the unit or the People's Committee."""
    return TaskExtensionRead.of(
        await catalogue.add_task_extension(uow, actor, programme, **body.model_dump())
    )
