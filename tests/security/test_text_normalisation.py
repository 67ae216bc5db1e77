"""Every text a client writes is stored in NFC, whatever form it was sent in, and text
holding a character that cannot be stored is refused with the field named (422, never 500).

Keyboards and Mac systems send Vietnamese decomposed (NFD: "ạ" as "a" + U+0323); stored as
such, search misses it and exports show broken diacritics. Hypothesis sends random
Vietnamese strings, decomposed, through each write endpoint's text fields and reads the row
back from PostgreSQL, not from the answer.
"""

from __future__ import annotations

import itertools
import json
import unicodedata
from collections.abc import Iterator
from typing import Any, get_args, get_origin

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from nscl_api.auth.tokens import KeyRing
from nscl_domain.types import InputModel
from tests.api.test_problems import assert_problem
from tests.api.test_reports import Desk
from tests.conftest import mint_token

BK = "/v1/programmes/bac-kan-nscl"
LETTERS = (
    "aàáảãạăằắẳẵặâầấẩẫậbcdđeèéẻẽẹêềếểễệghiìíỉĩịklmnoòóỏõọôồốổỗộơờớởỡợpqrstuùúủũụưừứửữựvxyỳýỷỹỵ"
)
ALPHABET = LETTERS + LETTERS.upper() + "0123456789 ,.;:-–()/\"'\t\n"
EXAMPLES = settings(
    max_examples=12,
    deadline=None,
    # The fixtures (a transaction, a draft) are shared by the examples on purpose.
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


@st.composite
def vietnamese_nfd(draw: st.DrawFn) -> str:
    """Random Vietnamese text with a letter in it, decomposed as a Mac keyboard sends it."""
    core = draw(st.text(alphabet=ALPHABET, min_size=1, max_size=40).filter(str.strip))
    letter = draw(st.sampled_from(LETTERS[1:]))  # at least one letter with a diacritic
    return unicodedata.normalize("NFD", letter + core)


def stored_form(sent: str) -> str:
    return unicodedata.normalize("NFC", sent).strip()


def strings_in(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from strings_in(k)
            yield from strings_in(v)
    elif isinstance(value, list):
        for item in value:
            yield from strings_in(item)


async def row(db: AsyncConnection, table: str, row_id: str) -> dict[str, Any]:
    found = await db.scalar(
        text(f"SELECT to_jsonb(t) FROM {table} t WHERE id = :id"),
        {"id": row_id},
    )
    assert found is not None, (table, row_id)
    return dict(found)


def assert_stored_nfc(stored: dict[str, Any], sent: str, times: int) -> None:
    """Every string of the row is NFC, and the text sent is there ``times`` times or more."""
    strings = list(strings_in(stored))
    assert all(unicodedata.is_normalized("NFC", s) for s in strings)
    assert sum(s == stored_form(sent) for s in strings) >= times


def report_content(s: str, year: int = 2024) -> dict[str, Any]:
    return {
        "narrative": {"results": s, "shortcomings": s, "causes": s, "proposals": s},
        "task_progress": [{"task": "t-3-1", "status": "in_progress", "narrative": s}],
        "enterprises": [{"tax_code": "0100109106", "name": s, "solution": "iso_9001"}],
        "experts": [
            {
                "full_name": s,
                "level": "national",
                "certified_on": f"{year}-05-01",
                "organisation": s,
            }
        ],
        "answers": {"1": s},
    }


def plan_content(s: str) -> dict[str, Any]:
    return {
        "focal_agency": s,
        "summary": s,
        "activities": [
            {
                "task": "t-3-1",
                "title": s,
                "key_products": [s, "Chè"],
                "integrated_with": [{"programme": "other", "detail": s}],
            }
        ],
    }


class Made(Desk):
    """A desk that keeps what the examples of one test share (a draft, a plan, an estimate)."""

    def __init__(self, http: httpx.AsyncClient, keys: KeyRing) -> None:
        super().__init__(http, keys)
        self.ids: dict[str, str] = {}


@pytest.fixture
def desk(anonymous: httpx.AsyncClient, keys: KeyRing) -> Made:
    return Made(anonymous, keys)


def auth(keys: KeyRing, client_id: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {mint_token(keys, client_id)}"}


class TestStoredInNfc:
    @EXAMPLES
    @given(s=vietnamese_nfd())
    async def test_a_report_draft(self, desk: Made, db_connection: AsyncConnection, s: str) -> None:
        report_id = await self._draft(desk)
        current = await desk.http.get(f"/v1/reports/{report_id}", headers=desk.reporter)
        written = await desk.http.put(
            f"/v1/reports/{report_id}/draft",
            json=report_content(s),
            headers={**desk.reporter, "If-Match": current.headers["etag"]},
        )
        assert written.status_code == 200, written.text
        assert_stored_nfc((await row(db_connection, "report", report_id))["draft"], s, 9)

    async def _draft(self, desk: Made) -> str:
        if "report_id" not in desk.ids:
            desk.ids["report_id"] = (await desk.draft(2024)).json()["id"]
        return str(desk.ids["report_id"])

    @EXAMPLES
    @given(s=vietnamese_nfd())
    async def test_the_reasons_of_a_return_and_a_correction(
        self, desk: Made, db_connection: AsyncConnection, s: str
    ) -> None:
        report_id = await self._draft(desk)
        url = f"/v1/reports/{report_id}"
        current = await desk.http.get(url, headers=desk.reporter)
        if current.json()["status"] in ("draft", "returned"):
            current = await desk.submit(current)
            assert current.status_code == 200, current.text
        returned = await desk.http.post(
            f"{url}/return",
            json={"reason": f"Trả lại {s}"},
            headers={**desk.reviewer, "If-Match": current.headers["etag"]},
        )
        assert returned.status_code == 200, returned.text
        assert_stored_nfc(await row(db_connection, "report", report_id), f"Trả lại {s}", 1)
        resubmitted = await desk.submit(returned)
        accepted = await desk.accept(resubmitted)
        corrected = await desk.http.post(
            f"{url}/correction",
            json={"reason": f"Sửa {s}"},
            headers={**desk.reporter, "If-Match": accepted.headers["etag"]},
        )
        assert corrected.status_code == 200, corrected.text
        assert_stored_nfc(await row(db_connection, "report", report_id), f"Sửa {s}", 1)

    @EXAMPLES
    @given(s=vietnamese_nfd())
    async def test_a_plan_and_a_proposed_change(
        self, desk: Made, db_connection: AsyncConnection, s: str
    ) -> None:
        http, me, dost = desk.http, desk.reporter, desk.reviewer
        if "plan_id" not in desk.ids:
            created = await http.post(
                f"{BK}/plans", json={"kind": "annual", "start_year": 2024}, headers=me
            )
            desk.ids["plan_id"] = created.json()["id"]
        url = f"/v1/plans/{desk.ids['plan_id']}"
        current = await http.get(url, headers=me)
        if current.json()["status"] == "accepted":
            proposed = await http.post(
                f"{url}/change-requests",
                json={"reason": f"Vì {s}", "content": plan_content(s)},
                headers=me,
            )
            assert proposed.status_code == 201, proposed.text
            stored = await row(db_connection, "plan_change_request", proposed.json()["id"])
            assert_stored_nfc(stored, s, 5)
            decided = await http.post(
                f"/v1/plan-change-requests/{proposed.json()['id']}/decision",
                json={"decision": "reject", "note": f"Không {s}"},
                headers=dost,
            )
            assert decided.status_code == 200, decided.text
            stored = await row(db_connection, "plan_change_request", proposed.json()["id"])
            assert_stored_nfc(stored, f"Không {s}", 1)
            return
        written = await http.put(
            f"{url}/content",
            json={"content": plan_content(s)},
            headers={**me, "If-Match": current.headers["etag"]},
        )
        assert written.status_code == 200, written.text
        assert_stored_nfc((await row(db_connection, "plan", desk.ids["plan_id"]))["content"], s, 5)
        submitted = await http.post(
            f"{url}/submission", headers={**me, "If-Match": written.headers["etag"]}
        )
        await http.post(
            f"{url}/acceptance", headers={**dost, "If-Match": submitted.headers["etag"]}
        )

    @EXAMPLES
    @given(s=vietnamese_nfd())
    async def test_estimate_lines(self, desk: Made, db_connection: AsyncConnection, s: str) -> None:
        http, me = desk.http, desk.reporter
        if "estimate_id" not in desk.ids:
            created = await http.post(
                f"{BK}/budget-estimates", json={"budget_year": 2025}, headers=me
            )
            assert created.status_code == 201, created.text
            desk.ids["estimate_id"] = created.json()["id"]
        url = f"/v1/budget-estimates/{desk.ids['estimate_id']}"
        current = await http.get(url, headers=me)
        lined = await http.put(
            f"{url}/lines",
            json={"lines": [{"activity": s, "amount": 1, "funding_source": "recurrent_sector"}]},
            headers={**me, "If-Match": current.headers["etag"]},
        )
        assert lined.status_code == 200, lined.text
        line = await db_connection.scalar(
            text("SELECT activity FROM estimate_line WHERE estimate_id = :id"),
            {"id": desk.ids["estimate_id"]},
        )
        assert line == stored_form(s)

    @EXAMPLES
    @given(s=vietnamese_nfd(), n=st.integers(0, 10**9))
    async def test_catalogue_and_ad_hoc_request_texts(
        self,
        anonymous: httpx.AsyncClient,
        keys: KeyRing,
        db_connection: AsyncConnection,
        s: str,
        n: int,
    ) -> None:
        admin, manager = auth(keys, "test-admin"), auth(keys, "test-reviewer")
        unit = await anonymous.post(
            "/v1/org-units",
            json={
                "key": f"nfc-{n}-{next(COUNTER)}",
                "kind": "office",
                "name_vi": s,
                "name_en": s,
                "abbreviation": s[:20],
                "parent": "bk-doh",
                "valid_from": "2021-01-01",
                "valid_to": "2025-03-01",
            },
            headers=admin,
        )
        assert unit.status_code == 201, unit.text
        assert_stored_nfc(await row(db_connection, "org_unit", unit.json()["id"]), s, 2)
        extension = await anonymous.post(
            f"{BK}/task-extensions",
            json={
                "key": f"nfc-ext-{n}-{next(COUNTER)}",
                "title_vi": s,
                "title_en": s,
                "unit": "bk-doh",
                "decided_by": "bk-doh",
                "decision_no": "12/QĐ-UBND",
                "decision_date": "2021-02-01",
                "extended_to_year": 2022,
            },
            headers=admin,
        )
        assert extension.status_code == 201, extension.text
        assert_stored_nfc(await row(db_connection, "task_extension", extension.json()["id"]), s, 2)
        request = await anonymous.post(
            f"{BK}/reporting-requests",
            json={
                "title_vi": s,
                "title_en": s,
                "year": 2024,
                "due_date": "2024-12-20",
                "units": ["bk-doh"],
                "questions": [s, f"{s}?"],
            },
            headers=manager,
        )
        assert request.status_code == 201, request.text
        assert_stored_nfc(await row(db_connection, "reporting_request", request.json()["id"]), s, 3)


COUNTER = itertools.count()
# Not the whitespace controls (\x0b, \x0c, \x1c–\x1f): at either end they are trimmed, as
# spaces are, and never stored; inside a text they are refused like the others.
UNSTORABLE = st.sampled_from(["\x00", "\x01", "\x08", "\x1b", "\x7f", "\ud800"])


class TestUnstorableCharacters:
    @EXAMPLES
    @given(s=vietnamese_nfd(), bad=UNSTORABLE, at=st.integers(0, 40), field=st.integers(0, 4))
    async def test_a_control_character_anywhere_is_a_422_naming_the_field(
        self, desk: Made, s: str, bad: str, at: int, field: int
    ) -> None:
        poisoned = s[:at] + bad + s[at:]
        content: dict[str, Any] = report_content("Bình thường")
        path: list[str | int]
        if field == 0:
            content["narrative"]["causes"], path = poisoned, ["body", "narrative", "causes"]
        elif field == 1:
            content["enterprises"][0]["name"], path = poisoned, ["body", "enterprises", 0, "name"]
        elif field == 2:
            content["experts"][0]["organisation"] = poisoned
            path = ["body", "experts", 0, "organisation"]
        elif field == 3:
            content["task_progress"][0]["narrative"] = poisoned
            path = ["body", "task_progress", 0, "narrative"]
        else:
            content["answers"]["1"], path = poisoned, ["body", "answers", "1"]
        report_id = await TestStoredInNfc()._draft(desk)
        current = await desk.http.get(f"/v1/reports/{report_id}", headers=desk.reporter)
        answer = await desk.http.put(
            f"/v1/reports/{report_id}/draft",
            content=json.dumps(content),
            headers={
                **desk.reporter,
                "If-Match": current.headers["etag"],
                "Content-Type": "application/json",
            },
        )
        body = assert_problem(answer, 422, "validation_failed")
        assert path in [e["location"] for e in body["errors"]]

    async def test_a_plan_names_the_field(self, desk: Made) -> None:
        http, me = desk.http, desk.reporter
        created = await http.post(
            f"{BK}/plans", json={"kind": "annual", "start_year": 2024}, headers=me
        )
        answer = await http.put(
            f"/v1/plans/{created.json()['id']}/content",
            json={"content": {**plan_content("Tốt"), "summary": "a\x00b"}},
            headers={**me, "If-Match": created.headers["etag"]},
        )
        problem = assert_problem(answer, 422, "validation_failed")
        assert ["body", "content", "summary"] in [e["location"] for e in problem["errors"]]

    async def test_an_estimate_line_names_the_field(self, desk: Made) -> None:
        http, me = desk.http, desk.reporter
        created = await http.post(f"{BK}/budget-estimates", json={"budget_year": 2025}, headers=me)
        line = {"activity": "x\x00y", "amount": 1, "funding_source": "other_enterprise"}
        answer = await http.put(
            f"/v1/budget-estimates/{created.json()['id']}/lines",
            json={"lines": [line]},
            headers={**me, "If-Match": created.headers["etag"]},
        )
        problem = assert_problem(answer, 422, "validation_failed")
        assert ["body", "lines", 0, "activity"] in [e["location"] for e in problem["errors"]]


def _models_in(annotation: Any) -> Iterator[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation
        for f in annotation.model_fields.values():
            yield from _models_in(f.annotation)
    for arg in get_args(annotation) if get_origin(annotation) is not None else ():
        yield from _models_in(arg)


def test_every_request_body_reads_text_through_the_input_rules(shared_app: FastAPI) -> None:
    """No write path can bypass NFC: each body model, and each model nested in it, is an
    InputModel (NFC, control characters refused, unknown fields refused)."""
    checked = 0
    for context in iter_route_contexts(shared_app.routes):
        route = context.original_route
        if not isinstance(route, APIRoute) or route.body_field is None:
            continue
        for model in _models_in(route.body_field.field_info.annotation):
            if model.__name__.startswith("Body_"):
                # FastAPI's wrapper of form fields (the token request, an upload's flags):
                # none of them is stored as text.
                continue
            checked += 1
            assert issubclass(model, InputModel), (route.path, model.__name__)
    assert checked > 20
