"""Hardening: job arguments are checked as strictly as their own routes check them, a job
whose programme is gone fails at once, budget detail in a rollup follows the budget
visibility policy, and the artefacts jobs produce leave audit events."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from nscl_api.auth.tokens import KeyRing
from nscl_api.resources import Resources
from nscl_domain.budget import estimates, routing
from nscl_domain.composition.registry import DEFAULT_REGISTRY
from nscl_domain.identity import SYSTEM, Caller, Role, permissions_of
from nscl_domain.identity import service as identity
from nscl_domain.identity.service import Grant
from nscl_domain.jobs import JobName
from nscl_domain.jobs.registry import JobContext, actor_named
from nscl_domain.jobs.service import run_attempt
from nscl_domain.rollups import service as rollups
from nscl_domain.workflow import Action
from tests.api.test_problems import assert_problem
from tests.conftest import mint_token

BK = "bac-kan-nscl"


READERS = {
    "viewer": ("bk-doh", Role.VIEWER),
    "operator": ("bk-doh", Role.OPERATOR),
    "finance": ("bk-dof", Role.FINANCE),
    "planning": ("bk-dpi", Role.PLANNING_INVESTMENT),
    "reporter-without-estimate": ("bk-ba-be", Role.REPORTER),
    "reporter-doh": ("bk-doh", Role.REPORTER),
    "reporter-cho-don": ("bk-cho-don", Role.REPORTER),
    "reviewer": ("bk-dost", Role.REVIEWER),
    "auditor": ("bk-dost", Role.AUDITOR),
}


@pytest.fixture
async def people(resources: Resources, keys: KeyRing) -> dict[str, dict[str, str]]:
    """Headers of a client per reader of ``READERS``, each acting for its unit."""
    headers = {}
    for name, (unit, role) in READERS.items():
        client_id = f"visibility-{name}"
        await identity.create_client(
            resources.new_uow(), SYSTEM, client_id=client_id, name=client_id, unit=unit,
            roles=[role.value],
        )  # fmt: skip
        roles = frozenset({role})
        issued = keys.issue(
            Grant(client_id, unit, roles, permissions_of(roles)),
            now=datetime.now(UTC),
            ttl_seconds=900,
        )
        headers[name] = {"Authorization": f"Bearer {issued.access_token}"}
    return headers


async def programme_id(resources: Resources, key: str = BK) -> uuid.UUID:
    async with resources.sessionmaker() as session:
        found = await session.scalar(text("SELECT id FROM programme WHERE key = :k"), {"k": key})
    assert found is not None
    return uuid.UUID(str(found))


async def count(resources: Resources, sql: str, **params: Any) -> int:
    async with resources.sessionmaker() as session:
        return int(await session.scalar(text(sql), params) or 0)


class TestJobArgumentsAreCheckedAsTheirRouteChecksThem:
    async def test_a_year_outside_the_programme_is_refused_by_both_routes(
        self, client: httpx.AsyncClient, resources: Resources
    ) -> None:
        pid = await programme_id(resources)
        generic = await client.post(
            "/v1/jobs",
            json={"name": "rollups.refresh", "args": {"programme_id": str(pid), "year": 2100}},
        )
        dedicated = await client.post("/v1/rollups", json={"programme": BK, "year": 2100})
        generic_body = assert_problem(generic, 422, "year_outside_programme")
        assert_problem(dedicated, 422, "year_outside_programme")
        assert generic_body["errors"][0]["location"] == ["body", "args", "year"]  # type: ignore[index]
        assert await count(resources, "SELECT count(*) FROM job") == 0
        assert await count(resources, "SELECT count(*) FROM rollup_run WHERE year = 2100") == 0

    async def test_an_unknown_programme_is_refused_before_any_job_is_written(
        self, client: httpx.AsyncClient, resources: Resources
    ) -> None:
        for name, args in [
            ("rollups.refresh", {"programme_id": str(uuid.uuid4()), "year": 2024}),
            ("rollups.rebuild", {"programme_id": str(uuid.uuid4())}),
        ]:
            response = await client.post("/v1/jobs", json={"name": name, "args": args})
            body = assert_problem(response, 422, "unknown_programme")
            assert body["errors"][0]["location"] == ["body", "args", "programme_id"]  # type: ignore[index]
        assert await count(resources, "SELECT count(*) FROM job") == 0

    async def test_a_dossier_build_for_a_year_the_programme_does_not_run_is_refused(
        self, client: httpx.AsyncClient, resources: Resources
    ) -> None:
        response = await client.post(
            f"/v1/programmes/{BK}/budget-dossiers/builds", json={"budget_year": 2099}
        )
        body = assert_problem(response, 422, "year_outside_programme")
        assert body["errors"][0]["location"] == ["body", "budget_year"]  # type: ignore[index]
        assert await count(resources, "SELECT count(*) FROM job") == 0

    async def test_a_year_inside_the_programme_is_queued_by_both_routes(
        self, client: httpx.AsyncClient, resources: Resources
    ) -> None:
        pid = await programme_id(resources)
        generic = await client.post(
            "/v1/jobs",
            json={"name": "rollups.refresh", "args": {"programme_id": str(pid), "year": 2024}},
        )
        dedicated = await client.post("/v1/rollups", json={"programme": BK, "year": 2024})
        assert (generic.status_code, dedicated.status_code) == (202, 202)
        assert generic.json()["args"] == dedicated.json()["args"]


class TestAJobWhoseArgumentsNoLongerHoldFailsOnce:
    """Jobs reach the outbox without the API too (schedules, changes of other contexts): each
    attempt checks the arguments again, and a failed check is final."""

    @pytest.mark.parametrize(
        "args",
        [
            pytest.param({"programme_id": str(uuid.uuid4()), "year": 2024}, id="no-programme"),
            pytest.param({"year": 2100}, id="year-outside"),
        ],
    )
    async def test_failed_after_one_attempt_and_nothing_published(
        self, resources: Resources, args: dict[str, Any]
    ) -> None:
        args = {"programme_id": str(await programme_id(resources))} | args
        uow = resources.new_uow()
        async with uow:
            job = await uow.schedule(JobName.REFRESH_ROLLUP, args, requested_by="test-operator")
            await uow.commit()
        # No RetryLater: the queue is not asked to deliver it again.
        assert await run_attempt(resources.sessionmaker, DEFAULT_REGISTRY, job.id) is None
        async with resources.sessionmaker() as session:
            status, attempts, error = (
                await session.execute(
                    text("SELECT status, attempts, error FROM job WHERE id = :id"), {"id": job.id}
                )
            ).one()
        assert (status, attempts) == ("failed", 1)
        assert error.startswith("PermanentJobError")
        assert await count(resources, "SELECT count(*) FROM rollup_run") == 0


# --- budget visibility in the rollup ----------------------------------------------------

ESTIMATING = ("bk-doh", "bk-cho-don")
LINES = [
    {"task": "t-3-1", "activity": "ISO 9001", "amount": 120_000_000,
     "funding_source": "recurrent_science"},
    {"task": "t-3-4", "activity": "Phòng thử nghiệm", "amount": 2_000_000_000,
     "funding_source": "development_investment"},
    {"task": "t-4-2", "activity": "Doanh nghiệp đóng góp", "amount": 50_000_000,
     "funding_source": "other_enterprise"},
]  # fmt: skip


async def reporter(resources: Resources, unit: str) -> Caller:
    async with resources.sessionmaker() as session:
        unit_id = await session.scalar(text("SELECT id FROM org_unit WHERE key = :k"), {"k": unit})
    roles = frozenset({Role.REPORTER})
    return Caller(f"reporter-{unit}", unit_id, unit, roles, permissions_of(roles))


@pytest.fixture
async def budget_2024(resources: Resources) -> dict[str, Any]:
    """Accepted 2024 estimates of two units, each with a line for Finance, one for Planning
    and Investment and one routed to neither; the year's rollup published."""
    for index, unit in enumerate(ESTIMATING):
        me = await reporter(resources, unit)
        view = await estimates.create_estimate(resources.new_uow(), me, BK, budget_year=2024)
        lines = [line | {"amount": line["amount"] + index} for line in LINES]
        await estimates.replace_lines(
            resources.new_uow(), me, view.estimate.id, lines, expected_revision=1
        )
        await routing.submit_estimate(
            resources.new_uow(), me, view.estimate.id, expected_revision=2
        )
        await estimates.review_estimate(
            resources.new_uow(), SYSTEM, view.estimate.id, Action.ACCEPT, expected_revision=3
        )
    async with resources.sessionmaker() as session:
        context = JobContext(session=session, job_id=uuid.uuid4(), attempt=1, now=datetime.now(UTC))
        await rollups.refresh(
            context,
            rollups.RefreshRollupArgs(programme_id=await programme_id(resources), year=2024),
        )
        await session.commit()
    return {}


