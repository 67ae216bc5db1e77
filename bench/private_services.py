"""A private PostgreSQL, a private Redis and `nscl worker` processes, for fault tests and
the job-recovery benchmark.

They run on free ports in their own temporary folders and are stopped at the end: stopping,
killing or flushing them never touches the machine's shared PostgreSQL and Redis.
PostgreSQL refuses to run as root, so as root its folder belongs to the ``postgres`` user
and its commands run as that user.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NSCL = str(Path(sys.executable).parent / "nscl")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for_port(port: int, timeout: float, *, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise TimeoutError(f"{what} did not open port {port} within {timeout} s")


def _pg_bin() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    if found:
        return Path(found[-1]).parent
    pg_ctl = shutil.which("pg_ctl")
    if pg_ctl is None:
        raise RuntimeError("PostgreSQL's server binaries (pg_ctl, initdb) are not installed")
    return Path(pg_ctl).parent


class PrivatePostgres:
    """A throw-away PostgreSQL cluster: trust authentication, no durability (fsync off)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.folder = Path(tempfile.mkdtemp(prefix="nscl-pg-"))
        self.data = self.folder / "data"
        self.bin = _pg_bin()
        self._as_postgres = os.geteuid() == 0
        if self._as_postgres:
            user = pwd.getpwnam("postgres")
            os.chown(self.folder, user.pw_uid, user.pw_gid)
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync")

    def _run(self, tool: str, *args: str) -> None:
        command = [str(self.bin / tool), *args]
        if self._as_postgres:
            command = ["su", "postgres", "-s", "/bin/sh", "-c", subprocess.list2cmdline(command)]
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=100 "
            # A killed worker's backend, waiting on a lock, notices it is alone and ends.
            "-c client_connection_check_interval=1000"
        )
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.folder / "log"),
                  "-w", "start")  # fmt: skip

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", name)
        return self.url(name)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.stop("immediate")
        shutil.rmtree(self.folder, ignore_errors=True)


class PrivateRedis:
    """A throw-away Redis that keeps nothing on disk (as the machine's Redis)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.folder = Path(tempfile.mkdtemp(prefix="nscl-redis-"))
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no", "--dir", str(self.folder)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        _wait_for_port(self.port, 10, what="redis-server")

    def cli(self, *args: str) -> str:
        done = subprocess.run(
            ["redis-cli", "-p", str(self.port), *args], capture_output=True, text=True, check=False
        )
        return done.stdout.strip()

    def stop(self) -> None:
        """Shut Redis down as an operator would (`redis-cli shutdown`)."""
        if self.process is not None:
            self.cli("shutdown", "nosave")
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            self.process = None

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)


class WorkerProcess:
    """One `nscl worker` process; its output goes to a log file for when a test fails."""

    def __init__(self, env: Mapping[str, str], log_path: Path) -> None:
        self.env = dict(env)
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, *args: str) -> WorkerProcess:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [NSCL, "worker", *args],
                env={**os.environ, **self.env},
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        return self

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL: no clean-up, no goodbye, as when a machine or container dies."""
        if self.process is not None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()

    def pause(self) -> None:
        if self.process is not None:
            self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        if self.process is not None:
            self.process.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        if self.process is not None and self.alive:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def worker_env(database_url: str, redis_url: str, **settings: str | float | int) -> dict[str, str]:
    """Environment of a worker process: the private services and any NSCL_ settings."""
    env = {
        "NSCL_DATABASE_URL": database_url,
        "NSCL_REDIS_URL": redis_url,
        "NSCL_LOG_JSON": "false",
        "NSCL_LOG_LEVEL": "INFO",
        "NSCL_DB_POOL_SIZE": "4",
        "PYTHONPATH": os.pathsep.join(
            str(ROOT / p) for p in ("libs/domain", "services/api", "services/worker")
        ),
    }
    env.update({f"NSCL_{k.upper()}": str(v) for k, v in settings.items()})
    return env


def nscl(env: Mapping[str, str], *args: str) -> None:
    """Run an `nscl` command (migrations, seed) against the private services."""
    subprocess.run(
        [NSCL, *args],
        env={**os.environ, **env, "NSCL_LOG_LEVEL": "WARNING"},
        cwd=ROOT,
        check=True,
        stdout=subprocess.DEVNULL,
    )


@contextlib.contextmanager
def private_services() -> Iterator[tuple[PrivatePostgres, PrivateRedis]]:
    """Start a private PostgreSQL and Redis; stop them and remove their folders after."""
    postgres = PrivatePostgres()
    redis = PrivateRedis()
    try:
        postgres.start()
        redis.start()
        yield postgres, redis
    finally:
        redis.close()
        postgres.close()


@contextlib.contextmanager
def seeded_stack() -> Iterator[tuple[str, str, Path]]:
    """A private PostgreSQL (a migrated, seeded database ``nscl``) and Redis, and a folder
    for the processes' logs: (database URL, Redis URL, logs). A SIGTERM (a timeout, Ctrl-C
    in a pipeline) still stops the services."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    with private_services() as (postgres, redis), tempfile.TemporaryDirectory() as logs:
        url = postgres.create_database("nscl")
        env = worker_env(url, redis.url)
        nscl(env, "db", "upgrade")
        nscl(env, "seed")
        yield url, redis.url, Path(logs)
