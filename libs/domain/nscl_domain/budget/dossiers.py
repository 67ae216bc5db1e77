"""Use cases of the budget year's totals and dossiers: DOST builds a dossier per destination
from the accepted lines routed to it and sends it; Finance or Planning and Investment
acknowledge it and record what they allocate per line."""

from __future__ import annotations

import hashlib
import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from nscl_domain.audit.repository import AuditRepository
from nscl_domain.budget import models as m
from nscl_domain.budget.repository import BudgetRepository
from nscl_domain.budget.visibility import budget_visibility
from nscl_domain.catalogue import models as cm
from nscl_domain.catalogue.service import check_programme_year, programme_or_404
from nscl_domain.errors import Conflict, FieldProblem, Invalid, NotFound
from nscl_domain.identity import Caller, Permission
from nscl_domain.jobs import JobName
from nscl_domain.jobs.registry import JobContext, Location, requester_of
from nscl_domain.jobs.requests import refresh_later
from nscl_domain.repositories import RepositorySource
from nscl_domain.uow import UnitOfWork


def _budget(uow: UnitOfWork) -> BudgetRepository:
    return uow.get(BudgetRepository)


@dataclass(frozen=True)
class DossierView:
    dossier: m.Dossier
    destination: cm.OrgUnit
    allocations: Sequence[m.Allocation]


class BuildDossiersArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")

    programme_id: uuid.UUID
    budget_year: int = Field(ge=2000, le=2100)


async def totals(
    uow: UnitOfWork, caller: Caller, programme_ref: str, budget_year: int
) -> list[dict[str, Any]]:
    """Accepted estimates totalled by funding source × destination × unit × task group;
    other sources have no destination."""
    caller.require(Permission.BUDGET_REVIEW)
    visibility = budget_visibility(caller)
    async with uow:
        programme = await programme_or_404(uow, programme_ref)
        rows = await _budget(uow).totals(programme.id, budget_year)
        return [row for row in rows if visibility.shows_row(row["unit"], row["destination"])]


async def request_dossier_build(
    uow: UnitOfWork, reviewer: Caller, programme_ref: str, budget_year: int
) -> Any:
    """Queue the job that builds the budget year's dossiers; return the job."""
    reviewer.require(Permission.BUDGET_REVIEW)
    async with uow:
        programme = await programme_or_404(uow, programme_ref)
        args = BuildDossiersArgs(programme_id=programme.id, budget_year=budget_year)
        check_programme_year(programme, budget_year, ("body", "budget_year"))
        job = await uow.schedule(
            JobName.BUILD_DOSSIERS,
            args.model_dump(mode="json"),
            dedup_key=f"dossiers:{programme.id}:{budget_year}",
            requested_by=reviewer.client_id,
        )
        uow.get(AuditRepository).record(
            reviewer, "dossiers.build_requested", "job", job.id, after={"budget_year": budget_year}
        )
        await uow.commit()
    return job


async def check_dossier_build(
    repositories: RepositorySource, args: BuildDossiersArgs, at: Location
) -> None:
    """The programme exists and runs in the budget year (the validator of the build job)."""
    programme = await repositories.get(BudgetRepository).programme(args.programme_id)
    if programme is None:
        raise Invalid(
            f"Programme {args.programme_id} does not exist.",
            code="unknown_programme",
            fields=[FieldProblem((*at, "programme_id"), "No such programme.")],
        )
    check_programme_year(programme, args.budget_year, (*at, "budget_year"))


async def build_dossiers(ctx: JobContext, args: BuildDossiersArgs) -> dict[str, Any]:
    """Build, per destination, a new dossier version of the accepted lines routed to it;
    a destination whose lines did not change keeps its latest version."""
    budget, audit = ctx.get(BudgetRepository), ctx.get(AuditRepository)
    by_destination: dict[uuid.UUID, list[tuple[m.EstimateLine, cm.OrgUnit]]] = defaultdict(list)
    for line, unit in await budget.accepted_routed_lines(args.programme_id, args.budget_year):
        assert line.destination_unit_id is not None
        by_destination[line.destination_unit_id].append((line, unit))
    groups = await budget.task_group_numbers()
    built = []
    actor = await requester_of(ctx)
    for destination, rows in sorted(by_destination.items(), key=lambda kv: str(kv[0])):
        document = _dossier_document(rows, groups)
        latest = await budget.latest_dossier(args.programme_id, args.budget_year, destination)
        if latest is not None and latest.document["fingerprint"] == document["fingerprint"]:
            continue
        dossier = m.Dossier(
            programme_id=args.programme_id,
            budget_year=args.budget_year,
            destination_unit_id=destination,
            version_no=(latest.version_no + 1) if latest else 1,
            status=m.DossierStatus.DRAFT,
            total=document["total"],
            document=document,
        )
        budget.add(dossier)
        await budget.flush()
        audit.record(
            actor,
            "dossier.built",
            "budget_dossier",
            dossier.id,
            after={
                "job_id": str(ctx.job_id),
                "requested_by": actor.client_id,
                "programme_id": str(args.programme_id),
                "budget_year": args.budget_year,
                "destination_unit_id": str(destination),
                "version_no": dossier.version_no,
                "total": dossier.total,
                "fingerprint": document["fingerprint"],
            },
        )
        built.append(str(dossier.id))
    return {"built": built, "destinations": len(by_destination)}


