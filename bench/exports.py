"""Export benchmark: the audit trail as CSV and XLSX, 10,000 and 100,000 events.

    make bench-exports     # or: .venv/bin/python -m bench.exports [--events 100000]

The API runs under uvicorn in a process of its own; the benchmark downloads the whole trail
(streamed, read and thrown away by the client) and samples the server's resident memory
every 10 ms while it answers. It prints, per format and size: seconds to the first byte and
to the last, the bytes sent, the server's resident memory before the export and its peak
during it. Flat memory means the peak does not grow with the number of events: the 100,000
row export peaks where the 10,000 row one does.

It creates (and afterwards drops) its own database ``nscl_bench_exports`` on the PostgreSQL
of ``BENCH_ADMIN_URL`` (default: the local server) and uses Redis database 13 (no job is
queued).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

import nscl_domain.composition  # noqa: F401  # the repositories the use cases get
from bench.databases import BenchDatabase, create_client
from nscl_domain.reports.importing import XLSX_MEDIA_TYPE

DATABASE = "nscl_bench_exports"
REDIS_URL = os.environ.get("BENCH_EXPORTS_REDIS_URL", "redis://127.0.0.1:6379/13")
ROOT = Path(__file__).resolve().parent.parent

# An event as the service writes them: a unit's draft before and after, some Vietnamese.
INSERT_EVENTS = """
INSERT INTO audit_event (id, occurred_at, client_id, unit_id, unit_key, action, object_type,
                         object_id, before, after, request_id)
SELECT gen_random_uuid(), now() - make_interval(secs => g), 'bench-reporter', NULL, 'bk-doh',
       'report.draft_updated', 'report', md5(g::text),
       jsonb_build_object('revision', g, 'narrative', 'Kết quả thực hiện nhiệm vụ năm ' || g,
                          'values', jsonb_build_array(g, g + 1, g + 2)),
       jsonb_build_object('revision', g + 1, 'narrative', 'Tồn tại, hạn chế và nguyên nhân ' || g,
                          'values', jsonb_build_array(g, g + 1, g + 3)),
       md5((g * 7)::text)
FROM generate_series(CAST(:first AS integer), CAST(:last AS integer)) g
"""


BENCH = BenchDatabase(DATABASE)


async def add_events(first: int, last: int) -> None:
    engine = create_async_engine(BENCH.url())
    async with engine.begin() as conn:
        await conn.execute(text(INSERT_EVENTS), {"first": first, "last": last})
    await engine.dispose()


async def auditor_client() -> tuple[str, str]:
    return await create_client(BENCH.url(), "auditor", "bk-dost")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def serve() -> Iterator[tuple[str, int]]:
    """The product as deployed (its ASGI entry point, one uvicorn worker): URL and pid."""
    port = _free_port()
    env = {
        **os.environ,
        "NSCL_DATABASE_URL": BENCH.url(),
        "NSCL_REDIS_URL": REDIS_URL,
        "NSCL_LOG_LEVEL": "WARNING",
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "nscl_api.asgi:app", "--host", "127.0.0.1",
         "--port", str(port), "--workers", "1", "--no-access-log", "--log-level", "warning",
         "--app-dir", str(ROOT)],
        env=env,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
                break
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the API did not start")
            time.sleep(0.1)
        yield f"http://127.0.0.1:{port}", server.pid
    finally:
        server.terminate()
        server.wait(timeout=10)


def rss_mb(pid: int) -> float:
    """Resident memory of the process now, in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


@dataclass
class Figure:
    kind: str
    events: int
    first_byte_s: float
    seconds: float
    bytes: int
    rss_before_mb: float
    rss_peak_mb: float


def export(base: str, token: str, pid: int, kind: str, events: int) -> Figure:
    """Download the trail once, sampling the server's memory all along."""
    accept = "text/csv" if kind == "csv" else XLSX_MEDIA_TYPE
    before = rss_mb(pid)
    peak = before
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, rss_mb(pid))
            time.sleep(0.01)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    size, first_byte = 0, 0.0
    started = time.perf_counter()
    with httpx.stream(
        "GET",
        f"{base}/v1/audit-events",
        params={"action": "report.draft_updated"},
        headers={"Authorization": f"Bearer {token}", "Accept": accept},
        timeout=600,
    ) as answer:
        answer.raise_for_status()
        for block in answer.iter_bytes():
            if not size:
                first_byte = time.perf_counter() - started
            size += len(block)
    seconds = time.perf_counter() - started
    done.set()
    sampler.join()
    return Figure(kind, events, first_byte, seconds, size, before, peak)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Export benchmark.")
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    args = parser.parse_args(argv)
    asyncio.run(BENCH.recreate())
    figures: list[Figure] = []
    try:
        BENCH.nscl("db", "upgrade")
        BENCH.nscl("seed")
        client_id, secret = asyncio.run(auditor_client())
        with serve() as (base, pid):
            issued = httpx.post(
                f"{base}/v1/oauth/token",
                data={"grant_type": "client_credentials", "client_id": client_id,
                      "client_secret": secret},
            )  # fmt: skip
            issued.raise_for_status()
            token = str(issued.json()["access_token"])
            asyncio.run(add_events(1, args.small))
            export(base, token, pid, "csv", args.small)  # warm-up: imports, pools, caches
            for kind in ("csv", "xlsx"):
                figures.append(export(base, token, pid, kind, args.small))
            asyncio.run(add_events(args.small + 1, args.events))
            for kind in ("csv", "xlsx"):
                figures.append(export(base, token, pid, kind, args.events))
    finally:
        if not args.keep:
            asyncio.run(BENCH.drop())
    print()
    print(f"{'format':<6} {'events':>8} {'1st byte s':>10} {'seconds':>8} {'MB sent':>8} "
          f"{'RSS before MiB':>15} {'peak MiB':>9} {'growth MiB':>10}")  # fmt: skip
    for f in figures:
        print(
            f"{f.kind:<6} {f.events:>8,} {f.first_byte_s:>10.2f} {f.seconds:>8.1f} "
            f"{f.bytes / 1e6:>8.1f} {f.rss_before_mb:>15.0f} {f.rss_peak_mb:>9.0f} "
            f"{f.rss_peak_mb - f.rss_before_mb:>10.1f}"
        )


if __name__ == "__main__":
    main()
