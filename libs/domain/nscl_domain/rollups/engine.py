"""Rollups computed set-based in PostgreSQL: GROUPING SETS over the accepted figures, written
straight into the run's cells. Nothing but a handful of small rows reaches Python.

A provincial run aggregates the accepted annual reports of a programme-year, each unit's
figures counted in its own breakdown (``unit_kind=…``) and in the total (``""``). A
national run combines the published provincial runs of its year through each provincial
indicator's national indicator, by province (``programme=…``) and in total.

Full computation handles any number of programme-years in one statement per step (the
nightly rebuild); incremental computation copies the previous run's cells and recomputes
only those the changed sources touch.
"""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from nscl_domain.db import new_id

# The accepted version of every annual report of the programme-years asked for; a unit's
# breakdown is its kind in the organisation of that year (the unit row the obligation names).
_SOURCES = """
SELECT py.programme_id, py.year, v.id AS source_id, o.unit_id,
       'unit_kind=' || u.kind AS breakdown
FROM unnest(CAST(:programme_ids AS uuid[]), CAST(:years AS int[])) AS py(programme_id, year)
JOIN reporting_obligation o ON o.programme_id = py.programme_id AND o.year = py.year
JOIN reporting_regime g ON g.id = o.regime_id AND g.kind = 'annual'
JOIN report r ON r.obligation_id = o.id AND r.accepted_version_no IS NOT NULL
JOIN report_version v ON v.report_id = r.id AND v.version_no = r.accepted_version_no
JOIN org_unit u ON u.id = o.unit_id
"""

# Everything else a run shows, digested: obligations and submissions (timeliness), budget
# estimates, allocations and spending, annual plans. Any change changes the fingerprint.
_DIGEST = """
SELECT py.programme_id, py.year,
  (SELECT md5(coalesce(string_agg(o.id::text || ':' || coalesce(r.status, '-') || ':'
          || coalesce(r.first_submitted_at::text, '-'), ',' ORDER BY o.id), ''))
     FROM reporting_obligation o LEFT JOIN report r ON r.obligation_id = o.id
    WHERE o.programme_id = py.programme_id AND o.year = py.year) AS obligations,
  (SELECT md5(coalesce(string_agg(e.id::text || ':' || e.revision, ',' ORDER BY e.id), ''))
     FROM budget_estimate e
    WHERE e.programme_id = py.programme_id AND e.budget_year = py.year
      AND e.status = 'accepted') AS estimates,
  (SELECT md5(coalesce(string_agg(a.id::text || ':' || a.amount || ':'
          || coalesce((SELECT sum(s.amount) FROM budget_spending s
                       WHERE s.allocation_id = a.id), 0),
          ',' ORDER BY a.id), ''))
     FROM budget_allocation a JOIN budget_dossier d ON d.id = a.dossier_id
    WHERE d.programme_id = py.programme_id AND d.budget_year = py.year) AS money,
  (SELECT md5(coalesce(string_agg(pl.id::text || ':' || pl.accepted_version_no, ','
                                  ORDER BY pl.id), ''))
     FROM plan pl
    WHERE pl.programme_id = py.programme_id AND pl.kind = 'annual' AND pl.start_year = py.year
      AND pl.status = 'accepted') AS plans
FROM unnest(CAST(:programme_ids AS uuid[]), CAST(:years AS int[])) AS py(programme_id, year)
"""


def by_rule(rule: str, *, total: str, least: str, mean: str, most: str) -> str:
    """SQL for the statistic an indicator's rule across units asks for, given each one's
    expression; a "latest" level across units reads as the highest."""
    return (
        f"CASE {rule} WHEN 'sum' THEN {total} WHEN 'minimum' THEN {least} "
        f"WHEN 'average' THEN {mean} ELSE {most} END"
    )


VALUE_BY_RULE = by_rule(
    "i.aggregation_across_units",
    total="sum(iv.value)",
    least="min(iv.value)",
    mean="round(avg(iv.value), 4)",
    most="max(iv.value)",
)

