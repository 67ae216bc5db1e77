"""HTTP load measurement with wrk (an asyncio load generator only when asked for).

Also the baselines an endpoint is compared against: a FastAPI app whose only route runs
``SELECT 1`` on a plain asyncpg pool, and one that returns fixed bytes from memory (gzipped
ahead of time when the client accepts gzip): the stack's limit for that body. And ``serve``
to run any ASGI app factory under uvicorn in a subprocess, so the load generator does not
share a process (or a GIL) with the server.

    BENCH_DATABASE_URL=postgresql+asyncpg://…/db .venv/bin/python -m bench.http_load
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import gzip
import importlib.metadata
import os
import platform
import re
import resource
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import asyncpg  # type: ignore[import-untyped]
import httpx
from fastapi import FastAPI, Request, Response
from sqlalchemy.engine import make_url

REPOSITORY_ROOT = Path(__file__).resolve().parent.parent
STARTUP_TIMEOUT_SECONDS = 30.0
POOL_SIZE = 10
# Above this share of its cores' time the generator, not the server, limits the figures.
GENERATOR_CPU_LIMIT = 0.9


class GeneratorUnavailable(RuntimeError):
    """wrk is not installed: figures of the Python generator measure the generator."""


@dataclass(frozen=True)
class LoadResult:
    tool: str  # "wrk" or "python"
    requests: int
    seconds: float
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int  # non-2xx/3xx responses and socket errors
    # What a script counted per status ("200=1234 412=2"), when it prints a "statuses:" line.
    statuses: str = ""
    # Share of its cores' time the generator used: near 1, it was the bottleneck.
    generator_cpu: float = 0.0
    # The server process's CPU time (all its threads) per request answered, in µs, and the
    # share of one core it got: read from /proc when the server's pid is known (``serve``).
    # On a shared machine req/s follow what the server was given; CPU per request does not.
    server_cpu_us: float = float("nan")
    server_cpu: float = float("nan")

    @property
    def generator_bound(self) -> bool:
        return self.tool != "wrk" or self.generator_cpu > GENERATOR_CPU_LIMIT


def measure(
    url: str,
    *,
    connections: int = 50,
    seconds: int = 10,
    headers: dict[str, str] | None = None,
    allow_python: bool = False,
    server_pid: int | None = None,
    script: Path | None = None,
    script_args: Sequence[str] = (),
    timeout_seconds: int | None = None,
) -> LoadResult:
    """Apply load to ``url`` from ``connections`` keep-alive connections for ``seconds``.

    ``script``: a wrk Lua script that makes the requests (method, path, headers, body) and
    reads the answers, given ``script_args``; wrk only (the Python generator runs no Lua).
    ``timeout_seconds``: wrk's per-request timeout (its own default, 2 s, otherwise); an
    answer slower than that counts as a socket error and is left out of the latencies.

    Uses wrk; without it, raises GeneratorUnavailable unless ``allow_python``: the asyncio
    generator saturates one core long before the server does (both endpoints then read the
    same ~2,000 req/s), so its figures are the generator's. Call it from synchronous code:
    the fallback runs its own event loop.
    """
    wrk = shutil.which("wrk")
    if wrk is None and (not allow_python or script is not None):
        raise GeneratorUnavailable(
            "wrk is not installed (apt-get install -y wrk; `make bench` does it): "
            "the Python generator would measure itself, not the server."
        )
    before = process_cpu_seconds(server_pid)
    if wrk is not None:
        result = _measure_with_wrk(
            wrk, url, connections, seconds, headers or {}, script, tuple(script_args),
            timeout_seconds,
        )  # fmt: skip
    else:
        result = asyncio.run(_measure_with_python(url, connections, seconds, headers or {}))
    used = process_cpu_seconds(server_pid) - before
    if result.requests == 0 or used != used:  # no request, or no pid (nan)
        return result
    return dataclasses.replace(
        result, server_cpu_us=used / result.requests * 1e6, server_cpu=used / result.seconds
    )


def process_cpu_seconds(pid: int | None) -> float:
    """User and system CPU time of a process and all its threads so far (nan without pid)."""
    if pid is None:
        return float("nan")
    # The fields after the command name (which may hold spaces): utime and stime are the
    # 14th and 15th of the line, in clock ticks.
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wrk_version() -> str:
    wrk = shutil.which("wrk")
    if wrk is None:
        return "none"
    completed = subprocess.run([wrk, "-v"], capture_output=True, text=True, check=False)
    first = (completed.stdout + completed.stderr).strip().splitlines()[0]
    return first.partition(" Copyright")[0]


def server_cpus() -> set[int] | None:
    """The server's cores: the first of the machine, when it has more than one."""
    available = sorted(os.sched_getaffinity(0))
    return {available[0]} if len(available) > 1 else None


