"""Every job the worker runs: the union of what each context declares in its jobs.py."""

from __future__ import annotations

from collections.abc import Iterable

from nscl_domain.budget import jobs as budget_jobs
from nscl_domain.jobs import jobs as jobs_jobs
from nscl_domain.jobs.registry import JobKind, JobRegistry
from nscl_domain.reports import jobs as reports_jobs
from nscl_domain.rollups import jobs as rollups_jobs


def registry_of(*declared: Iterable[JobKind]) -> JobRegistry:
    """Merge the contexts' job kinds; a name declared twice is a programming error."""
    merged: dict[str, JobKind] = {}
    for kinds in declared:
        for kind in kinds:
            if kind.name in merged:
                raise ValueError(f"job {kind.name!r} is declared twice")
            merged[kind.name] = kind
    return merged


DEFAULT_REGISTRY: JobRegistry = registry_of(
    budget_jobs.JOBS, reports_jobs.JOBS, rollups_jobs.JOBS, jobs_jobs.JOBS
)
