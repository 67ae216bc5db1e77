"""The embedded PostgreSQL lives exactly as long as the `nscl serve` that started it.

Docker, systemd and `kill` stop a service with SIGTERM; an out-of-memory kill or a
`kill -9` leaves no chance to clean up, so the next start must notice the dead process.
"""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.embedded_process import (
    postgres_processes,
    start_service,
    stop_leftovers,
    wait_until_gone,
)


@pytest.fixture
def data_dir(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path
    stop_leftovers(tmp_path)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_stopping_the_service_stops_its_postgresql(data_dir: Path, signum: int) -> None:
    service = start_service(data_dir)
    assert postgres_processes(data_dir), "the embedded PostgreSQL should be running"
    assert service.signal(signum) in (0, 130 if signum == signal.SIGINT else 0)
    assert wait_until_gone(data_dir) == [], service.output()


def test_after_a_hard_kill_the_next_service_cleans_up_and_stops_it(data_dir: Path) -> None:
    killed = start_service(data_dir, "killed.log")
    killed.signal(signal.SIGKILL)
    # Nothing could stop it: the server outlives the process, its pid stays in the list.
    assert postgres_processes(data_dir)
    handles = data_dir / "postgres" / ".handle_pids.json"
    assert killed.process.pid in json.loads(handles.read_text())

    restarted = start_service(data_dir, "restarted.log")
    assert json.loads(handles.read_text()) == [restarted.process.pid]
    assert "embedded_postgres.stale_handles" in restarted.output()
    assert restarted.signal(signal.SIGTERM) == 0
    assert wait_until_gone(data_dir) == [], restarted.output()
    assert json.loads(handles.read_text()) == []
