"""The application's route table, flattened across included routers."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, iter_route_contexts
from starlette.routing import compile_path

from nscl_api.auth.deps import authorize


@dataclass(frozen=True)
class RouteInfo:
    path: str
    methods: frozenset[str]
    include_in_schema: bool
    endpoint: Callable[..., Any] | None
    is_api_route: bool
    path_regex: re.Pattern[str]
    # Scopes the route's authorisation dependency demands; None: no such dependency at all.
    required_scopes: frozenset[str] | None


def route_table(app: FastAPI) -> list[RouteInfo]:
    """Every route with its full path (prefixes of included routers applied)."""
    table = []
    for context in iter_route_contexts(app.routes):
        path = context.path
        if path is None:
            continue
        table.append(
            RouteInfo(
                path=path,
                methods=frozenset(context.methods or ()),
                include_in_schema=bool(getattr(context, "include_in_schema", True)),
                endpoint=context.endpoint,
                is_api_route=isinstance(context.original_route, APIRoute),
                path_regex=compile_path(path)[0],
                required_scopes=_required_scopes(context.original_route),
            )
        )
    return table


def _required_scopes(route: object) -> frozenset[str] | None:
    if not isinstance(route, APIRoute):
        return None
    found: set[str] | None = None
    pending: list[Dependant] = list(route.dependant.dependencies)
    while pending:
        dependant = pending.pop()
        if dependant.call is authorize:
            found = (found or set()) | set(dependant.own_oauth_scopes or ())
        pending.extend(dependant.dependencies)
    return frozenset(found) if found is not None else None


def allowed_methods(app: FastAPI, path: str) -> list[str]:
    """Every method some route answers at ``path``, HEAD included where GET is."""
    methods: set[str] = set()
    for route in route_table(app):
        if route.path_regex.match(path):
            methods |= route.methods
    if "GET" in methods:
        methods.add("HEAD")
    return sorted(methods)
