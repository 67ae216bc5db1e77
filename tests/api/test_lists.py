"""Lists of what clients create, scoped as the single reads are and paged by cursor; the
chart of accounts and routing of a budget year; how a client knows a rollup reflects an
acceptance."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from nscl_api.auth.tokens import KeyRing
from nscl_api.pagination import encode_cursor
from nscl_api.resources import Resources
from nscl_domain.composition.registry import DEFAULT_REGISTRY
from nscl_domain.identity import SYSTEM, Role, permissions_of
from nscl_domain.identity import service as identity
from nscl_domain.identity.service import Grant
from nscl_domain.jobs import service as jobs
from tests.api.test_problems import assert_problem
from tests.conftest import OTHER_UNIT, OWN_UNIT, TEST_CLIENTS, harness_clock, mint_token

BK = "/v1/programmes/bac-kan-nscl"


def auth(keys: KeyRing, client_id: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {mint_token(keys, client_id)}"}


async def walk(
    http: httpx.AsyncClient, path: str, headers: dict[str, str], **params: Any
) -> tuple[list[dict[str, Any]], int]:
    """Every item of a list, one cursor after another; and how many pages it took."""
    items: list[dict[str, Any]] = []
    cursor, pages = None, 0
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        response = await http.get(path, params=query, headers=headers)
        assert response.status_code == 200, response.text
        pages += 1
        items += response.json()["items"]
        cursor = response.json()["next_cursor"]
        if cursor is None:
            return items, pages


async def ids(
    http: httpx.AsyncClient, path: str, headers: dict[str, str], **params: Any
) -> list[str]:
    response = await http.get(path, params=params, headers=headers)
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()["items"]]


class People:
    """A reporter of OWN_UNIT and of OTHER_UNIT, DOST's reviewer, a viewer, an administrator."""

    def __init__(self, keys: KeyRing) -> None:
        self.reporter = auth(keys, "test-reporter")
        self.other = auth(keys, "test-reporter-other")
        self.reviewer = auth(keys, "test-reviewer")
        self.viewer = auth(keys, "test-viewer")
        self.admin = auth(keys, "test-admin")


@pytest.fixture
def people(keys: KeyRing) -> People:
    return People(keys)


# --- reports -------------------------------------------------------------------------------


async def open_report(
    http: httpx.AsyncClient, people: People, who: dict[str, str], year: int
) -> httpx.Response:
    await http.post(
        f"{BK}/obligations/generation",
        json={"year": year, "regime": "bk-annual"},
        headers=people.reviewer,
    )
    [obligation] = (await http.get(f"{BK}/obligations", params={"year": year}, headers=who)).json()[
        "items"
    ]
    created = await http.post("/v1/reports", json={"obligation_id": obligation["id"]}, headers=who)
    assert created.status_code == 201, created.text
    return created


async def submit(
    http: httpx.AsyncClient, who: dict[str, str], report: httpx.Response
) -> httpx.Response:
    submitted = await http.post(
        f"/v1/reports/{report.json()['id']}/submission",
        headers={**who, "If-Match": report.headers["etag"]},
    )
    assert submitted.status_code == 200, submitted.text
    return submitted


@pytest.fixture
async def reports(anonymous: httpx.AsyncClient, people: People) -> dict[str, Any]:
    """OWN_UNIT's 2021 and 2022 reports and OTHER_UNIT's 2021 report, all drafts, and the
    moment after they were opened."""
    own_2021 = await open_report(anonymous, people, people.reporter, 2021)
    own_2022 = await open_report(anonymous, people, people.reporter, 2022)
    other_2021 = await open_report(anonymous, people, people.other, 2021)
    return {
        "own_2021": own_2021,
        "own_2022": own_2022,
        "other_2021": other_2021,
        # The service's own clock (the harness's day), which stamps updated_at.
        "opened": harness_clock(),
    }