_CELL_VALUE = by_rule(
    "i.aggregation_across_units",
    total="c.value_sum",
    least="c.value_min",
    mean="round(c.value_sum / c.value_count, 4)",
    most="c.value_max",
)

# Cells of runs from their sources: those kept on the runs, or (a rebuild) those it read
# into rollup_build. The values are read once, grouped by
# breakdown; GROUPING SETS then adds each total from those groups' sums, counts and
# extremes. Each cell's value follows its indicator's rule across units.
_CELLS = f"""
INSERT INTO rollup_cell (run_id, indicator_id, disaggregation, breakdown,
                         value, value_sum, value_count, value_min, value_max)
WITH by_breakdown AS (
  SELECT r.id AS run_id, iv.indicator_id, iv.disaggregation, src.breakdown,
         sum(iv.value) AS value_sum, count(*) AS value_count,
         min(iv.value) AS value_min, max(iv.value) AS value_max
  FROM {{sources}}
  JOIN indicator_value iv ON iv.version_id = src.source_id
  WHERE TRUE {{only_keys}}
  GROUP BY r.id, iv.indicator_id, iv.disaggregation, src.breakdown
),
cells AS (
  SELECT b.run_id, b.indicator_id, b.disaggregation,
         CASE WHEN GROUPING(b.breakdown) = 1 THEN '' ELSE b.breakdown END AS breakdown,
         sum(b.value_sum) AS value_sum, sum(b.value_count)::int AS value_count,
         min(b.value_min) AS value_min, max(b.value_max) AS value_max
  FROM by_breakdown b
  GROUP BY GROUPING SETS ((b.run_id, b.indicator_id, b.disaggregation, b.breakdown),
                          (b.run_id, b.indicator_id, b.disaggregation))
)
SELECT c.run_id, c.indicator_id, c.disaggregation, c.breakdown,
       {_CELL_VALUE},
       c.value_sum, c.value_count, c.value_min, c.value_max
FROM cells c JOIN indicator i ON i.id = c.indicator_id
{{only_breakdowns}}
"""

_FROM_RUNS = """rollup_run r
  CROSS JOIN LATERAL unnest(r.source_ids, r.source_breakdowns) AS src(source_id, breakdown)
  JOIN unnest(CAST(:run_ids AS uuid[])) AS wanted(id) ON wanted.id = r.id"""
_FROM_BUILD = """unnest(CAST(:run_ids AS uuid[]), CAST(:programme_ids AS uuid[]),
         CAST(:years AS int[])) AS r(id, programme_id, year)
  JOIN rollup_build src USING (programme_id, year)"""

# What a change touches is counted by indicator (all its disaggregations): the values are
# then found through the changed versions' own index entries, not probed key by key.
_TOUCHED_KEYS = "iv.indicator_id = ANY(CAST(:touched_indicators AS uuid[]))"

_COPY_UNTOUCHED = """
INSERT INTO rollup_cell (run_id, indicator_id, disaggregation, breakdown,
                         value, value_sum, value_count, value_min, value_max)
SELECT CAST(:run_id AS uuid), indicator_id, disaggregation, breakdown,
       value, value_sum, value_count, value_min, value_max
FROM rollup_cell c
WHERE c.run_id = :previous_run_id
  AND NOT (c.breakdown = ANY(CAST(:touched_breakdowns AS text[]))
           AND c.indicator_id = ANY(CAST(:touched_indicators AS uuid[])))
"""

_PLANNED_VALUE = by_rule(
    "i.aggregation_across_units",
    total="sum((o ->> 'value')::numeric)",
    least="min((o ->> 'value')::numeric)",
    mean="round(avg((o ->> 'value')::numeric), 4)",
    most="max((o ->> 'value')::numeric)",
)

