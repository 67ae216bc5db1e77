"""`nscl clients` and `nscl keys`: operators manage clients and signing keys at the console."""

from __future__ import annotations

import json
import logging

import pytest
from typer.testing import CliRunner

from nscl_api.cli import _settings, app


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
        ],
    )
    assert created.exit_code == 0, created.output
    first = json.loads(created.output)
    assert first["client_id"] == "cli-finance"
    assert len(first["client_secret"]) >= 40

    rotated = cli.invoke(app, ["clients", "rotate", "cli-finance"])
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
    assert cli.invoke(app, ["keys", "retire", kid]).exit_code == 0
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
