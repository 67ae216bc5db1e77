"""The programme catalogue over HTTP: the Bắc Kạn seed, structure as of a day, admin changes."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from nscl_domain.catalogue import models as m
from nscl_domain.composition.seed import load_seed
from tests.api.test_problems import assert_problem

BK = "/v1/programmes/bac-kan-nscl"
DISTRICT_CODES = {
    "Bắc Kạn": "058",
    "Pác Nặm": "060",
    "Ba Bể": "061",
    "Ngân Sơn": "062",
    "Bạch Thông": "063",
    "Chợ Đồn": "064",
    "Chợ Mới": "065",
    "Na Rì": "066",
}


async def all_items(client: httpx.AsyncClient, url: str) -> list[dict[str, Any]]:
    """Follow next_cursor to the end."""
    items: list[dict[str, Any]] = []
    separator = "&" if "?" in url else "?"
    page = (await client.get(f"{url}{separator}limit=7")).json()
    while True:
        items += page["items"]
        if not page.get("next_cursor"):
            return items
        page = (await client.get(f"{url}{separator}limit=7&cursor={page['next_cursor']}")).json()


def by_role(roles: list[dict[str, Any]], role: str) -> set[str]:
    return {r["unit"] for r in roles if r["role"] == role}


class TestSeededPlan:
    async def test_five_task_groups_in_order(self, client: httpx.AsyncClient) -> None:
        groups = (await client.get(f"{BK}/task-groups")).json()["items"]
        assert [g["number"] for g in groups] == [1, 2, 3, 4, 5]
        assert groups[0]["name_vi"].startswith("Hoàn thiện cơ chế, chính sách")

    async def test_units_of_the_plan_with_their_codes(self, client: httpx.AsyncClient) -> None:
        units = await all_items(client, "/v1/org-units?as_of=2024-12-31")
        names = {u["name_en"] for u in units}
        for expected in (
            "Department of Science and Technology of Bắc Kạn province",
            "Sub-department of Standards, Metrology and Quality of Bắc Kạn province",
            "Department of Finance of Bắc Kạn province",
            "Department of Planning and Investment of Bắc Kạn province",
        ):
            assert expected in names
        districts = [u for u in units if u["kind"] == "district_peoples_committee"]
        assert {u["code"] for u in districts} == set(DISTRICT_CODES.values())
        for name, code in DISTRICT_CODES.items():
            assert any(name in u["name_vi"] and u["code"] == code for u in districts), name
        province = [u for u in units if u["kind"] == "provincial_peoples_committee"]
        assert [u["code"] for u in province] == ["06"]

    async def test_six_departments_and_eight_districts_report(
        self, client: httpx.AsyncClient
    ) -> None:
        roles = await all_items(client, f"{BK}/roles?as_of=2024-12-31&role=reporting_unit")
        assert len(roles) == 14
        assert all(r["focal_agency"] is not None for r in roles)
        lead = (await client.get(f"{BK}/roles?as_of=2024-12-31&role=lead")).json()["items"]
        assert [r["unit"] for r in lead] == ["bk-dost"]

    async def test_provincial_and_national_targets(self, client: httpx.AsyncClient) -> None:
        targets = await all_items(client, f"{BK}/targets")
        kinds = {t["kind"] for t in targets}
        assert kinds == {"phase_total", "minimum", "yearly_growth_range", "baseline_percentage"}
        experts = next(t for t in targets if t["key"] == "bk-experts-2021-2025")
        assert (experts["value"], experts["approximate"]) == ("10", True)
        growth = next(t for t in targets if t["kind"] == "yearly_growth_range")
        assert (growth["min_pct"], growth["max_pct"]) == ("1.0000", "1.5000")
        iso = [t for t in targets if t["kind"] == "baseline_percentage"]
        assert {t["min_pct"] for t in iso} == {"102.0000"}
        assert {t["baseline_period"] for t in iso} == {"bp-2011-2020"}
        assert len(iso) == 2

        national = await all_items(client, "/v1/programmes/national-nscl/targets")
        assert any(t["kind"] == "minimum" and t["value"] == "100" for t in national)
        programme = (await client.get(BK)).json()
        assert programme["decision_no"] == "1852/QĐ-UBND"
        assert [p["key"] for p in programme["phases"]] == [
            "bk-2021-2025",
            "bk-2021-2030",
            "bk-2026-2030",
        ]

    async def test_every_task_has_a_lead(self, client: httpx.AsyncClient) -> None:
        tasks = await all_items(client, f"{BK}/tasks")
        assert len(tasks) >= 5
        assert all(t["lead_units"] for t in tasks)
        numbers = [t["number"] for t in tasks]
        assert numbers[0] == "1.1"
        assert {t["task_group"] for t in tasks} == {1, 2, 3, 4, 5}

    async def test_seed_twice_changes_nothing(self, db_connection: AsyncConnection) -> None:
        session = AsyncSession(bind=db_connection, join_transaction_mode="create_savepoint")
        ids_before = set((await session.scalars(select(m.OrgUnit.id))).all())
        tasks_before = await session.scalar(select(func.count()).select_from(m.TaskUnit))
        await load_seed(session)
        await session.flush()
        assert set((await session.scalars(select(m.OrgUnit.id))).all()) == ids_before
        assert await session.scalar(select(func.count()).select_from(m.TaskUnit)) == tasks_before


class TestStructureAsOf:
    async def test_structure_before_and_after_the_2025_changes(
        self, client: httpx.AsyncClient
    ) -> None:
        before = {u["key"] for u in await all_items(client, "/v1/org-units?as_of=2024-12-31")}
        after = {u["key"] for u in await all_items(client, "/v1/org-units?as_of=2025-08-01")}
        assert {"bk-ppc", "bk-dpi", "bk-dost"} <= before
        assert not {"bk-ppc", "bk-dpi", "bk-dost"} & after
        assert "tn-ppc" in after
        assert "tn-ppc" not in before
        after_units = await all_items(client, "/v1/org-units?as_of=2025-08-01")
        assert not [u for u in after_units if u["kind"] == "district_peoples_committee"]
        assert [u["code"] for u in after_units if u["key"] == "tn-ppc"] == ["19"]

    async def test_investment_estimates_go_to_planning_then_to_finance(
        self, client: httpx.AsyncClient
    ) -> None:
        role = "investment_estimate_recipient"
        first = (await client.get(f"{BK}/roles?as_of=2024-12-31&role={role}")).json()["items"]
        second = (await client.get(f"{BK}/roles?as_of=2025-08-01&role={role}")).json()["items"]
        assert [r["unit"] for r in first] == ["bk-dpi"]
        assert [r["unit"] for r in second] == ["tn-dof"]

    async def test_merged_unit_shows_its_successor(self, client: httpx.AsyncClient) -> None:
        dpi = (await client.get("/v1/org-units/bk-dpi")).json()
        assert dpi["valid_to"] == "2025-03-01"
        assert [(s["kind"], s["successor"]) for s in dpi["successors"]] == [
            ("merged_into", "bk-dof")
        ]
        finance = (await client.get("/v1/org-units/bk-dof")).json()
        assert "bk-dpi" in {p["predecessor"] for p in finance["predecessors"]}


class TestSearch:
    @pytest.mark.parametrize("query", ["cho don", "Chợ Đồn", "CHO ĐON", "chợ don"])
    async def test_with_or_without_diacritics(self, client: httpx.AsyncClient, query: str) -> None:
        found = (await client.get("/v1/org-units", params={"q": query})).json()["items"]
        assert "Chợ Đồn" in " ".join(u["name_vi"] for u in found)
        assert all("Chợ Đồn" in u["name_vi"] for u in found)

    async def test_tasks_by_text_and_unit(self, client: httpx.AsyncClient) -> None:
        found = (await client.get(f"{BK}/tasks", params={"q": "truy xuat nguon goc"})).json()
        assert found["items"]
        assert all("truy xuất nguồn gốc" in t["text_vi"].lower() for t in found["items"])
        led = (await client.get(f"{BK}/tasks", params={"unit": "bk-dost"})).json()["items"]
        assert led


def unit_body(**overrides: Any) -> dict[str, Any]:
    return {
        "key": "tn-xa-cho-don",
        "kind": "commune_peoples_committee",
        "name_vi": "Ủy ban nhân dân xã Chợ Đồn",
        "name_en": "People's Committee of Chợ Đồn commune",
        "parent": "tn-ppc",
        "valid_from": "2025-07-01",
        **overrides,
    }


class TestAdministratorChanges:
    async def test_create_a_unit_and_find_it(self, client: httpx.AsyncClient) -> None:
        created = await client.post("/v1/org-units", json=unit_body(code="01999"))
        assert created.status_code == 201, created.text
        assert created.json()["parent"] == "tn-ppc"
        found = (await client.get("/v1/org-units?q=xa cho don&as_of=2025-08-01")).json()
        assert [u["key"] for u in found["items"]] == ["tn-xa-cho-don"]

    async def test_end_before_start_names_valid_to(self, client: httpx.AsyncClient) -> None:
        response = await client.post("/v1/org-units", json=unit_body(valid_to="2025-01-01"))
        body = assert_problem(response, 422, "period_reversed")
        assert body["errors"][0]["location"] == ["body", "valid_to"]  # type: ignore[index]

    async def test_period_outside_the_parent_is_refused(self, client: httpx.AsyncClient) -> None:
        response = await client.post("/v1/org-units", json=unit_body(valid_from="2024-01-01"))
        body = assert_problem(response, 422, "period_outside_parent")
        assert body["errors"][0]["location"] == ["body", "valid_from"]  # type: ignore[index]

    async def test_cycle_in_the_tree_names_parent(self, client: httpx.AsyncClient) -> None:
        # DOST's parent is the provincial committee; making the committee DOST's child loops.
        response = await client.patch("/v1/org-units/bk-ppc", json={"parent": "bk-dost"})
        body = assert_problem(response, 422, "parent_cycle")
        assert body["errors"][0]["location"] == ["body", "parent"]  # type: ignore[index]
        self_parent = await client.patch("/v1/org-units/bk-dost", json={"parent": "bk-dost"})
        assert_problem(self_parent, 422, "parent_cycle")
        unchanged = (await client.get("/v1/org-units/bk-ppc")).json()
        assert unchanged["parent"] is None

    async def test_missing_successor_names_successor(self, client: httpx.AsyncClient) -> None:
        response = await client.post(
            "/v1/org-units/bk-doh/successions",
            json={"successor": "no-such-unit", "kind": "merged_into", "effective": "2025-07-01"},
        )
        body = assert_problem(response, 422, "successor_not_found")
        assert body["errors"][0]["location"] == ["body", "successor"]  # type: ignore[index]

    async def test_recording_a_link_twice_is_a_conflict(self, client: httpx.AsyncClient) -> None:
        response = await client.post(
            "/v1/org-units/bk-dpi/successions",
            json={"successor": "bk-dof", "kind": "merged_into", "effective": "2025-03-01"},
        )
        body = assert_problem(response, 409, "succession_exists")
        assert body["errors"][0]["location"] == ["body", "successor"]  # type: ignore[index]

    async def test_successor_must_exist_on_the_effective_day(
        self, client: httpx.AsyncClient
    ) -> None:
        response = await client.post(
            "/v1/org-units/bk-doh/successions",
            json={"successor": "tn-ppc", "kind": "merged_into", "effective": "2025-03-01"},
        )
        assert_problem(response, 422, "successor_not_in_force")

    async def test_code_clash_in_the_same_period_names_code(
        self, client: httpx.AsyncClient
    ) -> None:
        response = await client.post(
            "/v1/org-units",
            json=unit_body(
                key="bk-huyen-moi",
                kind="district_peoples_committee",
                parent="bk-ppc",
                valid_from="2020-01-01",
                valid_to="2025-07-01",
                code="064",
            ),
        )
        body = assert_problem(response, 409, "unit_code_clash")
        assert body["errors"][0]["location"] == ["body", "code"]  # type: ignore[index]

    async def test_code_reused_after_the_unit_ended_is_allowed(
        self, client: httpx.AsyncClient
    ) -> None:
        response = await client.post("/v1/org-units", json=unit_body(code="064"))
        assert response.status_code == 201, response.text

    async def test_unknown_unit_is_404(self, client: httpx.AsyncClient) -> None:
        assert_problem(await client.get("/v1/org-units/nowhere"), 404, "unit_not_found")
        assert_problem(
            await client.get("/v1/programmes/nowhere/targets"), 404, "programme_not_found"
        )

    async def test_invalid_date_is_422(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/v1/org-units?as_of=0")
        body = assert_problem(response, 422, "validation_failed")
        assert body["errors"][0]["location"] == ["query", "as_of"]  # type: ignore[index]


class TestRoleChanges:
    async def test_routing_changes_by_ending_one_role_and_starting_another(
        self, client: httpx.AsyncClient
    ) -> None:
        role = "recurrent_estimate_recipient"
        current = (await client.get(f"{BK}/roles?as_of=2024-06-01&role={role}")).json()["items"]
        assert len(current) == 1
        role_id = current[0]["id"]

        new_role = {"role": role, "unit": "bk-dpi", "valid_from": "2024-07-01"}
        outlasting = await client.post(f"{BK}/roles", json=new_role)
        assert_problem(outlasting, 422, "role_outlasts_unit")
        new_role["valid_to"] = "2025-03-01"
        overlapping = await client.post(f"{BK}/roles", json=new_role)
        body = assert_problem(overlapping, 409, "role_overlap")
        assert body["errors"][0]["location"] == ["body", "valid_from"]  # type: ignore[index]

        ended = await client.patch(f"{BK}/roles/{role_id}", json={"valid_to": "2024-07-01"})
        assert ended.status_code == 200, ended.text
        added = await client.post(f"{BK}/roles", json=new_role)
        assert added.status_code == 201, added.text
        before = (await client.get(f"{BK}/roles?as_of=2024-06-30&role={role}")).json()["items"]
        after = (await client.get(f"{BK}/roles?as_of=2024-07-01&role={role}")).json()["items"]
        assert [r["unit"] for r in before] == [current[0]["unit"]]
        assert [r["unit"] for r in after] == ["bk-dpi"]

    async def test_role_for_a_unit_that_no_longer_exists_is_refused(
        self, client: httpx.AsyncClient
    ) -> None:
        response = await client.post(
            f"{BK}/roles",
            json={"role": "reporting_unit", "unit": "bk-dpi", "valid_from": "2026-01-01"},
        )
        assert_problem(response, 422, "unit_not_in_force")

    async def test_focal_agency_only_for_reporting_units(self, client: httpx.AsyncClient) -> None:
        response = await client.post(
            f"{BK}/roles",
            json={
                "role": "cooperating_unit",
                "unit": "bk-doh",
                "focal_agency": "bk-dost",
                "valid_from": "2021-01-01",
                "valid_to": "2025-07-01",
            },
        )
        assert_problem(response, 422, "focal_agency_not_allowed")


class TestTaskExtensions:
    def extension(self, **overrides: Any) -> dict[str, Any]:
        return {
            "key": "ext-doh-iso-hospitals",
            "title_vi": "Áp dụng ISO 9001 tại các bệnh viện tuyến huyện",
            "title_en": "Apply ISO 9001 at district hospitals",
            "unit": "bk-doh",
            "decided_by": "bk-ppc",
            "decision_no": "321/QĐ-UBND",
            "decision_date": "2021-03-15",
            "extended_to_year": 2023,
            "task": "t-3-1",
            **overrides,
        }

    async def test_recorded_with_who_decided_and_when(self, client: httpx.AsyncClient) -> None:
        created = await client.post(f"{BK}/task-extensions", json=self.extension())
        assert created.status_code == 201, created.text
        listed = (await client.get(f"{BK}/task-extensions")).json()["items"]
        assert [(e["decided_by"], e["decision_no"], e["decision_date"]) for e in listed] == [
            ("bk-ppc", "321/QĐ-UBND", "2021-03-15")
        ]
        assert listed[0]["task"] == "t-3-1"

    async def test_decided_by_another_department_is_refused(
        self, client: httpx.AsyncClient
    ) -> None:
        response = await client.post(
            f"{BK}/task-extensions", json=self.extension(decided_by="bk-doit")
        )
        body = assert_problem(response, 422, "decider_not_competent")
        assert body["errors"][0]["location"] == ["body", "decided_by"]  # type: ignore[index]

    async def test_extension_beyond_the_programme_is_refused(
        self, client: httpx.AsyncClient
    ) -> None:
        response = await client.post(
            f"{BK}/task-extensions", json=self.extension(extended_to_year=2030, decided_by="bk-doh")
        )
        assert response.status_code == 201
        late = await client.post(
            f"{BK}/task-extensions",
            json=self.extension(key="ext-2", decision_date="2025-08-01"),
        )
        assert_problem(late, 422, "decider_not_in_force")
