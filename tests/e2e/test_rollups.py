"""Rollups over HTTP: each year rolled up with its own organisation, a phase across the 2025
restructuring without double counting, figures traced to their versions, the national level
above the province, runs kept, refreshes requested and cancelled."""

from __future__ import annotations

import asyncio
import gzip
import json
import uuid
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from nscl_api.auth.tokens import KeyRing
from nscl_api.middleware import EdgeMiddleware
from nscl_api.resources import Resources
from nscl_api.rollups.fast import RollupFastPath
from nscl_domain.budget import estimates, routing
from nscl_domain.composition.registry import DEFAULT_REGISTRY
from nscl_domain.identity import SYSTEM, Caller, Role, permissions_of
from nscl_domain.jobs import JobName
from nscl_domain.jobs.registry import JobContext
from nscl_domain.jobs.service import run_attempt
from nscl_domain.rollups import repository as rollup_repository
from nscl_domain.rollups import service as rollups
from nscl_domain.rollups.repository import RollupRepository
from nscl_domain.workflow import Action
from tests.api.test_problems import assert_problem
from tests.conftest import mint_token

BK = "bac-kan-nscl"


async def accept(
    session: AsyncSession,
    unit: str,
    year: int,
    figures: dict[str, str],
    tasks: dict[str, str] | None = None,
) -> None:
    """An accepted annual report of ``unit`` for ``year`` (a new version if one exists),
    with its figures and the status of its tasks."""
    params = {"unit": unit, "year": year}
    obligation = await session.scalar(
        text(
            "SELECT o.id FROM reporting_obligation o JOIN org_unit u ON u.id = o.unit_id "
            "WHERE u.key = :unit AND o.year = :year"
        ),
        params,
    )
    if obligation is None:
        obligation = await session.scalar(
            text(
                "INSERT INTO reporting_obligation (id, programme_id, regime_id, unit_id, year, "
                "due_date, cutoff_date) SELECT gen_random_uuid(), p.id, g.id, u.id, :year, "
                ":due, :due FROM programme p, reporting_regime g, org_unit u "
                "WHERE p.key = 'bac-kan-nscl' AND g.key = 'bk-annual' AND u.key = :unit "
                "RETURNING id"
            ),
            {**params, "due": date(year, 11, 30)},
        )
        await session.execute(
            text(
                "INSERT INTO report (id, obligation_id, unit_id, status, draft, "
                "first_submitted_at) SELECT gen_random_uuid(), :o, unit_id, 'accepted', '{}', "
                ":submitted FROM reporting_obligation WHERE id = :o"
            ),
            {"o": obligation, "submitted": datetime(year, 11, 20, tzinfo=UTC)},
        )
    report, unit_id, version_no = (
        await session.execute(
            text("SELECT id, unit_id, latest_version_no + 1 FROM report WHERE obligation_id = :o"),
            {"o": obligation},
        )
    ).one()
    version = await session.scalar(
        text(
            "INSERT INTO report_version (id, report_id, version_no, kind, content, warnings, "
            "submitted_at, submitted_by) VALUES (gen_random_uuid(), :r, :n, 'submission', '{}', "
            "'[]', now(), 'test') RETURNING id"
        ),
        {"r": report, "n": version_no},
    )
    for task, status in (tasks or {}).items():
        await session.execute(
            text(
                "INSERT INTO task_progress (version_id, task_id, status, narrative) "
                "SELECT :v, id, :status, '' FROM task WHERE key = :task"
            ),
            {"v": version, "status": status, "task": task},
        )
    for indicator, value in figures.items():
        await session.execute(
            text(
                "INSERT INTO indicator_value (version_id, indicator_id, disaggregation, unit_id, "
                "year, value, derived) SELECT :v, id, '', :u, :year, :value, false "
                "FROM indicator WHERE key = :indicator"
            ),
            {
                "v": version,
                "u": unit_id,
                "year": year,
                "value": Decimal(value),
                "indicator": indicator,
            },
        )
    await session.execute(
        text("UPDATE report SET accepted_version_no = :n, latest_version_no = :n WHERE id = :r"),
        {"n": version_no, "r": report},
    )


