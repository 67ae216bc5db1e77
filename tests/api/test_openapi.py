"""The committed OpenAPI document is the one the code generates, and it is complete.

The document comes from the routes alone, so these tests build the app without opening a
database or Redis: they run with no services at all."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from typer.testing import CliRunner

from nscl_api import cli
from nscl_api.auth.deps import SCOPE_DESCRIPTIONS
from nscl_api.main import create_app
from nscl_api.routes import route_table
from nscl_domain.identity import Permission
from nscl_domain.settings import Settings

COMMITTED = Path(__file__).resolve().parents[2] / "openapi.json"


@pytest.fixture(scope="module")
def app() -> FastAPI:
    # Nothing is opened until the lifespan runs, and the document never needs it.
    return create_app(Settings(_env_file=None))


@pytest.fixture(scope="module")
def document(app: FastAPI) -> dict[str, Any]:
    return app.openapi()


def test_committed_document_is_byte_for_byte_what_nscl_openapi_writes() -> None:
    result = CliRunner().invoke(cli.app, ["openapi"])
    assert result.exit_code == 0, result.output
    assert result.stdout_bytes == COMMITTED.read_bytes(), (
        "openapi.json is stale or was edited by hand: run `make openapi` and commit it"
    )


def test_every_operation_is_documented(app: FastAPI, document: dict[str, Any]) -> None:
    operation_ids = set()
    api_routes = [r for r in route_table(app) if r.is_api_route and r.include_in_schema]
    assert len(api_routes) >= 4
    for route in api_routes:
        for method in route.methods:
            operation = document["paths"][route.path][method.lower()]
            assert operation.get("summary"), route.path
            assert operation.get("description"), route.path
            assert operation.get("tags"), route.path
            operation_ids.add(operation["operationId"])
            for status, response in operation["responses"].items():
                if int(status) >= 400:
                    assert list(response["content"]) == ["application/problem+json"]
    assert len(operation_ids) == sum(len(r.methods) for r in api_routes)


def _declared_scopes(document: dict[str, Any]) -> dict[str, str]:
    flows = document["components"]["securitySchemes"]["oauth2"]["flows"]
    scopes: dict[str, str] = flows["clientCredentials"]["scopes"]
    return scopes


def _operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
    ]


def test_every_permission_is_a_declared_scope_with_a_description(
    document: dict[str, Any],
) -> None:
    undescribed = [p.value for p in Permission if not SCOPE_DESCRIPTIONS.get(p, "").strip()]
    assert not undescribed, f"describe these in SCOPE_DESCRIPTIONS: {undescribed}"
    declared = _declared_scopes(document)
    assert set(declared) == {p.value for p in Permission}
    assert all(text.strip() for text in declared.values())


def test_every_scope_an_operation_needs_is_declared(document: dict[str, Any]) -> None:
    declared = set(_declared_scopes(document))
    used: set[str] = set()
    for path, method, operation in _operations(document):
        for requirement in operation.get("security", []):
            for scheme, scopes in requirement.items():
                assert scheme == "oauth2", (method, path)
                assert set(scopes) <= declared, (method, path, set(scopes) - declared)
                used |= set(scopes)
    assert {"plans.read", "plans.write", "plans.review"} <= used


def test_public_operations_say_they_need_no_token(document: dict[str, Any]) -> None:
    public = {(m, p) for p, m, o in _operations(document) if o["security"] == []}
    assert public == {
        ("get", "/health"),
        ("get", "/ready"),
        ("post", "/v1/oauth/token"),
        ("get", "/.well-known/jwks.json"),
    }
    for path, method, operation in _operations(document):
        if (method, path) not in public:
            assert operation["security"], (method, path)


def test_the_server_is_relative_so_it_works_behind_any_host(document: dict[str, Any]) -> None:
    assert document["servers"] == [{"url": "/", "description": "This service"}]