class TestListReports:
    async def test_pages_newest_first_without_repeats(
        self, anonymous: httpx.AsyncClient, people: People, reports: dict[str, Any]
    ) -> None:
        items, pages = await walk(anonymous, "/v1/reports", people.reviewer, limit=1)
        assert pages == 3
        created = [reports[k].json()["id"] for k in ("own_2021", "own_2022", "other_2021")]
        assert [i["id"] for i in items] == created[::-1]
        assert items[0] == reports["other_2021"].json()  # the item is the report as read

    async def test_a_reporter_sees_its_own_units_reports_only(
        self, anonymous: httpx.AsyncClient, people: People, reports: dict[str, Any]
    ) -> None:
        own = await ids(anonymous, "/v1/reports", people.reporter)
        assert own == [reports["own_2022"].json()["id"], reports["own_2021"].json()["id"]]
        assert await ids(anonymous, "/v1/reports", people.other) == [
            reports["other_2021"].json()["id"]
        ]
        # Naming another unit does not widen the scope.
        assert await ids(anonymous, "/v1/reports", people.reporter, unit=OTHER_UNIT) == []

    async def test_reviewers_see_every_unit_and_viewers_none(
        self, anonymous: httpx.AsyncClient, people: People, reports: dict[str, Any]
    ) -> None:
        assert len(await ids(anonymous, "/v1/reports", people.reviewer)) == 3
        assert_problem(
            await anonymous.get("/v1/reports", headers=people.viewer), 403, "insufficient_scope"
        )

    async def test_filters(
        self, anonymous: httpx.AsyncClient, people: People, reports: dict[str, Any]
    ) -> None:
        own_2021, own_2022, other = (
            reports[k].json()["id"] for k in ("own_2021", "own_2022", "other_2021")
        )

        async def listed(**params: Any) -> set[str]:
            return set(await ids(anonymous, "/v1/reports", people.reviewer, **params))

        assert await listed(year=2022) == {own_2022}
        assert await listed(unit=OTHER_UNIT) == {other}
        assert await listed(unit="bk-ppc") == set()  # the province files no report itself
        assert await listed(unit="bk-ppc", subtree="true") == {own_2021, own_2022, other}
        assert await listed(programme="bac-kan-nscl", regime="bk-annual") == {
            own_2021,
            own_2022,
            other,
        }
        assert await listed(regime="bk-mid-term") == set()
        assert await listed(status="submitted") == set()
        await submit(anonymous, people.reporter, reports["own_2021"])
        assert await listed(status="submitted") == {own_2021}
        assert await listed(status="draft", year=2021) == {other}
        # Only the report submitted after the others were opened changed since then.
        assert await listed(updated_since=reports["opened"].isoformat()) == {own_2021}

    async def test_an_unknown_programme_or_status_is_refused(
        self, anonymous: httpx.AsyncClient, people: People, reports: dict[str, Any]
    ) -> None:
        assert_problem(
            await anonymous.get(
                "/v1/reports", params={"programme": "nowhere"}, headers=people.reviewer
            ),
            404,
            "programme_not_found",
        )
        for params in (
            {"status": "lost"},
            {"updated_since": "0.5"},
            {"updated_since": "2021-01-01T00:00"},
        ):
            refused = await anonymous.get("/v1/reports", params=params, headers=people.reviewer)
            assert_problem(refused, 422, "validation_failed")

    @pytest.mark.parametrize(
        "cursor",
        [
            "not-a-cursor!",
            encode_cursor({"before": "not-a-uuid"}),
            encode_cursor({"after": "x"}),
            encode_cursor({"offset": 3}),
        ],
    )
    async def test_a_cursor_this_list_did_not_issue_is_422(
        self, anonymous: httpx.AsyncClient, people: People, cursor: str
    ) -> None:
        response = await anonymous.get(
            "/v1/reports", params={"cursor": cursor}, headers=people.reviewer
        )
        assert_problem(response, 422, "invalid_cursor")


# --- budget ----------------------------------------------------------------------------------

LINE = {
    "task": "t-3-1",
    "activity": "Hỗ trợ doanh nghiệp áp dụng ISO 9001",
    "amount": 150_000_000,
    "funding_source": "recurrent_science",
    "loai_khoan": "100-103",
}


@pytest.fixture
async def finance(resources: Resources, keys: KeyRing) -> dict[str, str]:
    """Finance of Bắc Kạn (bk-dof), the destination of recurrent lines in 2021–2024."""
    await identity.create_client(
        resources.new_uow(), SYSTEM, client_id="finance-bk-dof", name="Sở Tài chính",
        unit="bk-dof", roles=[Role.FINANCE.value],
    )  # fmt: skip
    roles = frozenset({Role.FINANCE})
    grant = Grant("finance-bk-dof", "bk-dof", roles, permissions_of(roles))
    issued = keys.issue(grant, now=datetime.now(UTC), ttl_seconds=900)
    return {"Authorization": f"Bearer {issued.access_token}"}


