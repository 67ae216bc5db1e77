"""/v1/webhooks: event subscriptions, their delivery log, secret rotation and replay."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response, Security

from nscl_api.auth.deps import authorize
from nscl_api.conditional import sends
from nscl_api.deps import SettingsDep, UowDep
from nscl_api.errors import responses
from nscl_api.pagination import Page, before_id_of, encode_cursor, split_page
from nscl_api.webhooks.schemas import (
    DeliveryAttemptRead,
    Replay,
    ReplayAccepted,
    SecretRotation,
    WebhookCreate,
    WebhookRead,
    WebhookWithSecret,
)
from nscl_domain.errors import Conflict, Invalid, NotFound
from nscl_domain.events import service as webhooks
from nscl_domain.events.delivery import DeliveryConfig
from nscl_domain.identity import Caller, Permission
from nscl_domain.identity.sealing import KeySealer

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"])

Subscriber = Annotated[Caller, Security(authorize, scopes=[Permission.WEBHOOKS_SUBSCRIBE.value])]


def _with_secret(created: webhooks.Created) -> WebhookWithSecret:
    return WebhookWithSecret(
        **WebhookRead.of(created.subscription).model_dump(), secret=created.secret
    )


@router.post(
    "",
    status_code=201,
    operation_id="createWebhook",
    openapi_extra=sends("Location"),
    summary="Subscribe to events",
    responses=responses(Invalid, NotFound),
)
async def create_webhook(
    body: WebhookCreate, uow: UowDep, caller: Subscriber, settings: SettingsDep, response: Response
) -> WebhookWithSecret:
    """Subscribe a URL to event types; the answer shows the signing secret once. The target
    must resolve to public addresses only (unless the operators' allow-list names them), and
    a signed `webhook.ping` is sent to it: a redirecting target is refused."""
    created = await webhooks.create(
        uow,
        caller,
        DeliveryConfig.of(settings),
        url=body.url,
        event_types=[t.value for t in body.event_types],
        unit=body.unit,
        description=body.description,
        max_concurrency=body.max_concurrency,
        owner=body.owner,
    )
    response.headers["Location"] = f"/v1/webhooks/{created.subscription.id}"
    return _with_secret(created)


@router.get(
    "", operation_id="listWebhooks", summary="List subscriptions", responses=responses(Invalid)
)
async def list_webhooks(
    uow: UowDep,
    caller: Subscriber,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> Page[WebhookRead]:
    """The caller's subscriptions (operators: everyone's), newest first."""
    rows = await webhooks.list_subscriptions(uow, caller, before_id_of(cursor), limit)
    page, more = split_page(rows, limit)
    return Page[WebhookRead](
        items=[WebhookRead.of(s) for s in page],
        next_cursor=encode_cursor({"before": str(page[-1].id)}) if more else None,
    )


@router.get(
    "/{webhook_id}", operation_id="getWebhook", summary="Get a subscription",
    responses=responses(NotFound),
)  # fmt: skip
async def get_webhook(webhook_id: uuid.UUID, uow: UowDep, caller: Subscriber) -> WebhookRead:
    """A subscription and whether it is enabled (and why not)."""
    return WebhookRead.of(await webhooks.get(uow, caller, webhook_id))


@router.delete(
    "/{webhook_id}", status_code=204, operation_id="deleteWebhook",
    summary="Delete a subscription", responses=responses(NotFound),
)  # fmt: skip
async def delete_webhook(webhook_id: uuid.UUID, uow: UowDep, caller: Subscriber) -> Response:
    """Stop sending; pending deliveries end failed."""
    await webhooks.delete(uow, caller, webhook_id)
    return Response(status_code=204)


@router.post(
    "/{webhook_id}/secret-rotation", operation_id="rotateWebhookSecret",
    summary="Rotate the signing secret", responses=responses(NotFound, Invalid),
)  # fmt: skip
async def rotate_secret(
    webhook_id: uuid.UUID,
    body: SecretRotation,
    uow: UowDep,
    caller: Subscriber,
    settings: SettingsDep,
) -> WebhookWithSecret:
    """A new secret (shown once) signs from now on; the old one signs beside it (a second
    `v1,` signature in `webhook-signature`) for `overlap_hours`."""
    sealer = KeySealer.from_settings(settings)
    return _with_secret(
        await webhooks.rotate_secret(uow, caller, sealer, webhook_id, body.overlap_hours)
    )


@router.post(
    "/{webhook_id}/enablement", operation_id="enableWebhook",
    summary="Enable a disabled subscription", responses=responses(NotFound),
)  # fmt: skip
async def enable_webhook(webhook_id: uuid.UUID, uow: UowDep, caller: Subscriber) -> WebhookRead:
    """Send again to an endpoint disabled after failing for days; what waited goes now."""
    return WebhookRead.of(await webhooks.enable(uow, caller, webhook_id))


@router.get(
    "/{webhook_id}/deliveries", operation_id="listWebhookDeliveries",
    summary="The delivery log", responses=responses(NotFound, Invalid),
)  # fmt: skip
async def list_deliveries(
    webhook_id: uuid.UUID,
    uow: UowDep,
    caller: Subscriber,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> Page[DeliveryAttemptRead]:
    """Every attempt, newest first: status, latency and the start of the endpoint's answer."""
    rows = await webhooks.deliveries(uow, caller, webhook_id, before_id_of(cursor), limit)
    page, more = split_page(rows, limit)
    return Page[DeliveryAttemptRead](
        items=[DeliveryAttemptRead.of(a, t) for a, t in page],
        next_cursor=encode_cursor({"before": str(page[-1][0].id)}) if more else None,
    )


@router.post(
    "/{webhook_id}/replay", status_code=202, operation_id="replayWebhook",
    summary="Send events again", responses=responses(NotFound, Invalid, Conflict),
)  # fmt: skip
async def replay(
    webhook_id: uuid.UUID, body: Replay, uow: UowDep, caller: Subscriber
) -> ReplayAccepted:
    """Send one event again, or those of a time range, with the same `webhook-id`."""
    count = await webhooks.replay(
        uow, caller, webhook_id, event_id=body.event_id, since=body.since, until=body.until
    )
    return ReplayAccepted(requeued=count)
