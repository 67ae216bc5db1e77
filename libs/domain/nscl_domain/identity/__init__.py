"""Who calls: clients acting for an organisation unit, their roles and what roles permit."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from enum import StrEnum

from nscl_domain.errors import Forbidden


class Role(StrEnum):
    """Roles a client can hold (ARCHITECTURE §5)."""

    REPORTER = "reporter"
    REVIEWER = "reviewer"
    FINANCE = "finance"
    PLANNING_INVESTMENT = "planning_investment"
    VIEWER = "viewer"
    AUDITOR = "auditor"
    OPERATOR = "operator"
    ADMIN = "admin"


class Permission(StrEnum):
    """What a route or a use case needs; tokens carry them as OAuth2 scopes."""

    CATALOGUE_READ = "catalogue.read"
    CATALOGUE_WRITE = "catalogue.write"
    JOBS_READ = "jobs.read"
    JOBS_RUN = "jobs.run"
    AUDIT_READ = "audit.read"
    CLIENTS_MANAGE = "clients.manage"
    REPORTS_READ = "reports.read"
    REPORTS_READ_ALL = "reports.read_all"
    REPORTS_WRITE = "reports.write"
    REPORTS_REVIEW = "reports.review"
    REPORTS_MANAGE = "reports.manage"
    ROLLUPS_READ = "rollups.read"
    BUDGET_READ = "budget.read"
    BUDGET_WRITE = "budget.write"
    BUDGET_REVIEW = "budget.review"
    DOSSIERS_READ = "dossiers.read"
    ALLOCATIONS_WRITE = "allocations.write"
    PLANS_READ = "plans.read"
    PLANS_WRITE = "plans.write"
    PLANS_REVIEW = "plans.review"
    WEBHOOKS_SUBSCRIBE = "webhooks.subscribe"
    WEBHOOKS_MANAGE = "webhooks.manage"


_EVERYONE = {Permission.CATALOGUE_READ, Permission.ROLLUPS_READ, Permission.WEBHOOKS_SUBSCRIBE}

_REVIEW = {
    Permission.REPORTS_READ,
    Permission.REPORTS_READ_ALL,
    Permission.REPORTS_REVIEW,
    Permission.REPORTS_MANAGE,
}

_DESTINATION = {Permission.DOSSIERS_READ, Permission.ALLOCATIONS_WRITE}

ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.REPORTER: frozenset(
        _EVERYONE
        | {
            Permission.REPORTS_READ,
            Permission.REPORTS_WRITE,
            Permission.BUDGET_READ,
            Permission.BUDGET_WRITE,
            Permission.PLANS_READ,
            Permission.PLANS_WRITE,
        }
    ),
    Role.REVIEWER: frozenset(
        _EVERYONE
        | _REVIEW
        | {
            Permission.JOBS_READ,
            Permission.BUDGET_READ,
            Permission.BUDGET_REVIEW,
            Permission.DOSSIERS_READ,
            Permission.PLANS_READ,
            Permission.PLANS_REVIEW,
        }
    ),
    # Finance and Planning and Investment read what is routed to them, and allocate it.
    Role.FINANCE: frozenset(_EVERYONE | _DESTINATION),
    Role.PLANNING_INVESTMENT: frozenset(_EVERYONE | _DESTINATION),
    Role.VIEWER: frozenset(_EVERYONE),
    Role.AUDITOR: frozenset(
        _EVERYONE
        | {
            Permission.AUDIT_READ,
            Permission.JOBS_READ,
            Permission.REPORTS_READ,
            Permission.REPORTS_READ_ALL,
            Permission.BUDGET_READ,
            Permission.DOSSIERS_READ,
            Permission.PLANS_READ,
        }
    ),
    Role.OPERATOR: frozenset(
        _EVERYONE | {Permission.JOBS_READ, Permission.JOBS_RUN, Permission.WEBHOOKS_MANAGE}
    ),
    Role.ADMIN: frozenset(_EVERYONE | {Permission.CATALOGUE_WRITE, Permission.CLIENTS_MANAGE}),
}


def permissions_of(roles: frozenset[Role] | set[Role]) -> frozenset[Permission]:
    """Every permission the roles grant together."""
    return frozenset(p for role in roles for p in ROLE_PERMISSIONS[role])


@dataclass(frozen=True)
class Caller:
    """The authenticated client making a request, as the domain sees it."""

    client_id: str
    unit_id: uuid.UUID
    unit_key: str
    roles: frozenset[Role]
    scopes: frozenset[Permission]
    request_id: str | None = field(default=None, compare=False)

    def can(self, permission: Permission) -> bool:
        return permission in self.scopes

    @property
    def sees_every_unit(self) -> bool:
        """Reviewers and auditors read every unit's reports; others only their own unit's."""
        return Permission.REPORTS_READ_ALL in self.scopes

    @property
    def read_scope(self) -> uuid.UUID | None:
        """The unit whose objects the caller may read; None when it reads every unit's."""
        return None if self.sees_every_unit else self.unit_id

    def require(self, permission: Permission) -> None:
        """Raise Forbidden unless the caller's token grants ``permission``."""
        if not self.can(permission):
            raise Forbidden(
                f"This needs the {permission.value!r} scope, which the token does not grant.",
                code="insufficient_scope",
            )


SYSTEM = Caller(
    client_id="system",
    unit_id=uuid.UUID(int=0),
    unit_key="system",
    roles=frozenset(Role),
    scopes=frozenset(Permission),
)
"""The service itself (schedules, the command line): may do anything, and is audited as such."""
