"""Use cases of a unit's budget estimate: open it, write its lines, read it, review it."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date
from typing import Annotated, Any

from pydantic import Field, StrictInt, ValidationError

from nscl_domain.audit.repository import AuditRepository, snapshot
from nscl_domain.budget import models as m
from nscl_domain.budget.models import FundingSource
from nscl_domain.budget.repository import BudgetRepository
from nscl_domain.budget.visibility import budget_visibility
from nscl_domain.catalogue.lifetime import Lifetimes, require_exists_on
from nscl_domain.catalogue.service import check_programme_year, programme_or_404
from nscl_domain.errors import Conflict, FieldProblem, Invalid
from nscl_domain.identity import Caller, Permission
from nscl_domain.jobs.models import Job
from nscl_domain.jobs.requests import refresh_later
from nscl_domain.types import InputModel
from nscl_domain.uow import UnitOfWork
from nscl_domain.workflow import Action, Edit, Review, ReviewStatus, check_acting, unit_work_scope

Amount = Annotated[
    StrictInt,
    Field(
        ge=0,
        le=m.MAX_AMOUNT,
        description="Whole đồng (VND has no minor unit).",
        examples=[150_000_000],
    ),
]


def _budget(uow: UnitOfWork) -> BudgetRepository:
    return uow.get(BudgetRepository)


class LineInput(InputModel):
    """One line of an estimate as a unit writes it."""

    task: str | None = Field(default=None, max_length=100, description="Programme task key.")
    activity: str = Field(min_length=1, max_length=2000)
    amount: Amount
    funding_source: FundingSource
    chapter: str | None = Field(default=None, max_length=20, description="Chương.")
    loai_khoan: str | None = Field(default=None, max_length=20, description="Loại–Khoản.")
    muc_tieu_muc: str | None = Field(default=None, max_length=20, description="Mục–Tiểu mục.")


@dataclass(frozen=True)
class EstimateView:
    estimate: m.BudgetEstimate
    lines: Sequence[m.EstimateLine]
    unit_key: str

    @property
    def total(self) -> int:
        return sum(line.amount for line in self.lines)


async def create_estimate(
    uow: UnitOfWork, caller: Caller, programme_ref: str, *, budget_year: int
) -> EstimateView:
    """Open the unit's estimate for a budget year (one per unit and year)."""
    caller.require(Permission.BUDGET_WRITE)
    async with uow:
        budget = _budget(uow)
        programme = await programme_or_404(uow, programme_ref)
        check_programme_year(programme, budget_year, ("body", "budget_year"))
        await check_acting(uow, caller)
        lifetime = await uow.get(Lifetimes).of(caller.unit_id)
        if lifetime is not None:
            # The budget year's money is managed by the unit that exists when it opens.
            require_exists_on(
                lifetime,
                date(budget_year, 1, 1),
                f"an estimate for budget year {budget_year}",
                ("body", "budget_year"),
            )
        if await budget.estimate_of(programme.id, caller.unit_id, budget_year) is not None:
            raise Conflict(
                f"The unit already has an estimate for {budget_year}.", code="estimate_exists"
            )
        estimate = m.BudgetEstimate(
            programme_id=programme.id,
            unit_id=caller.unit_id,
            budget_year=budget_year,
            status=ReviewStatus.DRAFT,
        )
        budget.add(estimate)
        await budget.flush()
        uow.get(AuditRepository).record(
            caller, "estimate.created", "budget_estimate", estimate.id, after=snapshot(estimate)
        )
        await uow.commit()
    return EstimateView(estimate, [], caller.unit_key)


async def get_estimate(uow: UnitOfWork, caller: Caller, estimate_id: uuid.UUID) -> EstimateView:
    """An estimate with its lines, if the caller's unit may see it."""
    caller.require(Permission.BUDGET_READ)
    async with uow:
        scope = budget_visibility(caller).estimate_scope
        estimate = await _budget(uow).estimate(
            estimate_id, None if scope is None else await unit_work_scope(uow, caller)
        )
        return await estimate_view(uow, estimate)


async def list_estimates(
    uow: UnitOfWork,
    caller: Caller,
    *,
    programme: str | None = None,
    budget_year: int | None = None,
    unit: str | None = None,
    subtree: bool = False,
    status: ReviewStatus | None = None,
    before_id: uuid.UUID | None = None,
    limit: int = 50,
) -> list[EstimateView]:
    """Estimates the caller may read (its unit's, or every unit's when it reviews or audits)
    with their lines, newest first: ``limit`` + 1, so callers see if more follow."""
    caller.require(Permission.BUDGET_READ)
    async with uow:
        budget = _budget(uow)
        programme_id = (await programme_or_404(uow, programme)).id if programme else None
        found = await budget.estimates(
            programme_id=programme_id, budget_year=budget_year, unit=unit, subtree=subtree,
            status=status, unit_scope=budget_visibility(caller).estimate_scope,
            before_id=before_id, limit=limit,
        )  # fmt: skip
        lines = await budget.lines_of_many([e.id for e in found])
        keys = await budget.unit_keys([e.unit_id for e in found])
        return [EstimateView(e, lines[e.id], keys[e.unit_id]) for e in found]


