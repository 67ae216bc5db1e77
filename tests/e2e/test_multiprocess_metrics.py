"""`nscl serve --workers 2`: whichever process answers /metrics counts every process's
requests (prometheus_client's multiprocess mode), and the shared state is the same."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from nscl_domain.settings import Settings
from tests.e2e.embedded_process import free_port

REQUESTS = 40


def scrape(base: str) -> tuple[float, set[str]]:
    """The /health count one process reports, and the pid that answered."""
    # A new connection each time: the kernel hands it to either process.
    text = httpx.get(f"{base}/metrics", headers={"Connection": "close"}, timeout=10).text
    count, pids = 0.0, set()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "nscl_http_requests_total" and sample.labels == {
                "handler": "/health",
                "method": "GET",
                "status": "2xx",
            }:
                count += sample.value
            if sample.name == "nscl_db_pool_connections":
                pids.add(sample.labels["pid"])
    return count, pids


def test_every_process_answers_for_all(settings: Settings, tmp_path: Path) -> None:
    if settings.redis_url is None:
        pytest.skip("several processes need a real Redis")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("NSCL_")}
    env |= {
        "NSCL_DATABASE_URL": str(settings.database_url),
        "NSCL_REDIS_URL": str(settings.redis_url),
        "NSCL_QUEUE_NAME": f"{settings.queue_name}:{uuid.uuid4().hex[:6]}",
        "NSCL_AUTH_REDIS_PREFIX": f"{settings.auth_redis_prefix}:mp",
        "NSCL_SEED_ON_START": "false",
        "NSCL_LOG_LEVEL": "WARNING",
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path),
    }
    nscl = Path(sys.executable).parent / "nscl"
    log = tmp_path / "serve.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [str(nscl), "serve", "--port", str(port), "--workers", "2"],
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            assert process.poll() is None, log.read_text()
            try:
                if httpx.get(f"{base}/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        else:
            pytest.fail(f"not ready:\n{log.read_text()}")
        for _ in range(REQUESTS):
            assert httpx.get(f"{base}/health", headers={"Connection": "close"}).status_code == 200
        answered_by: set[str] = set()
        for _ in range(60):
            count, pids = scrape(base)
            assert count == REQUESTS, f"a process reported {count} of {REQUESTS} requests"
            answered_by |= pids
            if len(answered_by) >= 2:
                break
        assert len(answered_by) >= 2, "only one process answered /metrics"
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
