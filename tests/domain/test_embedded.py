"""The embedded default's housekeeping: pgserver's chatter at debug, dead pids dropped."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog

from nscl_domain import embedded
from nscl_domain.logs import configure_logging


@pytest.fixture
def log_stream() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    handlers, level, config = root.handlers[:], root.level, structlog.get_config()
    stream = io.StringIO()
    configure_logging("INFO", json=True, stream=stream)
    yield stream
    structlog.configure(**config)
    root.handlers[:] = handlers
    root.setLevel(level)


def test_pgserver_command_lines_are_logged_at_debug(log_stream: io.StringIO) -> None:
    pgserver = logging.getLogger("pgserver")
    pgserver.info("Running commandline:\n%s", "pg_ctl -w start")
    pgserver.warning("Failed to stop server, killing it instead.")
    assert "pg_ctl" not in log_stream.getvalue()
    assert "Failed to stop server" in log_stream.getvalue()

    logging.getLogger().setLevel(logging.DEBUG)
    pgserver.info("Running commandline:\n%s", "pg_ctl -w stop")
    line = json.loads(log_stream.getvalue().splitlines()[-1])
    assert line["level"] == "debug"
    assert "pg_ctl -w stop" in line["event"]


def test_pids_of_dead_processes_are_dropped_from_the_handle_list(tmp_path: Path) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    handles = tmp_path / embedded.HANDLE_FILE
    handles.write_text(json.dumps([dead.pid, os.getpid(), os.getppid()]))

    assert embedded.drop_stale_handles(tmp_path) == [dead.pid]
    assert json.loads(handles.read_text()) == [os.getpid(), os.getppid()]
    assert embedded.drop_stale_handles(tmp_path) == []
