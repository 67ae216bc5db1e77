"""Bearer authentication and per-route permissions (OAuth2 scopes)."""

from __future__ import annotations

import dataclasses

from asgi_correlation_id import correlation_id
from fastapi import Depends, Request
from fastapi.openapi.models import OAuthFlowClientCredentials, OAuthFlows
from fastapi.security import OAuth2, SecurityScopes

from nscl_api.auth.tokens import UnknownSigningKey
from nscl_api.metrics import BEARER_REJECTIONS
from nscl_api.resources import Resources
from nscl_domain.errors import Unauthenticated
from nscl_domain.identity import Caller, Permission
from nscl_domain.identity import service as identity

# One line per Permission: the declared scopes are built from the enum below, and a test
# fails when a member has no line here, so a new permission cannot reach a route undeclared.
SCOPE_DESCRIPTIONS: dict[Permission, str] = {
    Permission.CATALOGUE_READ: "Read the programme catalogue.",
    Permission.CATALOGUE_WRITE: "Change organisation units, roles and the catalogue.",
    Permission.JOBS_READ: "Read background jobs.",
    Permission.JOBS_RUN: "Start maintenance jobs.",
    Permission.AUDIT_READ: "Read the audit trail.",
    Permission.CLIENTS_MANAGE: "Manage API clients and signing keys.",
    Permission.REPORTS_READ: "Read the reports of the caller's unit.",
    Permission.REPORTS_READ_ALL: "Read every unit's reports.",
    Permission.REPORTS_WRITE: "Write and submit the reports of the caller's unit.",
    Permission.REPORTS_REVIEW: "Accept or return submitted reports.",
    Permission.REPORTS_MANAGE: "Manage regimes, rules, obligations and ad hoc requests.",
    Permission.ROLLUPS_READ: "Read published rollups.",
    Permission.BUDGET_READ: "Read the budget estimates of the caller's unit (all: reviewers).",
    Permission.BUDGET_WRITE: "Write and submit the budget estimates of the caller's unit.",
    Permission.BUDGET_REVIEW: "Accept or return estimates, build and send dossiers.",
    Permission.DOSSIERS_READ: "Read the budget dossiers addressed to the caller's unit.",
    Permission.ALLOCATIONS_WRITE: "Acknowledge dossiers and record allocations.",
    Permission.PLANS_READ: "Read the plans and change requests of the caller's unit "
    "(all: reviewers).",
    Permission.PLANS_WRITE: "Write and submit the plans of the caller's unit; propose and "
    "withdraw changes to accepted plans.",
    Permission.PLANS_REVIEW: "Accept or return submitted plans; decide on change requests.",
    Permission.WEBHOOKS_SUBSCRIBE: (
        "Subscribe the client's own endpoints to events about what it may read; rotate their "
        "secrets, read their delivery log, replay."
    ),
    Permission.WEBHOOKS_MANAGE: "Manage every client's webhook subscriptions.",
}

# Every member is declared, described or not: an undescribed one shows as an empty line in
# the document (and fails the test) rather than as a scope clients cannot ask for.
SCOPES = {permission.value: SCOPE_DESCRIPTIONS.get(permission, "") for permission in Permission}

oauth2_scheme = OAuth2(
    flows=OAuthFlows(
        clientCredentials=OAuthFlowClientCredentials(
            tokenUrl="/v1/oauth/token",
            scopes=SCOPES,
        )
    ),
    scheme_name="oauth2",
    description="OAuth2 client credentials: POST /v1/oauth/token, then `Authorization: Bearer`.",
    auto_error=False,
)


def _bearer(authorization: str | None) -> str:
    if not authorization:
        raise Unauthenticated("This needs a bearer token.", code="missing_token")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("Use `Authorization: Bearer <token>`.", code="missing_token")
    return token.strip()


async def authorize(
    request: Request,
    security_scopes: SecurityScopes,
    authorization: str | None = Depends(oauth2_scheme),
) -> Caller:
    """Authenticate the bearer token and check the route's scopes; return the caller."""
    try:
        caller = await _authorize(request, security_scopes, authorization)
    except Unauthenticated as exc:
        BEARER_REJECTIONS.labels(exc.code).inc()
        raise
    # For the access event: which client this request came from.
    request.state.client_id = caller.client_id
    return caller


async def _authorize(
    request: Request, security_scopes: SecurityScopes, authorization: str | None
) -> Caller:
    resources = request.app.state.resources
    assert isinstance(resources, Resources)
    token = _bearer(authorization)
    try:
        verified = resources.keys.verify(token)
    except UnknownSigningKey:
        # Perhaps a key rotated in elsewhere a moment ago, before this process's poll saw
        # it: reload (throttled), then judge again. Retired keys need no such path: the
        # poll drops them.
        if not await resources.reload_keys():
            raise
        verified = resources.keys.verify(token)
    caller = await resources.callers.get_or_load(
        verified.client_id,
        verified.scopes,
        lambda: identity.caller_for_token(
            resources.new_uow(), verified.client_id, verified.scopes, None
        ),
    )
    caller = dataclasses.replace(caller, request_id=correlation_id.get())
    for scope in security_scopes.scopes:
        caller.require(Permission(scope))
    return caller