# The programme-years asked for, their annual obligations, and the task matrix the accepted
# versions report: common to the sections and to the sections a refresh keeps.
_PY = """py AS (
  SELECT * FROM unnest(CAST(:programme_ids AS uuid[]), CAST(:years AS int[]))
    AS py(programme_id, year)
)"""
_ANNUAL = """annual AS (
  SELECT o.id, o.programme_id, o.year, o.unit_id, o.due_date
  FROM py
  JOIN reporting_obligation o ON o.programme_id = py.programme_id AND o.year = py.year
  JOIN reporting_regime rg ON rg.id = o.regime_id AND rg.kind = 'annual'
)"""
_TASKS = """tasks AS (
  SELECT a.programme_id, a.year,
         json_agg(json_build_object('unit', u.key, 'task', t.key, 'group', g.number,
                                      'status', tp.status) ORDER BY u.key, t.key) AS rows
  FROM annual a
  JOIN report r ON r.obligation_id = a.id
  JOIN report_version v ON v.report_id = r.id AND v.version_no = r.accepted_version_no
  JOIN task_progress tp ON tp.version_id = v.id
  JOIN task t ON t.id = tp.task_id
  JOIN task_group g ON g.id = t.group_id
  JOIN org_unit u ON u.id = a.unit_id
  GROUP BY a.programme_id, a.year
)"""

# Sections: tables a reader takes whole, one JSON document per programme-year. Each is one
# grouped pass over all the programme-years asked for, then joined on the programme-year.
_SECTIONS = f"""
WITH {_PY},
budget_rows AS (
  SELECT e.programme_id, e.budget_year AS year, l.funding_source, d.key AS destination,
         u.key AS unit, coalesce(g.number, 0) AS task_group,
         sum(l.amount)::bigint AS estimated,
         coalesce(sum(a.amount), 0)::bigint AS allocated,
         coalesce(sum(sp.spent), 0)::bigint AS spent
  FROM py
  JOIN budget_estimate e ON e.programme_id = py.programme_id AND e.budget_year = py.year
                        AND e.status = 'accepted'
  JOIN estimate_line l ON l.estimate_id = e.id
  JOIN org_unit u ON u.id = e.unit_id
  LEFT JOIN org_unit d ON d.id = l.destination_unit_id
  LEFT JOIN task t ON t.id = l.task_id
  LEFT JOIN task_group g ON g.id = t.group_id
  LEFT JOIN budget_allocation a ON a.line_id = l.id
  LEFT JOIN (SELECT allocation_id, sum(amount) AS spent FROM budget_spending
             GROUP BY allocation_id) sp ON sp.allocation_id = a.id
  GROUP BY e.programme_id, e.budget_year, l.funding_source, d.key, u.key, g.number
),
budget AS (
  SELECT programme_id, year,
         json_agg(json_build_object(
           'funding_source', funding_source, 'destination', destination, 'unit', unit,
           'task_group', task_group, 'estimated', estimated, 'allocated', allocated,
           'spent', spent) ORDER BY funding_source, destination NULLS LAST, unit, task_group
         ) AS rows
  FROM budget_rows GROUP BY programme_id, year
),
{_ANNUAL},
{_TASKS},
timeliness AS (
  SELECT x.programme_id, x.year,
         json_agg(json_build_object(
           'unit', x.unit, 'due_date', x.due_date, 'submitted_on', x.submitted_on,
           'status', CASE WHEN x.submitted_on IS NULL THEN 'missing'
                          WHEN x.submitted_on <= x.due_date THEN 'on_time'
                          ELSE 'late' END,
           'accepted', x.accepted) ORDER BY x.unit) AS rows
  FROM (
    SELECT a.programme_id, a.year, u.key AS unit, a.due_date,
           (r.first_submitted_at AT TIME ZONE 'Asia/Ho_Chi_Minh')::date AS submitted_on,
           r.accepted_version_no IS NOT NULL AS accepted
    FROM annual a
    JOIN org_unit u ON u.id = a.unit_id
    LEFT JOIN report r ON r.obligation_id = a.id
  ) x
  GROUP BY x.programme_id, x.year
),
-- What the accepted annual plans of the year set out, per indicator, combined across
-- activities and units by the indicator's rule.
planned AS (
  SELECT x.programme_id, x.year,
         json_agg(json_build_object('indicator', x.indicator, 'planned', x.planned)
                  ORDER BY x.indicator) AS rows
  FROM (
    SELECT pl.programme_id, py.year, i.key AS indicator,
           {_PLANNED_VALUE} AS planned
    FROM py
    JOIN plan pl ON pl.programme_id = py.programme_id AND pl.kind = 'annual'
                AND pl.start_year = py.year AND pl.status = 'accepted'
    CROSS JOIN LATERAL jsonb_array_elements(pl.content -> 'activities') AS a
    CROSS JOIN LATERAL jsonb_array_elements(a -> 'planned_outputs') AS o
    JOIN indicator i ON i.programme_id = pl.programme_id AND i.key = o ->> 'indicator'
    WHERE (o ->> 'year')::int = py.year
    GROUP BY pl.programme_id, py.year, i.key, i.aggregation_across_units
  ) x
  GROUP BY x.programme_id, x.year
)
SELECT py.programme_id, py.year,
       json_build_object('budget', coalesce(budget.rows, '[]'::json),
                          'tasks', coalesce(tasks.rows, '[]'::json),
                          'timeliness', coalesce(timeliness.rows, '[]'::json),
                          'planned', coalesce(planned.rows, '[]'::json)) AS sections
FROM py
LEFT JOIN budget USING (programme_id, year)
LEFT JOIN tasks USING (programme_id, year)
LEFT JOIN timeliness USING (programme_id, year)
LEFT JOIN planned USING (programme_id, year)
"""


