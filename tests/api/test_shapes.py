"""One shape everywhere (docs/contract.md, "Shapes"): a walk over the contract and the
response models holds every schema to the rules, and the rows of /timeliness and of a rollup
are one schema, filled alike from the two sources."""

from __future__ import annotations

import re
import types
import typing
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, get_args, get_origin

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts
from pydantic import BaseModel, PlainSerializer

from nscl_api.auth.tokens import KeyRing
from nscl_api.budget.schemas import DossierDocument
from nscl_api.main import create_app
from nscl_api.reports.schemas import TimelinessRow
from nscl_api.resources import Resources
from nscl_api.rollups import published
from nscl_api.rollups.schemas import TaskRow
from nscl_api.types import PERCENT_PATTERN, QUANTITY_PATTERN, Money, Percent, Quantity
from nscl_domain.budget.visibility import BudgetVisibility
from nscl_domain.settings import Settings
from nscl_domain.types import render_percent, render_quantity
from tests.conftest import mint_token
from tests.e2e.test_rollups import accept, refresh

CONTRACT_DOC = Path(__file__).resolve().parents[2] / "docs" / "contract.md"
BK = "bac-kan-nscl"

# Fields that reference a keyed catalogue object: by name, or by the role it plays.
REFERENCES = {
    "unit", "units", "destination", "parent", "owner_unit", "focal_agency", "decided_by",
    "predecessor", "successor", "lead_units", "cooperating_units", "programme", "phase",
    "indicator", "indicators", "task", "regime", "baseline_period",
}  # fmt: skip
# Keyed objects: never referenced by a UUID field of theirs.
KEYED = ("unit", "programme", "phase", "indicator", "task", "regime", "target", "period")
MONEY = {"amount", "total", "estimated", "allocated", "spent"}


@pytest.fixture(scope="module")
def app() -> FastAPI:
    return create_app(Settings(_env_file=None))


@pytest.fixture(scope="module")
def schemas(app: FastAPI) -> dict[str, Any]:
    schemas: dict[str, Any] = app.openapi()["components"]["schemas"]
    return schemas


