"""The contract types what the server sends as tightly as the code does: fields always sent
are required, closed sets are enums, files are binary, and every write shows an example.

Like test_openapi, these build the app without a database or Redis."""

from __future__ import annotations

import ast
import json
import re
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from fastapi import FastAPI
from pydantic import BaseModel

from nscl_api.main import create_app
from nscl_api.routes import route_table
from nscl_domain.composition.registry import DEFAULT_REGISTRY
from nscl_domain.errors import PROBLEM_CODES
from nscl_domain.jobs import JobName
from nscl_domain.settings import Settings
from nscl_domain.workflow import Reviewed

ROOT = Path(__file__).resolve().parents[2]
SOURCES = [ROOT / "libs", ROOT / "services"]
SCHEMA_PREFIX = "#/components/schemas/"
WRITES = {"post", "put", "patch"}

# Problem bodies are dumped without nulls: these are left out, not sent as null.
SOMETIMES_ABSENT = {
    ("Problem", "instance"),
    ("Problem", "request_id"),
    ("Problem", "errors"),
    ("Problem", "unit_period"),
}


@pytest.fixture(scope="module")
def app() -> FastAPI:
    return create_app(Settings(_env_file=None))


@pytest.fixture(scope="module")
def document(app: FastAPI) -> dict[str, Any]:
    return app.openapi()


def _operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for method, operation in item.items():
            yield path, method, operation


def _referenced(node: Any, schemas: dict[str, Any], found: set[str]) -> set[str]:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith(SCHEMA_PREFIX):
            name = ref.removeprefix(SCHEMA_PREFIX)
            if name not in found:
                found.add(name)
                _referenced(schemas[name], schemas, found)
        for value in node.values():
            _referenced(value, schemas, found)
    elif isinstance(node, list):
        for value in node:
            _referenced(value, schemas, found)
    return found


def _response_schemas(document: dict[str, Any]) -> set[str]:
    schemas = document["components"]["schemas"]
    found: set[str] = set()
    for _, _, operation in _operations(document):
        _referenced(operation["responses"], schemas, found)
    return found


def _property(document: dict[str, Any], schema: str, name: str) -> dict[str, Any]:
    prop: dict[str, Any] = document["components"]["schemas"][schema]["properties"][name]
    return prop


def _variants(prop: dict[str, Any]) -> list[dict[str, Any]]:
    variants: list[dict[str, Any]] = prop.get("anyOf", [prop])
    return variants


def _enum_of(document: dict[str, Any], prop: dict[str, Any]) -> set[str]:
    """The closed set a property allows (null aside), or an empty set if it is open."""
    values: set[str] = set()
    for variant in _variants(prop):
        if variant.get("type") == "null":
            continue
        ref = variant.get("$ref")
        if ref is not None:
            variant = document["components"]["schemas"][ref.removeprefix(SCHEMA_PREFIX)]
        if "enum" not in variant and "const" not in variant:
            return set()
        values |= set(variant.get("enum", [variant.get("const")]))
    return values


# --- Fields always sent are required ---------------------------------------------------