async def refresh(session: AsyncSession, programme: str, year: int) -> dict[str, object]:
    programme_id = await session.scalar(
        text("SELECT id FROM programme WHERE key = :k"), {"k": programme}
    )
    context = JobContext(session=session, job_id=uuid.uuid4(), attempt=1, now=datetime.now(UTC))
    return await rollups.refresh(
        context, rollups.RefreshRollupArgs(programme_id=programme_id, year=year)
    )


def totals(body: dict[str, object]) -> dict[str, str]:
    cells = body["cells"]
    assert isinstance(cells, list)
    return {
        c["indicator"]: c["value"]
        for c in cells
        if c["breakdown"] == "" and not c["disaggregation"]
    }


async def test_years_phases_provenance_and_the_national_level(
    anonymous: httpx.AsyncClient, keys: KeyRing, resources: Resources
) -> None:
    viewer = {"Authorization": f"Bearer {mint_token(keys, 'test-viewer')}"}
    async with resources.sessionmaker() as session:
        # 2024: the Bắc Kạn departments and districts report; 2025: their successors do.
        await accept(
            session, "bk-doh", 2024, {"training-courses": "3", "enterprises-supported": "5"}
        )
        await accept(
            session, "bk-na-ri", 2024, {"training-courses": "2", "enterprises-supported": "1"}
        )
        await accept(session, "tn-doh", 2025, {"training-courses": "4"})
        for year in (2024, 2025):
            assert (await refresh(session, BK, year))["kind"] == "full"
        await refresh(session, "national-nscl", 2024)
        await session.commit()

    year_2024 = await anonymous.get(f"/v1/rollups/{BK}/2024", headers=viewer)
    assert year_2024.status_code == 200, year_2024.text
    assert totals(year_2024.json())["training-courses"] == "5"
    assert year_2024.json()["completeness"] == {
        "obligations": 2, "submitted": 2, "accepted": 2, "on_time": 2, "late": 0, "missing": 0,
    }  # fmt: skip
    breakdowns = {
        c["breakdown"]: c["value"]
        for c in year_2024.json()["cells"]
        if c["indicator"] == "training-courses"
    }
    assert breakdowns == {
        "": "5",
        "unit_kind=department": "3",
        "unit_kind=district_peoples_committee": "2",
    }
    behind = await anonymous.get(
        f"/v1/rollups/{BK}/2025/provenance",
        params={"indicator": "training-courses"},
        headers=viewer,
    )
    assert [(c["unit"], c["value"]) for c in behind.json()["items"]] == [("tn-doh", "4")]

    # The phase adds the years, each counted once, across the restructuring.
    phase = await anonymous.get(f"/v1/phase-rollups/{BK}/bk-2021-2025", headers=viewer)
    assert phase.status_code == 200, phase.text
    assert totals(phase.json())["training-courses"] == "9"
    assert sorted(phase.json()["years"]) == ["2024", "2025"]

    # A unit subtree: the district alone.
    district = await anonymous.get(
        f"/v1/rollups/{BK}/2024", params={"unit": "bk-na-ri"}, headers=viewer
    )
    assert totals(district.json())["training-courses"] == "2"
    assert_problem(
        await anonymous.get(f"/v1/rollups/{BK}/2024", params={"unit": "nowhere"}, headers=viewer),
        404,
        "unit_not_found",
    )

    # The national rollup adds the province's figures to the national indicators.
    national = await anonymous.get("/v1/rollups/national-nscl/2024", headers=viewer)
    assert national.status_code == 200, national.text
    assert national.json()["level"] == "national"
    assert totals(national.json())["national-enterprises-supported"] == "6"
    provinces = await anonymous.get(
        "/v1/rollups/national-nscl/2024/provenance",
        params={"indicator": "national-enterprises-supported"},
        headers=viewer,
    )
    [province] = provinces.json()["items"]
    assert (province["kind"], province["programme"]) == ("rollup_run", BK)
    assert province["source_id"] == year_2024.json()["run_id"]


