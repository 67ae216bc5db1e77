"""The README's tour, run as a newcomer runs it: its exact commands against a fresh `nscl serve`.

The service starts on the embedded default in a folder of its own (as `make run` does on a
fresh clone), and the tour's shell block runs there under `bash -euo pipefail`, so a command
that fails, or a `jq` path that no longer matches what the service answers, fails the test.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

README = Path(__file__).resolve().parents[2] / "README.md"


def tour_commands() -> str:
    match = re.search(
        r"<!-- tour:begin -->\n```sh\n(.*?)```\n<!-- tour:end -->", README.read_text(), re.S
    )
    assert match, "the README's tour is marked with <!-- tour:begin --> and <!-- tour:end -->"
    return match.group(1)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def checkout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder standing for a fresh clone: the tour calls `.venv/bin/nscl` from it."""
    folder = tmp_path_factory.mktemp("fresh-clone")
    (folder / ".venv").symlink_to(Path(sys.prefix))
    return folder


@pytest.fixture(scope="module")
def served(checkout: Path) -> Iterator[str]:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("NSCL_")}
    env["NSCL_OUTBOX_SWEEP_SECONDS"] = "1"
    process = subprocess.Popen(
        [str(checkout / ".venv" / "bin" / "nscl"), "serve", "--port", str(port)],
        cwd=checkout,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            assert process.poll() is None, f"nscl serve exited with {process.returncode}"
            try:
                if httpx.get(f"{base}/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        else:
            pytest.fail("nscl serve did not become ready in 120 s")
        yield base
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@pytest.mark.skipif(
    not (shutil.which("curl") and shutil.which("jq")), reason="the tour needs curl and jq"
)
def test_the_tour_runs_as_written(served: str, checkout: Path) -> None:
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", tour_commands()],
        cwd=checkout,
        env={**os.environ, "API": served},
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 0, f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    output = result.stdout
    # What a newcomer is told to expect: the unit's report went through, the rollup shows it.
    assert '{"status":"submitted"}' in output
    assert '{"status":"accepted"}' in output
    assert '"code":"malformed_json"' in output
    assert "training-courses" in output