def rows_of(body: dict[str, Any]) -> set[tuple[str, str | None, str]]:
    return {(r["unit"], r["destination"], r["funding_source"]) for r in body["budget"]}


class TestRollupBudgetFollowsTheBudgetPolicy:
    async def test_each_reader_sees_the_totals_and_the_rows_its_class_may_see(
        self,
        anonymous: httpx.AsyncClient,
        people: dict[str, dict[str, str]],
        budget_2024: dict[str, Any],
    ) -> None:
        readers = people
        bodies, tags = {}, {}
        for name, headers in readers.items():
            response = await anonymous.get(f"/v1/rollups/{BK}/2024", headers=headers)
            assert response.status_code == 200, response.text
            bodies[name], tags[name] = response.json(), response.headers["etag"]

        every = rows_of(bodies["reviewer"])
        assert {unit for unit, _, _ in every} == set(ESTIMATING)
        assert len(every) == len(ESTIMATING) * len(LINES)
        assert rows_of(bodies["auditor"]) == every
        for name in ("viewer", "operator", "reporter-without-estimate"):
            assert bodies[name]["budget"] == [], name
        assert rows_of(bodies["reporter-doh"]) == {r for r in every if r[0] == "bk-doh"}
        assert rows_of(bodies["reporter-cho-don"]) == {r for r in every if r[0] == "bk-cho-don"}
        assert rows_of(bodies["finance"]) == {r for r in every if r[1] == "bk-dof"} != set()
        assert rows_of(bodies["planning"]) == {r for r in every if r[1] == "bk-dpi"} != set()

        # The totals by source × destination are everyone's, and add up every unit's rows.
        totals = bodies["reviewer"]["budget_totals"]
        assert all(body["budget_totals"] == totals for body in bodies.values())
        assert sum(t["estimated"] for t in totals) == sum(
            r["estimated"] for r in bodies["reviewer"]["budget"]
        )
        assert {(t["funding_source"], t["destination"]) for t in totals} == {
            (source, destination) for _, destination, source in every
        }
        # Each class is its own representation: a viewer's tag does not answer a reviewer.
        assert tags["viewer"] == tags["operator"] != tags["reviewer"]
        assert tags["reporter-doh"] != tags["reporter-cho-don"]
        again = await anonymous.get(
            f"/v1/rollups/{BK}/2024",
            headers={**readers["reviewer"], "If-None-Match": tags["viewer"]},
        )
        assert again.status_code == 200
        assert rows_of(again.json()) == every

    async def test_a_task_group_filter_narrows_totals_and_rows_alike(
        self,
        anonymous: httpx.AsyncClient,
        people: dict[str, dict[str, str]],
        budget_2024: dict[str, Any],
    ) -> None:
        viewer, reviewer = people["viewer"], people["reviewer"]
        url = f"/v1/rollups/{BK}/2024?task_group=3"
        seen = (await anonymous.get(url, headers=viewer)).json()
        full = (await anonymous.get(url, headers=reviewer)).json()
        assert seen["budget"] == []
        assert {r["task_group"] for r in full["budget"]} == {3}
        assert seen["budget_totals"] == full["budget_totals"]
        assert sum(t["estimated"] for t in seen["budget_totals"]) == sum(
            r["estimated"] for r in full["budget"]
        )

    async def test_budget_routes_keep_to_the_same_scopes(
        self,
        anonymous: httpx.AsyncClient,
        people: dict[str, dict[str, str]],
        budget_2024: dict[str, Any],
    ) -> None:
        async def units(path: str, reader: str) -> set[str]:
            response = await anonymous.get(
                f"/v1/programmes/{BK}/{path}?budget_year=2024", headers=people[reader]
            )
            assert response.status_code == 200, response.text
            return {r["unit"] for r in response.json()["items"]}

        assert await units("budget-follow-up", "reporter-doh") == {"bk-doh"}
        assert await units("budget-follow-up", "reporter-without-estimate") == set()
        assert await units("budget-follow-up", "auditor") == set(ESTIMATING)
        assert await units("budget-totals", "reviewer") == set(ESTIMATING)
        refused = await anonymous.get(
            f"/v1/programmes/{BK}/budget-totals?budget_year=2024", headers=people["viewer"]
        )
        assert refused.status_code == 403


