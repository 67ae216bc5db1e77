"""Hostile input gets a 4xx problem naming the field, never a 500; answers carry the
security headers."""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from nscl_api.auth.tokens import KeyRing
from nscl_domain.reports.content import ReportContent
from nscl_domain.text import clean_text
from nscl_domain.types import STORED
from tests.api.test_problems import assert_problem
from tests.api.test_reports import Desk

BK = "/v1/programmes/bac-kan-nscl"
OFFSET_LISTS = [
    "/v1/programmes",
    f"{BK}/indicators",
    f"{BK}/targets",
    f"{BK}/tasks",
    f"{BK}/roles",
    f"{BK}/task-extensions",
    f"{BK}/obligations",
    f"{BK}/plans",
    f"{BK}/plan-change-requests",
]


def cursor_of(position: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(position).encode()).decode().rstrip("=")


def fields_of(body: dict[str, Any]) -> list[list[str | int]]:
    return [error["location"] for error in body["errors"]]


class TestCursors:
    @pytest.mark.parametrize("path", OFFSET_LISTS)
    async def test_an_offset_past_any_page_is_an_invalid_cursor(
        self, client: httpx.AsyncClient, path: str
    ) -> None:
        # The cursor of the report: {"offset": 100000000000000000000}, past BIGINT.
        response = await client.get(
            path, params={"cursor": "eyJvZmZzZXQiOiAxMDAwMDAwMDAwMDAwMDAwMDAwMDB9"}
        )
        body = assert_problem(response, 422, "invalid_cursor")
        assert fields_of(body) == [["query", "cursor"]]
        assert response.headers.get("connection") != "close"

    @pytest.mark.parametrize("offset", [True, -1, 1_000_001, 2**63, 1.5, "10"])
    async def test_an_offset_that_is_not_a_small_whole_number_is_refused(
        self, client: httpx.AsyncClient, offset: Any
    ) -> None:
        response = await client.get(
            f"{BK}/indicators", params={"cursor": cursor_of({"offset": offset})}
        )
        assert_problem(response, 422, "invalid_cursor")

    async def test_an_offset_within_bounds_pages_on(self, client: httpx.AsyncClient) -> None:
        response = await client.get(
            f"{BK}/indicators", params={"cursor": cursor_of({"offset": 10**6})}
        )
        assert response.status_code == 200
        assert response.json()["items"] == []

    @pytest.mark.parametrize("after", ["a\x00b", "x" * 201, 7, None])
    async def test_a_key_cursor_that_was_never_issued_is_refused(
        self, client: httpx.AsyncClient, after: Any
    ) -> None:
        response = await client.get("/v1/org-units", params={"cursor": cursor_of({"after": after})})
        assert_problem(response, 422, "invalid_cursor")


class TestAuditTimes:
    @pytest.mark.parametrize(
        ("name", "value"),
        [("since", "9999-12-31T23:59:59-14:00"), ("until", "0001-01-01T00:00:00+14:00")],
    )
    async def test_a_time_past_the_stored_range_once_in_utc_is_refused(
        self, client: httpx.AsyncClient, name: str, value: str
    ) -> None:
        response = await client.get("/v1/audit-events", params={name: value})
        body = assert_problem(response, 422, "validation_failed")
        assert fields_of(body) == [["query", name]]

    async def test_the_edges_of_the_range_are_accepted(self, client: httpx.AsyncClient) -> None:
        response = await client.get(
            "/v1/audit-events",
            params={"since": "0001-01-01T00:00:00Z", "until": "9999-12-31T23:59:59Z"},
        )
        assert response.status_code == 200, response.text


ENTERPRISE = {"tax_code": "0100109106", "name": "Công ty A", "solution": "iso_9001"}


class TestTextInReportDrafts:
    @pytest.mark.parametrize(
        ("content", "field"),
        [
            ({"narrative": {"results": "a\x00b"}}, ["body", "narrative", "results"]),
            (
                {"enterprises": [{**ENTERPRISE, "name": "A\x00"}]},
                ["body", "enterprises", 0, "name"],
            ),
            (
                {"task_progress": [{"task": "t1", "status": "in_progress", "narrative": "\x00"}]},
                ["body", "task_progress", 0, "narrative"],
            ),
            ({"narrative": {"causes": "bell\x07"}}, ["body", "narrative", "causes"]),
            ({"narrative": {"causes": "del\x7f"}}, ["body", "narrative", "causes"]),
            ({"answers": {"1": "\ud800"}}, ["body", "answers", "1"]),
        ],
    )
    async def test_unstorable_characters_are_refused_naming_the_field(
        self,
        anonymous: httpx.AsyncClient,
        keys: KeyRing,
        content: dict[str, Any],
        field: list[str | int],
    ) -> None:
        desk = Desk(anonymous, keys)
        created = await desk.draft(2024)
        response = await anonymous.put(
            f"/v1/reports/{created.json()['id']}/draft",
            content=json.dumps(content),  # lone surrogates pass as \\u escapes
            headers={
                **desk.reporter,
                "If-Match": created.headers["etag"],
                "Content-Type": "application/json",
            },
        )
        body = assert_problem(response, 422, "validation_failed")
        assert field in fields_of(body)

    async def test_line_breaks_and_tabs_are_kept_and_text_is_stored_in_nfc(
        self, anonymous: httpx.AsyncClient, keys: KeyRing
    ) -> None:
        desk = Desk(anonymous, keys)
        written = await desk.draft(2024, {"narrative": {"results": "Cho\u031b\u0323\r\n\tĐồn"}})
        assert written.json()["draft"]["narrative"]["results"] == "Chợ\r\n\tĐồn"