async def file_estimate(
    http: httpx.AsyncClient, people: People, who: dict[str, str], year: int, *, accept: bool
) -> dict[str, Any]:
    created = await http.post(f"{BK}/budget-estimates", json={"budget_year": year}, headers=who)
    assert created.status_code == 201, created.text
    estimate = created.json()["id"]
    lined = await http.put(
        f"/v1/budget-estimates/{estimate}/lines",
        json={"lines": [LINE]},
        headers={**who, "If-Match": created.headers["etag"]},
    )
    assert lined.status_code == 200, lined.text
    if not accept:
        return dict(lined.json())
    submitted = await http.post(
        f"/v1/budget-estimates/{estimate}/submission",
        headers={**who, "If-Match": lined.headers["etag"]},
    )
    accepted = await http.post(
        f"/v1/budget-estimates/{estimate}/acceptance",
        headers={**people.reviewer, "If-Match": submitted.headers["etag"]},
    )
    assert accepted.status_code == 200, accepted.text
    return dict(accepted.json())


@pytest.fixture
async def money(
    anonymous: httpx.AsyncClient, people: People, finance: dict[str, str], resources: Resources
) -> dict[str, Any]:
    """Accepted 2024 estimates of OWN_UNIT and OTHER_UNIT, Finance's dossier acknowledged with
    an allocation per line, each unit's spending against its own; OWN_UNIT's 2023 draft."""
    draft = await file_estimate(anonymous, people, people.reporter, 2023, accept=False)
    own = await file_estimate(anonymous, people, people.reporter, 2024, accept=True)
    other = await file_estimate(anonymous, people, people.other, 2024, accept=True)
    queued = await anonymous.post(
        f"{BK}/budget-dossiers/builds", json={"budget_year": 2024}, headers=people.reviewer
    )
    await jobs.run_attempt(resources.sessionmaker, DEFAULT_REGISTRY, uuid.UUID(queued.json()["id"]))
    [dossier] = (
        await anonymous.get(f"{BK}/budget-dossiers", params={"budget_year": 2024}, headers=finance)
    ).json()["items"]
    await anonymous.post(f"/v1/budget-dossiers/{dossier['id']}/sending", headers=people.reviewer)
    acknowledged = await anonymous.post(
        f"/v1/budget-dossiers/{dossier['id']}/acknowledgement",
        json={
            "allocations": {line["line_id"]: 100_000_000 for line in dossier["document"]["lines"]}
        },
        headers=finance,
    )
    assert acknowledged.status_code == 200, acknowledged.text
    by_line = {a["line_id"]: a for a in acknowledged.json()["allocations"]}
    allocation = {
        "own": by_line[own["lines"][0]["id"]],
        "other": by_line[other["lines"][0]["id"]],
    }
    spent = {}
    for side, who in (("own", people.reporter), ("other", people.other)):
        recorded = await anonymous.post(
            f"/v1/budget-allocations/{allocation[side]['id']}/spending",
            json={"amount": 40_000_000, "spent_on": "2024-06-30", "note": "Tập huấn ISO"},
            headers=who,
        )
        assert recorded.status_code == 201, recorded.text
        spent[side] = recorded.json()
    return {
        "draft": draft,
        "own": own,
        "other": other,
        "dossier": dossier,
        "allocation": allocation,
        "spent": spent,
    }


class TestListBudgetEstimates:
    async def test_scoped_filtered_and_paged(
        self, anonymous: httpx.AsyncClient, people: People, money: dict[str, Any]
    ) -> None:
        draft, own, other = money["draft"]["id"], money["own"]["id"], money["other"]["id"]
        path = "/v1/budget-estimates"
        assert await ids(anonymous, path, people.reporter) == [own, draft]
        assert await ids(anonymous, path, people.other) == [other]
        assert await ids(anonymous, path, people.reviewer) == [other, own, draft]
        items, pages = await walk(anonymous, path, people.reviewer, limit=2)
        assert ([i["id"] for i in items], pages) == ([other, own, draft], 2)
        assert items[1]["lines"] == money["own"]["lines"]  # items are estimates as read
        assert await ids(anonymous, path, people.reviewer, budget_year=2024) == [other, own]
        assert await ids(anonymous, path, people.reviewer, status="draft") == [draft]
        assert await ids(anonymous, path, people.reviewer, unit=OTHER_UNIT) == [other]
        assert await ids(anonymous, path, people.reviewer, unit="bk-ppc", subtree=True) == [
            other,
            own,
            draft,
        ]
        assert await ids(anonymous, path, people.reviewer, programme="bac-kan-nscl") == [
            other,
            own,
            draft,
        ]
        assert_problem(await anonymous.get(path, headers=people.viewer), 403, "insufficient_scope")
        assert_problem(
            await anonymous.get(path, params={"cursor": "%%"}, headers=people.reviewer),
            422,
            "invalid_cursor",
        )


