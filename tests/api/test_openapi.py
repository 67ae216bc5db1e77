"""The committed OpenAPI document is the one the code generates, and it is complete.

The document comes from the routes alone, so these tests build the app without opening a
database or Redis: they run with no services at all."""

from __future__ import annotations

import inspect
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
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


def test_schema_names_are_what_a_generated_client_would_call_its_types(
    document: dict[str, Any],
) -> None:
    # Module paths (`nscl_api__rollups__schemas__PhaseRead`), read/write twins
    # (`Activity-Input`) and generic leftovers (`Page_TaskRead_`) all become clumsy class names.
    names = document["components"]["schemas"]
    bad = [
        name
        for name in names
        if "__" in name
        or name.endswith(("-Input", "-Output", "_"))
        or name.startswith("Body_")
        or not name[0].isupper()
    ]
    assert bad == []
    assert {"TaskReadPage", "RollupPhaseRead", "ValidationWarning", "IssueTokenForm"} <= set(names)
    titled = {name: schema.get("title", name) for name, schema in names.items()}
    assert {name: title for name, title in titled.items() if title != name} == {}


def test_every_reference_names_a_schema_that_exists(document: dict[str, Any]) -> None:
    names = set(document["components"]["schemas"])
    refs = set(re.findall(r'"#/components/schemas/([^"]+)"', json.dumps(document)))
    assert refs - names == set()


def _headers_set_by(endpoint: Any) -> set[str]:
    """Headers the endpoint, or a private helper of its module it calls, sets by name."""
    sources = [inspect.getsource(endpoint)]
    module_globals = endpoint.__globals__
    # Private only: `plans.get_plan(...)` must not count as calling the route `get_plan`.
    for name in (n for n in endpoint.__code__.co_names if n.startswith("_")):
        helper = module_globals.get(name)
        if inspect.isfunction(helper) and helper.__module__ == endpoint.__module__:
            sources.append(inspect.getsource(helper))
    code = "\n".join(sources)
    return {h for h in ("ETag", "Location") if f'"{h}"' in code}


def test_every_header_a_route_sets_is_in_its_success_response(
    app: FastAPI, document: dict[str, Any]
) -> None:
    # The headers are set in the routes' code, where FastAPI cannot see them: each route
    # declares them, and this holds the declarations to the code.
    checked = 0
    for route in route_table(app):
        if not (route.is_api_route and route.include_in_schema):
            continue
        sent = _headers_set_by(route.endpoint)
        for method in route.methods:
            operation = document["paths"][route.path][method.lower()]
            successes = {s: r for s, r in operation["responses"].items() if s.startswith("2")}
            assert successes, route.path
            for status, response in successes.items():
                missing = sent - set(response.get("headers", {}))
                assert missing == set(), (method, route.path, status)
            checked += bool(sent)
    # Reports, plans, estimates, rollups and jobs all set them.
    assert checked >= 20


def test_the_conditional_rollup_read_documents_the_etag_of_its_304(
    document: dict[str, Any],
) -> None:
    operation = document["paths"]["/v1/rollups/{programme}/{year}"]["get"]
    assert "ETag" in operation["responses"]["304"]["headers"]
    assert "ETag" in operation["responses"]["200"]["headers"]


def test_no_internal_declaration_leaks_into_the_document(document: dict[str, Any]) -> None:
    assert "x-nscl-" not in json.dumps(document)


def test_operations_honouring_idempotency_keys_document_the_replay(
    document: dict[str, Any],
) -> None:
    honouring = [
        operation
        for _, _, operation in _operations(document)
        if any(p["name"] == "Idempotency-Key" for p in operation.get("parameters", []))
    ]
    assert len(honouring) >= 8
    for operation in honouring:
        successes = [r for s, r in operation["responses"].items() if s.startswith("2")]
        for response in successes:
            assert "Idempotent-Replayed" in response["headers"], operation["operationId"]
        assert "Retry-After" in operation["responses"]["409"]["headers"]


def test_every_429_and_503_says_when_to_retry(document: dict[str, Any]) -> None:
    for _, _, operation in _operations(document):
        for status in ("429", "503"):
            if status in operation["responses"]:
                headers = operation["responses"][status].get("headers", {})
                assert "Retry-After" in headers, (operation["operationId"], status)


def test_if_match_is_required_wherever_its_absence_answers_428(
    document: dict[str, Any],
) -> None:
    conditional = 0
    for _, _, operation in _operations(document):
        if_match = [p for p in operation.get("parameters", []) if p["name"] == "If-Match"]
        if "428" in operation["responses"]:
            assert if_match, operation["operationId"]
        if if_match:
            assert "428" in operation["responses"], operation["operationId"]
            assert if_match[0]["required"] is True, operation["operationId"]
            conditional += 1
    assert conditional >= 14


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


def _client(app: FastAPI, root_path: str = "") -> httpx.AsyncClient:
    # The ASGI transport runs no lifespan: no database or Redis is opened.
    transport = httpx.ASGITransport(app=app, root_path=root_path)
    return httpx.AsyncClient(transport=transport, base_url="http://nscl.test")


@pytest.fixture
async def browser(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with _client(app) as http:
        yield http


_REFERENCE = re.compile(r"""(?:src|href)="([^"]*)\"""")


@pytest.mark.parametrize("path", ["/docs", "/redoc"])
async def test_the_documentation_pages_load_everything_from_this_service(
    browser: httpx.AsyncClient, path: str
) -> None:
    page = await browser.get(path)
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "<script>" not in page.text, "the page needs no inline script"
    references = _REFERENCE.findall(page.text)
    assert references
    for url in references:
        assert url.startswith("/docs/assets/"), url
        asset = await browser.get(url)
        assert asset.status_code == 200, url
        expected = {"js": "text/javascript", "css": "text/css", "png": "image/png"}
        assert asset.headers["content-type"].split(";")[0] == expected[url.rsplit(".", 1)[1]]
        assert asset.content
    assert 'data-openapi-url="/openapi.json"' in page.text


async def test_the_viewers_are_the_real_bundles(
    browser: httpx.AsyncClient,
) -> None:
    assert b"SwaggerUIBundle" in (await browser.get("/docs/assets/swagger-ui-bundle.js")).content
    assert b"Redoc" in (await browser.get("/docs/assets/redoc.standalone.js")).content
    assert b"validatorUrl: null" in (await browser.get("/docs/assets/swagger-init.js")).content


@pytest.mark.parametrize("path", ["/docs", "/redoc"])
async def test_the_documentation_pages_policy_names_no_other_host(
    browser: httpx.AsyncClient, path: str
) -> None:
    policy = (await browser.get(path)).headers["content-security-policy"]
    assert "script-src 'self';" in policy
    assert "unsafe-inline" not in policy.split("script-src")[1].split(";")[0]
    for directive in policy.split(";"):
        for source in directive.split()[1:]:
            assert source.startswith("'") or source in {"data:", "blob:"}, (directive, source)
    assert "frame-ancestors 'none'" in policy


async def test_only_the_listed_assets_can_be_fetched(browser: httpx.AsyncClient) -> None:
    for name in ("core.py", "..%2F__init__.py", "swagger-ui-bundle.js.map"):
        assert (await browser.get(f"/docs/assets/{name}")).status_code == 404, name


async def test_the_pages_follow_a_path_prefix_behind_a_proxy(app: FastAPI) -> None:
    async with _client(app, root_path="/nscl") as http:
        page = await http.get("/docs")
    assert 'href="/nscl/docs/assets/swagger-ui.css"' in page.text
    assert 'data-openapi-url="/nscl/openapi.json"' in page.text