@dataclass(frozen=True)
class Source:
    source_id: uuid.UUID
    unit_id: uuid.UUID | None
    breakdown: str


@dataclass(frozen=True)
class Inputs:
    """What a programme-year's run would be computed from, and its fingerprint.

    ``sources`` is None when they were left in the database (full computation reads them
    there); an incremental computation fetches them to compare with the previous run's.
    """

    programme_id: uuid.UUID
    year: int
    source_count: int
    fingerprint: str
    sources: frozenset[Source] | None = None
    other_inputs: str = ""


@dataclass(frozen=True)
class Published:
    run_id: uuid.UUID
    seq: int
    fingerprint: str
    other_inputs: str = ""


def _fingerprint(sources: Sequence[Source], digest: Sequence[Any]) -> str:
    hashed = hashlib.sha256()
    for source in sorted(sources, key=lambda s: s.source_id):
        hashed.update(f"{source.source_id}:{source.breakdown};".encode())
    hashed.update("|".join(str(part) for part in digest).encode())
    return hashed.hexdigest()


def _source_digest(sources: set[Source]) -> str:
    """What _BUILD_DIGEST computes in PostgreSQL (uuids order as their bytes do)."""
    ordered = sorted(sources, key=lambda source: source.source_id.bytes)
    joined = ",".join(f"{source.source_id}:{source.breakdown}" for source in ordered)
    return hashlib.md5(joined.encode(), usedforsecurity=False).hexdigest()


# Sources of the programme-years a rebuild considers, read once into a table of the
# transaction: the fingerprints, the runs' sources and then their cells all come from it.
_COLLECT = f"""
CREATE TEMP TABLE rollup_build ON COMMIT DROP AS
SELECT programme_id, year, source_id, unit_id, breakdown FROM ({_SOURCES}) src
"""

_BUILD_DIGEST = """
SELECT py.programme_id, py.year, count(b.source_id) AS sources,
       md5(coalesce(string_agg(b.source_id::text || ':' || b.breakdown, ','
                               ORDER BY b.source_id), '')) AS digest
FROM unnest(CAST(:programme_ids AS uuid[]), CAST(:years AS int[])) AS py(programme_id, year)
LEFT JOIN rollup_build b USING (programme_id, year)
GROUP BY py.programme_id, py.year
"""


async def collect_sources(
    session: AsyncSession, programme_years: Sequence[tuple[uuid.UUID, int]]
) -> None:
    """Read the sources of programme-years once, for provincial_inputs and compute_full."""
    await session.execute(text(_COLLECT), _arrays(programme_years))
    await session.execute(text("ANALYZE rollup_build"))


async def drop_collected(session: AsyncSession) -> None:
    await session.execute(text("DROP TABLE IF EXISTS rollup_build"))


Digests = dict[tuple[uuid.UUID, int], tuple[str, ...]]


