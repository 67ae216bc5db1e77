"""Every table of the domain, imported in one place so the metadata is complete."""

from nscl_domain.audit.models import AuditEvent
from nscl_domain.budget import models as budget
from nscl_domain.catalogue import models as catalogue
from nscl_domain.catalogue.baselines import BaselineFigure
from nscl_domain.db import Base
from nscl_domain.documents.models import DocumentArtefact
from nscl_domain.events import models as events
from nscl_domain.idempotency import IdempotencyKey
from nscl_domain.identity.models import ApiClient, SigningKey
from nscl_domain.jobs.models import Job
from nscl_domain.plans import models as plans
from nscl_domain.records import models as records
from nscl_domain.reports import models as reports
from nscl_domain.rollups import models as rollups

metadata = Base.metadata

__all__ = [
    "ApiClient",
    "AuditEvent",
    "BaselineFigure",
    "DocumentArtefact",
    "IdempotencyKey",
    "Job",
    "SigningKey",
    "budget",
    "catalogue",
    "events",
    "metadata",
    "plans",
    "records",
    "reports",
    "rollups",
]
