"""Every job the worker runs: the union of what each context declares in its jobs.py."""

from __future__ import annotations

from collections.abc import Iterable

from nscl_domain.budget import jobs as budget_jobs
from nscl_domain.documents import jobs as documents_jobs
from nscl_domain.events.delivery import DeliveryConfig
from nscl_domain.events.jobs import delivery_jobs
from nscl_domain.jobs import jobs as jobs_jobs
from nscl_domain.jobs.registry import JobKind, JobRegistry
from nscl_domain.reports import jobs as reports_jobs
from nscl_domain.rollups import jobs as rollups_jobs
from nscl_domain.rollups.upstream import UpstreamConfig
from nscl_domain.settings import Settings


def registry_of(*declared: Iterable[JobKind]) -> JobRegistry:
    """Merge the contexts' job kinds; a name declared twice is a programming error."""
    merged: dict[str, JobKind] = {}
    for kinds in declared:
        for kind in kinds:
            if kind.name in merged:
                raise ValueError(f"job {kind.name!r} is declared twice")
            merged[kind.name] = kind
    return merged


def registry_for(settings: Settings) -> JobRegistry:
    """Every job, webhooks and upstream pushes sent as the settings say."""
    return registry_of(
        budget_jobs.JOBS,
        reports_jobs.JOBS,
        rollups_jobs.rollup_jobs(UpstreamConfig.of(settings)),
        documents_jobs.JOBS,
        jobs_jobs.JOBS,
        delivery_jobs(DeliveryConfig.of(settings)),
    )


DEFAULT_REGISTRY: JobRegistry = registry_of(
    budget_jobs.JOBS,
    reports_jobs.JOBS,
    rollups_jobs.JOBS,
    documents_jobs.JOBS,
    jobs_jobs.JOBS,
    delivery_jobs(DeliveryConfig()),
)