def load_cpus() -> set[int] | None:
    """The load generator's cores: all but the server's, so it never takes the server's CPU."""
    available = sorted(os.sched_getaffinity(0))
    return set(available[1:]) if len(available) > 1 else None


def wrk_threads(connections: int) -> int:
    """The threads wrk is run with (a script that splits work between them needs to know)."""
    cpus = load_cpus()
    # wrk gives every thread at least one connection; one thread per core it may use.
    return min(len(cpus) if cpus else 2, connections)


def _pinned_to(cpus: set[int] | None) -> Callable[[], None] | None:
    if cpus is None:
        return None
    return lambda: os.sched_setaffinity(0, cpus)


def _measure_with_wrk(
    wrk: str,
    url: str,
    connections: int,
    seconds: int,
    headers: dict[str, str],
    script: Path | None = None,
    script_args: tuple[str, ...] = (),
    timeout_seconds: int | None = None,
) -> LoadResult:
    cpus = load_cpus()
    threads = wrk_threads(connections)
    command = [wrk, f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency"]
    if timeout_seconds is not None:
        command.append(f"--timeout={timeout_seconds}s")
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    if script is not None:
        command += ["-s", str(script)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    completed = subprocess.run(
        [*command, url, *(["--", *script_args] if script_args else [])],
        capture_output=True,
        text=True,
        check=True,
        timeout=seconds + 60,
        preexec_fn=_pinned_to(cpus),
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    result = parse_wrk_output(completed.stdout)
    used = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    cores = len(cpus) if cpus else os.cpu_count() or 1
    return dataclasses.replace(result, generator_cpu=used / (result.seconds * cores))


_DURATION_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}
_TOTALS = re.compile(r"(\d+) requests in ([\d.]+)(us|ms|s|m|h),")
_RATE = re.compile(r"Requests/sec:\s+([\d.]+)")
_SOCKET_ERRORS = re.compile(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")
_BAD_STATUS = re.compile(r"Non-2xx or 3xx responses: (\d+)")
_STATUSES = re.compile(r"^statuses: (.*)$", re.MULTILINE)


def _percentile_line(percent: int) -> re.Pattern[str]:
    return re.compile(rf"^\s*{percent}%\s+([\d.]+)(us|ms|s|m|h)\s*$", re.MULTILINE)


def parse_wrk_output(output: str) -> LoadResult:
    """Read the figures of ``wrk --latency`` output; durations are converted to ms."""

    def duration_ms(pattern: re.Pattern[str]) -> float:
        found = pattern.search(output)
        if found is None:
            raise ValueError(f"wrk output lacks {pattern.pattern!r}:\n{output}")
        return float(found.group(1)) * _DURATION_UNITS_MS[found.group(2)]

    totals = _TOTALS.search(output)
    rate = _RATE.search(output)
    if totals is None or rate is None:
        raise ValueError(f"wrk output lacks its totals:\n{output}")
    # wrk prints these two lines only when there is something to count.
    socket_errors = _SOCKET_ERRORS.search(output)
    bad_status = _BAD_STATUS.search(output)
    errors = sum(int(n) for n in socket_errors.groups()) if socket_errors else 0
    errors += int(bad_status.group(1)) if bad_status else 0
    return LoadResult(
        tool="wrk",
        requests=int(totals.group(1)),
        seconds=float(totals.group(2)) * _DURATION_UNITS_MS[totals.group(3)] / 1000,
        rps=float(rate.group(1)),
        p50_ms=duration_ms(_percentile_line(50)),
        p99_ms=duration_ms(_percentile_line(99)),
        errors=errors,
        statuses=statuses.group(1).strip() if (statuses := _STATUSES.search(output)) else "",
    )


async def _measure_with_python(
    url: str, connections: int, seconds: int, headers: dict[str, str]
) -> LoadResult:
    latencies_ms: list[float] = []
    errors = 0
    # A client per worker: one httpx pool shared by dozens of tasks spends its time in the
    # pool's own bookkeeping, and the figures would measure httpx rather than the server.
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    async with contextlib.AsyncExitStack() as stack:
        # All built before the clock starts: each builds an SSL context, tens of ms of CPU
        # that would otherwise stall the requests of the workers already running.
        clients = [
            await stack.enter_async_context(
                httpx.AsyncClient(limits=limits, headers=headers, timeout=30.0)
            )
            for _ in range(connections)
        ]
        started = time.perf_counter()
        deadline = started + seconds

        async def worker(client: httpx.AsyncClient) -> None:
            nonlocal errors
            while time.perf_counter() < deadline:
                sent = time.perf_counter()
                try:
                    response = await client.get(url)
                except httpx.TransportError:
                    # As wrk counts socket errors: a failure, not a completed request.
                    errors += 1
                    continue
                latencies_ms.append((time.perf_counter() - sent) * 1000)
                # wrk's "Non-2xx or 3xx responses" counts every status from 400 up.
                if response.status_code >= 400:
                    errors += 1

        await asyncio.gather(*(worker(client) for client in clients))
        elapsed = time.perf_counter() - started
    latencies_ms.sort()
    return LoadResult(
        tool="python",
        requests=len(latencies_ms),
        seconds=elapsed,
        rps=len(latencies_ms) / elapsed,
        p50_ms=_nearest_rank(latencies_ms, 50),
        p99_ms=_nearest_rank(latencies_ms, 99),
        errors=errors,
    )


def _nearest_rank(ordered: Sequence[float], percent: int) -> float:
    if not ordered:
        return float("nan")
    rank = max(1, -(-len(ordered) * percent // 100))
    return ordered[rank - 1]


def bare_select1_app(database_url: str) -> FastAPI:
    """The baseline: FastAPI and a plain asyncpg pool, no ORM, no middleware, no auth."""
    # asyncpg takes a libpq-style DSN, without SQLAlchemy's driver suffix.
    dsn = make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)
    pools: list[asyncpg.Pool] = []

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        pool = await asyncpg.create_pool(dsn, min_size=POOL_SIZE, max_size=POOL_SIZE)
        pools.append(pool)
        try:
            yield
        finally:
            await pool.close()

    app = FastAPI(lifespan=lifespan, openapi_url=None)

    @app.get("/select1")
    async def select1() -> dict[str, int]:
        async with pools[0].acquire() as connection:
            value: int = await connection.fetchval("SELECT 1")
        return {"ok": value}

    return app


def bare_bytes_app(body: bytes) -> FastAPI:
    """The stack's limit for a body: FastAPI returning ``body`` from memory, gzipped ahead of
    time for clients that accept gzip, no middleware, no auth, no database."""
    compressed = gzip.compress(body, 6, mtime=0)
    app = FastAPI(openapi_url=None)

    @app.get("/bytes")
    async def from_memory(request: Request) -> Response:
        if "gzip" in request.headers.get("accept-encoding", ""):
            return Response(
                compressed, media_type="application/json", headers={"Content-Encoding": "gzip"}
            )
        return Response(body, media_type="application/json")

    return app


def bytes_app_from_env() -> FastAPI:
    """``bare_bytes_app`` on the file named by BENCH_BODY_FILE (for ``serve``)."""
    return bare_bytes_app(Path(os.environ["BENCH_BODY_FILE"]).read_bytes())


def select1_app_from_env() -> FastAPI:
    """``bare_select1_app`` on the database named by BENCH_DATABASE_URL (for ``serve``)."""
    return bare_select1_app(os.environ["BENCH_DATABASE_URL"])


def free_port() -> int:
    """A port of the loopback interface nothing listens on now: fixed ports collide when two
    people run benchmarks on one machine."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _accepts_connections(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


class Served(str):
    """The base URL of a server ``serve`` started, with its process id (for its CPU time)."""

    pid: int


@contextlib.contextmanager
def serve(
    app: str,
    *,
    port: int,
    env: dict[str, str] | None = None,
    factory: bool = True,
    pinned: bool = True,
) -> Iterator[Served]:
    """Run `uvicorn [--factory] <app>` (e.g. "bench.http_load:select1_app_from_env", or an
    application object such as "nscl_api.asgi:app" with ``factory=False``) on
    127.0.0.1:<port> in a subprocess (one worker, --no-access-log, log level warning),
    wait until it accepts connections (poll with a timeout of 30 s), yield the base URL
    (with the server's pid: ``Served``), and terminate it afterwards. ``pinned``: on its own
    core (see ``server_cpus``)."""
    # Otherwise the poll below would find the other server and measure it.
    if _accepts_connections(port):
        raise RuntimeError(f"Port {port} is already in use.")
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        *(["--factory"] if factory else []),
        app,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
        "--no-access-log",
        "--log-level",
        "warning",
        # So that "bench.…" factories import whatever the caller's working directory.
        "--app-dir",
        str(REPOSITORY_ROOT),
    ]
    server = subprocess.Popen(
        command,
        env={**os.environ, **(env or {})},
        preexec_fn=_pinned_to(server_cpus() if pinned else None),
    )
    try:
        # uvicorn binds its socket only once the lifespan startup has finished.
        deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
        while not _accepts_connections(port):
            if server.poll() is not None:
                raise RuntimeError(f"{app} exited with status {server.returncode}.")
            if time.monotonic() > deadline:
                raise TimeoutError(f"{app} did not listen on port {port} in time.")
            time.sleep(0.1)
        served = Served(f"http://127.0.0.1:{port}")
        served.pid = server.pid
        yield served
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def main(argv: Sequence[str] | None = None) -> None:
    """Measure the select1 baseline on BENCH_DATABASE_URL (or --database-url)."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL"))
    parser.add_argument("--port", type=int, default=None, help="default: a free one")
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--seconds", type=int, default=10)
    args = parser.parse_args(argv)
    if not args.database_url:
        parser.error("give --database-url or set BENCH_DATABASE_URL")
    env = {"BENCH_DATABASE_URL": args.database_url}
    port = args.port or free_port()
    with serve("bench.http_load:select1_app_from_env", port=port, env=env) as base_url:
        result = measure(
            f"{base_url}/select1",
            connections=args.connections,
            seconds=args.seconds,
            allow_python=True,
            server_pid=base_url.pid,
        )
    print(f"machine: {machine()}")
    print(f"versions: {versions()}")
    print(describe("select1", result))
    if result.generator_bound:
        print(
            f"REFUSED: the load generator ({result.tool}, {result.generator_cpu:.0%} of its "
            "cores) limited the figures, not the server."
        )


def hardware() -> str:
    """Cores, CPU model and memory of this machine."""
    memory = "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory = f"{int(line.split()[1]) / 1024 / 1024:.0f} GiB"
    model = platform.processor() or "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return f"{os.cpu_count()} cores ({model}), {memory}"


def machine() -> str:
    """Where the figures were taken: cores, CPU model, memory and the load average."""
    one, five, _ = os.getloadavg()
    return f"{hardware()}, load average {one:.1f}/{five:.1f}"


def stack_versions(*packages: str) -> str:
    """Python, FastAPI, uvicorn, the given ``packages`` and the load generator."""
    named = ["fastapi", "uvicorn", *packages]
    return ", ".join(
        [f"Python {platform.python_version()}"]
        + [f"{_DISPLAY.get(name, name)} {importlib.metadata.version(name)}" for name in named]
        + [f"load generator {wrk_version()}"]
    )


_DISPLAY = {"fastapi": "FastAPI"}


def versions() -> str:
    """The versions the HTTP figures depend on, the load generator's included."""
    return (
        f"Python {platform.python_version()}, "
        f"FastAPI {importlib.metadata.version('fastapi')}, "
        f"Starlette {importlib.metadata.version('starlette')}, "
        f"uvicorn {importlib.metadata.version('uvicorn')}, "
        f"load generator {wrk_version()}; servers pinned to CPU {server_cpus()}, "
        f"generator to {load_cpus()}"
    )


def describe(name: str, result: LoadResult) -> str:
    """One line of figures, the generator's and the server's CPU beside them."""
    return (
        f"{name:12} {result.rps:8,.0f} req/s  p50 {result.p50_ms:5.1f} ms  "
        f"p99 {result.p99_ms:5.1f} ms  {result.errors} errors  "
        f"server {result.server_cpu_us:5.0f} µs CPU/request at {result.server_cpu:.0%} of a core  "
        f"({result.tool} at {result.generator_cpu:.0%} of its cores)"
    )


if __name__ == "__main__":
    main()