async def other_inputs_digests(
    session: AsyncSession, programme_years: Sequence[tuple[uuid.UUID, int]]
) -> Digests:
    """The digests of what a run shows besides its figures: obligations, estimates, money,
    plans."""
    return {
        (row.programme_id, row.year): (row.obligations, row.estimates, row.money, row.plans)
        for row in await session.execute(text(_DIGEST), _arrays(programme_years))
    }


async def provincial_inputs(
    session: AsyncSession,
    programme_years: Sequence[tuple[uuid.UUID, int]],
    *,
    with_sources: bool = False,
    digests: Digests | None = None,
) -> dict[tuple[uuid.UUID, int], Inputs]:
    """Fingerprints of programme-years, set-based: with their sources fetched, or from the
    sources collect_sources read (a rebuild, which may bring the other digests along)."""
    params = _arrays(programme_years)
    if digests is None:
        digests = await other_inputs_digests(session, programme_years)
    if with_sources:
        # The sources are wanted anyway: digest them here as PostgreSQL would.
        sources: dict[tuple[uuid.UUID, int], set[Source]] = {k: set() for k in programme_years}
        for row in await session.execute(text(_SOURCES), params):
            sources[(row.programme_id, row.year)].add(
                Source(row.source_id, row.unit_id, row.breakdown)
            )
        return {
            key: Inputs(
                programme_id=key[0],
                year=key[1],
                source_count=len(found),
                fingerprint=_fingerprint([], (_source_digest(found), *digests[key])),
                sources=frozenset(found),
                other_inputs="|".join(digests[key]),
            )
            for key, found in sources.items()
        }
    inputs = {}
    for row in await session.execute(text(_BUILD_DIGEST), params):
        key = (row.programme_id, row.year)
        inputs[key] = Inputs(
            programme_id=row.programme_id,
            year=row.year,
            source_count=row.sources,
            fingerprint=_fingerprint([], (row.digest, *digests[key])),
            other_inputs="|".join(digests[key]),
        )
    return inputs


async def national_inputs(session: AsyncSession, programme_id: uuid.UUID, year: int) -> Inputs:
    """The provincial runs published for the year, one per child programme."""
    rows = await session.execute(
        text(
            "SELECT pub.run_id, 'programme=' || p.key AS breakdown FROM rollup_publication pub "
            "JOIN programme p ON p.id = pub.programme_id "
            "WHERE p.parent_id = :programme_id AND pub.year = :year"
        ),
        {"programme_id": programme_id, "year": year},
    )
    sources = [Source(row.run_id, None, row.breakdown) for row in rows]
    return Inputs(programme_id, year, len(sources), _fingerprint(sources, ()), frozenset(sources))


async def published(
    session: AsyncSession, programme_years: Sequence[tuple[uuid.UUID, int]]
) -> dict[tuple[uuid.UUID, int], Published]:
    rows = await session.execute(
        text(
            "SELECT pub.programme_id, pub.year, r.id, r.seq, r.fingerprint, r.other_inputs "
            "FROM unnest(CAST(:programme_ids AS uuid[]), CAST(:years AS int[])) "
            "  AS py(programme_id, year) "
            "JOIN rollup_publication pub USING (programme_id, year) "
            "JOIN rollup_run r ON r.id = pub.run_id"
        ),
        _arrays(programme_years),
    )
    return {
        (row.programme_id, row.year): Published(row.id, row.seq, row.fingerprint, row.other_inputs)
        for row in rows
    }


def _arrays(programme_years: Sequence[tuple[uuid.UUID, int]]) -> dict[str, Any]:
    return {
        "programme_ids": [programme_id for programme_id, _ in programme_years],
        "years": [year for _, year in programme_years],
    }


@dataclass(frozen=True)
class NewRun:
    inputs: Inputs
    run_id: uuid.UUID
    seq: int


