"""OAuth2 token endpoint (client credentials, RFC 6749 §4.4) and the public keys (JWKS)."""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Any, Literal
from urllib.parse import unquote

import structlog
from fastapi import APIRouter, Form, Request
from pydantic.json_schema import SkipJsonSchema
from starlette.responses import JSONResponse, Response

from nscl_api.auth.guard import HeldOff, TokenGuard, client_address
from nscl_api.auth.schemas import Jwks, TokenResponse
from nscl_api.deps import ResourcesDep
from nscl_api.metrics import TOKEN_FAILURES, TOKENS_ISSUED
from nscl_api.problems import problem_response
from nscl_domain.clock import utcnow
from nscl_domain.errors import Invalid, ProblemCode, Unauthenticated, Unavailable
from nscl_domain.identity import service as identity

log = structlog.get_logger(__name__)

router = APIRouter(tags=["authentication"])


def _oauth_error(status: int, error: ProblemCode, description: str, **headers: str) -> Response:
    """A problem+json body that also carries RFC 6749's `error` and `error_description`."""
    TOKEN_FAILURES.labels(error).inc()
    return problem_response(
        status,
        error,
        description,
        instance="/v1/oauth/token",
        headers={"Cache-Control": "no-store", **headers},
        extra={"error": error, "error_description": description},
    )


def _basic_credentials(request: Request) -> tuple[str, str] | None:
    header = request.headers.get("authorization", "")
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        client_id, _, secret = base64.b64decode(encoded, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return unquote(client_id), unquote(secret)


_OAUTH_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "invalid_request, unsupported_grant_type or invalid_scope."},
    401: {"description": "invalid_client: unknown or disabled client, or wrong secret."},
    429: {
        "description": "too_many_attempts (this client from this address, or this address) "
        "or rate_limited (the endpoint); see Retry-After."
    },
    503: {"description": "temporarily_unavailable: secret checks are all busy; see Retry-After."},
}
for _status, _entry in _OAUTH_ERRORS.items():
    _entry["content"] = {
        "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
    }
    if _status in (429, 503):
        _entry["headers"] = {
            "Retry-After": {
                "description": "Seconds to wait before trying again.",
                "schema": {"type": "integer", "minimum": 1},
            }
        }


@router.post(
    "/v1/oauth/token",
    operation_id="issueToken",
    summary="Issue an access token",
    response_model=TokenResponse,
    responses=_OAUTH_ERRORS,
)
async def issue_token(
    request: Request,
    resources: ResourcesDep,
    # Parsed loosely so that another grant is RFC 6749's `unsupported_grant_type`, not a 422;
    # the contract names the one grant there is.
    grant_type: Annotated[
        Literal["client_credentials"] | SkipJsonSchema[str] | SkipJsonSchema[None],
        Form(max_length=50),
    ] = None,
    client_id: Annotated[str | None, Form(max_length=100)] = None,
    client_secret: Annotated[str | None, Form(max_length=200)] = None,
    scope: Annotated[str | None, Form(max_length=500)] = None,
) -> Response:
    """Exchange client credentials (form fields or HTTP Basic) for a short-lived bearer token."""
    basic = _basic_credentials(request)
    if basic is not None:
        client_id, client_secret = basic
    if grant_type is None or not client_id or client_secret is None:
        return _oauth_error(
            400,
            "invalid_request",
            "Send a form-encoded body with grant_type, client_id and client_secret.",
        )
    if grant_type != "client_credentials":
        return _oauth_error(400, "unsupported_grant_type", "Only client_credentials is supported.")

    settings = resources.settings
    address = client_address(
        request.client.host if request.client else None,
        request.headers.get("x-forwarded-for"),
        settings.trusted_proxies,
    )
    guard = TokenGuard(resources.redis, settings)
    admitted = await guard.admit(client_id, address)
    if isinstance(admitted, HeldOff):
        log.warning("auth.held_off", client_id=client_id, client_host=address, code=admitted.code)
        return _oauth_error(
            429,
            admitted.code,
            f"{admitted.detail} Retry in {admitted.retry_after} s.",
            **{"Retry-After": str(admitted.retry_after)},
        )
    try:
        grant = await identity.authenticate(
            resources.new_uow(),
            client_id,
            client_secret,
            scope.split() if scope else None,
            checker=resources.secrets,
            known=admitted.usual,
        )
    except Unavailable as exc:
        await guard.undecided(admitted)
        log.warning("auth.busy", client_id=client_id, client_host=address)
        return _oauth_error(503, "temporarily_unavailable", exc.detail, **{"Retry-After": "1"})
    except Unauthenticated as exc:
        await guard.failed(admitted)
        log.warning("auth.failed", client_id=client_id, reason=exc.detail, client_host=address)
        return _oauth_error(401, "invalid_client", exc.detail, **{"WWW-Authenticate": "Basic"})
    except Invalid as exc:
        # The secret was right: only the scope asked for was not.
        await guard.succeeded(admitted)
        return _oauth_error(400, "invalid_scope", exc.detail)
    except BaseException:
        await guard.undecided(admitted)
        raise
    await guard.succeeded(admitted)
    issued = resources.keys.issue(grant, now=utcnow(), ttl_seconds=settings.token_ttl_seconds)
    TOKENS_ISSUED.inc()
    log.info("auth.token_issued", client_id=client_id, scope=issued.scope)
    return JSONResponse(
        TokenResponse(
            access_token=issued.access_token, expires_in=issued.expires_in, scope=issued.scope
        ).model_dump(),
        headers={"Cache-Control": "no-store", "Pragma": "no-cache"},
    )


@router.get(
    "/.well-known/jwks.json",
    operation_id="getJwks",
    summary="Public keys of tokens",
    response_model=Jwks,
)
async def jwks(resources: ResourcesDep) -> Jwks:
    """The public keys (JWK Set) that verify this service's tokens, for other systems."""
    return Jwks(keys=resources.keys.public_jwks)