class TestListAllocationsAndSpending:
    async def test_allocations_are_seen_by_the_unit_they_fund(
        self,
        anonymous: httpx.AsyncClient,
        people: People,
        finance: dict[str, str],
        money: dict[str, Any],
    ) -> None:
        own, other = (money["allocation"][side]["id"] for side in ("own", "other"))
        path = "/v1/budget-allocations"
        assert await ids(anonymous, path, people.reporter) == [own]
        assert await ids(anonymous, path, people.other) == [other]
        everything = set(await ids(anonymous, path, people.reviewer))
        assert everything == {own, other}
        items, pages = await walk(anonymous, path, people.reviewer, limit=1)
        assert ({i["id"] for i in items}, pages) == (everything, 2)
        assert items[0]["dossier_id"] == money["dossier"]["id"]
        assert await ids(anonymous, path, people.reviewer, unit=OTHER_UNIT) == [other]
        assert set(await ids(anonymous, path, people.reviewer, destination="bk-dof")) == everything
        assert await ids(anonymous, path, people.reviewer, destination="bk-dpi") == []
        assert await ids(anonymous, path, people.reviewer, budget_year=2023) == []
        assert (
            set(await ids(anonymous, path, people.reviewer, dossier_id=money["dossier"]["id"]))
            == everything
        )
        # Finance reads its allocations in its dossiers; the list is the funded units'.
        assert_problem(await anonymous.get(path, headers=finance), 403, "insufficient_scope")

    async def test_spending_is_seen_as_its_allocation_is(
        self, anonymous: httpx.AsyncClient, people: People, money: dict[str, Any]
    ) -> None:
        own, other = (money["spent"][side]["id"] for side in ("own", "other"))
        path = "/v1/budget-spending"
        assert await ids(anonymous, path, people.reporter) == [own]
        assert await ids(anonymous, path, people.other) == [other]
        assert await ids(anonymous, path, people.reviewer) == [other, own]
        items, pages = await walk(anonymous, path, people.reviewer, limit=1)
        assert ([i["id"] for i in items], pages) == ([other, own], 2)
        assert items[1] == money["spent"]["own"]
        mine = money["allocation"]["own"]["id"]
        assert await ids(anonymous, path, people.reviewer, allocation_id=mine) == [own]
        assert await ids(anonymous, path, people.other, allocation_id=mine) == []
        assert await ids(anonymous, path, people.reviewer, unit=OWN_UNIT) == [own]
        assert await ids(anonymous, path, people.reviewer, budget_year=2024) == [other, own]
        assert await ids(anonymous, path, people.reviewer, budget_year=2025) == []


class TestListDossiers:
    async def test_paged_and_filtered(
        self,
        anonymous: httpx.AsyncClient,
        people: People,
        finance: dict[str, str],
        money: dict[str, Any],
    ) -> None:
        dossier = money["dossier"]["id"]
        assert await ids(anonymous, f"{BK}/budget-dossiers", people.reviewer) == [dossier]
        assert await ids(anonymous, f"{BK}/budget-dossiers", finance, status="acknowledged") == [
            dossier
        ]
        assert await ids(anonymous, f"{BK}/budget-dossiers", finance, status="draft") == []
        assert (
            await ids(anonymous, f"{BK}/budget-dossiers", people.reviewer, destination="bk-dpi")
            == []
        )
        [listed] = (await anonymous.get(f"{BK}/budget-dossiers", headers=finance)).json()["items"]
        assert [a["id"] for a in listed["allocations"]] != []