# --- audit events of what jobs produce ----------------------------------------------------


async def events(
    anonymous: httpx.AsyncClient, keys: KeyRing, action: str, job_id: object
) -> list[dict[str, Any]]:
    """The audit events of ``action`` a job recorded (the trail keeps other tests' events)."""
    auditor = {"Authorization": f"Bearer {mint_token(keys, 'test-auditor')}"}
    response = await anonymous.get(f"/v1/audit-events?action={action}", headers=auditor)
    assert response.status_code == 200, response.text
    return [e for e in response.json()["items"] if (e["after"] or {}).get("job_id") == str(job_id)]


class TestJobArtefactsAreAudited:
    async def test_each_dossier_built_names_the_job_and_who_asked(
        self,
        anonymous: httpx.AsyncClient,
        keys: KeyRing,
        resources: Resources,
        budget_2024: dict[str, Any],
    ) -> None:
        reviewer = {"Authorization": f"Bearer {mint_token(keys, 'test-reviewer')}"}
        queued = await anonymous.post(
            f"/v1/programmes/{BK}/budget-dossiers/builds",
            json={"budget_year": 2024},
            headers=reviewer,
        )
        assert queued.status_code == 202, queued.text
        job_id = queued.json()["id"]
        result = await run_attempt(resources.sessionmaker, DEFAULT_REGISTRY, uuid.UUID(job_id))
        assert result is not None
        built = await events(anonymous, keys, "dossier.built", job_id)
        assert {e["object_id"] for e in built} == set(result["built"])
        assert len(built) == 2  # Finance's and Planning and Investment's
        for event in built:
            assert event["client_id"] == "test-reviewer"
            assert event["object_type"] == "budget_dossier"
            assert event["after"]["job_id"] == job_id
            assert event["after"]["budget_year"] == 2024
            assert event["after"]["version_no"] == 1

    async def test_a_publication_names_its_run_programme_year_fingerprint_job_and_actor(
        self, anonymous: httpx.AsyncClient, keys: KeyRing, resources: Resources
    ) -> None:
        operator = {"Authorization": f"Bearer {mint_token(keys, 'test-operator')}"}
        queued = await anonymous.post(
            "/v1/rollups", json={"programme": BK, "year": 2023}, headers=operator
        )
        assert queued.status_code == 202, queued.text
        job_id = queued.json()["id"]
        result = await run_attempt(resources.sessionmaker, DEFAULT_REGISTRY, uuid.UUID(job_id))
        assert result is not None
        assert not result["unchanged"]
        [published] = await events(anonymous, keys, "rollup.published", job_id)
        runs = (await anonymous.get(f"/v1/rollups/{BK}/2023/runs", headers=operator)).json()[
            "items"
        ]
        [run] = [r for r in runs if r["published"]]
        assert published["client_id"] == "test-operator"
        assert published["object_type"] == "rollup_run"
        assert published["object_id"] == run["run_id"] == result["run_id"]
        assert published["after"] == {
            "job_id": job_id,
            "requested_by": "test-operator",
            "programme": BK,
            "year": 2023,
            "seq": run["seq"],
            "fingerprint": run["fingerprint"],
        }

    async def test_a_refresh_a_change_scheduled_acts_for_whoever_made_the_change(
        self, anonymous: httpx.AsyncClient, keys: KeyRing, resources: Resources
    ) -> None:
        me = await reporter(resources, "bk-doh")
        view = await estimates.create_estimate(resources.new_uow(), me, BK, budget_year=2025)
        await estimates.replace_lines(
            resources.new_uow(), me, view.estimate.id, LINES[:1], expected_revision=1
        )
        await routing.submit_estimate(
            resources.new_uow(), me, view.estimate.id, expected_revision=2
        )
        reviewer = {"Authorization": f"Bearer {mint_token(keys, 'test-reviewer')}"}
        accepted = await anonymous.post(
            f"/v1/budget-estimates/{view.estimate.id}/acceptance",
            headers={**reviewer, "If-Match": '"3"'},
        )
        assert accepted.status_code == 200, accepted.text
        async with resources.sessionmaker() as session:
            job_id, requested_by = (
                await session.execute(
                    text(
                        "SELECT id, requested_by FROM job WHERE name = 'rollups.refresh' "
                        "AND args->>'year' = '2025'"
                    )
                )
            ).one()
        assert requested_by == "test-reviewer"
        later = datetime.now(UTC) + timedelta(minutes=1)  # past the refresh's debounce
        await run_attempt(resources.sessionmaker, DEFAULT_REGISTRY, job_id, clock=lambda: later)
        [published] = await events(anonymous, keys, "rollup.published", job_id)
        assert published["client_id"] == "test-reviewer"
        assert published["after"]["job_id"] == str(job_id)
        assert published["after"]["year"] == 2025

    def test_the_schedule_acts_as_the_system(self) -> None:
        assert actor_named("schedule").client_id == "system"
        assert actor_named(None).is_system
        assert actor_named("test-operator").client_id == "test-operator"
