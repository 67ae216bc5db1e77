"""Write paths benchmark: draft PUTs with If-Match, a 20,000-row spreadsheet import, and
``/health`` while imports run.

    make bench-writes     # or: .venv/bin/python -m bench.writes [--seconds 6] [--keep]

It serves the product as deployed (``uvicorn nscl_api.asgi:app``, one worker) on a database
of its own, ``nscl_bench_writes`` on ``BENCH_ADMIN_URL`` (created, migrated, seeded and
dropped afterwards unless ``--keep``), with Redis database 12 (``BENCH_WRITES_REDIS_URL``;
no job is queued), and prints:

(a) ``PUT /v1/reports/{id}/draft`` req/s and p99 under 50 connections: wrk with a Lua
    script (bench/draft_put.lua) that sends each report's ETag as If-Match and takes the
    new one from the answer, no two requests in flight on one report (a 412 is an error).
    The server is pinned to one core, wrk to the other, as in ``bench.rollups``; a figure
    is refused when wrk is missing or used more than 90 % of its cores;
(b) the import of a workbook of 20,000 rows (the reader's limit), built at run time with
    openpyxl from a catalogue the bench adds (10 indicators × 100 communes × 2 sexes × 10
    age groups: every row a distinct, valid figure): as a dry run (every row read and
    checked, nothing written) and applied (20,000 rows, the most a report holds), seconds and
    the peak resident memory of the server and of the parser process;
(c) ``/health`` (p50, p99, max) asked 50 times a second from a process of its own
    (bench.hardening's probe), at rest and while four such imports (dry runs) run at once,
    round after round. This server is not pinned: parsers, server and probe share the
    machine as in production. It has four parsers (shipped: two) so that the four imports
    run at once, and 120 s for each (shipped: 15 s to read, 10 s to wait for a parser), so
    that on a busy machine they are checked rather than refused (``--parsers``,
    ``--parse-seconds``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import itertools
import json
import os
import statistics
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx
from openpyxl import Workbook
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

import nscl_domain.composition  # noqa: F401 -- an entry point: wires the contexts together
from bench import http_load
from bench.databases import BenchDatabase, create_client
from bench.hardening import Latencies, Probe
from bench.rollups import load_average, machine
from nscl_api.examples import REQUEST_EXAMPLES
from nscl_domain.reports.content import MAX_INDICATOR_VALUES
from nscl_domain.reports.importing import MAX_DATA_ROWS, XLSX_MEDIA_TYPE

BENCH = BenchDatabase("nscl_bench_writes")
REDIS_URL = os.environ.get("BENCH_WRITES_REDIS_URL", "redis://127.0.0.1:6379/12")
PUT_PORT = 8751
IMPORT_PORT = 8752
PROGRAMME = "bac-kan-nscl"
# Units of today: Bắc Kạn's departments ended with the province on 2025-07-01.
UNIT = "tn-doh"
REVIEWER_UNIT = "tn-dost"
YEAR = 2026
CONNECTIONS = 50
# Two per connection: a connection's next request never waits for a report to come free.
REPORTS = 2 * CONNECTIONS
CONCURRENT_IMPORTS = 4
PUT_TIMEOUT_SECONDS = 30
LUA_SCRIPT = Path(__file__).with_name("draft_put.lua")
# The most typed values a report holds: an applied import of more is refused.
DRAFT_VALUES = MAX_INDICATOR_VALUES

# The bench's own breakdown, enough distinct figures for a workbook of 20,000 rows.
COMMUNES = tuple(f"tn-xa-{n:03d}" for n in range(1, 101))
SEXES = ("male", "female")
AGE_GROUPS = tuple(f"{low}-{low + 4}" for low in range(15, 65, 5))
BENCH_INDICATORS = tuple(f"trained-by-commune-{n:02d}" for n in range(1, 11))
DIMENSIONS = {"commune": COMMUNES, "sex": SEXES, "age_group": AGE_GROUPS}
COLUMNS = ("unit", "year", "indicator", *DIMENSIONS, "value", "name_vi")

ADD_INDICATOR = """
INSERT INTO indicator (id, key, programme_id, name_vi, name_en, unit, aggregation_across_units,
                       aggregation_across_time, disaggregations, derived_from)
SELECT gen_random_uuid(), :key, p.id, :name_vi, :name_en, 'person', 'sum', 'sum',
       CAST(:disaggregations AS jsonb), NULL