class TestChartOfAccounts:
    async def test_codes_are_those_valid_in_the_budget_year(
        self, anonymous: httpx.AsyncClient, people: People
    ) -> None:
        def codes(items: list[dict[str, Any]]) -> set[tuple[str, str]]:
            return {(c["kind"], c["code"]) for c in items}

        in_2024, pages = await walk(anonymous, "/v1/chart-of-accounts/2024", people.viewer, limit=2)
        assert pages == 2
        assert ("loai_khoan", "100-103") in codes(in_2024)
        assert ("loai_khoan", "100-104") not in codes(in_2024)
        in_2026, _ = await walk(anonymous, "/v1/chart-of-accounts/2026", people.viewer)
        assert ("loai_khoan", "100-104") in codes(in_2026)
        assert ("loai_khoan", "100-103") not in codes(in_2026)
        assert len(codes(in_2024)) == len(in_2024)  # each once
        [code] = (
            await anonymous.get(
                "/v1/chart-of-accounts/2026", params={"kind": "loai_khoan"}, headers=people.viewer
            )
        ).json()["items"]
        assert code == {
            "kind": "loai_khoan",
            "code": "100-104",
            "name_vi": "Hoạt động khoa học và công nghệ (mẫu, từ 2026)",
            "valid_from_year": 2026,
            "valid_to_year": None,
            "source": "TT 130/2025/TT-BTC",
        }

    async def test_a_listed_code_is_accepted_and_an_unlisted_one_refused(
        self, anonymous: httpx.AsyncClient, people: People
    ) -> None:
        created = await anonymous.post(
            f"{BK}/budget-estimates", json={"budget_year": 2024}, headers=people.reporter
        )
        listed, _ = await walk(anonymous, "/v1/chart-of-accounts/2024", people.reporter)
        line = {k: v for k, v in LINE.items() if k != "loai_khoan"}
        path, etag = f"/v1/budget-estimates/{created.json()['id']}/lines", created.headers["etag"]
        for code in listed:
            accepted = await anonymous.put(
                path,
                json={"lines": [{**line, code["kind"]: code["code"]}]},
                headers={**people.reporter, "If-Match": etag},
            )
            assert accepted.status_code == 200, accepted.text
            etag = accepted.headers["etag"]
        refused = await anonymous.put(
            path,
            json={"lines": [{**line, "loai_khoan": "100-104"}]},  # valid from 2026 only
            headers={**people.reporter, "If-Match": etag},
        )
        assert_problem(refused, 422, "invalid_lines")

    async def test_a_cursor_not_issued_is_422(
        self, anonymous: httpx.AsyncClient, people: People
    ) -> None:
        for cursor in (encode_cursor({"after": "x"}), encode_cursor({"after": [1, 2]})):
            response = await anonymous.get(
                "/v1/chart-of-accounts/2024", params={"cursor": cursor}, headers=people.viewer
            )
            assert_problem(response, 422, "invalid_cursor")

    async def test_routing_names_the_destination_of_each_funding_source(
        self, anonymous: httpx.AsyncClient, people: People
    ) -> None:
        async def routes(year: int) -> dict[str, tuple[str | None, str | None]]:
            response = await anonymous.get(
                f"{BK}/budget-routing", params={"budget_year": year}, headers=people.viewer
            )
            assert response.status_code == 200, response.text
            return {
                r["funding_source"]: (r["role"], r["destination"]) for r in response.json()["items"]
            }

        in_2024 = await routes(2024)
        assert in_2024["recurrent_science"] == ("recurrent_estimate_recipient", "bk-dof")
        assert in_2024["development_investment"] == ("investment_estimate_recipient", "bk-dpi")
        assert in_2024["other"] == (None, None)
        in_2026 = await routes(2026)
        assert in_2026["recurrent_science"][1] == in_2026["development_investment"][1] == "tn-dof"


# --- clients ---------------------------------------------------------------------------------


