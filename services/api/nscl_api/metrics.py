"""Prometheus metrics and the access log of HTTP traffic, and /metrics for the scraper.

The edge middleware (nscl_api.middleware), outermost, measures every answer (its own too:
a 413) with the families below: it counts requests by route template, method and status
class, times them, and writes one structured access event per request. The route template
comes from the route the router matched (left in the shared scope), never from the raw
path, so a scanner's random URLs share one label.

/metrics adds, at scrape time, the shared state read from PostgreSQL and Redis (see
nscl_domain.composition.metrics): right whatever the number of API processes. With
several processes (`nscl serve --workers N`) the counters go through prometheus_client's
multiprocess mode, and any process's /metrics answers for all of them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.routing import iter_route_contexts
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram
from starlette.types import Scope

from nscl_domain.composition.metrics import pool_families, render, shared_state_families

# Unmatched paths share one label: a scanner's random URLs must not grow the series.
UNMATCHED = "none"
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

# This process's counters (in multiprocess mode their values also go to the shared files).
REGISTRY = CollectorRegistry(auto_describe=True)
HTTP_REQUESTS = Counter(
    "http_requests",
    "HTTP requests answered.",
    labelnames=("handler", "method", "status"),
    namespace="nscl",
    registry=REGISTRY,
)
HTTP_DURATION = Histogram(
    "http_request_duration_seconds",
    "Time to answer an HTTP request.",
    labelnames=("handler", "method"),
    namespace="nscl",
    buckets=BUCKETS,
    registry=REGISTRY,
)
TOKENS_ISSUED = Counter(
    "tokens_issued", "Access tokens issued.", namespace="nscl", registry=REGISTRY
)
TOKEN_FAILURES = Counter(
    "token_failures",
    "Token requests refused, by OAuth2 error (invalid_client, invalid_scope, throttled…).",
    labelnames=("error",),
    namespace="nscl",
    registry=REGISTRY,
)
BEARER_REJECTIONS = Counter(
    "bearer_rejections",
    "Requests whose bearer token was refused, by problem code (expired_token…).",
    labelnames=("code",),
    namespace="nscl",
    registry=REGISTRY,
)


def route_templates(app: FastAPI) -> Callable[[Scope], str]:
    """The template of the route a request matched: FastAPI's routes leave themselves in
    the scope; plain Starlette routes (/openapi.json) only their endpoint."""
    by_endpoint: dict[Any, str] = {}

    def template(scope: Scope) -> str:
        route = scope.get("route")
        path = getattr(route, "path", None)
        if isinstance(path, str):
            return path
        endpoint = scope.get("endpoint")
        if endpoint is None:
            return UNMATCHED
        if not by_endpoint:
            for context in iter_route_contexts(app.routes):
                if context.endpoint is not None and context.path is not None:
                    by_endpoint.setdefault(context.endpoint, context.path)
        return by_endpoint.get(endpoint, UNMATCHED)

    return template


def add_metrics_route(app: FastAPI) -> None:
    """Serve the figures at /metrics (the edge middleware does the counting)."""

    async def metrics_endpoint(request: Request) -> Response:
        resources = request.app.state.resources
        families = [
            *pool_families(resources.engine),
            *await shared_state_families(
                resources.sessionmaker, resources.redis, resources.settings.queue_name
            ),
        ]
        return Response(render(REGISTRY, families), media_type=CONTENT_TYPE_LATEST)

    app.add_api_route("/metrics", metrics_endpoint, methods=["GET"], include_in_schema=False)