async def test_corrections_make_new_runs_and_the_old_ones_stay(
    anonymous: httpx.AsyncClient, keys: KeyRing, resources: Resources
) -> None:
    viewer = {"Authorization": f"Bearer {mint_token(keys, 'test-viewer')}"}
    async with resources.sessionmaker() as session:
        await accept(session, "bk-doh", 2023, {"training-courses": "3"}, {"t-3-1": "in_progress"})
        first = await refresh(session, BK, 2023)
        await session.commit()
    before = await anonymous.get(f"/v1/rollups/{BK}/2023", headers=viewer)
    async with resources.sessionmaker() as session:
        # A correction: new figures and task statuses, the same obligations and budget.
        await accept(session, "bk-doh", 2023, {"training-courses": "8"}, {"t-3-1": "completed"})
        second = await refresh(session, BK, 2023)
        await session.commit()
    assert second["kind"] == "incremental"
    resources.rollups.published.clear()  # what a second later would see
    after = await anonymous.get(
        f"/v1/rollups/{BK}/2023", headers={**viewer, "If-None-Match": before.headers["etag"]}
    )
    assert after.status_code == 200
    assert totals(after.json())["training-courses"] == "8"
    assert [(t["unit"], t["task"], t["status"]) for t in before.json()["tasks"]] == [
        ("bk-doh", "t-3-1", "in_progress")
    ]
    # The task matrix follows the correction even though the other sections were kept.
    assert after.json()["tasks"] == [
        {"unit": "bk-doh", "task": "t-3-1", "task_group": 3, "status": "completed"}
    ]
    assert after.json()["timeliness"] == before.json()["timeliness"]
    runs = await anonymous.get(f"/v1/rollups/{BK}/2023/runs", headers=viewer)
    assert [(r["run_id"], r["published"]) for r in runs.json()["items"]] == [
        (second["run_id"], True),
        (first["run_id"], False),
    ]
    old = await anonymous.get(
        f"/v1/rollups/{BK}/2023/provenance",
        params={"indicator": "training-courses", "run_id": first["run_id"]},
        headers=viewer,
    )
    assert [c["value"] for c in old.json()["items"]] == ["3"]
    unchanged = await anonymous.get(
        f"/v1/rollups/{BK}/2023", headers={**viewer, "If-None-Match": after.headers["etag"]}
    )
    assert unchanged.status_code == 304


async def test_operators_request_a_refresh_and_cancel_it_before_it_runs(
    anonymous: httpx.AsyncClient, keys: KeyRing
) -> None:
    operator = {"Authorization": f"Bearer {mint_token(keys, 'test-operator')}"}
    requested = await anonymous.post(
        "/v1/rollups", json={"programme": BK, "year": 2024, "full": True}, headers=operator
    )
    assert requested.status_code == 202, requested.text
    job_url = requested.headers["location"]
    assert (await anonymous.get(job_url, headers=operator)).json()["status"] == "pending"
    cancelled = await anonymous.post(f"{job_url}/cancellation", headers=operator)
    assert cancelled.json()["status"] == "cancelled"
    assert_problem(
        await anonymous.post(f"{job_url}/cancellation", headers=operator),
        409,
        "job_not_cancellable",
    )
    outside = await anonymous.post(
        "/v1/rollups", json={"programme": BK, "year": 2035}, headers=operator
    )
    assert_problem(outside, 422, "year_outside_programme")
    missing = await anonymous.get(
        f"/v1/rollups/{BK}/2029",
        headers={"Authorization": f"Bearer {mint_token(keys, 'test-viewer')}"},
    )
    assert_problem(missing, 404, "rollup_not_found")