def test_every_property_a_response_always_carries_is_required(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    response_schemas = _response_schemas(document)
    assert len(response_schemas) > 50
    optional = {
        (name, prop)
        for name in response_schemas
        for prop in schemas[name].get("properties", {})
        if prop not in schemas[name].get("required", [])
    }
    assert optional == SOMETIMES_ABSENT


def test_next_cursor_is_required_and_null_on_the_last_page(document: dict[str, Any]) -> None:
    pages = [n for n in document["components"]["schemas"] if n.endswith("Page")]
    assert len(pages) >= 10
    for page in pages:
        schema = document["components"]["schemas"][page]
        assert schema["required"] == ["items", "next_cursor"], page
        cursor = schema["properties"]["next_cursor"]
        assert {v.get("type") for v in cursor["anyOf"]} == {"string", "null"}, page
        assert "null on the last page" in cursor["description"].lower(), page


def test_problem_fields_left_out_when_empty_are_optional_but_never_null(
    document: dict[str, Any],
) -> None:
    problem = document["components"]["schemas"]["Problem"]
    for name in ("instance", "request_id", "errors"):
        assert "anyOf" not in problem["properties"][name], name
        assert name not in problem["required"]


# --- Closed sets are enums -------------------------------------------------------------


def _raised_codes() -> set[str]:
    """Every problem code the sources pass where a code is expected: the `code=` of a domain
    error, and the code argument of the functions that answer with a problem directly."""
    positional = {"problem_response": 1, "_oauth_error": 1, "HeldOff": 0, "ImportLimitError": 0}
    codes: set[str] = set()
    for root in SOURCES:
        for path in root.rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if not isinstance(node, ast.Call):
                    continue
                name = getattr(node.func, "id", getattr(node.func, "attr", ""))
                args = [k.value for k in node.keywords if k.arg == "code"]
                if name in positional and len(node.args) > positional[name]:
                    args.append(node.args[positional[name]])
                for arg in args:
                    codes |= _literals(arg)
    return codes


def _literals(node: ast.expr) -> set[str]:
    """The codes an argument may be: a literal, or either literal of a conditional."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return {node.value}
    if isinstance(node, ast.IfExp):
        return _literals(node.body) | _literals(node.orelse)
    if isinstance(node, ast.BoolOp):
        return set().union(*(_literals(value) for value in node.values))
    return set()


def _string_literals() -> set[str]:
    found: set[str] = set()
    for root in SOURCES:
        for path in root.rglob("*.py"):
            if path.name == "errors.py" and "nscl_domain" in path.parts:
                # Where the list itself is written: it does not count as a use.
                continue
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Constant) and isinstance(node.value, str):
                    found.add(node.value)
    return found


def test_problem_code_is_an_enum_of_every_code_the_service_raises(
    document: dict[str, Any],
) -> None:
    published = _enum_of(document, _property(document, "Problem", "code"))
    assert published == PROBLEM_CODES
    raised = _raised_codes()
    # The scan must see the raising sites, not nothing.
    assert {"job_not_found", "validation_failed", "unsupported_grant_type"} <= raised
    assert raised - PROBLEM_CODES == set()
    reviewed = {c for m in _subclasses(Reviewed) for c in (m.not_found_code, m.not_editable_code)}
    assert len(reviewed) == 2 * len(_subclasses(Reviewed))
    assert reviewed <= PROBLEM_CODES


def test_every_listed_problem_code_is_used_somewhere() -> None:
    # A code dropped from the code but left in the list would be promised to clients forever.
    assert PROBLEM_CODES - _string_literals() == set()


def _subclasses(cls: type) -> set[type[Any]]:
    found: set[type[Any]] = set()
    for sub in cls.__subclasses__():
        found |= {sub} | _subclasses(sub)
    return {c for c in found if "not_found_code" in c.__dict__}


CLOSED_SETS = {
    ("RollupTargetRead", "status"): {
        "on_track",
        "at_risk",
        "off_track",
        "achieved",
        "missed",
        "no_data",
    },
    ("TaskRow", "status"): {"not_started", "in_progress", "completed", "suspended"},
    ("OrgUnitRead", "kind"): None,
    ("JobRead", "name"): {name.value for name in JobName},
    ("JobCreate", "name"): {k for k, v in DEFAULT_REGISTRY.items() if v.operator_may_schedule},
    ("TokenResponse", "token_type"): {"Bearer"},
    ("IssueTokenForm", "grant_type"): {"client_credentials"},
    ("BudgetRow", "funding_source"): None,
    ("BudgetTotalRow", "funding_source"): None,
    ("TotalRow", "funding_source"): None,
    ("LineRead", "funding_source"): None,
    ("ReportRead", "status"): None,
    ("PlanRead", "status"): None,
    ("EstimateRead", "status"): None,
    ("DossierRead", "status"): None,
    ("JobRead", "status"): None,
    ("PlanRead", "kind"): None,
    ("RegimeRead", "kind"): None,
}


@pytest.mark.parametrize(("schema", "field"), sorted(CLOSED_SETS))
def test_closed_sets_are_enums(document: dict[str, Any], schema: str, field: str) -> None:
    values = _enum_of(document, _property(document, schema, field))
    assert values, f"{schema}.{field} is a free string"
    expected = CLOSED_SETS[(schema, field)]
    if expected is not None:
        assert values == expected


def test_funding_sources_are_one_set_wherever_they_appear(document: dict[str, Any]) -> None:
    sets = [
        _enum_of(document, _property(document, schema, "funding_source"))
        for schema in ("LineInput", "LineRead", "BudgetRow", "BudgetTotalRow", "TotalRow")
    ]
    assert all(s == sets[0] for s in sets)
    assert "recurrent_science" in sets[0]


def test_job_progress_is_a_typed_object(document: dict[str, Any]) -> None:
    progress = _property(document, "JobRead", "progress")
    refs = [v["$ref"] for v in progress["anyOf"] if "$ref" in v]
    assert refs == [SCHEMA_PREFIX + "JobProgress"]
    schema = document["components"]["schemas"]["JobProgress"]
    assert schema["required"] == ["stage", "done", "total"]
    assert "additionalProperties" not in schema


# --- Files are binary ------------------------------------------------------------------


def test_the_indicator_template_downloads_as_a_binary_file(document: dict[str, Any]) -> None:
    ok = document["paths"]["/v1/reports/{report_id}/indicator-template"]["get"]["responses"]["200"]
    binary = {"type": "string", "format": "binary"}
    assert ok["content"] == {
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": {"schema": binary},
        "text/csv": {"schema": binary},
    }
    assert "Content-Disposition" in ok["headers"]


def test_no_response_body_is_left_untyped(document: dict[str, Any]) -> None:
    for path, method, operation in _operations(document):
        for status, response in operation["responses"].items():
            for media_type, content in response.get("content", {}).items():
                assert content.get("schema"), (method, path, status, media_type)


# --- Every write shows an example ------------------------------------------------------


def _body_model(app: FastAPI, path: str, method: str) -> type[BaseModel] | None:
    for route in route_table(app):
        if route.path == path and method.upper() in route.methods and route.endpoint:
            hints = typing.get_type_hints(route.endpoint, include_extras=True)
            for hint in hints.values():
                if typing.get_origin(hint) is typing.Annotated:
                    hint = typing.get_args(hint)[0]
                if isinstance(hint, type) and issubclass(hint, BaseModel):
                    return hint
    return None


def _write_bodies(document: dict[str, Any]) -> Iterator[tuple[str, str, str, dict[str, Any]]]:
    for path, method, operation in _operations(document):
        if method in WRITES and "requestBody" in operation:
            for media_type, content in operation["requestBody"]["content"].items():
                if content["schema"].get("format") != "binary":
                    yield path, method, media_type, content


def test_every_write_with_a_body_shows_an_example(document: dict[str, Any]) -> None:
    bodies = list(_write_bodies(document))
    assert len(bodies) >= 25
    missing = [(m, p) for p, m, _, content in bodies if not content.get("examples")]
    assert missing == []


def test_every_request_example_is_accepted_by_its_operation(
    app: FastAPI, document: dict[str, Any]
) -> None:
    checked = 0
    for path, method, media_type, content in _write_bodies(document):
        model = _body_model(app, path, method)
        for example in content["examples"].values():
            if model is None:
                # A form: every field it names is one the form declares.
                schema = document["components"]["schemas"]["IssueTokenForm"]
                assert media_type == "application/x-www-form-urlencoded"
                assert set(example["value"]) <= set(schema["properties"])
                continue
            model.model_validate_json(json.dumps(example["value"]))
            checked += 1
    assert checked >= 25


# --- Descriptions name the right resource ----------------------------------------------

# A word naming a resource in a summary, and the path segments where that resource lives.
RESOURCE_WORDS = {
    "report": ("reports", "report-backfills", "annual-reports"),
    "plan": ("plans", "plan-change-requests"),
    "estimate": ("budget-estimates", "budget-follow-up", "budget-routing"),
    "dossier": ("budget-dossiers",),
    "allocation": ("budget-allocations", "budget-follow-up"),
    "job": ("jobs", "schedules"),
    "rollup": ("rollups", "phase-rollups"),
    "token": ("oauth", "jwks.json"),
}


def test_summaries_name_the_resource_of_their_path(document: dict[str, Any]) -> None:
    """A summary copied from another operation names a resource its path does not hold."""
    wrong = []
    for path, method, operation in _operations(document):
        segments = set(path.strip("/").split("/"))
        words = set(re.findall(r"[a-z]+", operation["summary"].lower()))
        for word, homes in RESOURCE_WORDS.items():
            if word in words and not segments & set(homes):
                wrong.append((method, path, operation["summary"]))
    assert wrong == []


def test_every_success_says_what_it_holds(document: dict[str, Any]) -> None:
    for path, method, operation in _operations(document):
        for status, response in operation["responses"].items():
            if status.startswith("2"):
                assert response["description"] != "Successful Response", (method, path)
                if status == "201" and "Location" not in response.get("headers", {}):
                    assert "Location" not in response["description"], (method, path)


def test_every_request_example_matches_the_contract_schema(document: dict[str, Any]) -> None:
    # What linters (Spectral's oas3-valid-media-example) and generated clients check.
    checked = 0
    for _, method, _, content in _write_bodies(document):
        schema = {**content["schema"], "components": document["components"]}
        validator = jsonschema.Draft202012Validator(schema)
        for example in content["examples"].values():
            assert [e.message for e in validator.iter_errors(example["value"])] == [], method
            checked += 1
    assert checked >= 25