def properties(schemas: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for name, schema in schemas.items():
        for prop, body in schema.get("properties", {}).items():
            yield name, prop, body


def variants(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The schemas a property may take, null left out."""
    found = body.get("anyOf", [body])
    return [v for v in found if v.get("type") != "null"]


def test_references_to_keyed_objects_are_keys(schemas: dict[str, Any]) -> None:
    wrong = []
    for name, prop, body in properties(schemas):
        if prop not in REFERENCES:
            continue
        for v in variants(body):
            item = v.get("items", {}) if v.get("type") == "array" else v
            if item.get("type") != "string" or "format" in item or "$ref" in item:
                wrong.append(f"{name}.{prop}")
    assert not wrong, f"not a key (a string): {wrong}"


def test_no_field_names_a_key_by_suffix_or_a_keyed_object_by_its_uuid(
    schemas: dict[str, Any],
) -> None:
    suffixed = [f"{n}.{p}" for n, p, _ in properties(schemas) if re.search(r"_keys?$", p)]
    assert not suffixed, f"say `unit`, not `unit_key`: {suffixed}"
    by_uuid = [
        f"{n}.{p}"
        for n, p, _ in properties(schemas)
        if re.fullmatch(rf"(\w+_)?({'|'.join(KEYED)})_ids?", p)
    ]
    assert not by_uuid, f"keyed objects are referenced by key: {by_uuid}"
    uuids_elsewhere = [
        f"{n}.{p}"
        for n, p, body in properties(schemas)
        if any(v.get("format") == "uuid" for v in variants(body))
        and p != "id"
        and not p.endswith("_id")
    ]
    assert not uuids_elsewhere, f"a UUID is `id` or `<name>_id`: {uuids_elsewhere}"


def test_task_groups_are_integers_everywhere(schemas: dict[str, Any]) -> None:
    found = {
        f"{n}.{p}": [v.get("type") for v in variants(body)]
        for n, p, body in properties(schemas)
        if p == "task_group"
    }
    assert {"BudgetRow.task_group", "TaskRow.task_group", "DossierLine.task_group"} <= set(found)
    assert all(t == ["integer"] for t in found.values()), found


def test_money_is_a_whole_dong_integer_in_every_response(schemas: dict[str, Any]) -> None:
    wrong = {
        f"{n}.{p}": variants(body)
        for n, p, body in properties(schemas)
        if p in MONEY
        and any(v.get("type") == "integer" for v in variants(body))
        and not any(v.get("format") == "int64" for v in variants(body))
        # Requests say what they accept; the rule is for what clients read.
        and not n.endswith(("Create", "Input", "Lines"))
        and n != "LineInput"
        # A job's progress counts items done out of a total: a count, not money.
        and n != "JobProgress"
    }
    assert not wrong, wrong


def _response_models(app: FastAPI) -> set[type[BaseModel]]:
    seen: set[type[BaseModel]] = set()

    def visit(annotation: Any) -> None:
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            if annotation in seen:
                return
            seen.add(annotation)
            for field in annotation.model_fields.values():
                visit(field.annotation)
        for arg in get_args(annotation):
            visit(arg)

    for context in iter_route_contexts(app.routes):
        route = context.route
        if isinstance(route, APIRoute) and route.response_model is not None:
            visit(route.response_model)
    return seen


def _decimals_without_a_rule(annotation: Any, metadata: list[Any]) -> bool:
    """True when ``annotation`` holds a Decimal written by pydantic's default rule."""
    if annotation is Decimal:
        return not any(
            isinstance(m, PlainSerializer) and m.func in (render_quantity, render_percent)
            for m in metadata
        )
    if get_origin(annotation) is Annotated:
        inner, *extra = get_args(annotation)
        return _decimals_without_a_rule(inner, [*metadata, *extra])
    if get_origin(annotation) in (typing.Union, types.UnionType, list, dict, tuple):
        return any(_decimals_without_a_rule(a, []) for a in get_args(annotation))
    return False


def test_every_decimal_a_response_carries_is_a_quantity_or_a_percentage(app: FastAPI) -> None:
    models = _response_models(app)
    assert len(models) > 50  # the walk reaches nested models, not only the top ones
    wrong = [
        f"{model.__name__}.{name}"
        for model in models
        for name, field in model.model_fields.items()
        if _decimals_without_a_rule(field.annotation, list(field.metadata))
    ]
    assert not wrong, f"use Quantity or Percent from nscl_api.types: {wrong}"


def test_quantities_and_percentages_carry_their_pattern_in_the_contract(
    schemas: dict[str, Any],
) -> None:
    patterns = {
        f"{n}.{p}": {v.get("pattern") for v in variants(body)} for n, p, body in properties(schemas)
    }
    percentages = {k: v for k, v in patterns.items() if k.endswith("_pct")}
    assert percentages
    assert all(v == {PERCENT_PATTERN} for v in percentages.values()), percentages
    quantities = (
        "CellRead.value", "PlanProgressRow.planned", "ContributionRead.value", "TargetRead.value",
        "PlannedTotal.value", "IndicatorEntry.value", "PlannedOutput.value", "YearRead.cumulative",
        "RollupTargetRead.actual",
    )  # fmt: skip
    for field in quantities:
        assert patterns[field] == {QUANTITY_PATTERN}, field
    # The contract's prose states the same patterns the schemas carry.
    prose = CONTRACT_DOC.read_text().replace("\\|", "|")
    assert QUANTITY_PATTERN in prose
    assert PERCENT_PATTERN in prose


@pytest.mark.parametrize(
    ("value", "quantity", "percent"),
    [
        ("47.0000", "47", "47.0000"),
        ("12.50", "12.5", "12.5000"),
        ("0.00", "0", "0.0000"),
        ("-0.00001", "0", "0.0000"),
        ("1E+3", "1000", "1000.0000"),
        ("75", "75", "75.0000"),
        ("0.33333333", "0.3333", "0.3333"),
        ("-2.5", "-2.5", "-2.5000"),
        ("123456789012345678.1234", "123456789012345678.1234", "123456789012345678.1234"),
    ],
)
def test_one_way_to_write_each_kind_of_number(value: str, quantity: str, percent: str) -> None:
    class Figures(BaseModel):
        quantity: Quantity
        percent: Percent
        money: Money

    written = Figures(quantity=Decimal(value), percent=Decimal(value), money=5).model_dump(
        mode="json"
    )
    assert written == {"quantity": quantity, "percent": percent, "money": 5}
    assert re.fullmatch(QUANTITY_PATTERN, quantity)
    assert re.fullmatch(PERCENT_PATTERN, percent)


def test_timeliness_is_one_schema_in_the_rollup_and_in_timeliness(
    schemas: dict[str, Any],
) -> None:
    row = "#/components/schemas/TimelinessRow"
    assert schemas["RollupRead"]["properties"]["timeliness"]["items"] == {"$ref": row}
    assert schemas["TimelinessSummary"]["properties"]["rows"]["items"] == {"$ref": row}
    assert "RollupTimelinessRow" not in schemas


def test_row_and_cell_errors_are_field_errors(schemas: dict[str, Any]) -> None:
    error = {"$ref": "#/components/schemas/FieldError"}
    assert schemas["ImportOutcome"]["properties"]["errors"]["items"] == error
    # Left out when there are none, never sent as null: not nullable in the contract.
    assert schemas["Problem"]["properties"]["errors"]["items"] == error
    with_rows = [n for n, s in schemas.items() if {"row", "column"} <= set(s.get("properties", {}))]
    assert not with_rows


def test_runs_and_dossiers_stored_before_the_rule_read_in_the_new_shape() -> None:
    line = {
        "line_id": str(uuid.uuid4()), "unit": "bk-doh", "activity": "Training", "amount": 5,
        "funding_source": "recurrent_science", "chapter": None, "loai_khoan": None,
        "muc_tieu_muc": None,
    }  # fmt: skip
    stored = {
        "total": 12,
        "by_unit": {"bk-doh": 12},
        "by_task_group": {"3": 5, "none": 7},
        "by_funding_source": {"recurrent_science": 12},
        "lines": [{**line, "task_group": "3"}, {**line, "task_group": "none", "amount": 7}],
        "fingerprint": "f",
    }
    document = DossierDocument.of(stored).model_dump(mode="json")
    assert [x["task_group"] for x in document["lines"]] == [3, 0]
    assert document["by_task_group"] == {"3": 5, "0": 7}

    task = {"unit": "bk-doh", "task": "t-3-1", "group": 3, "status": "completed"}
    assert TaskRow.of(task).task_group == 3
    late = {
        "unit": "bk-doh", "due_date": "2024-11-30", "submitted_on": "2024-12-03",
        "status": "late", "accepted": True,
    }  # fmt: skip
    row = TimelinessRow.of_rollup(late)
    assert (row.obligation_id, row.days_late, row.submitted_on.isoformat()) == (  # type: ignore[union-attr]
        None, 3, "2024-12-03",
    )  # fmt: skip


async def test_rollup_and_timeliness_rows_agree_for_the_same_year(
    anonymous: httpx.AsyncClient, keys: KeyRing, resources: Resources
) -> None:
    headers = {"Authorization": f"Bearer {mint_token(keys, 'test-all')}"}
    async with resources.sessionmaker() as session:
        await accept(session, "bk-doh", 2024, {"training-courses": "3"})
        await accept(session, "bk-na-ri", 2024, {"training-courses": "2"})
        await refresh(session, BK, 2024)
        await session.commit()
    rollup = await anonymous.get(f"/v1/rollups/{BK}/2024", headers=headers)
    listed = await anonymous.get(f"/v1/programmes/{BK}/timeliness?year=2024", headers=headers)
    assert rollup.status_code == listed.status_code == 200, (rollup.text, listed.text)
    from_rollup = {r["unit"]: r for r in rollup.json()["timeliness"]}
    from_list = {r["unit"]: r for r in listed.json()["rows"]}
    assert set(from_rollup) == {"bk-doh", "bk-na-ri"}
    fields = set(TimelinessRow.model_fields)
    for row in [*from_rollup.values(), *from_list.values()]:
        assert set(row) == fields
        TimelinessRow.model_validate(row)
    # The same obligation, the same day, the same verdict, whichever resource is read.
    assert {u: from_list[u] for u in from_rollup} == from_rollup
    assert all(r["obligation_id"] and r["status"] == "on_time" for r in from_rollup.values())


def test_a_rollup_copy_kept_from_before_a_shape_change_is_not_revalidated(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    visibility = BudgetVisibility(
        every_unit=True, unit_id=uuid.uuid4(), unit_key="bk-dost", own_rows=False,
        routed_rows=False,
    )  # fmt: skip
    now = published._etag("run-1", visibility)
    monkeypatch.setattr(published, "REPRESENTATION", "1")
    assert published._etag("run-1", visibility) != now