FROM programme p WHERE p.key = :programme
"""


async def add_bench_indicators() -> None:
    """Typed indicators broken down by commune, sex and age group (the catalogue has no
    write API: it is the plan's, loaded by ``nscl seed``)."""
    disaggregations = json.dumps(
        [{"dimension": name, "values": list(values)} for name, values in DIMENSIONS.items()]
    )
    engine = create_async_engine(BENCH.url())
    async with engine.begin() as conn:
        for number, key in enumerate(BENCH_INDICATORS, start=1):
            await conn.execute(
                text(ADD_INDICATOR),
                {
                    "key": key,
                    "name_vi": f"Số người được tập huấn theo xã, nhóm {number}",
                    "name_en": f"People trained by commune, group {number}",
                    "disaggregations": disaggregations,
                    "programme": PROGRAMME,
                },
            )
    await engine.dispose()


def workbook(rows: int) -> bytes:
    """A filled-in sheet of ``rows`` figures under a header of column keys, each row a
    distinct (indicator, breakdown); the same bytes' worth of rows on every run."""
    book = Workbook(write_only=True)
    sheet = book.create_sheet("values")
    sheet.append(list(COLUMNS))
    combinations = itertools.product(BENCH_INDICATORS, COMMUNES, SEXES, AGE_GROUPS)
    for number, (indicator, commune, sex, age) in enumerate(
        itertools.islice(combinations, rows), start=1
    ):
        name = f"Số người được tập huấn, {commune}, {sex}, {age}"
        sheet.append([UNIT, YEAR, indicator, commune, sex, age, number * 37 % 1000, name])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


# --- set-up: clients, tokens, reports ---------------------------------------------------


def bearer(base_url: str, client: tuple[str, str]) -> dict[str, str]:
    issued = httpx.post(
        f"{base_url}/v1/oauth/token",
        data={"grant_type": "client_credentials", "client_id": client[0],
              "client_secret": client[1]},
        # A secret check runs at the lowest CPU priority: slow when the machine is busy.
        timeout=60,
    )  # fmt: skip
    issued.raise_for_status()
    return {"Authorization": f"Bearer {issued.json()['access_token']}"}


@dataclass(frozen=True)
class Callers:
    reporter: dict[str, str]
    reviewer: dict[str, str]


def open_reports(base_url: str, callers: Callers, count: int) -> list[str]:
    """``count`` draft reports of the reporter's unit, one per ad hoc request to it."""
    ids = []
    with httpx.Client(base_url=base_url, timeout=30) as http:
        for number in range(1, count + 1):
            requested = http.post(
                f"/v1/programmes/{PROGRAMME}/reporting-requests",
                json={
                    "title_vi": f"Báo cáo nhanh số {number}",
                    "title_en": f"Quick report {number}",
                    "year": YEAR,
                    "due_date": f"{YEAR + 1}-01-31",
                    "units": [UNIT],
                },
                headers=callers.reviewer,
            )
            requested.raise_for_status()
            obligations = http.get(
                f"/v1/programmes/{PROGRAMME}/obligations",
                params={"request_id": requested.json()["id"]},
                headers=callers.reporter,
            )
            obligations.raise_for_status()
            created = http.post(
                "/v1/reports",
                json={"obligation_id": obligations.json()["items"][0]["id"]},
                headers=callers.reporter,
            )
            created.raise_for_status()
            ids.append(str(created.json()["id"]))
    return ids


def current_etags(base_url: str, reporter: dict[str, str], ids: Sequence[str]) -> list[str]:
    with httpx.Client(base_url=base_url, timeout=30, headers=reporter) as http:
        return [http.get(f"/v1/reports/{report}").headers["ETag"] for report in ids]


# --- (a) draft PUTs ---------------------------------------------------------------------


def put_figure(
    base_url: str,
    server_pid: int,
    reporter: dict[str, str],
    ids: Sequence[str],
    seconds: int,
    rounds: int,
) -> http_load.LoadResult:
    """Draft PUTs with If-Match under 50 connections: the median round."""
    body = json.dumps(REQUEST_EXAMPLES["updateReportDraft"][1], ensure_ascii=False)
    threads = http_load.wrk_threads(CONNECTIONS)
    results = []
    with tempfile.TemporaryDirectory() as scratch:
        body_file = Path(scratch) / "draft.json"
        body_file.write_text(body, encoding="utf-8")
        reports_file = Path(scratch) / "reports.txt"

        def run(duration: int) -> http_load.LoadResult:
            # Each run starts from the ETags as they are: the last run moved them on.
            etags = current_etags(base_url, reporter, ids)
            lines = [f"{report} {tag}" for report, tag in zip(ids, etags, strict=True)]
            reports_file.write_text("\n".join(lines) + "\n")
            return http_load.measure(
                f"{base_url}/v1/reports",
                connections=CONNECTIONS,
                seconds=duration,
                headers=reporter,
                script=LUA_SCRIPT,
                script_args=[str(reports_file), str(body_file), str(threads)],
                server_pid=server_pid,
                # wrk's 2 s would count a slow save as a socket error and leave it out of
                # the latencies: the p99 would be capped at 2 s.
                timeout_seconds=PUT_TIMEOUT_SECONDS,
            )

        run(2)  # warm-up: imports, pools, caches
        results = [run(seconds) for _ in range(rounds)]
    ordered = sorted(results, key=lambda r: r.rps)
    return ordered[len(ordered) // 2]


# --- (b) and (c) imports ------------------------------------------------------------------


def _rss_mib(pid: int, field: str = "VmRSS") -> float:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024
    return 0.0


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            # The command may hold spaces and brackets: the fields follow the last ")".
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(stat.parent.name))
    return found


class MemorySampler:
    """Samples every 10 ms the resident memory of the server and, apart, of the largest of
    its child processes (the parsers), until stopped; the peaks are kept."""

    def __init__(self, server_pid: int) -> None:
        self.server_pid = server_pid
        self.children = _children(server_pid)
        self.server_peak = _rss_mib(server_pid)
        self.parser_peak = max((_rss_mib(c) for c in self.children), default=0.0)
        self.server_before, self.parser_before = self.server_peak, self.parser_peak
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._done.is_set():
            self.server_peak = max(self.server_peak, _rss_mib(self.server_pid))
            for child in self.children:
                self.parser_peak = max(self.parser_peak, _rss_mib(child))
            time.sleep(0.01)

    def __enter__(self) -> MemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._done.set()
        self._thread.join()


@dataclass(frozen=True)
class ImportFigure:
    label: str
    seconds: list[float]
    status: int
    outcome: dict[str, object]
    server_before: float
    server_peak: float
    parser_before: float
    parser_peak: float


def import_url(base_url: str, report: str, dry_run: bool) -> str:
    return f"{base_url}/v1/reports/{report}/indicator-values/import?dry_run={str(dry_run).lower()}"


def warm_parsers(base_url: str, report: str, reporter: dict[str, str], parsers: int) -> None:
    """The parser processes start on first use: as many small uploads at once start all."""
    small = b"indicator,value\ntraining-courses,1\n"
    headers = {**reporter, "Content-Type": "text/csv"}

    async def both() -> None:
        async with httpx.AsyncClient(timeout=60) as http:
            answers = await asyncio.gather(
                *(
                    http.post(import_url(base_url, report, True), content=small, headers=headers)
                    for _ in range(parsers)
                )
            )
        for answer in answers:
            answer.raise_for_status()

    asyncio.run(both())


def import_figure(
    label: str,
    base_url: str,
    server_pid: int,
    report: str,
    reporter: dict[str, str],
    data: bytes,
    dry_run: bool,
    repeats: int,
) -> ImportFigure:
    seconds = []
    outcome: dict[str, object] = {}
    status = 0
    with MemorySampler(server_pid) as memory, httpx.Client(timeout=600) as http:
        for _ in range(repeats):
            headers = {**reporter, "Content-Type": XLSX_MEDIA_TYPE}
            if not dry_run:
                headers["If-Match"] = current_etags(base_url, reporter, [report])[0]
            started = time.perf_counter()
            answer = http.post(import_url(base_url, report, dry_run), content=data, headers=headers)
            seconds.append(time.perf_counter() - started)
            status, outcome = answer.status_code, answer.json()
    return ImportFigure(
        label, seconds, status, outcome, memory.server_before, memory.server_peak,
        memory.parser_before, memory.parser_peak,
    )  # fmt: skip


async def _import_rounds(
    base_url: str, report: str, reporter: dict[str, str], data: bytes, seconds: float
) -> tuple[Counter[int], list[float], int, float, float]:
    """Four dry-run imports at once, round after round, for at least ``seconds``."""
    statuses: Counter[int] = Counter()
    took: list[float] = []
    headers = {**reporter, "Content-Type": XLSX_MEDIA_TYPE}
    url = import_url(base_url, report, True)
    async with httpx.AsyncClient(timeout=600) as http:

        async def one() -> None:
            sent = time.monotonic()
            answer = await http.post(url, content=data, headers=headers)
            took.append(time.monotonic() - sent)
            statuses[answer.status_code] += 1

        start = time.monotonic()
        rounds = 0
        while rounds == 0 or time.monotonic() - start < seconds:
            await asyncio.gather(*(one() for _ in range(CONCURRENT_IMPORTS)))
            rounds += 1
        end = time.monotonic()
    return statuses, took, rounds, start, end


@dataclass(frozen=True)
class HealthFigures:
    rest: Latencies
    during: Latencies
    statuses: Counter[int]
    import_seconds: list[float]
    rounds: int


def health_figures(
    base_url: str, report: str, reporter: dict[str, str], data: bytes, seconds: float
) -> HealthFigures:
    health = f"{base_url}/health"
    probe = Probe(health)
    time.sleep(seconds)
    rest = Latencies.of(probe.stop(), 0, float("inf"))
    probe = Probe(health)
    statuses, took, rounds, start, end = asyncio.run(
        _import_rounds(base_url, report, reporter, data, seconds)
    )
    during = Latencies.of(probe.stop(), start, end)
    return HealthFigures(rest, during, statuses, took, rounds)


# --- report -------------------------------------------------------------------------------


async def versions() -> str:
    return f"PostgreSQL {await BENCH.server_version()}, {http_load.stack_versions('openpyxl')}"


def print_put(result: http_load.LoadResult | None, load: str) -> None:
    print(f"\n(a) PUT /v1/reports/{{id}}/draft with If-Match, {CONNECTIONS} connections, "
          f"{REPORTS} reports ({load})")  # fmt: skip
    if result is None:
        print("   not measured: wrk is not installed (apt-get install -y wrk)")
        return
    if result.generator_bound:
        print(
            f"   REFUSED: the load generator was the bottleneck ({result.tool} at "
            f"{result.generator_cpu:.0%} of its cores)"
        )
        return
    print(
        f"   {result.rps:,.0f} req/s  p50 {result.p50_ms:.1f} ms  p99 {result.p99_ms:.1f} ms  "
        f"{result.errors} errors of {result.requests:,} (statuses: {result.statuses or '?'})"
    )
    print(
        f"   server CPU {result.server_cpu_us / 1000:.1f} ms per request, "
        f"{result.server_cpu:.0%} of a core  ({result.tool} at "
        f"{result.generator_cpu:.0%} of its cores; server pinned to CPU "
        f"{http_load.server_cpus()}, wrk to {http_load.load_cpus()}; PostgreSQL not pinned)"
    )


def print_imports(figures: Sequence[ImportFigure], load: str) -> None:
    print(f"\n(b) spreadsheet import, one at a time ({load})")
    print(
        f"   {'upload':<44} {'status':>6} {'median s':>8} {'max s':>6} "
        f"{'server MiB':>15} {'parser MiB':>15}"
    )
    for f in figures:
        print(
            f"   {f.label:<44} {f.status:>6} {statistics.median(f.seconds):>8.2f} "
            f"{max(f.seconds):>6.2f} {f.server_before:>6.0f} → {f.server_peak:>5.0f} "
            f"{f.parser_before:>6.0f} → {f.parser_peak:>5.0f}"
        )
        print(f"      answer: {json.dumps(f.outcome)[:160]}")


def print_health(health: HealthFigures, load: str) -> None:
    print(f"\n(c) /health asked 50 times a second from a process of its own ({load})")
    print(f"   {'during':<44} {'n':>5} {'err':>4} {'p50 ms':>7} {'p99 ms':>7} {'max ms':>7}")
    rows = [
        ("rest", health.rest),
        (f"{CONCURRENT_IMPORTS} imports of 20,000 rows at once, {health.rounds} rounds",
         health.during),
    ]  # fmt: skip
    for label, figures in rows:
        print(
            f"   {label:<44} {figures.count:>5} {figures.errors:>4} {figures.p50:>7.1f} "
            f"{figures.p99:>7.1f} {figures.max:>7.1f}"
        )
    answers = ", ".join(f"{status}: {n}" for status, n in sorted(health.statuses.items()))
    took = sorted(health.import_seconds)
    print(
        f"   the imports' answers {answers}; each took median {statistics.median(took):.2f} s, "
        f"max {took[-1]:.2f} s"
    )


# --- main ---------------------------------------------------------------------------------


@contextlib.contextmanager
def product(
    port: int, *, pinned: bool, settings: dict[str, str] | None = None
) -> Iterator[tuple[str, int]]:
    """The product as deployed, and its process id (for its memory)."""
    env = {"NSCL_DATABASE_URL": BENCH.url(), "NSCL_REDIS_URL": REDIS_URL,
           "NSCL_LOG_LEVEL": "WARNING", **(settings or {})}  # fmt: skip
    with http_load.serve(
        "nscl_api.asgi:app", port=port, env=env, factory=False, pinned=pinned
    ) as base_url:
        pids = [pid for pid in _children(os.getpid()) if f"{port}" in _cmdline(pid)]
        yield base_url, pids[0]


def _cmdline(pid: int) -> str:
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    return ""


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Write paths benchmark.")
    parser.add_argument("--seconds", type=int, default=6, help="of PUT load per round")
    parser.add_argument("--rounds", type=int, default=3, help="PUT rounds (the median is kept)")
    parser.add_argument("--repeats", type=int, default=3, help="of each import")
    parser.add_argument(
        "--health-seconds", type=float, default=7, help="of /health probing, at rest and not"
    )
    parser.add_argument(
        "--parsers",
        type=int,
        default=CONCURRENT_IMPORTS,
        help="NSCL_UPLOAD_PARSERS of the import server (shipped: 2); with fewer than four, "
        "the imports of (c) take turns",
    )
    parser.add_argument(
        "--parse-seconds",
        type=float,
        default=120,
        help="NSCL_UPLOAD_PARSE_SECONDS and NSCL_UPLOAD_WAIT_SECONDS of the import server "
        "(shipped: 15 and 10): on a busy machine four 20,000-row imports at once would "
        "otherwise be refused before any is checked",
    )
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    args = parser.parse_args(argv)
    print(f"machine: {machine()}; {load_average()} at start", flush=True)
    started = time.perf_counter()
    full = workbook(MAX_DATA_ROWS)
    applied = workbook(DRAFT_VALUES)
    print(
        f"workbooks built with openpyxl: {MAX_DATA_ROWS:,} rows ({len(full) / 1024:.0f} KiB), "
        f"{DRAFT_VALUES:,} rows ({len(applied) / 1024:.0f} KiB) in "
        f"{time.perf_counter() - started:.1f} s",
        flush=True,
    )
    asyncio.run(BENCH.recreate())
    try:
        BENCH.nscl("db", "upgrade")
        BENCH.nscl("seed")
        asyncio.run(add_bench_indicators())
        reporter_client = asyncio.run(create_client(BENCH.url(), "reporter", UNIT))
        reviewer_client = asyncio.run(create_client(BENCH.url(), "reviewer", REVIEWER_UNIT))
        put: http_load.LoadResult | None = None
        with product(PUT_PORT, pinned=True) as (base_url, put_pid):
            callers = Callers(bearer(base_url, reporter_client), bearer(base_url, reviewer_client))
            ids = open_reports(base_url, callers, REPORTS + 2)
            if http_load.wrk_version() != "none":
                put = put_figure(
                    base_url, put_pid, callers.reporter, ids[:REPORTS], args.seconds, args.rounds
                )
            put_load = load_average()
        upload_settings = {
            "NSCL_UPLOAD_PARSERS": str(args.parsers),
            "NSCL_UPLOAD_PARSE_SECONDS": str(args.parse_seconds),
            "NSCL_UPLOAD_WAIT_SECONDS": str(args.parse_seconds),
        }
        print(f"import server: {upload_settings}", flush=True)
        with product(IMPORT_PORT, pinned=False, settings=upload_settings) as (base_url, pid):
            reporter = bearer(base_url, reporter_client)
            dry_report, applied_report = ids[REPORTS], ids[REPORTS + 1]
            warm_parsers(base_url, dry_report, reporter, args.parsers)
            imports = [
                import_figure(f"{MAX_DATA_ROWS:,} rows, dry run", base_url, pid, dry_report,
                              reporter, full, True, args.repeats),
                import_figure(f"{DRAFT_VALUES:,} rows, applied (If-Match)", base_url, pid,
                              applied_report, reporter, applied, False, args.repeats),
            ]  # fmt: skip
            import_load = load_average()
            health = health_figures(base_url, dry_report, reporter, full, args.health_seconds)
            health_load = load_average()
        print(f"versions: {asyncio.run(versions())}")
    finally:
        if not args.keep:
            asyncio.run(BENCH.drop())
    print_put(put, put_load)
    print_imports(imports, import_load)
    print_health(health, health_load)
    print(
        "\nthe machine is shared: other processes may load it; the load averages (1/5 min) "
        "beside each group say how much"
    )


if __name__ == "__main__":
    main()
