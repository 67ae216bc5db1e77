"""The Python client another system would generate from openapi.json, driven against the
service: the report workflow (token, report opened, draft written under If-Match, submitted,
accepted by a reviewer), a spreadsheet dry run and the rollups of the year and the phase.

Every answer must come back as a parsed model: an operation whose success the contract
describes wrongly is generated returning ``None`` and fails here.
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
from arq.connections import ArqRedis
from fastapi import FastAPI

from nscl_api.resources import Resources
from nscl_domain.settings import Settings
from tests.api.test_auth import forget_token_limits
from tests.e2e.test_rollups import refresh, totals

ROOT = Path(__file__).resolve().parents[2]
CONTRACT = ROOT / "openapi.json"
CONFIG = ROOT / "contract" / "python-client.yaml"
# Where `make contract` generates it; reused while it is newer than what it was made from.
MADE = ROOT / ".contract" / "python-client"
PACKAGE = "nscl_client"
BK = "bac-kan-nscl"
BASE_URL = "http://nscl.test"


def _generator() -> str:
    """openapi-python-client beside the running interpreter (the dev extra installs it)."""
    found = Path(sys.executable).with_name("openapi-python-client")
    if not found.exists():
        pytest.fail("openapi-python-client is missing: install the dev extra (make install-dev)")
    return str(found)


def _is_current(folder: Path) -> bool:
    package = folder / PACKAGE / "__init__.py"
    if not package.exists():
        return False
    made = package.stat().st_mtime
    return all(source.stat().st_mtime <= made for source in (CONTRACT, CONFIG))


@pytest.fixture(scope="session")
def client_package(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    """The generated client, imported; generated here (warnings fail) when make has not."""
    folder = MADE
    if not _is_current(folder):
        folder = tmp_path_factory.mktemp("python-client")
        generated = subprocess.run(
            [
                _generator(), "generate", "--path", str(CONTRACT), "--meta", "none",
                "--config", str(CONFIG), "--fail-on-warning",
                "--output-path", str(folder / PACKAGE),
            ],
            capture_output=True, text=True, timeout=300, check=False,
            env={**os.environ, "NO_COLOR": "1"},
        )  # fmt: skip
        assert generated.returncode == 0, generated.stdout + generated.stderr
        assert "warning" not in (generated.stdout + generated.stderr).lower()
    sys.path.insert(0, str(folder))
    try:
        yield importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(folder))
        for name in [n for n in sys.modules if n == PACKAGE or n.startswith(f"{PACKAGE}.")]:
            del sys.modules[name]


def _module(name: str) -> Any:
    return importlib.import_module(f"{PACKAGE}.{name}")


class Service:
    """The generated client's calls against the app, over ASGI, as one caller or another."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app
        self._opened: list[httpx.AsyncClient] = []

    def client(self, token: str | None = None) -> Any:
        headers = {} if token is None else {"Authorization": f"Bearer {token}"}
        http = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app), base_url=BASE_URL, headers=headers
        )
        self._opened.append(http)
        kind = "Client" if token is None else "AuthenticatedClient"
        made = getattr(_module("client"), kind)(
            base_url=BASE_URL, **({} if token is None else {"token": token})
        )
        return made.set_async_httpx_client(http)

    async def token(self, client_id: str, secret: str) -> str:
        form = _module("models").IssueTokenForm(
            grant_type="client_credentials", client_id=client_id, client_secret=secret
        )
        issued = await _module("api.authentication.issue_token").asyncio_detailed(
            client=self.client(), body=form
        )
        assert issued.status_code == 200, issued.content
        assert isinstance(issued.parsed, _module("models").TokenResponse)
        return str(issued.parsed.access_token)

    async def close(self) -> None:
        for http in self._opened:
            await http.aclose()


@pytest.fixture
async def service(
    client_package: ModuleType,
    shared_app: FastAPI,
    resources: Resources,
    redis: ArqRedis,
    settings: Settings,
) -> AsyncIterator[Service]:
    await forget_token_limits(redis, settings)
    shared_app.state.resources = resources
    opened = Service(shared_app)
    yield opened
    await opened.close()