async def estimate_view(uow: UnitOfWork, estimate: m.BudgetEstimate) -> EstimateView:
    """The estimate with its lines as stored now."""
    budget = _budget(uow)
    unit = await budget.unit(estimate.unit_id)
    return EstimateView(estimate, await budget.lines_of(estimate.id), unit.key)


def parse_lines(raw: Sequence[dict[str, Any]]) -> list[LineInput]:
    """Validate every line, naming each bad field (money: whole đồng, 0 to 10^15)."""
    problems: list[FieldProblem] = []
    parsed: list[LineInput] = []
    for index, item in enumerate(raw):
        try:
            parsed.append(LineInput.model_validate(item))
        except ValidationError as exc:
            problems += FieldProblem.all_of(exc, ("body", "lines", index))
    if problems:
        raise Invalid(
            f"{len(problems)} problem(s) in the lines.", code="invalid_lines", fields=problems
        )
    return parsed


def _codes(line: LineInput) -> list[tuple[str, str]]:
    """The account codes a line names, with their kinds."""
    return [
        (kind, code)
        for kind, code in (
            ("chapter", line.chapter),
            ("loai_khoan", line.loai_khoan),
            ("muc_tieu_muc", line.muc_tieu_muc),
        )
        if code is not None
    ]


async def _write_lines(
    uow: UnitOfWork, estimate: m.BudgetEstimate, lines: Sequence[LineInput]
) -> None:
    """Check tasks and account codes for the budget year, then put the lines in place."""
    budget = _budget(uow)
    tasks = await budget.task_ids(estimate.programme_id)
    problems = [
        FieldProblem(("body", "lines", i, "task"), f"No task {line.task!r} in the programme.")
        for i, line in enumerate(lines)
        if line.task is not None and line.task not in tasks
    ]
    year = estimate.budget_year
    if any(_codes(line) for line in lines):
        valid = await budget.account_codes_valid_in(year)
        problems += [
            FieldProblem(
                ("body", "lines", i, kind),
                f"{code!r} is not a valid {kind} code in budget year {year}.",
                "invalid_account_code",
            )
            for i, line in enumerate(lines)
            for kind, code in _codes(line)
            if (kind, code) not in valid
        ]
    if problems:
        raise Invalid(
            f"{len(problems)} problem(s) in the lines.", code="invalid_lines", fields=problems
        )
    await budget.replace_lines(
        estimate.id,
        [
            m.EstimateLine(
                estimate_id=estimate.id,
                position=position,
                task_id=tasks[line.task] if line.task else None,
                activity=line.activity,
                amount=line.amount,
                funding_source=line.funding_source,
                chapter=line.chapter,
                loai_khoan=line.loai_khoan,
                muc_tieu_muc=line.muc_tieu_muc,
            )
            for position, line in enumerate(lines, start=1)
        ],
    )


replace_lines = Edit(
    m.BudgetEstimate,
    Permission.BUDGET_WRITE,
    "estimate.lines_replaced",
    parse=parse_lines,
    write=_write_lines,
    audited=lambda _, lines: {"lines": len(lines), "total": sum(line.amount for line in lines)},
    view=estimate_view,
)
"""Replace the draft's lines after checking tasks and account codes for its budget year."""


async def _estimate_accepted(uow: UnitOfWork, reviewer: Caller, estimate: m.BudgetEstimate) -> Job:
    # The year's rollup sets accepted estimates beside what was reported.
    return await refresh_later(
        uow, estimate.programme_id, estimate.budget_year, requested_by=reviewer.client_id
    )


review_estimate = Review(
    m.BudgetEstimate,
    Permission.BUDGET_REVIEW,
    scope=lambda reviewer: budget_visibility(reviewer).estimate_scope,
    view=estimate_view,
    audited=lambda _, reason: {"reason": reason},
    accepted=_estimate_accepted,
)
"""Accept an estimate, or return it to its unit with the reason."""


async def accept_estimate(
    uow: UnitOfWork, reviewer: Caller, estimate_id: uuid.UUID, *, expected_revision: int
) -> tuple[EstimateView, Job]:
    """Accept a submitted estimate; return it and the refresh job that will publish the
    year's rollup with it."""
    scheduled: list[Job] = []

    async def accepted(uow: UnitOfWork, reviewer: Caller, estimate: m.BudgetEstimate) -> None:
        scheduled.append(await _estimate_accepted(uow, reviewer, estimate))

    view = await replace(review_estimate, accepted=accepted)(
        uow, reviewer, estimate_id, Action.ACCEPT, expected_revision=expected_revision
    )
    return view, scheduled[0]