class TestListClients:
    async def test_administrators_page_and_filter_clients(
        self, anonymous: httpx.AsyncClient, people: People, resources: Resources
    ) -> None:
        items, pages = await walk(anonymous, "/v1/clients", people.admin, limit=5)
        listed = [c["client_id"] for c in items]
        assert listed == sorted(listed)
        assert set(TEST_CLIENTS) <= set(listed)
        assert pages >= len(TEST_CLIENTS) // 5
        assert "secret" not in str(items[0]).lower().replace("secret_rotated_at", "")
        other = await anonymous.get(
            "/v1/clients", params={"unit": OTHER_UNIT}, headers=people.admin
        )
        assert {c["client_id"] for c in other.json()["items"]} == {
            f"test-{r.value}-other" for r in Role
        }
        assert {c["unit"] for c in other.json()["items"]} == {OTHER_UNIT}
        reporters = await anonymous.get(
            "/v1/clients", params={"role": "reporter", "unit": OWN_UNIT}, headers=people.admin
        )
        assert [c["client_id"] for c in reporters.json()["items"]] == ["test-reporter"]
        await identity.disable_client(resources.new_uow(), SYSTEM, "test-viewer-other")
        disabled = await anonymous.get(
            "/v1/clients", params={"enabled": "false"}, headers=people.admin
        )
        off = {c["client_id"] for c in disabled.json()["items"]}
        assert "test-viewer-other" in off
        assert not off & (set(TEST_CLIENTS) - {"test-viewer-other"})
        enabled, _ = await walk(anonymous, "/v1/clients", people.admin, enabled="true")
        assert "test-viewer-other" not in {c["client_id"] for c in enabled}
        nowhere = await anonymous.get(
            "/v1/clients", params={"unit": "nowhere"}, headers=people.admin
        )
        assert nowhere.json()["items"] == []

    async def test_only_those_who_manage_clients_list_them(
        self, anonymous: httpx.AsyncClient, people: People
    ) -> None:
        for who in (people.reviewer, people.reporter):
            assert_problem(
                await anonymous.get("/v1/clients", headers=who), 403, "insufficient_scope"
            )


# --- a rollup reflects an acceptance ---------------------------------------------------------


class TestAcceptanceToRollup:
    async def test_the_acceptance_links_the_job_whose_run_lists_the_version(
        self,
        anonymous: httpx.AsyncClient,
        people: People,
        resources: Resources,
        keys: KeyRing,
    ) -> None:
        report = await submit(
            anonymous, people.reporter, await open_report(anonymous, people, people.reporter, 2021)
        )
        report_id = report.json()["id"]
        accepted = await anonymous.post(
            f"/v1/reports/{report_id}/acceptance",
            headers={**people.reviewer, "If-Match": report.headers["etag"]},
        )
        assert accepted.status_code == 200, accepted.text
        link = accepted.headers["link"]
        assert link.endswith('>; rel="monitor"')
        job_path = link[1 : link.index(">")]
        job = await anonymous.get(job_path, headers=people.reviewer)
        assert job.json()["name"] == "rollups.refresh"
        assert job.json()["status"] == "pending"

        later = datetime.now(UTC) + timedelta(seconds=30)  # past the debounce
        await jobs.run_attempt(
            resources.sessionmaker, DEFAULT_REGISTRY, uuid.UUID(job.json()["id"]),
            clock=lambda: later,
        )  # fmt: skip
        done = (await anonymous.get(job_path, headers=people.reviewer)).json()
        assert done["status"] == "succeeded", done
        run_id = done["result"]["run_id"]

        runs = "/v1/rollups/bac-kan-nscl/2021/runs"
        run = await anonymous.get(f"{runs}/{run_id}", headers=people.viewer)
        assert run.status_code == 200, run.text
        assert run.json()["published"] is True
        assert run.json()["job_id"] == job.json()["id"]
        assert [
            (i["kind"], i["unit"], i["programme"], i["report_id"], i["version_no"])
            for i in run.json()["inputs"]
        ] == [("report_version", OWN_UNIT, None, report_id, 1)]

        reflecting = await anonymous.get(
            runs, params={"report_id": report_id, "version_no": 1}, headers=people.viewer
        )
        assert [(r["run_id"], r["published"]) for r in reflecting.json()["items"]] == [
            (run_id, True)
        ]
        not_yet = await anonymous.get(
            runs, params={"report_id": report_id, "version_no": 2}, headers=people.viewer
        )
        assert not_yet.json()["items"] == []
        assert_problem(
            await anonymous.get(runs, params={"version_no": 1}, headers=people.viewer),
            422,
            "validation_failed",
        )
        assert_problem(
            await anonymous.get(f"{runs}/{uuid.uuid4()}", headers=people.viewer),
            404,
            "run_not_found",
        )
        assert_problem(
            await anonymous.get(
                f"/v1/rollups/bac-kan-nscl/2022/runs/{run_id}", headers=people.viewer
            ),
            404,
            "run_not_found",
        )


# --- plans -----------------------------------------------------------------------------------

PLAN = {"activities": [{"task": "t-3-1", "title": "Hỗ trợ áp dụng ISO 9001"}]}