def parsed(answer: Any, status: int, model: str) -> Any:
    """The answer's parsed model, after checking its status and type."""
    assert answer.status_code == status, answer.content
    expected = getattr(_module("models"), model)
    assert isinstance(answer.parsed, expected), (type(answer.parsed), answer.content)
    return answer.parsed


def total(rollup: Any, indicator: str) -> Decimal:
    """The province-wide figure of an indicator (no breakdown, no disaggregation)."""
    return Decimal(totals(rollup.to_dict())[indicator])


async def test_a_unit_reports_through_the_generated_client_and_reads_the_rollups(
    service: Service, client_secrets: dict[str, str], resources: Resources
) -> None:
    models = _module("models")
    reporting = "api.reporting."
    reporter = service.client(await service.token("test-reporter", client_secrets["test-reporter"]))
    reviewer = service.client(await service.token("test-reviewer", client_secrets["test-reviewer"]))

    generation = models.ObligationGeneration.from_dict({"year": 2024, "regime": "bk-annual"})
    await _module(reporting + "generate_obligations").asyncio_detailed(
        BK, client=reviewer, body=generation
    )
    obligations = parsed(
        await _module(reporting + "list_obligations").asyncio_detailed(
            BK, client=reporter, year=2024
        ),
        200,
        "ObligationReadPage",
    )
    [obligation] = obligations.items

    created = await _module(reporting + "create_report").asyncio_detailed(
        client=reporter,
        body=models.ReportCreate(obligation_id=obligation.id),
        idempotency_key=str(uuid.uuid4()),
    )
    report = parsed(created, 201, "ReportRead")
    read = parsed(
        await _module(reporting + "get_report").asyncio_detailed(report.id, client=reporter),
        200,
        "ReportRead",
    )
    assert read.id == report.id

    draft = models.ReportContentInput.from_dict(
        {
            "indicator_values": [{"indicator": "training-courses", "value": "6"}],
            "experts": [
                {"full_name": "Nguyễn Văn An", "level": "national", "certified_on": "2024-05-02"}
            ],
        }
    )
    written = await _module(reporting + "update_report_draft").asyncio_detailed(
        report.id, client=reporter, body=draft, if_match=created.headers["etag"]
    )
    assert parsed(written, 200, "ReportRead").revision > report.revision

    # The template downloaded and read back as a dry run: a workbook, labelled as the
    # generated client labels every upload.
    template = await _module(reporting + "get_indicator_template").asyncio_detailed(
        report.id, client=reporter
    )
    assert template.status_code == 200, template.content
    downloaded = template.parsed
    assert isinstance(downloaded, _module("types").File), template.content[:200]
    spreadsheet = downloaded.payload.read()
    assert spreadsheet.startswith(b"PK\x03\x04")
    # The bytes themselves: the generated call hands `payload` to httpx as the body, and an
    # async client cannot stream a synchronous file object.
    workbook = _module("types").File(payload=spreadsheet, file_name="t.xlsx")
    checked = await _module(reporting + "import_indicator_values").asyncio_detailed(
        report.id, client=reporter, body=workbook, if_match=written.headers["etag"]
    )
    outcome = parsed(checked, 200, "ImportOutcome")
    assert outcome.dry_run
    assert outcome.rows_read > 0

    submitted = await _module(reporting + "submit_report").asyncio_detailed(
        report.id, client=reporter, if_match=written.headers["etag"]
    )
    parsed(submitted, 200, "ReportRead")
    accepted = await _module(reporting + "accept_report").asyncio_detailed(
        report.id, client=reviewer, if_match=submitted.headers["etag"]
    )
    assert str(parsed(accepted, 200, "ReportRead").status) == "accepted"

    async with resources.sessionmaker() as session:
        # What the refresh job queued by the acceptance does, done here and now.
        await refresh(session, BK, 2024)
        await session.commit()
    viewer = service.client(await service.token("test-viewer", client_secrets["test-viewer"]))
    year = parsed(
        await _module("api.rollups.get_rollup").asyncio_detailed(BK, 2024, client=viewer),
        200,
        "RollupRead",
    )
    assert total(year, "training-courses") == 6
    phase = parsed(
        await _module("api.rollups.get_phase_rollup").asyncio_detailed(
            BK, "bk-2021-2025", client=viewer
        ),
        200,
        "RollupPhaseRead",
    )
    assert total(phase, "training-courses") == 6