class TestTextRule:
    def test_content_read_back_from_the_database_is_not_rechecked(self) -> None:
        stored = {"narrative": {"results": "old \x01 text"}}
        with pytest.raises(ValidationError):
            ReportContent.model_validate(stored)
        assert ReportContent.model_validate(stored, context=STORED).narrative.results == (
            "old \x01 text"
        )

    @pytest.mark.parametrize("text", ["\x00", "\x1b[31m", "\x7f", "\udfff", "\x0b"])
    def test_control_characters_are_refused(self, text: str) -> None:
        with pytest.raises(ValueError, match="cannot be stored"):
            clean_text(text)


class TestValidationRuleParameters:
    @pytest.mark.parametrize(
        ("code", "params", "field"),
        [
            ("yearly_jump", {"": 2}, ["body", "params", ""]),
            ("yearly_jump", {"fäctor☃": 2}, ["body", "params", "fäctor☃"]),
            ("yearly_jump", {"factor": True}, ["body", "params", "factor"]),
            ("yearly_jump", {"factor": "4"}, ["body", "params", "factor"]),
            ("yearly_jump", {"factor": 10**6}, ["body", "params", "factor"]),
            ("unknown_task", {"factor": 4}, ["body", "params", "factor"]),
        ],
    )
    async def test_parameters_the_rule_does_not_take_are_refused(
        self, client: httpx.AsyncClient, code: str, params: dict[str, Any], field: list[str]
    ) -> None:
        response = await client.patch(f"/v1/validation-rules/{code}", json={"params": params})
        body = assert_problem(response, 422, "invalid_rule_params")
        assert fields_of(body) == [field]
        rules = (await client.get("/v1/validation-rules")).json()["items"]
        assert next(r for r in rules if r["code"] == code)["params"] == (
            {"factor": 3} if code == "yearly_jump" else {}
        )

    async def test_a_number_keeps_its_type(self, client: httpx.AsyncClient) -> None:
        response = await client.patch(
            "/v1/validation-rules/yearly_jump", json={"params": {"factor": 2.5}}
        )
        assert response.status_code == 200, response.text
        assert response.json()["params"] == {"factor": 2.5}


class TestSecurityHeaders:
    async def test_a_private_answer_is_not_stored_sniffed_or_framed(
        self, client: httpx.AsyncClient
    ) -> None:
        response = await client.get("/v1/programmes")
        assert response.status_code == 200
        assert response.headers["cache-control"] == "no-store"
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["referrer-policy"] == "no-referrer"
        assert response.headers["content-security-policy"] == (
            "default-src 'none'; frame-ancestors 'none'"
        )

    async def test_errors_and_the_token_endpoint_are_not_stored(
        self, anonymous: httpx.AsyncClient
    ) -> None:
        refused = await anonymous.get("/v1/programmes")
        assert refused.status_code == 401
        assert refused.headers["cache-control"] == "no-store"
        assert refused.headers["x-content-type-options"] == "nosniff"
        token = await anonymous.post("/v1/oauth/token", data={"grant_type": "password"})
        assert token.headers["cache-control"] == "no-store"

    async def test_health_carries_the_headers(self, anonymous: httpx.AsyncClient) -> None:
        response = await anonymous.get("/health")
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["referrer-policy"] == "no-referrer"
        assert "frame-ancestors 'none'" in response.headers["content-security-policy"]

    @pytest.mark.parametrize("path", ["/docs", "/redoc"])
    async def test_the_documentation_pages_may_load_their_viewer_only(
        self, anonymous: httpx.AsyncClient, path: str
    ) -> None:
        response = await anonymous.get(path)
        assert response.status_code == 200
        policy = response.headers["content-security-policy"]
        # The viewers are served by the service itself: no CDN, no inline script.
        assert "script-src 'self';" in policy
        assert "https:" not in policy
        assert "frame-ancestors 'none'" in policy
        assert response.headers["x-content-type-options"] == "nosniff"
