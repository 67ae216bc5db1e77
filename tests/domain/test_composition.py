"""The composition root: each context's jobs merged once, repositories fetched by type."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, cast

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from nscl_domain.budget import jobs as budget_jobs
from nscl_domain.catalogue.repository import CatalogueClientUnits, CatalogueRepository
from nscl_domain.composition.registry import DEFAULT_REGISTRY, registry_of
from nscl_domain.documents import jobs as documents_jobs
from nscl_domain.identity.units import ClientUnits
from nscl_domain.jobs import JobName
from nscl_domain.jobs import jobs as jobs_jobs
from nscl_domain.jobs.registry import JobContext
from nscl_domain.reports import jobs as reports_jobs
from nscl_domain.repositories import Repositories
from nscl_domain.rollups import jobs as rollups_jobs

SESSION = cast(AsyncSession, object())


def test_the_registry_holds_every_job_each_context_declares() -> None:
    declared = [
        *budget_jobs.JOBS,
        *reports_jobs.JOBS,
        *rollups_jobs.JOBS,
        *documents_jobs.JOBS,
        *jobs_jobs.JOBS,
    ]
    assert {k.name for k in declared} == set(JobName)
    assert all(DEFAULT_REGISTRY[k.name] is k for k in declared)


def test_a_job_declared_twice_is_refused() -> None:
    with pytest.raises(ValueError, match="declared twice"):
        registry_of(jobs_jobs.JOBS, jobs_jobs.JOBS)


def test_a_repository_is_built_once_per_transaction() -> None:
    first, second = Repositories(SESSION), Repositories(SESSION)
    assert first.get(CatalogueRepository) is first.get(CatalogueRepository)
    assert first.get(CatalogueRepository) is not second.get(CatalogueRepository)
    assert first.get(CatalogueRepository).session is SESSION


def test_a_port_gets_what_the_composition_root_binds() -> None:
    assert type(Repositories(SESSION).get(ClientUnits)) is CatalogueClientUnits


def test_an_unbound_port_says_so() -> None:
    class Unbound:
        is_port = True

        def __init__(self, session: Any) -> None:
            self.session = session

    with pytest.raises(LookupError, match="nothing provides Unbound"):
        Repositories(SESSION).get(Unbound)


def test_a_job_fetches_repositories_on_its_own_session() -> None:
    ctx = JobContext(session=SESSION, job_id=uuid.uuid4(), attempt=1, now=datetime.now(UTC))
    assert ctx.get(CatalogueRepository) is ctx.get(CatalogueRepository)
    assert ctx.get(CatalogueRepository).session is SESSION
