"""The SQL text of the rollups context: the repository's private implementation (nothing
but nscl_domain.rollups.repository imports it).

Rollups are computed set-based in PostgreSQL: GROUPING SETS over the accepted figures,
written straight into the run's cells, so nothing but a handful of small rows reaches
Python. A provincial run aggregates the accepted annual reports of a programme-year, each
unit's figures counted in its own breakdown (``unit_kind=…``) and in the total (``""``).
A national run combines the published provincial runs of its year through each
provincial indicator's national indicator, by province (``programme=…``) and in total.

The computation reads other contexts' tables directly (reporting obligations and regimes,
reports, their versions, figures and task progress; programme records, their versions and
figures; budget estimates, lines, allocations, spending and dossiers; annual plans; the
catalogue's units, indicators, tasks and programmes): one statement over all of them is
what keeps a rebuild set-based.

A run's sources are the accepted versions of annual reports and of programme records
alike: each counts figures (``FIGURES``) and belongs to a unit, and provenance names which
of the two it is.
"""

from __future__ import annotations

# The accepted version of every annual report of the programme-years asked for; a unit's
# breakdown is its kind in the organisation of that year (the unit row the obligation names).
SOURCES = """
SELECT py.programme_id, py.year, v.id AS source_id, o.unit_id,
       'unit_kind=' || u.kind AS breakdown
FROM unnest(CAST(:programme_ids AS uuid[]), CAST(:years AS int[])) AS py(programme_id, year)
JOIN reporting_obligation o ON o.programme_id = py.programme_id AND o.year = py.year
JOIN reporting_regime g ON g.id = o.regime_id AND g.kind = 'annual'
JOIN report r ON r.obligation_id = o.id AND r.accepted_version_no IS NOT NULL
JOIN report_version v ON v.report_id = r.id AND v.version_no = r.accepted_version_no
JOIN org_unit u ON u.id = o.unit_id
UNION ALL
-- The accepted version of every programme record counted in those years (its own year: a
-- correction may move a record), in the breakdown of the unit that filed it.
SELECT py.programme_id, py.year, v.id, pr.unit_id, 'unit_kind=' || u.kind
FROM unnest(CAST(:programme_ids AS uuid[]), CAST(:years AS int[])) AS py(programme_id, year)
JOIN programme_record pr ON pr.programme_id = py.programme_id
                        AND pr.accepted_version_no IS NOT NULL
JOIN programme_record_version v ON v.record_id = pr.id
                               AND v.version_no = pr.accepted_version_no AND v.year = py.year
JOIN org_unit u ON u.id = pr.unit_id
"""

# The figures of every source: a report version's indicator values, a record version's
# counts. Version ids are unique across both (random UUIDs).
FIGURES = """(
  SELECT version_id, indicator_id, disaggregation, value FROM indicator_value
  UNION ALL
  SELECT version_id, indicator_id, disaggregation, value FROM record_figure
)"""

# Everything else a run shows, digested: obligations and submissions (timeliness), budget
# estimates, allocations and spending, annual plans. Any change changes the fingerprint.
DIGEST = """
SELECT py.programme_id, py.year,
  (SELECT md5(coalesce(string_agg(o.id::text || ':' || coalesce(r.status, '-') || ':'
          || coalesce(r.first_submitted_at::text, '-') || ':' || coalesce(r.received_on::text, '-'),
          ',' ORDER BY o.id), ''))
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

CELL_VALUE = by_rule(
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
CELLS = f"""
INSERT INTO rollup_cell (run_id, indicator_id, disaggregation, breakdown,
                         value, value_sum, value_count, value_min, value_max)
