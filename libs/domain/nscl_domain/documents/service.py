"""Use cases of documents: DOST asks for the year's report (or a phase review) and a job
renders it from the published runs; readers fetch what was kept, with its checksum."""

from __future__ import annotations

import asyncio
import threading
import uuid
from dataclasses import dataclass
from hashlib import sha256
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from nscl_domain.audit.repository import AuditRepository
from nscl_domain.catalogue import models as cm
from nscl_domain.catalogue.service import check_programme_year, programme_or_404
from nscl_domain.documents.content import Document, gather
from nscl_domain.documents.models import DocumentArtefact
from nscl_domain.documents.repository import DocumentRepository
from nscl_domain.errors import FieldProblem, Forbidden, Invalid, NotFound
from nscl_domain.identity import Caller, Permission
from nscl_domain.jobs import JobName
from nscl_domain.jobs.models import Job
from nscl_domain.jobs.registry import JobContext, Location, requester_of
from nscl_domain.repositories import RepositorySource
from nscl_domain.rollups.repository import RollupRepository
from nscl_domain.uow import UnitOfWork

DocumentKind = Literal["annual_report", "mid_term_review", "final_review"]
REVIEW_KINDS = ("mid_term_review", "final_review")
# pyplot keeps global state: one rendering at a time per process.
_RENDERING = threading.Lock()


class BuildDocumentArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")

    programme_id: uuid.UUID
    kind: DocumentKind
    period: str = Field(
        max_length=100, description='The year ("2024") of an annual report, a review\'s phase key.'
    )


@dataclass(frozen=True)
class Artefact:
    row: DocumentArtefact
    programme_key: str


def _may_request(caller: Caller) -> None:
    if not (caller.can(Permission.REPORTS_REVIEW) or caller.can(Permission.JOBS_RUN)):
        raise Forbidden(
            "This needs the 'reports.review' or the 'jobs.run' scope, which the token does "
            "not grant.",
            code="insufficient_scope",
        )


async def _check(source: RepositorySource, args: BuildDocumentArgs, at: Location) -> cm.Programme:
    """The programme exists, the period is one of its years or phases, and (for a report)
    the year's rollup is published: a document is made from a published run only."""
    repo = source.get(RollupRepository)
    programme = await repo.programme(args.programme_id)
    if programme is None:
        raise Invalid(
            f"Programme {args.programme_id} does not exist.",
            code="unknown_programme",
            fields=[FieldProblem((*at, "programme_id"), "No such programme.")],
        )
    if args.kind == "annual_report":
        if not args.period.isdigit():
            raise Invalid(
                "An annual report's period is a year.",
                code="invalid_period",
                fields=[FieldProblem((*at, "period"), "A year, such as 2024.")],
            )
        year = int(args.period)
        check_programme_year(programme, year, (*at, "period"))
        if await repo.published_run_id(programme.id, year) is None:
            raise Invalid(
                f"No rollup of {programme.key} for {year} is published yet: run it first.",
                code="rollup_not_published",
                fields=[FieldProblem((*at, "period"), "No published rollup.")],
            )
        return programme
    phase = await repo.phase(programme.id, args.period)
    if phase is None:
        raise Invalid(
            f"No phase {args.period!r} in {programme.key}.",
            code="phase_not_found",
            fields=[FieldProblem((*at, "period"), "No such phase.")],
        )
    if not await repo.published_years(programme.id, phase.start_year, phase.end_year):
        raise Invalid(
            f"No year of {phase.key} is published yet.",
            code="rollup_not_published",
            fields=[FieldProblem((*at, "period"), "No published rollup in the phase.")],
        )
    return programme


async def check_build(source: RepositorySource, args: BuildDocumentArgs, at: Location) -> None:
    """The validator of ``documents.build``."""
    await _check(source, args, at)


async def request_build(
    uow: UnitOfWork, caller: Caller, programme_ref: str, *, year: int | None = None,
    phase: str | None = None,
) -> Job:  # fmt: skip
    """Queue the job that renders the annual report of ``year`` or the review of ``phase``
    (mid-term, or final when the phase ends with the programme); return the job."""
    _may_request(caller)
    async with uow:
        programme = await programme_or_404(uow, programme_ref)
        where: Location
        if year is not None:
            kind: DocumentKind = "annual_report"
            period, where = str(year), ("body", "year")
        else:
            assert phase is not None
            found = await uow.get(RollupRepository).phase(programme.id, phase)
            kind = review_kind(programme, found)
            period, where = phase, ("body", "phase")
        args = BuildDocumentArgs(programme_id=programme.id, kind=kind, period=period)
        try:
            await _check(uow, args, ("body",))
        except Invalid as exc:
            # Name the field the client sent, not the job's argument.
            problems = [FieldProblem(where, f.message) for f in exc.fields]
            raise Invalid(exc.detail, code=exc.code, fields=problems) from exc
        job = await uow.schedule(
            JobName.BUILD_DOCUMENT,
            args.model_dump(mode="json"),
            dedup_key=f"document:{programme.id}:{kind}:{period}",
            requested_by=caller.client_id,
        )
        uow.get(AuditRepository).record(
            caller, "document.requested", "job", job.id, after={"kind": kind, "period": period}
        )
        await uow.commit()
    return job


