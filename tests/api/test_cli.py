"""`nscl clients` and `nscl keys`: operators manage clients and signing keys at the console."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from nscl_api.cli import _settings, app
from nscl_domain.db import create_engine


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, database_url: str) -> CliRunner:
    monkeypatch.setenv("NSCL_DATABASE_URL", database_url)
    monkeypatch.setenv("NSCL_LOG_LEVEL", "WARNING")
    return CliRunner()


def test_client_life_create_rotate_disable(cli: CliRunner) -> None:
    created = cli.invoke(
        app,
        [
            "clients",
            "create",
            "cli-finance",
            "--unit",
            "bk-dof",
            "--role",
            "finance",
            "--role",
            "viewer",
            "--name",
            "Finance ledger",
            "--json",
        ],
    )
    assert created.exit_code == 0, created.output
    first = json.loads(created.output)
    assert first["client_id"] == "cli-finance"
    assert len(first["client_secret"]) >= 40

    rotated = cli.invoke(app, ["clients", "rotate", "cli-finance", "--json"])
    assert rotated.exit_code == 0, rotated.output
    assert json.loads(rotated.output)["client_secret"] != first["client_secret"]

    assert cli.invoke(app, ["clients", "disable", "cli-finance"]).exit_code == 0
    listed = cli.invoke(app, ["clients", "list"]).output
    assert "cli-finance\tbk-dof\tfinance,viewer\tdisabled" in listed


def test_refusals_are_clear(cli: CliRunner) -> None:
    unknown_role = cli.invoke(
        app, ["clients", "create", "cli-x", "--unit", "bk-dof", "--role", "superuser"]
    )
    assert unknown_role.exit_code == 1
    assert "Unknown roles: superuser" in unknown_role.output
    missing = cli.invoke(app, ["clients", "disable", "nobody-at-all"])
    assert missing.exit_code == 1
    assert "does not exist" in missing.output


def test_key_rotation(cli: CliRunner) -> None:
    before = cli.invoke(app, ["keys", "list"]).output.splitlines()
    rotated = cli.invoke(app, ["keys", "rotate"])
    assert rotated.exit_code == 0, rotated.output
    kid = rotated.output.split()[0]
    after = cli.invoke(app, ["keys", "list"]).output.splitlines()
    assert after[0].startswith(kid)
    assert len(after) == len(before) + 1
    assert cli.invoke(app, ["keys", "retire", "--", kid]).exit_code == 0
    assert len(cli.invoke(app, ["keys", "list"]).output.splitlines()) == len(before)


@pytest.mark.parametrize(("service", "stream"), [(False, "err"), (True, "out")])
def test_one_shot_commands_log_on_stderr_services_on_stdout(
    service: bool, stream: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """`nscl clients create … | jq -r .client_secret` must read the secret, not a log line."""
    _settings(service=service)
    logging.getLogger("nscl.test").warning("where does this go")
    captured = capsys.readouterr()
    assert ("where does this go" in captured.err) == (stream == "err")
    assert ("where does this go" in captured.out) == (stream == "out")


def test_version() -> None:
    answer = CliRunner().invoke(app, ["--version"])
    assert answer.exit_code == 0
    assert answer.output.startswith("nscl ")


@pytest.mark.skipif(shutil.which("jq") is None, reason="jq is not installed")
def test_the_secret_alone_goes_through_a_pipe(database_url: str) -> None:
    """`nscl clients create … --json | jq -r .client_secret` prints the secret and nothing
    else: the command's logs (at INFO here) go to standard error."""
    nscl = Path(sys.executable).parent / "nscl"
    env = {k: v for k, v in os.environ.items() if not k.startswith("NSCL_")}
    env |= {"NSCL_DATABASE_URL": database_url, "NSCL_LOG_LEVEL": "DEBUG"}
    client_id = f"cli-pipe-{uuid.uuid4().hex[:8]}"
    piped = subprocess.run(
        f"{nscl} clients create {client_id} --unit bk-dof --role viewer --json "
        "| jq -r .client_secret",
        shell=True,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    lines = piped.stdout.splitlines()
    assert len(lines) == 1, piped.stdout
    assert len(lines[0]) >= 40
    assert "null" not in piped.stdout
    # The logs were written, on the other stream.
    assert piped.stderr.strip()


def test_schedules_are_listed_paused_resumed_and_run(cli: CliRunner, database_url: str) -> None:
    listed = cli.invoke(app, ["schedules", "list", "--json"])
    assert listed.exit_code == 0, listed.output
    keys = {s["key"]: s for s in json.loads(listed.output)}
    assert keys["nightly-rollups-rebuild"]["enabled"] is True

    paused = cli.invoke(app, ["schedules", "pause", "nightly-rollups-rebuild"])
    assert paused.exit_code == 0, paused.output
    assert "nightly-rollups-rebuild\tpaused\t30 1 * * *" in paused.output
    resumed = cli.invoke(app, ["schedules", "resume", "nightly-rollups-rebuild", "--json"])
    assert json.loads(resumed.output)["enabled"] is True

    ran = cli.invoke(app, ["schedules", "run-now", "nightly-rollups-rebuild", "--json"])
    assert ran.exit_code == 0, ran.output
    job = json.loads(ran.stdout)
    try:
        assert (job["name"], job["status"]) == ("rollups.rebuild", "pending")
        shown = cli.invoke(app, ["jobs", "show", job["id"], "--json"])
        assert json.loads(shown.output)["id"] == job["id"]
        assert job["id"] in cli.invoke(app, ["jobs", "list", "--name", "rollups.rebuild"]).output
        cancelled = cli.invoke(app, ["jobs", "cancel", job["id"]])
        assert cancelled.output.strip() == f"{job['id']}\tcancelled"
    finally:
        asyncio.run(_delete_job(database_url, job["id"]))


async def _delete_job(url: str, job_id: str) -> None:
    engine = create_engine(url, pooled=False)
    async with engine.begin() as conn:
        await conn.execute(text("DELETE FROM job WHERE id = :id"), {"id": uuid.UUID(job_id)})
    await engine.dispose()


def test_rollups_rebuild_queues_the_job(cli: CliRunner, database_url: str) -> None:
    queued = cli.invoke(app, ["rollups", "rebuild", "bac-kan-nscl", "--no-wait", "--json"])
    assert queued.exit_code == 0, queued.output
    job = json.loads(queued.stdout)
    try:
        assert (job["name"], job["status"]) == ("rollups.rebuild", "pending")
        unknown = cli.invoke(app, ["rollups", "rebuild", "no-such-programme", "--no-wait"])
        assert unknown.exit_code == 1
    finally:
        asyncio.run(_delete_job(database_url, job["id"]))