WITH by_breakdown AS (
  SELECT r.id AS run_id, iv.indicator_id, iv.disaggregation, src.breakdown,
         sum(iv.value) AS value_sum, count(*) AS value_count,
         min(iv.value) AS value_min, max(iv.value) AS value_max
  FROM {{sources}}
  JOIN {FIGURES} iv ON iv.version_id = src.source_id
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
       {CELL_VALUE},
       c.value_sum, c.value_count, c.value_min, c.value_max
FROM cells c JOIN indicator i ON i.id = c.indicator_id
{{only_breakdowns}}
"""

FROM_RUNS = """rollup_run r
  CROSS JOIN LATERAL unnest(r.source_ids, r.source_breakdowns) AS src(source_id, breakdown)
  JOIN unnest(CAST(:run_ids AS uuid[])) AS wanted(id) ON wanted.id = r.id"""
FROM_BUILD = """unnest(CAST(:run_ids AS uuid[]), CAST(:programme_ids AS uuid[]),
         CAST(:years AS int[])) AS r(id, programme_id, year)
  JOIN rollup_build src USING (programme_id, year)"""

# What a change touches is counted by indicator (all its disaggregations): the values are
# then found through the changed versions' own index entries, not probed key by key.
TOUCHED_KEYS = "iv.indicator_id = ANY(CAST(:touched_indicators AS uuid[]))"

COPY_UNTOUCHED = """
INSERT INTO rollup_cell (run_id, indicator_id, disaggregation, breakdown,
                         value, value_sum, value_count, value_min, value_max)
SELECT CAST(:run_id AS uuid), indicator_id, disaggregation, breakdown,
       value, value_sum, value_count, value_min, value_max
FROM rollup_cell c
WHERE c.run_id = :previous_run_id
  AND NOT (c.breakdown = ANY(CAST(:touched_breakdowns AS text[]))
           AND c.indicator_id = ANY(CAST(:touched_indicators AS uuid[])))
"""

PLANNED_VALUE = by_rule(
    "i.aggregation_across_units",
    total="sum((o ->> 'value')::numeric)",
    least="min((o ->> 'value')::numeric)",
    mean="round(avg((o ->> 'value')::numeric), 4)",
    most="max((o ->> 'value')::numeric)",
)

# The programme-years asked for, their annual obligations, and the task matrix the accepted
# versions report: common to the sections and to the sections a refresh keeps. The
# programmes named again beside the join let a batch of a rebuild read its own rows through
# the (programme, year) indexes instead of scanning every programme's.
PY = """py AS (
  SELECT * FROM unnest(CAST(:programme_ids AS uuid[]), CAST(:years AS int[]))
    AS py(programme_id, year)
)"""
ANNUAL = """annual AS (
  SELECT o.id, o.programme_id, o.year, o.unit_id, o.due_date
  FROM py
  JOIN reporting_obligation o ON o.programme_id = py.programme_id AND o.year = py.year
                             AND o.programme_id = ANY(ARRAY(SELECT DISTINCT programme_id FROM py))
  JOIN reporting_regime rg ON rg.id = o.regime_id AND rg.kind = 'annual'
)"""
TASKS = """tasks AS (
  SELECT a.programme_id, a.year,
         json_agg(json_build_object('unit', u.key, 'task', t.key, 'task_group', g.number,
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
SECTIONS = f"""
WITH {PY},
budget_rows AS (
  SELECT e.programme_id, e.budget_year AS year, l.funding_source, d.key AS destination,
         u.key AS unit, coalesce(g.number, 0) AS task_group,
         sum(l.amount)::bigint AS estimated,
         coalesce(sum(a.amount), 0)::bigint AS allocated,
         coalesce(sum(sp.spent), 0)::bigint AS spent
  FROM py
  JOIN budget_estimate e ON e.programme_id = py.programme_id AND e.budget_year = py.year
                        AND e.status = 'accepted'
                        AND e.programme_id = ANY(ARRAY(SELECT DISTINCT programme_id FROM py))
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
{ANNUAL},
{TASKS},
timeliness AS (
  SELECT x.programme_id, x.year,
         json_agg(json_build_object(
           'unit', x.unit, 'obligation_id', x.obligation_id,
           'due_date', x.due_date, 'submitted_on', x.submitted_on,
           'status', CASE WHEN x.submitted_on IS NULL THEN 'missing'
                          WHEN x.submitted_on <= x.due_date THEN 'on_time'
                          ELSE 'late' END,
           'accepted', x.accepted) ORDER BY x.unit) AS rows
  FROM (
    SELECT a.programme_id, a.year, a.id AS obligation_id, u.key AS unit, a.due_date,
           -- A report entered from the past is judged on the day DOST received it.
           coalesce(r.received_on,
                    (r.first_submitted_at AT TIME ZONE 'Asia/Ho_Chi_Minh')::date) AS submitted_on,
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
           {PLANNED_VALUE} AS planned
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


# Sources of the programme-years a rebuild considers, read once into a table of the
# transaction: the fingerprints, the runs' sources and then their cells all come from it.
COLLECT = f"""
CREATE TEMP TABLE rollup_build ON COMMIT DROP AS
SELECT programme_id, year, source_id, unit_id, breakdown FROM ({SOURCES}) src
"""

BUILD_DIGEST = """
SELECT py.programme_id, py.year, count(b.source_id) AS sources,
       md5(coalesce(string_agg(b.source_id::text || ':' || b.breakdown, ','
                               ORDER BY b.source_id), '')) AS digest
FROM unnest(CAST(:programme_ids AS uuid[]), CAST(:years AS int[])) AS py(programme_id, year)
LEFT JOIN rollup_build b USING (programme_id, year)
GROUP BY py.programme_id, py.year
"""


SECTIONS_KEPT = f"""
WITH {PY}, {ANNUAL}, {TASKS}
SELECT json_build_object('budget', prev.sections -> 'budget',
                         'tasks', coalesce(tasks.rows, '[]'::json),
                         'timeliness', prev.sections -> 'timeliness',
                         'planned', prev.sections -> 'planned')::text
FROM rollup_run prev LEFT JOIN tasks ON TRUE
WHERE prev.id = :previous_run_id
"""

NATIONAL_VALUE = by_rule(
    "n.aggregation_across_units",
    total="sum(c.value_sum)",
    least="min(c.value_min)",
    mean="round(sum(c.value_sum) / sum(c.value_count), 4)",
    most="max(c.value_max)",
)

NATIONAL_CELLS = f"""
INSERT INTO rollup_cell (run_id, indicator_id, disaggregation, breakdown,
                         value, value_sum, value_count, value_min, value_max)
SELECT CAST(:run_id AS uuid), n.id, c.disaggregation,
       CASE WHEN GROUPING(s.breakdown) = 1 THEN '' ELSE s.breakdown END,
       {NATIONAL_VALUE},
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


# A rebuild reads the sources a batch of programme-years at a time.
INDEX_COLLECTED = "CREATE INDEX ON rollup_build (programme_id, year)"
ANALYZE_COLLECTED = "ANALYZE rollup_build"
DROP_COLLECTED = "DROP TABLE IF EXISTS rollup_build"

# Room to group the values in memory (hashing) rather than sorting them through files.
ROOMY_WORK_MEM = "SET LOCAL work_mem = '64MB'"

# Two refreshes of one programme-year run one after the other, never interleaved.
LOCK = (
    "SELECT pg_advisory_xact_lock(hashtextextended(k, 0)) FROM unnest(CAST(:keys AS text[])) AS k"
)

# Sessions waiting (not yet granted) for a programme-year's lock: such a refresh has not read
# its inputs yet, so it will see every change committed before this query ran. A bigint
# advisory key shows in pg_locks as its high (classid) and low (objid) 32 bits.
LOCK_WAITERS = """
SELECT count(*) FROM pg_locks l
CROSS JOIN LATERAL (SELECT hashtextextended(CAST(:key AS text), 0) AS h) k
WHERE l.locktype = 'advisory' AND NOT l.granted AND l.objsubid = 1
  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND l.classid::text::bigint = (k.h >> 32) & 4294967295
  AND l.objid::text::bigint = k.h & 4294967295
"""

# The latest acceptance a run includes: of the report versions it was made from, or (a
# national run) of those of the provincial runs it combined.
INCLUDES_ACCEPTED_UNTIL = """
WITH direct AS (SELECT unnest(source_ids) AS id FROM rollup_run WHERE id = :run_id),
ids AS (
  SELECT id FROM direct
  UNION ALL
  SELECT unnest(r.source_ids) FROM rollup_run r JOIN direct d ON d.id = r.id
)
SELECT max(rp.accepted_at) FROM ids
JOIN report_version v ON v.id = ids.id
JOIN report rp ON rp.id = v.report_id AND rp.accepted_version_no = v.version_no
"""

NATIONAL_SOURCES = (
    "SELECT pub.run_id, 'programme=' || p.key AS breakdown FROM rollup_publication pub "
    "JOIN programme p ON p.id = pub.programme_id "
    "WHERE p.parent_id = :programme_id AND pub.year = :year"
)

PUBLISHED = (
    "SELECT pub.programme_id, pub.year, r.id, r.seq, r.fingerprint, r.other_inputs, r.kind "
    "FROM unnest(CAST(:programme_ids AS uuid[]), CAST(:years AS int[])) "
    "  AS py(programme_id, year) "
    "JOIN rollup_publication pub USING (programme_id, year) "
    "JOIN rollup_run r ON r.id = pub.run_id"
)

# A run's sources: those fetched for a single run, or those collect_sources read.
FETCHED_SOURCES = (
    "(SELECT CAST(:source_ids AS uuid[]) AS source_ids, "
    "CAST(:source_units AS uuid[]) AS source_units, "
    "CAST(:source_breakdowns AS text[]) AS source_breakdowns) b ON TRUE"
)
# Each run's own, through the index: a rebuild writes its runs batch by batch.
COLLECTED_SOURCES = (
    "LATERAL (SELECT array_agg(source_id ORDER BY source_id) AS source_ids, "
    "array_agg(unit_id ORDER BY source_id) AS source_units, "
    "array_agg(breakdown ORDER BY source_id) AS source_breakdowns "
    "FROM rollup_build c WHERE c.programme_id = r.programme_id AND c.year = r.year) b ON TRUE"
)
# A run's sections: given, computed in the statement, or none (a national run).
GIVEN_SECTIONS = (
    "LEFT JOIN unnest(CAST(:programme_ids AS uuid[]), CAST(:years AS int[]), "
    "CAST(:sections AS text[])) AS s(programme_id, year, sections) "
    "USING (programme_id, year)"
)
COMPUTED_SECTIONS = f"LEFT JOIN ({SECTIONS}) s USING (programme_id, year)"
NO_SECTIONS = (
    "LEFT JOIN (SELECT NULL::uuid AS programme_id, NULL::int AS year, "
    "NULL::text AS sections) s USING (programme_id, year)"
)
# Followed by "LEFT JOIN <sources> <sections>".
INSERT_RUNS = (
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
)

PUBLISH = (
    "INSERT INTO rollup_publication (programme_id, year, run_id, published_at) "
    "SELECT *, CAST(:now AS timestamptz) FROM unnest(CAST(:programme_ids AS uuid[]), "
    "CAST(:years AS int[]), CAST(:run_ids AS uuid[])) "
    "ON CONFLICT (programme_id, year) DO UPDATE "
    "SET run_id = EXCLUDED.run_id, published_at = EXCLUDED.published_at"
)

SECTIONS_AS_TEXT = f"SELECT programme_id, year, sections::text AS sections FROM ({SECTIONS}) s"

SOURCES_OF_RUN = (
    "SELECT s.source_id, s.unit_id, s.breakdown FROM rollup_run r, "
    "unnest(r.source_ids, r.source_units, r.source_breakdowns) "
    "AS s(source_id, unit_id, breakdown) WHERE r.id = :run_id"
)

INDICATORS_OF_VERSIONS = (
    f"SELECT DISTINCT indicator_id FROM {FIGURES} iv "
    "WHERE version_id = ANY(CAST(:version_ids AS uuid[]))"
)

CELL_COLUMNS = (
    "indicator_id, disaggregation, breakdown, value, value_sum, value_count, value_min, value_max"
)

# Whether two runs hold the same cells and sections (set difference both ways).
SAME_RESULT = (
    "SELECT NOT EXISTS ("
    f"  (SELECT {CELL_COLUMNS} FROM rollup_cell WHERE run_id = :a "
    f"   EXCEPT SELECT {CELL_COLUMNS} FROM rollup_cell WHERE run_id = :b) "
    "  UNION ALL "
    f"  (SELECT {CELL_COLUMNS} FROM rollup_cell WHERE run_id = :b "
    f"   EXCEPT SELECT {CELL_COLUMNS} FROM rollup_cell WHERE run_id = :a)"
    ") AND (SELECT a.sections::jsonb = b.sections::jsonb "
    "       FROM rollup_run a, rollup_run b WHERE a.id = :a AND b.id = :b)"
)

# A run's totals over every unit, as a province's instance sends them upstream.
TOTAL_CELLS = """
SELECT i.key AS indicator, c.disaggregation, c.value, c.value_sum, c.value_count,
       c.value_min, c.value_max
FROM rollup_cell c JOIN indicator i ON i.id = c.indicator_id
WHERE c.run_id = :run_id AND c.breakdown = ''
ORDER BY i.key, c.disaggregation
"""

NEXT_SEQ = (
    "SELECT coalesce(max(seq), 0) + 1 FROM rollup_run "
    "WHERE programme_id = :programme_id AND year = :year"
)

# --- reading ------------------------------------------------------------------------------

PUBLICATION = (
    "SELECT run_id, published_at FROM rollup_publication "
    "WHERE programme_id = :programme_id AND year = :year"
)

PUBLISHED_RUN_ID = (
    "SELECT run_id FROM rollup_publication WHERE programme_id = :programme_id AND year = :year"
)

# The run published for a year, and a tag of every year's publication up to it.
# The targets of a year are also judged on the baseline figures: recording one changes
# the tag of every year.
PUBLISHED_STATE = (
    "SELECT max(run_id::text) FILTER (WHERE year = :year) AS run_id, "
    "md5(string_agg(run_id::text, ',' ORDER BY year) || coalesce((SELECT "
    "max(recorded_at)::text || ':' || count(*) FROM baseline_figure "
    "WHERE programme_id = :programme_id), '')) AS tag "
    "FROM rollup_publication WHERE programme_id = :programme_id AND year <= :year"
)

CELLS_OF_RUN = """
SELECT i.key AS indicator, c.disaggregation, c.breakdown, c.value, c.value_count
FROM rollup_cell c JOIN indicator i ON i.id = c.indicator_id
WHERE c.run_id = :run_id AND (CAST(:indicator AS text) IS NULL OR i.key = :indicator)
ORDER BY i.key, c.disaggregation, c.breakdown
"""

# Figures of a unit subtree, from the run's own sources: units below the breakdowns the
# cells keep are aggregated on request.
CELLS_OF_SUBTREE = f"""
WITH RECURSIVE subtree AS (
  SELECT id FROM org_unit WHERE key = :unit
  UNION ALL
  SELECT u.id FROM org_unit u JOIN subtree s ON u.parent_id = s.id
)
SELECT i.key AS indicator, iv.disaggregation, '' AS breakdown,
       {VALUE_BY_RULE} AS value, count(*) AS value_count
FROM rollup_run r
CROSS JOIN LATERAL unnest(r.source_ids, r.source_units) AS s(source_id, unit_id)
JOIN subtree ON subtree.id = s.unit_id
JOIN {FIGURES} iv ON iv.version_id = s.source_id
JOIN indicator i ON i.id = iv.indicator_id
WHERE r.id = :run_id AND (CAST(:indicator AS text) IS NULL OR i.key = :indicator)
GROUP BY i.key, i.aggregation_across_units, iv.disaggregation
ORDER BY i.key, iv.disaggregation
"""

YEARLY_TOTALS = """
SELECT pub.year, c.disaggregation, c.value
FROM rollup_publication pub
JOIN rollup_cell c ON c.run_id = pub.run_id AND c.breakdown = ''
WHERE pub.programme_id = :programme_id AND c.indicator_id = :indicator_id
  AND pub.year BETWEEN :start AND :end
"""

VERSION_PROVENANCE = f"""
SELECT s.source_id, u.key AS unit, v.report_id, pr.id AS record_id, pr.kind AS record_kind,
       coalesce(v.version_no, rv.version_no) AS version_no, iv.value
FROM rollup_run r
CROSS JOIN LATERAL unnest(r.source_ids, r.source_units, r.source_breakdowns)
  AS s(source_id, unit_id, breakdown)
JOIN {FIGURES} iv ON iv.version_id = s.source_id
LEFT JOIN report_version v ON v.id = s.source_id
LEFT JOIN programme_record_version rv ON rv.id = s.source_id
LEFT JOIN programme_record pr ON pr.id = rv.record_id
JOIN org_unit u ON u.id = s.unit_id
WHERE r.id = :run_id AND iv.indicator_id = :indicator_id
  AND iv.disaggregation = :disaggregation
  AND (:breakdown = '' OR s.breakdown = :breakdown)
ORDER BY u.key, pr.kind NULLS FIRST, s.source_id
"""

# A provincial run pushed by the province's instance names that run (its id is the
# province's run id) with its seq and fingerprint there.
RUN_PROVENANCE = """
SELECT s.source_id, p.key AS programme, c.value, ni.seq AS pushed_seq,
       ni.fingerprint AS pushed_fingerprint
FROM rollup_run national
CROSS JOIN LATERAL unnest(national.source_ids, national.source_breakdowns)
  AS s(source_id, breakdown)
JOIN rollup_run r ON r.id = s.source_id
JOIN programme p ON p.id = r.programme_id
LEFT JOIN national_intake ni ON ni.run_id = r.id
JOIN rollup_cell c ON c.run_id = s.source_id AND c.breakdown = ''
JOIN indicator i ON i.id = c.indicator_id AND i.national_indicator_id = :indicator_id
WHERE national.id = :run_id AND c.disaggregation = :disaggregation
  AND (:breakdown = '' OR s.breakdown = :breakdown)
ORDER BY p.key
"""

# What a run was computed from, once each: a provincial run's accepted report versions (a
# version appears once per breakdown in the arrays), a national run's provincial runs.
RUN_INPUTS = """
SELECT DISTINCT s.source_id, 'report_version' AS kind, u.key AS unit,
       NULL::text AS programme, v.report_id, v.version_no
FROM rollup_run r
CROSS JOIN LATERAL unnest(r.source_ids) AS s(source_id)
JOIN report_version v ON v.id = s.source_id
JOIN report rep ON rep.id = v.report_id
JOIN org_unit u ON u.id = rep.unit_id
WHERE r.id = :run_id
UNION ALL
SELECT DISTINCT s.source_id, 'rollup_run', NULL, p.key, NULL::uuid, NULL::integer
FROM rollup_run r
CROSS JOIN LATERAL unnest(r.source_ids) AS s(source_id)
JOIN rollup_run src ON src.id = s.source_id
JOIN programme p ON p.id = src.programme_id
WHERE r.id = :run_id
ORDER BY 3, 4, 5
"""

PUBLISHED_YEARS = (
    "SELECT year, run_id FROM rollup_publication WHERE programme_id = :p "
    "AND year BETWEEN :start AND :end ORDER BY year"
)

PHASE_CELLS = """
SELECT i.key AS indicator, c.disaggregation, c.breakdown,
       CASE i.aggregation_across_time
            WHEN 'sum' THEN sum(c.value)
            WHEN 'maximum' THEN max(c.value)
            ELSE (array_agg(c.value ORDER BY pub.year DESC))[1]
       END AS value,
       sum(c.value_count) AS value_count
FROM rollup_publication pub
JOIN rollup_cell c ON c.run_id = pub.run_id
JOIN indicator i ON i.id = c.indicator_id
WHERE pub.programme_id = :programme_id AND pub.year BETWEEN :start AND :end
  AND (CAST(:indicator AS text) IS NULL OR i.key = :indicator)
GROUP BY i.key, i.aggregation_across_time, c.disaggregation, c.breakdown
ORDER BY i.key, c.disaggregation, c.breakdown
"""


# Per programme-year: the latest acceptance of a report (its figures feed the rollup) and
# when the published run was computed. Monitoring reads it at scrape time.
FRESHNESS = """
WITH accepted AS (
    SELECT o.programme_id, o.year, max(r.accepted_at) AS latest
    FROM report r JOIN reporting_obligation o ON o.id = r.obligation_id
    WHERE r.accepted_at IS NOT NULL
    GROUP BY o.programme_id, o.year
)
SELECT p.key, a.year, a.latest, run.computed_at
FROM accepted a
JOIN programme p ON p.id = a.programme_id
LEFT JOIN rollup_publication pub ON pub.programme_id = a.programme_id AND pub.year = a.year
LEFT JOIN rollup_run run ON run.id = pub.run_id
ORDER BY p.key, a.year
"""