async def _insert_runs(
    session: AsyncSession,
    runs: Sequence[NewRun],
    *,
    level: str,
    kind: str,
    job_id: uuid.UUID | None,
    now: datetime,
    with_sections: bool,
    sections: dict[tuple[uuid.UUID, int], str] | None = None,
) -> None:
    """Runs with their sources (fetched ones for a single run, or those collect_sources
    read) and their sections (given, or computed in the statement)."""
    keys = [(run.inputs.programme_id, run.inputs.year) for run in runs]
    fetched = runs[0].inputs.sources if len(runs) == 1 else None
    if fetched is not None:
        ordered = sorted(fetched, key=lambda source: source.source_id.bytes)
        sources_sql = (
            "(SELECT CAST(:source_ids AS uuid[]) AS source_ids, "
            "CAST(:source_units AS uuid[]) AS source_units, "
            "CAST(:source_breakdowns AS text[]) AS source_breakdowns) b ON TRUE"
        )
        source_params: dict[str, Any] = {
            "source_ids": [source.source_id for source in ordered],
            "source_units": [source.unit_id for source in ordered],
            "source_breakdowns": [source.breakdown for source in ordered],
        }
    else:
        sources_sql = (
            "(SELECT programme_id, year, array_agg(source_id ORDER BY source_id) AS source_ids, "
            "array_agg(unit_id ORDER BY source_id) AS source_units, "
            "array_agg(breakdown ORDER BY source_id) AS source_breakdowns "
            "FROM rollup_build GROUP BY programme_id, year) b USING (programme_id, year)"
        )
        source_params = {}
    if sections is not None:
        sections_sql = (
            "LEFT JOIN unnest(CAST(:programme_ids AS uuid[]), CAST(:years AS int[]), "
            "CAST(:sections AS text[])) AS s(programme_id, year, sections) "
            "USING (programme_id, year)"
        )
        source_params["sections"] = [sections.get(key, "{}") for key in keys]
    elif with_sections:
        sections_sql = f"LEFT JOIN ({_SECTIONS}) s USING (programme_id, year)"
    else:
        sections_sql = (
            "LEFT JOIN (SELECT NULL::uuid AS programme_id, NULL::int AS year, "
            "NULL::text AS sections) s USING (programme_id, year)"
        )
    await session.execute(
        text(
            "INSERT INTO rollup_run (id, programme_id, year, seq, level, kind, fingerprint, "
            "other_inputs, computed_at, job_id, sources, source_ids, source_units, "
            "source_breakdowns, sections) "
            "SELECT r.id, r.programme_id, r.year, r.seq, :level, :kind, r.fingerprint, "
            "  r.other_inputs, :now, "
            "  :job_id, r.sources, coalesce(b.source_ids, '{}'), coalesce(b.source_units, '{}'), "
            "  coalesce(b.source_breakdowns, '{}'), CAST(coalesce(s.sections::text, '{}') AS json) "
            "FROM unnest(CAST(:ids AS uuid[]), CAST(:programme_ids AS uuid[]), "
            "  CAST(:years AS int[]), CAST(:seqs AS int[]), CAST(:fingerprints AS text[]), "
            "  CAST(:source_counts AS int[]), CAST(:other_inputs AS text[])) "
            "  AS r(id, programme_id, year, seq, fingerprint, sources, other_inputs) "
            f"LEFT JOIN {sources_sql} {sections_sql}"
        ),
        {
            **_arrays(keys),
            **source_params,
            "ids": [run.run_id for run in runs],
            "seqs": [run.seq for run in runs],
            "fingerprints": [run.inputs.fingerprint for run in runs],
            "source_counts": [run.inputs.source_count for run in runs],
            "other_inputs": [run.inputs.other_inputs for run in runs],
            "level": level,
            "kind": kind,
            "job_id": job_id,
            "now": now,
        },
    )


async def publish(session: AsyncSession, runs: Sequence[NewRun], now: datetime) -> None:
    """Point readers at the new runs, in the transaction that wrote them."""
    await session.execute(
        text(
            "INSERT INTO rollup_publication (programme_id, year, run_id, published_at) "
            "SELECT *, CAST(:now AS timestamptz) FROM unnest(CAST(:programme_ids AS uuid[]), "
            "CAST(:years AS int[]), CAST(:run_ids AS uuid[])) "
            "ON CONFLICT (programme_id, year) DO UPDATE "
            "SET run_id = EXCLUDED.run_id, published_at = EXCLUDED.published_at"
        ),
        {
            **_arrays([(run.inputs.programme_id, run.inputs.year) for run in runs]),
            "run_ids": [run.run_id for run in runs],
            "now": now,
        },
    )


