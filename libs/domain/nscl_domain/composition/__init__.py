"""The composition root: wires the contexts together. Only entry points import it.

Importing it binds identity's port onto the catalogue and names the unit of work's
shortcut repositories; the job registry, the seed loader and the process factory live
beside it.
"""

from __future__ import annotations

from nscl_domain.audit.repository import AuditRepository
from nscl_domain.catalogue.repository import CatalogueClientUnits, CatalogueRepository
from nscl_domain.identity.units import ClientUnits
from nscl_domain.reports.repository import ReportRepository
from nscl_domain.repositories import Repositories
from nscl_domain.uow import UnitOfWork

Repositories.bind(ClientUnits, CatalogueClientUnits)
UnitOfWork.shortcut("audit", AuditRepository)
UnitOfWork.shortcut("catalogue", CatalogueRepository)
UnitOfWork.shortcut("reports", ReportRepository)