async def test_the_nightly_rebuild_runs_as_the_worker_runs_it(
    committed_resources: Resources,
) -> None:
    """Real commits: the rebuild computes sections on a second connection."""
    async with committed_resources.sessionmaker() as session:
        await accept(session, "bk-doh", 2024, {"training-courses": "3"})
        await accept(session, "bk-ba-be", 2024, {"training-courses": "2"})
        await session.commit()

    async def rebuild() -> dict[str, Any]:
        uow = committed_resources.new_uow()
        async with uow:
            job = await uow.schedule(JobName.REBUILD_ROLLUPS, {}, requested_by="test")
            await uow.commit()
        result = await run_attempt(committed_resources.sessionmaker, DEFAULT_REGISTRY, job.id)
        assert result is not None, "the job failed"
        async with committed_resources.sessionmaker() as session:
            progress = await session.scalar(
                text("SELECT progress FROM job_progress WHERE job_id = :id"), {"id": job.id}
            )
        assert progress["stage"] == "published"
        return result

    first = await rebuild()
    assert first == {"programme_years": 10, "recomputed": 10}  # every year of the plan
    async with committed_resources.sessionmaker() as session:
        cell, sections = (
            await session.execute(
                text(
                    "SELECT c.value, r.sections FROM rollup_publication p "
                    "JOIN programme g ON g.id = p.programme_id AND g.key = 'bac-kan-nscl' "
                    "JOIN rollup_run r ON r.id = p.run_id "
                    "JOIN rollup_cell c ON c.run_id = r.id AND c.breakdown = '' "
                    "JOIN indicator i ON i.id = c.indicator_id AND i.key = 'training-courses' "
                    "WHERE p.year = 2024"
                )
            )
        ).one()
        national_jobs = await session.scalar(
            text("SELECT count(*) FROM job WHERE name = 'rollups.refresh'")
        )
    assert cell == Decimal(5)
    assert [(t["unit"], t["status"]) for t in sections["timeliness"]] == [
        ("bk-ba-be", "on_time"),
        ("bk-doh", "on_time"),
    ]
    assert national_jobs == 10  # one national refresh per changed year
    assert await rebuild() == {"programme_years": 10, "recomputed": 0}


async def test_an_accepted_estimate_asks_for_its_year_to_be_rolled_up_again(
    resources: Resources,
) -> None:
    async with resources.sessionmaker() as session:
        unit_id, programme_id = (
            await session.execute(
                text(
                    "SELECT u.id, p.id FROM org_unit u, programme p "
                    "WHERE u.key = 'bk-doh' AND p.key = 'bac-kan-nscl'"
                )
            )
        ).one()
        key = (programme_id, 2024)
        before = (await RollupRepository(session).provincial_inputs([key], with_sources=True))[key]
    roles = frozenset({Role.REPORTER})
    reporter = Caller("estimates", unit_id, "bk-doh", roles, permissions_of(roles))
    line = {"activity": "ISO 9001", "amount": 90_000_000, "funding_source": "recurrent_science"}
    view = await estimates.create_estimate(resources.new_uow(), reporter, BK, budget_year=2024)
    await estimates.replace_lines(
        resources.new_uow(), reporter, view.estimate.id, [line], expected_revision=1
    )
    await routing.submit_estimate(
        resources.new_uow(), reporter, view.estimate.id, expected_revision=2
    )
    await estimates.review_estimate(
        resources.new_uow(), SYSTEM, view.estimate.id, Action.ACCEPT, expected_revision=3
    )
    async with resources.sessionmaker() as session:
        scheduled = (
            await session.execute(
                text("SELECT args, not_before FROM job WHERE dedup_key = :k"),
                {"k": f"rollup:{programme_id}:2024"},
            )
        ).one()
        after = (await RollupRepository(session).provincial_inputs([key], with_sources=True))[key]
    assert scheduled.args == {"programme_id": str(programme_id), "year": 2024}
    # Due at once: a burst coalesces into the one pending job, not behind a fixed wait.
    assert scheduled.not_before is None
    assert after.fingerprint != before.fingerprint  # so the refresh is not a no-op


async def test_a_year_reads_again_when_an_earlier_year_its_targets_count_changes(
    anonymous: httpx.AsyncClient, keys: KeyRing, resources: Resources
) -> None:
    viewer = {"Authorization": f"Bearer {mint_token(keys, 'test-viewer')}"}

    def experts(body: dict[str, Any]) -> str:
        [target] = [t for t in body["targets"] if t["key"] == "bk-experts-2021-2025"]
        return str(target["actual"])

    async with resources.sessionmaker() as session:
        await accept(session, "bk-doh", 2023, {"experts-certified": "2"})
        await accept(session, "bk-doh", 2024, {"experts-certified": "3"})
        for year in (2023, 2024):
            await refresh(session, BK, year)
        await session.commit()
    before = await anonymous.get(f"/v1/rollups/{BK}/2024", headers=viewer)
    assert experts(before.json()) == "5"
    async with resources.sessionmaker() as session:
        await accept(session, "bk-doh", 2023, {"experts-certified": "6"})  # 2023 corrected
        await refresh(session, BK, 2023)
        await session.commit()
    resources.rollups.published.clear()  # what a second later would see
    after = await anonymous.get(
        f"/v1/rollups/{BK}/2024", headers={**viewer, "If-None-Match": before.headers["etag"]}
    )
    assert after.status_code == 200  # 2024's own run is the same; its targets are not
    assert after.json()["run_id"] == before.json()["run_id"]
    assert experts(after.json()) == "9"