def plan_runs(
    inputs: Sequence[Inputs], previous: dict[tuple[uuid.UUID, int], Published]
) -> list[NewRun]:
    """A new run for each programme-year whose fingerprint differs from the published one."""
    planned = []
    for item in inputs:
        before = previous.get((item.programme_id, item.year))
        if before is not None and before.fingerprint == item.fingerprint:
            continue
        planned.append(NewRun(item, new_id(), before.seq + 1 if before else 1))
    return planned


async def compute_full(
    session: AsyncSession,
    runs: Sequence[NewRun],
    *,
    job_id: uuid.UUID | None,
    now: datetime,
) -> None:
    """Write provincial runs from scratch: sources, sections, then every cell in one pass."""
    if not runs:
        return
    # Room to group the values in memory (hashing) rather than sorting them through files.
    await session.execute(text("SET LOCAL work_mem = '64MB'"))
    await _insert_runs(
        session, runs, level="provincial", kind="full", job_id=job_id, now=now, with_sections=True
    )
    await session.execute(
        text(_CELLS.format(sources=_FROM_RUNS, only_keys="", only_breakdowns="")),
        {"run_ids": [run.run_id for run in runs]},
    )


async def compute_full_concurrently(
    session: AsyncSession,
    another_session: Callable[[], AsyncSession],
    runs: Sequence[NewRun],
    *,
    job_id: uuid.UUID | None,
    now: datetime,
) -> None:
    """compute_full for a rebuild, after collect_sources: the cells are computed on this
    connection while another builds the sections from the committed inputs they read, so
    PostgreSQL works on both at once."""
    if not runs:
        return
    keys = [(run.inputs.programme_id, run.inputs.year) for run in runs]

    async def sections_elsewhere() -> dict[tuple[uuid.UUID, int], str]:
        async with another_session() as other:
            return await sections_of(other, keys)

    sections = asyncio.create_task(sections_elsewhere())
    try:
        await session.execute(text("SET LOCAL work_mem = '64MB'"))
        await session.execute(
            text(_CELLS.format(sources=_FROM_BUILD, only_keys="", only_breakdowns="")),
            {**_arrays(keys), "run_ids": [run.run_id for run in runs]},
        )
    finally:
        built = await sections
    await _insert_runs(
        session, runs, level="provincial", kind="full", job_id=job_id, now=now,
        with_sections=True, sections=built,
    )  # fmt: skip


async def sections_of(
    session: AsyncSession, programme_years: Sequence[tuple[uuid.UUID, int]]
) -> dict[tuple[uuid.UUID, int], str]:
    """The sections of programme-years as JSON text, ready to store."""
    await session.execute(text("SET LOCAL work_mem = '64MB'"))
    rows = await session.execute(
        text(f"SELECT programme_id, year, sections::text AS sections FROM ({_SECTIONS}) s"),
        _arrays(programme_years),
    )
    return {(row.programme_id, row.year): row.sections for row in rows}


