"""The committed OpenAPI document is the one the code generates, and it is complete."""

from __future__ import annotations

import json
from pathlib import Path

from nscl_api.main import create_app
from nscl_api.routes import route_table
from nscl_domain.settings import Settings

COMMITTED = Path(__file__).resolve().parents[2] / "openapi.json"


def test_committed_document_matches_the_code(settings: Settings) -> None:
    generated = create_app(settings).openapi()
    committed = json.loads(COMMITTED.read_text(encoding="utf-8"))
    assert committed == generated, "openapi.json is stale: run `make openapi` and commit it"


def test_every_operation_is_documented(settings: Settings) -> None:
    app = create_app(settings)
    document = app.openapi()
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