async def test_the_year_sets_its_annual_plans_beside_what_was_achieved(
    anonymous: httpx.AsyncClient, keys: KeyRing, resources: Resources
) -> None:
    reporter = {"Authorization": f"Bearer {mint_token(keys, 'test-reporter')}"}
    dost = {"Authorization": f"Bearer {mint_token(keys, 'test-reviewer')}"}
    created = await anonymous.post(
        f"/v1/programmes/{BK}/plans", json={"kind": "annual", "start_year": 2024}, headers=reporter
    )
    activity = {
        "task": "t-3-1",
        "title": "Đào tạo",
        "planned_outputs": [{"indicator": "training-courses", "year": 2024, "value": "4"}],
    }
    written = await anonymous.put(
        f"/v1/plans/{created.json()['id']}/content",
        json={"content": {"activities": [activity]}},
        headers={**reporter, "If-Match": created.headers["etag"]},
    )
    submitted = await anonymous.post(
        f"/v1/plans/{created.json()['id']}/submission",
        headers={**reporter, "If-Match": written.headers["etag"]},
    )
    accepted = await anonymous.post(
        f"/v1/plans/{created.json()['id']}/acceptance",
        headers={**dost, "If-Match": submitted.headers["etag"]},
    )
    assert accepted.status_code == 200, accepted.text
    async with resources.sessionmaker() as session:
        asked = await session.scalar(
            text(
                "SELECT count(*) FROM job WHERE name = 'rollups.refresh' "
                "AND requested_by = 'test-reviewer' AND args->>'year' = '2024'"
            )
        )
        assert asked == 1  # the acceptance asked for the year's refresh
        await accept(session, "bk-doh", 2024, {"training-courses": "3"})
        await refresh(session, BK, 2024)
        await session.commit()
    rollup = await anonymous.get(f"/v1/rollups/{BK}/2024", headers=reporter)
    assert rollup.json()["plan_progress"] == [
        {"indicator": "training-courses", "planned": "4", "actual": "3", "ratio_pct": "75.0000"}
    ]


async def cells_by_programme_year(resources: Resources) -> dict[tuple[str, int], Any]:
    """What each published run shows, without its ids: fingerprint, cells and sections."""
    async with resources.sessionmaker() as session:
        rows = (
            await session.execute(
                text(
                    "SELECT g.key, p.year, r.fingerprint, r.sources, r.sections::text AS sections, "
                    "coalesce((SELECT array_agg(concat_ws('|', i.key, c.disaggregation, "
                    "c.breakdown, c.value) ORDER BY i.key, c.disaggregation, c.breakdown) "
                    "FROM rollup_cell c JOIN indicator i ON i.id = c.indicator_id "
                    "WHERE c.run_id = r.id), '{}') AS cells "
                    "FROM rollup_publication p JOIN programme g ON g.id = p.programme_id "
                    "AND g.parent_id IS NOT NULL JOIN rollup_run r ON r.id = p.run_id"
                )
            )
        ).all()
    return {(r.key, r.year): (r.fingerprint, r.sources, r.sections, r.cells) for r in rows}