def _dossier_document(
    rows: Sequence[tuple[m.EstimateLine, cm.OrgUnit]], groups: dict[uuid.UUID, int]
) -> dict[str, Any]:
    by_unit: dict[str, int] = defaultdict(int)
    by_group: dict[str, int] = defaultdict(int)
    by_source: dict[str, int] = defaultdict(int)
    lines = []
    for line, unit in rows:
        # 0 for a line tied to no task, as in totals and rollups.
        group = groups.get(line.task_id, 0) if line.task_id is not None else 0
        by_unit[unit.key] += line.amount
        by_group[str(group)] += line.amount
        by_source[line.funding_source] += line.amount
        lines.append(
            {
                "line_id": str(line.id),
                "unit": unit.key,
                "task_group": group,
                "activity": line.activity,
                "amount": line.amount,
                "funding_source": line.funding_source,
                "chapter": line.chapter,
                "loai_khoan": line.loai_khoan,
                "muc_tieu_muc": line.muc_tieu_muc,
            }
        )
    fingerprint = hashlib.sha256(
        "|".join(f"{x['line_id']}:{x['amount']}" for x in lines).encode()
    ).hexdigest()
    return {
        "total": sum(by_unit.values()),
        "by_unit": dict(by_unit),
        "by_task_group": dict(by_group),
        "by_funding_source": dict(by_source),
        "lines": lines,
        "fingerprint": fingerprint,
    }


def _dossier_scope(caller: Caller) -> uuid.UUID | None:
    return budget_visibility(caller).destination_scope


async def list_dossiers(
    uow: UnitOfWork, caller: Caller, programme_ref: str, budget_year: int
) -> Sequence[DossierView]:
    """Dossiers of a budget year; Finance and Planning and Investment see their own only."""
    caller.require(Permission.DOSSIERS_READ)
    async with uow:
        budget = _budget(uow)
        programme = await programme_or_404(uow, programme_ref)
        rows = await budget.dossiers(programme.id, budget_year, _dossier_scope(caller))
        return [DossierView(d, u, await budget.allocations_of(d.id)) for d, u in rows]


async def _dossier(
    uow: UnitOfWork, caller: Caller, dossier_id: uuid.UUID, *, for_update: bool = False
) -> m.Dossier:
    dossier = await _budget(uow).dossier(dossier_id, _dossier_scope(caller), for_update=for_update)
    if dossier is None:
        raise NotFound(f"Dossier {dossier_id} does not exist.", code="dossier_not_found")
    return dossier


async def _view(uow: UnitOfWork, dossier: m.Dossier) -> DossierView:
    budget = _budget(uow)
    destination = await budget.unit(dossier.destination_unit_id)
    return DossierView(dossier, destination, await budget.allocations_of(dossier.id))


async def get_dossier(uow: UnitOfWork, caller: Caller, dossier_id: uuid.UUID) -> DossierView:
    """A dossier, if addressed to the caller's unit (or the caller reviews or audits)."""
    caller.require(Permission.DOSSIERS_READ)
    async with uow:
        return await _view(uow, await _dossier(uow, caller, dossier_id))


async def send_dossier(uow: UnitOfWork, reviewer: Caller, dossier_id: uuid.UUID) -> DossierView:
    """DOST sends a built dossier to its destination."""
    reviewer.require(Permission.BUDGET_REVIEW)
    async with uow:
        dossier = await _dossier(uow, reviewer, dossier_id, for_update=True)
        if dossier.status != m.DossierStatus.DRAFT:
            raise Conflict(
                f"A {dossier.status} dossier cannot be sent again.", code="dossier_not_draft"
            )
        dossier.status, dossier.sent_at = m.DossierStatus.SENT, uow.now()
        uow.get(AuditRepository).record(reviewer, "dossier.sent", "budget_dossier", dossier.id)
        view = await _view(uow, dossier)
        await uow.commit()
    return view


def _allocation_problems(dossier: m.Dossier, allocations: dict[str, int]) -> list[FieldProblem]:
    known = {line["line_id"] for line in dossier.document["lines"]}
    problems = [
        FieldProblem(("body", "allocations", line_id), "Not a line of this dossier.")
        for line_id in allocations
        if line_id not in known
    ]
    problems += [
        FieldProblem(("body", "allocations", line_id), "Whole đồng from 0 to 10^15.")
        for line_id, amount in allocations.items()
        if isinstance(amount, bool)
        or not isinstance(amount, int)
        or not 0 <= amount <= m.MAX_AMOUNT
    ]
    return problems


async def acknowledge_dossier(
    uow: UnitOfWork, caller: Caller, dossier_id: uuid.UUID, allocations: dict[str, int]
) -> DossierView:
    """The destination acknowledges a sent dossier and records what it allocates per line."""
    caller.require(Permission.ALLOCATIONS_WRITE)
    async with uow:
        budget = _budget(uow)
        dossier = await _dossier(uow, caller, dossier_id, for_update=True)
        if dossier.status != m.DossierStatus.SENT:
            raise Conflict(
                f"A {dossier.status} dossier cannot be acknowledged.", code="dossier_not_sent"
            )
        problems = _allocation_problems(dossier, allocations)
        if problems:
            raise Invalid(
                "Some allocations are invalid.", code="invalid_allocations", fields=problems
            )
        rows = [
            m.Allocation(
                dossier_id=dossier.id,
                line_id=uuid.UUID(line_id),
                amount=amount,
                recorded_by=caller.client_id,
            )
            for line_id, amount in allocations.items()
        ]
        for row in rows:
            budget.add(row)
        dossier.status, dossier.acknowledged_at = m.DossierStatus.ACKNOWLEDGED, uow.now()
        dossier.acknowledged_by = caller.client_id
        await budget.flush()
        uow.get(AuditRepository).record(
            caller,
            "dossier.acknowledged",
            "budget_dossier",
            dossier.id,
            after={"allocations": len(rows), "allocated": sum(r.amount for r in rows)},
        )
        await refresh_later(
            uow, dossier.programme_id, dossier.budget_year, requested_by=caller.client_id
        )
        view = await _view(uow, dossier)
        await uow.commit()
    return view
