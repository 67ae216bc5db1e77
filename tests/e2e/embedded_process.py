"""Starting and stopping `nscl serve` on the embedded default, and finding its PostgreSQL."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil
import pytest

READY_SECONDS = 120


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def postgres_processes(data_dir: Path) -> list[psutil.Process]:
    """The PostgreSQL server processes whose data folder is under ``data_dir``."""
    pgdata = str((data_dir / "postgres").resolve())
    found = []
    for process in psutil.process_iter(["cmdline"]):
        command = process.info.get("cmdline") or []
        if command and Path(command[0]).name == "postgres" and pgdata in command:
            found.append(process)
    pid_file = Path(pgdata) / "postmaster.pid"
    if pid_file.exists():
        try:
            pid = int(pid_file.read_text().split()[0])
            if psutil.pid_exists(pid) and all(p.pid != pid for p in found):
                found.append(psutil.Process(pid))
        except (ValueError, IndexError, psutil.Error):
            pass
    return found


def stop_leftovers(data_dir: Path) -> None:
    """Kill what a failed test left running: a test leaves no process behind."""
    for process in postgres_processes(data_dir):
        with contextlib.suppress(psutil.Error):
            process.kill()


@dataclass
class Service:
    process: subprocess.Popen[bytes]
    base: str
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def signal(self, signum: int, timeout: float = 60) -> int:
        self.process.send_signal(signum)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            pytest.fail(f"nscl serve did not stop on signal {signum}:\n{self.output()}")


def start_service(data_dir: Path, log_name: str = "serve.log") -> Service:
    """Start `nscl serve` with nothing configured but its data folder; wait until ready."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("NSCL_")}
    env |= {"NSCL_DATA_DIR": str(data_dir), "NSCL_OUTBOX_SWEEP_SECONDS": "1"}
    nscl = Path(sys.executable).parent / "nscl"
    log = data_dir / log_name
    # A file, not a pipe: a pipe nobody reads fills up and stalls the server's logging.
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [str(nscl), "serve", "--port", str(port)],
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    service = Service(process, f"http://127.0.0.1:{port}", log)
    deadline = time.monotonic() + READY_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"nscl serve exited with {process.returncode}:\n{service.output()}")
        try:
            if httpx.get(f"{service.base}/ready", timeout=1).status_code == 200:
                return service
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    service.signal(signal.SIGKILL)
    pytest.fail(f"nscl serve did not become ready in {READY_SECONDS} s:\n{service.output()}")


def wait_until_gone(data_dir: Path, timeout: float = 20) -> list[psutil.Process]:
    """The PostgreSQL processes of ``data_dir`` still there after ``timeout`` (none: good)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        left = postgres_processes(data_dir)
        if not left:
            return []
        time.sleep(0.3)
    return postgres_processes(data_dir)