async def test_two_workers_rebuilding_disjoint_years_publish_what_one_worker_does(
    committed_resources: Resources,
) -> None:
    """A rebuild fanned out per programme-year across workers: each share is computed on its
    own connection at the same time, and the runs are those of a single rebuild."""
    async with committed_resources.sessionmaker() as session:
        await accept(session, "bk-doh", 2023, {"training-courses": "3"}, {"t-3-1": "completed"})
        await accept(session, "bk-doh", 2024, {"training-courses": "4"})
        await accept(session, "bk-ba-be", 2024, {"training-courses": "2"})
        await accept(session, "bk-doh", 2025, {"training-courses": "7"})
        await session.commit()

    async def rebuild(args: dict[str, Any]) -> dict[str, Any]:
        uow = committed_resources.new_uow()
        async with uow:
            job = await uow.schedule(JobName.REBUILD_ROLLUPS, args, requested_by="test")
            await uow.commit()
        result = await run_attempt(committed_resources.sessionmaker, DEFAULT_REGISTRY, job.id)
        assert result is not None, "the job failed"
        return result

    assert await rebuild({}) == {"programme_years": 10, "recomputed": 10}
    one_worker = await cells_by_programme_year(committed_resources)
    early, late = await asyncio.gather(
        rebuild({"force": True, "years": [2021, 2022, 2023, 2024, 2025]}),
        rebuild({"force": True, "years": [2026, 2027, 2028, 2029, 2030]}),
    )
    assert early == late == {"programme_years": 5, "recomputed": 5}
    two_workers = await cells_by_programme_year(committed_resources)
    assert two_workers == one_worker
    assert one_worker[(BK, 2024)][3] != one_worker[(BK, 2023)][3]  # the years differ
    async with committed_resources.sessionmaker() as session:
        runs = await session.scalar(
            text("SELECT count(*) FROM rollup_run WHERE level = 'provincial'")
        )
    assert runs == 20  # the parallel shares did publish new runs


async def test_a_rollup_says_how_fresh_it_is_and_comes_gzipped_once_per_run(
    anonymous: httpx.AsyncClient, keys: KeyRing, resources: Resources
) -> None:
    viewer = {"Authorization": f"Bearer {mint_token(keys, 'test-viewer')}"}
    accepted_at = datetime(2024, 12, 3, 8, 30, tzinfo=UTC)
    async with resources.sessionmaker() as session:
        await accept(session, "bk-doh", 2024, {"training-courses": "3"})
        await accept(session, "bk-ba-be", 2024, {"training-courses": "2"})
        await session.execute(
            text(
                "UPDATE report r SET accepted_at = CASE u.key WHEN 'bk-doh' "
                "THEN CAST(:at AS timestamptz) ELSE CAST(:earlier AS timestamptz) END "
                "FROM org_unit u WHERE u.id = r.unit_id AND r.accepted_version_no IS NOT NULL"
            ),
            {"at": accepted_at, "earlier": datetime(2024, 12, 1, tzinfo=UTC)},
        )
        await refresh(session, BK, 2024)
        await session.commit()
    plain = await anonymous.get(
        f"/v1/rollups/{BK}/2024", headers={**viewer, "Accept-Encoding": "identity"}
    )
    assert plain.status_code == 200, plain.text
    assert datetime.fromisoformat(plain.json()["includes_accepted_until"]) == accepted_at
    run = await anonymous.get(
        f"/v1/rollups/{BK}/2024/runs/{plain.json()['run_id']}", headers=viewer
    )
    assert datetime.fromisoformat(run.json()["includes_accepted_until"]) == accepted_at
    assert "content-encoding" not in plain.headers
    assert plain.headers["vary"] == "Accept-Encoding"
    zipped = [
        await anonymous.get(
            f"/v1/rollups/{BK}/2024", headers={**viewer, "Accept-Encoding": "gzip, br"}
        )
        for _ in range(2)
    ]
    assert [z.headers["content-encoding"] for z in zipped] == ["gzip", "gzip"]
    # httpx decodes: the same document either way, under a tag of its own.
    assert [z.json() for z in zipped] == [plain.json(), plain.json()]
    assert zipped[0].headers["etag"] != plain.headers["etag"]
    [cached] = resources.rollups.compressed.values()
    assert json.loads(gzip.decompress(cached)) == plain.json()
    revalidated = await anonymous.get(
        f"/v1/rollups/{BK}/2024",
        headers={**viewer, "Accept-Encoding": "gzip", "If-None-Match": zipped[1].headers["etag"]},
    )
    assert revalidated.status_code == 304