def review_kind(programme: cm.Programme, phase: cm.Phase | None) -> DocumentKind:
    """The final review closes the programme's last phase; any other phase has a mid-term
    review (sơ kết)."""
    if phase is not None and phase.end_year == programme.end_year:
        return "final_review"
    return "mid_term_review"


def render_document(document: Document) -> tuple[bytes, bytes]:
    """Both files of a document (pure: the same document gives the same bytes)."""
    # Imported here: only the worker renders, and the API process need not load the
    # plotting and document libraries.
    from nscl_domain.documents import files

    with _RENDERING:
        return files.render(document)


async def build(ctx: JobContext, args: BuildDocumentArgs) -> dict[str, Any]:
    """Gather the document from the published runs, render it, and keep it; a document
    whose content is already kept is rendered again only to check it is the same."""
    programme = await _check(ctx, args, ("args",))
    if ctx.report_progress is not None:
        await ctx.report_progress({"stage": "gathering", "done": 0, "total": 3})
    document = await gather(ctx, programme, args.kind, args.period)
    fingerprint = document.fingerprint()
    if ctx.report_progress is not None:
        await ctx.report_progress({"stage": "rendering", "done": 1, "total": 3})
    docx, xlsx = await asyncio.to_thread(render_document, document)
    documents = ctx.get(DocumentRepository)
    kept = await documents.by_fingerprint(programme.id, args.kind, args.period, fingerprint)
    docx_sha, xlsx_sha = sha256(docx).hexdigest(), sha256(xlsx).hexdigest()
    if kept is not None:
        return {
            "artefact_id": str(kept.id),
            "created": False,
            "same_bytes": (kept.docx_sha256, kept.xlsx_sha256) == (docx_sha, xlsx_sha),
            "docx_sha256": kept.docx_sha256,
            "xlsx_sha256": kept.xlsx_sha256,
        }
    row = DocumentArtefact(
        programme_id=programme.id,
        kind=args.kind,
        period=args.period,
        run_id=uuid.UUID(document.run_id),
        run_ids=[uuid.UUID(r) for r in document.run_ids],
        fingerprint=fingerprint,
        docx=docx,
        xlsx=xlsx,
        docx_sha256=docx_sha,
        xlsx_sha256=xlsx_sha,
        job_id=ctx.job_id,
    )
    documents.add(row)
    await documents.flush()
    actor = await requester_of(ctx)
    ctx.get(AuditRepository).record(
        actor,
        "document.built",
        "document_artefact",
        row.id,
        after={"kind": args.kind, "period": args.period, "run_id": document.run_id,
               "docx_sha256": docx_sha, "xlsx_sha256": xlsx_sha},
    )  # fmt: skip
    if ctx.report_progress is not None:
        await ctx.report_progress({"stage": "kept", "done": 3, "total": 3})
    return {
        "artefact_id": str(row.id),
        "created": True,
        "same_bytes": True,
        "docx_sha256": docx_sha,
        "xlsx_sha256": xlsx_sha,
    }


async def get_document(
    uow: UnitOfWork, caller: Caller, programme_ref: str, *, year: int | None = None,
    phase: str | None = None,
) -> Artefact:  # fmt: skip
    """The newest document kept for a programme's year (its annual report) or phase (its
    review)."""
    caller.require(Permission.ROLLUPS_READ)
    kinds: tuple[str, ...] = ("annual_report",) if year is not None else REVIEW_KINDS
    period = str(year) if year is not None else str(phase)
    async with uow:
        programme = await programme_or_404(uow, programme_ref)
        row = await uow.get(DocumentRepository).latest(programme.id, kinds, period)
        if row is None:
            what = "annual report" if year is not None else "review"
            raise NotFound(
                f"No {what} of {programme.key} for {period} has been generated yet.",
                code="document_not_found",
            )
        return Artefact(row, programme.key)