async def accepted_plan_with_change(
    http: httpx.AsyncClient, people: People, who: dict[str, str]
) -> tuple[str, str]:
    """An accepted 2022 annual plan of ``who``'s unit and a change proposed to it."""
    created = await http.post(
        f"{BK}/plans", json={"kind": "annual", "start_year": 2022}, headers=who
    )
    assert created.status_code == 201, created.text
    plan = created.json()["id"]
    written = await http.put(
        f"/v1/plans/{plan}/content",
        json={"content": PLAN},
        headers={**who, "If-Match": created.headers["etag"]},
    )
    submitted = await http.post(
        f"/v1/plans/{plan}/submission", headers={**who, "If-Match": written.headers["etag"]}
    )
    accepted = await http.post(
        f"/v1/plans/{plan}/acceptance",
        headers={**people.reviewer, "If-Match": submitted.headers["etag"]},
    )
    assert accepted.status_code == 200, accepted.text
    proposed = await http.post(
        f"/v1/plans/{plan}/change-requests",
        json={"reason": "Điều chỉnh", "content": PLAN},
        headers=who,
    )
    assert proposed.status_code == 201, proposed.text
    return plan, proposed.json()["id"]


class TestPlansByUnit:
    async def test_plans_and_change_requests_filter_by_unit_and_subtree(
        self, anonymous: httpx.AsyncClient, people: People
    ) -> None:
        own_plan, own_change = await accepted_plan_with_change(anonymous, people, people.reporter)
        other_plan, other_change = await accepted_plan_with_change(anonymous, people, people.other)
        for path, own, other in (
            (f"{BK}/plans", own_plan, other_plan),
            (f"{BK}/plan-change-requests", own_change, other_change),
        ):
            assert await ids(anonymous, path, people.reviewer, unit=OTHER_UNIT) == [other]
            assert await ids(anonymous, path, people.reviewer, unit="bk-ppc") == []
            assert set(
                await ids(anonymous, path, people.reviewer, unit="bk-ppc", subtree=True)
            ) == {own, other}
            assert await ids(anonymous, path, people.reporter, unit=OTHER_UNIT) == []
            assert await ids(anonymous, path, people.reporter, unit=OWN_UNIT) == [own]


class TestOtherAcceptancesLinkTheirRefresh:
    async def test_an_estimates_acceptance_links_the_years_refresh(
        self, anonymous: httpx.AsyncClient, people: People
    ) -> None:
        created = await anonymous.post(
            f"{BK}/budget-estimates", json={"budget_year": 2024}, headers=people.reporter
        )
        estimate = created.json()["id"]
        lined = await anonymous.put(
            f"/v1/budget-estimates/{estimate}/lines",
            json={"lines": [LINE]},
            headers={**people.reporter, "If-Match": created.headers["etag"]},
        )
        submitted = await anonymous.post(
            f"/v1/budget-estimates/{estimate}/submission",
            headers={**people.reporter, "If-Match": lined.headers["etag"]},
        )
        assert "link" not in submitted.headers
        accepted = await anonymous.post(
            f"/v1/budget-estimates/{estimate}/acceptance",
            headers={**people.reviewer, "If-Match": submitted.headers["etag"]},
        )
        link = accepted.headers["link"]
        job = (await anonymous.get(link[1 : link.index(">")], headers=people.reviewer)).json()
        assert (job["name"], job["args"]["year"]) == ("rollups.refresh", 2024)

    async def test_an_annual_plans_acceptance_links_the_years_refresh(
        self, anonymous: httpx.AsyncClient, people: People
    ) -> None:
        created = await anonymous.post(
            f"{BK}/plans", json={"kind": "annual", "start_year": 2022}, headers=people.reporter
        )
        plan = created.json()["id"]
        written = await anonymous.put(
            f"/v1/plans/{plan}/content",
            json={"content": PLAN},
            headers={**people.reporter, "If-Match": created.headers["etag"]},
        )
        submitted = await anonymous.post(
            f"/v1/plans/{plan}/submission",
            headers={**people.reporter, "If-Match": written.headers["etag"]},
        )
        accepted = await anonymous.post(
            f"/v1/plans/{plan}/acceptance",
            headers={**people.reviewer, "If-Match": submitted.headers["etag"]},
        )
        assert accepted.status_code == 200, accepted.text
        link = accepted.headers["link"]
        job = (await anonymous.get(link[1 : link.index(">")], headers=people.reviewer)).json()
        assert (job["name"], job["args"]["year"]) == ("rollups.refresh", 2022)