async def test_a_refresh_behind_a_waiting_one_leaves_the_work_to_it(
    committed_resources: Resources,
) -> None:
    """Coalescing without a debounce: one run in flight, one trailing refresh waiting behind
    it; a third finds the trailing one waiting (it has not read its inputs yet) and stops."""
    async with committed_resources.sessionmaker() as session:
        await accept(session, "bk-doh", 2024, {"training-courses": "3"})
        await session.commit()
    async with committed_resources.sessionmaker() as in_flight:
        programme_id = await in_flight.scalar(
            text("SELECT id FROM programme WHERE key = :k"), {"k": BK}
        )
        await RollupRepository(in_flight).lock([(programme_id, 2024)])

        async def refresh_committed() -> dict[str, object]:
            async with committed_resources.sessionmaker() as session:
                result = await refresh(session, BK, 2024)
                await session.commit()
                return result

        trailing = asyncio.create_task(refresh_committed())
        for _ in range(100):  # until it waits for the lock
            async with committed_resources.sessionmaker() as probe:
                if await RollupRepository(probe).refresh_waiting((programme_id, 2024)):
                    break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("the trailing refresh never waited for the lock")
        # Without coalescing it would wait for the lock too, behind the run in flight.
        third = await asyncio.wait_for(refresh_committed(), timeout=10)
        assert third == {"unchanged": True, "coalesced": True}
        assert not trailing.done()
        await in_flight.rollback()  # the run in flight ends
    published = await trailing
    assert published["unchanged"] is False


def fast_path(app: Any) -> RollupFastPath:
    layer = app.middleware_stack or app.build_middleware_stack()
    app.middleware_stack = layer
    while not isinstance(layer, EdgeMiddleware):
        layer = layer.app
    return layer.fast


async def test_the_hot_path_answers_as_the_application_does(
    anonymous: httpx.AsyncClient, keys: KeyRing, resources: Resources, shared_app: Any
) -> None:
    """The plain poll is answered below FastAPI's routing, byte for byte and header for
    header as the application answers it; everything else still reaches the application."""
    viewer = {"Authorization": f"Bearer {mint_token(keys, 'test-viewer')}"}
    resources.callers.ttl_seconds = 5.0  # as deployed (the tests' default keeps none)
    async with resources.sessionmaker() as session:
        await accept(session, "bk-doh", 2024, {"training-courses": "3"})
        await refresh(session, BK, 2024)
        await session.commit()
    url = f"/v1/rollups/{BK}/2024"
    layer = fast_path(shared_app)

    async def both(headers: dict[str, str]) -> tuple[httpx.Response, httpx.Response]:
        before = layer.answered
        # A query the route ignores sends the request through the application.
        slow = await anonymous.get(url, params={"ignored": "1"}, headers=headers)
        fast = await anonymous.get(url, headers=headers)
        assert layer.answered == before + 1
        return slow, fast

    def same(slow: httpx.Response, fast: httpx.Response) -> None:
        assert (fast.status_code, fast.content) == (slow.status_code, slow.content)
        drop = {"x-request-id", "date"}
        assert {k: v for k, v in fast.headers.items() if k not in drop} == {
            k: v for k, v in slow.headers.items() if k not in drop
        }

    plain = await both({**viewer, "Accept-Encoding": "identity"})
    same(*plain)
    assert plain[1].headers["x-request-id"]
    same(*await both({**viewer, "Accept-Encoding": "gzip"}))
    tag = plain[1].headers["etag"]
    slow, fast = await both({**viewer, "If-None-Match": tag, "Accept-Encoding": "identity"})
    assert fast.status_code == 304
    same(slow, fast)
    # Not the hot path's to answer: no token, a year out of range, a caller without the right.
    before = layer.answered
    assert_problem(await anonymous.get(url), 401, "missing_token")
    assert (await anonymous.get(f"/v1/rollups/{BK}/1999", headers=viewer)).status_code == 422
    missing = await anonymous.get(f"/v1/rollups/{BK}/2029", headers=viewer)
    assert_problem(missing, 404, "rollup_not_found")
    as_csv = await anonymous.get(url, headers={**viewer, "Accept": "text/csv"})
    assert as_csv.headers["content-type"].startswith("text/csv")
    assert layer.answered == before