async def compute_incremental(
    session: AsyncSession,
    run: NewRun,
    previous: Published,
    *,
    job_id: uuid.UUID | None,
    now: datetime,
) -> dict[str, int]:
    """Write a provincial run from the previous one: cells the changed sources do not touch
    are copied; the touched ones are recomputed from the new sources."""
    old = {
        Source(row.source_id, row.unit_id, row.breakdown)
        for row in await session.execute(
            text(
                "SELECT s.source_id, s.unit_id, s.breakdown FROM rollup_run r, "
                "unnest(r.source_ids, r.source_units, r.source_breakdowns) "
                "AS s(source_id, unit_id, breakdown) WHERE r.id = :run_id"
            ),
            {"run_id": previous.run_id},
        )
    }
    assert run.inputs.sources is not None, "an incremental run compares its sources"
    changed = old ^ run.inputs.sources
    touched_breakdowns = sorted({"", *(source.breakdown for source in changed)})
    indicators = (
        await session.scalars(
            text(
                "SELECT DISTINCT indicator_id FROM indicator_value "
                "WHERE version_id = ANY(CAST(:version_ids AS uuid[]))"
            ),
            {"version_ids": list({source.source_id for source in changed})},
        )
    ).all()
    kept = None
    if previous.other_inputs and previous.other_inputs == run.inputs.other_inputs:
        # Nothing but figures changed: keep the sections, and redo the task matrix, which
        # comes from the accepted versions.
        kept = await session.scalar(
            text(_SECTIONS_KEPT),
            {
                "previous_run_id": previous.run_id,
                **_arrays([(run.inputs.programme_id, run.inputs.year)]),
            },
        )
    await _insert_runs(
        session, [run], level="provincial", kind="incremental", job_id=job_id, now=now,
        with_sections=True,
        sections={(run.inputs.programme_id, run.inputs.year): kept} if kept else None,
    )  # fmt: skip
    touched = {
        "run_id": run.run_id,
        "previous_run_id": previous.run_id,
        "touched_breakdowns": touched_breakdowns,
        "touched_indicators": list(indicators),
    }
    await session.execute(text(_COPY_UNTOUCHED), touched)
    if indicators:
        await session.execute(
            text(
                _CELLS.format(
                    sources=_FROM_RUNS,
                    only_keys="AND " + _TOUCHED_KEYS,
                    only_breakdowns="WHERE c.breakdown = ANY(CAST(:touched_breakdowns AS text[]))",
                )
            ),
            {**touched, "run_ids": [run.run_id]},
        )
    return {
        "changed_sources": len(changed),
        "touched_indicators": len(indicators),
        "touched_breakdowns": len(touched_breakdowns),
    }


_SECTIONS_KEPT = f"""
WITH {_PY}, {_ANNUAL}, {_TASKS}
SELECT json_build_object('budget', prev.sections -> 'budget',
                         'tasks', coalesce(tasks.rows, '[]'::json),
                         'timeliness', prev.sections -> 'timeliness',
                         'planned', prev.sections -> 'planned')::text
FROM rollup_run prev LEFT JOIN tasks ON TRUE
WHERE prev.id = :previous_run_id
"""

_NATIONAL_VALUE = by_rule(
    "n.aggregation_across_units",
    total="sum(c.value_sum)",
    least="min(c.value_min)",
    mean="round(sum(c.value_sum) / sum(c.value_count), 4)",
    most="max(c.value_max)",
)

_NATIONAL_CELLS = f"""
INSERT INTO rollup_cell (run_id, indicator_id, disaggregation, breakdown,
                         value, value_sum, value_count, value_min, value_max)
SELECT CAST(:run_id AS uuid), n.id, c.disaggregation,
       CASE WHEN GROUPING(s.breakdown) = 1 THEN '' ELSE s.breakdown END,
       {_NATIONAL_VALUE},
       sum(c.value_sum), sum(c.value_count), min(c.value_min), max(c.value_max)
FROM rollup_run r
CROSS JOIN LATERAL unnest(r.source_ids, r.source_breakdowns) AS s(source_id, breakdown)
JOIN rollup_cell c ON c.run_id = s.source_id AND c.breakdown = ''
JOIN indicator i ON i.id = c.indicator_id
JOIN indicator n ON n.id = i.national_indicator_id
WHERE r.id = :run_id
GROUP BY GROUPING SETS ((n.id, n.aggregation_across_units, c.disaggregation, s.breakdown),
                        (n.id, n.aggregation_across_units, c.disaggregation))
"""


async def compute_national(
    session: AsyncSession, run: NewRun, *, job_id: uuid.UUID | None, now: datetime
) -> None:
    """A national run: the published provincial totals, combined by national indicator."""
    await _insert_runs(
        session, [run], level="national", kind="full", job_id=job_id, now=now, with_sections=False
    )
    await session.execute(text(_NATIONAL_CELLS), {"run_id": run.run_id})