async def test_a_rebuild_written_in_batches_publishes_what_one_batch_does(
    committed_resources: Resources, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The rebuild holds a bounded batch of programme-years' sections at a time; how the
    programme-years are cut must not show in the runs, and the job tells how far it came."""
    async with committed_resources.sessionmaker() as session:
        await accept(session, "bk-doh", 2023, {"training-courses": "3"}, {"t-3-1": "completed"})
        await accept(session, "bk-doh", 2024, {"training-courses": "4"})
        await accept(session, "bk-ba-be", 2024, {"training-courses": "2"})
        await accept(session, "bk-doh", 2026, {"training-courses": "7"})
        await session.commit()

    async def rebuild(args: dict[str, Any]) -> uuid.UUID:
        uow = committed_resources.new_uow()
        async with uow:
            job = await uow.schedule(JobName.REBUILD_ROLLUPS, args, requested_by="test")
            await uow.commit()
        assert await run_attempt(committed_resources.sessionmaker, DEFAULT_REGISTRY, job.id)
        return job.id

    await rebuild({})
    one_batch = await cells_by_programme_year(committed_resources)
    monkeypatch.setattr(rollup_repository, "REBUILD_BATCH", 3)
    sections_asked: list[int] = []
    sections_of = RollupRepository.sections_of

    async def counted(repo: RollupRepository, keys: Any) -> dict[Any, str]:
        sections_asked.append(len(keys))
        return await sections_of(repo, keys)

    monkeypatch.setattr(RollupRepository, "sections_of", counted)
    job_id = await rebuild({"force": True})
    assert sections_asked == [3, 3, 3, 1]
    assert await cells_by_programme_year(committed_resources) == one_batch
    async with committed_resources.sessionmaker() as session:
        runs = await session.scalar(
            text("SELECT count(*) FROM rollup_run WHERE level = 'provincial'")
        )
        progress = await session.scalar(
            text("SELECT progress FROM job_progress WHERE job_id = :id"), {"id": job_id}
        )
    assert runs == 20  # ten programme-years, written 3 + 3 + 3 + 1, each published anew
    assert progress == {"stage": "published", "done": 10, "total": 10}


class RecordingQueue:
    def __init__(self) -> None:
        self.handed: list[uuid.UUID] = []

    async def enqueue(
        self, job_id: uuid.UUID, *, handover: int = 0, not_before: datetime | None = None
    ) -> bool:
        self.handed.append(job_id)
        return True


async def test_a_provincial_publication_hands_the_national_refresh_to_the_queue_at_once(
    committed_resources: Resources,
) -> None:
    """The national run follows a provincial publication within seconds: its refresh is
    written in the publication's transaction and handed to the queue as that commits."""
    async with committed_resources.sessionmaker() as session:
        await accept(session, "bk-doh", 2024, {"training-courses": "3"})
        programme_id = await session.scalar(
            text("SELECT id FROM programme WHERE key = :k"), {"k": BK}
        )
        national_id = await session.scalar(
            text("SELECT id FROM programme WHERE key = 'national-nscl'")
        )
        await session.commit()
    uow = committed_resources.new_uow()
    async with uow:
        job = await uow.schedule(
            JobName.REFRESH_ROLLUP,
            {"programme_id": str(programme_id), "year": 2024},
            requested_by="test",
        )
        await uow.commit()
    queue = RecordingQueue()
    result = await run_attempt(
        committed_resources.sessionmaker, DEFAULT_REGISTRY, job.id, queue=queue
    )
    assert result is not None
    assert result["unchanged"] is False
    async with committed_resources.sessionmaker() as session:
        pending = (
            await session.execute(
                text(
                    "SELECT id, args FROM job WHERE name = :name AND status = 'pending' "
                    "AND args ->> 'programme_id' = :national"
                ),
                {"name": JobName.REFRESH_ROLLUP, "national": str(national_id)},
            )
        ).one()
    assert pending.args["year"] == 2024
    assert queue.handed == [pending.id]
