"""Every route × every role × own unit / another unit, read from the application's route table.

A new route joins the matrix by itself; a route that declares no permission fails
`test_every_route_declares_a_permission` unless it is one of the few public ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from nscl_api.auth.tokens import KeyRing
from nscl_api.main import create_app
from nscl_api.resources import Resources
from nscl_api.routes import route_table
from nscl_domain.identity import ROLE_PERMISSIONS, Role
from nscl_domain.settings import Settings
from tests.conftest import OTHER_UNIT, OWN_UNIT, mint_token

# Public on purpose: liveness, readiness, metrics for the scraper, how to get a token.
PUBLIC = {
    ("GET", "/health"),
    ("GET", "/ready"),
    ("GET", "/metrics"),
    ("POST", "/v1/oauth/token"),
    ("GET", "/.well-known/jwks.json"),
}

_APP = create_app(Settings())
DOCUMENT = _APP.openapi()
ROUTES = sorted(
    (method, route.path, route.required_scopes or frozenset())
    for route in route_table(_APP)
    if route.is_api_route
    for method in route.methods
    if (method, route.path) not in PUBLIC
)
UNITS = {"own": OWN_UNIT, "other": OTHER_UNIT}
CELLS = [
    (method, path, scopes, role, side)
    for method, path, scopes in ROUTES
    for role in Role
    for side in UNITS
]
MATRIX_SIZE = len(CELLS) + len(ROUTES)  # and one anonymous cell per route


def success_status(method: str, path: str) -> int:
    statuses = DOCUMENT["paths"][path][method.lower()]["responses"]
    return min(int(s) for s in statuses if s.startswith("2"))


@dataclass(frozen=True)
class Samples:
    """Objects the routes' paths name, for the caller's own unit and for another."""

    job_id: str
    reporting_role: dict[str, str]


def body_for(method: str, path: str, unit: str) -> dict[str, Any] | None:
    """A valid body for each writing route, about ``unit`` where the route takes one."""
    bodies: dict[tuple[str, str], dict[str, Any]] = {
        ("POST", "/v1/org-units"): {
            "key": f"matrix-{unit}",
            "kind": "office",
            "name_vi": "Phòng thử nghiệm",
            "name_en": "Test office",
            "parent": unit,
            "valid_from": "2021-01-01",
            "valid_to": "2025-03-01",
        },
        ("PATCH", "/v1/org-units/{unit}"): {"abbreviation": "MX"},
        ("POST", "/v1/org-units/{unit}/successions"): {
            "successor": "tn-ppc",
            "kind": "split_into",
            "effective": "2025-07-01",
        },
        ("POST", "/v1/programmes/{programme}/roles"): {
            "role": "cooperating_unit",
            "unit": unit,
            "valid_from": "2021-01-01",
            "valid_to": "2025-03-01",
        },
        ("PATCH", "/v1/programmes/{programme}/roles/{role_id}"): {"valid_to": "2025-06-30"},
        ("POST", "/v1/programmes/{programme}/task-extensions"): {
            "key": f"matrix-ext-{unit}",
            "title_vi": "Nhiệm vụ gia hạn",
            "title_en": "Extended task",
            "unit": unit,
            "decided_by": unit,
            "decision_no": "1/QĐ",
            "decision_date": "2021-02-01",
            "extended_to_year": 2022,
        },
        ("POST", "/v1/jobs"): {"name": "jobs.prune"},
    }
    if method in {"POST", "PATCH", "PUT"}:
        return bodies[(method, path)]
    return None


def url_for(path: str, unit: str, samples: Samples) -> str:
    return path.format(
        unit=unit,
        programme="bac-kan-nscl",
        job_id=samples.job_id,
        role_id=samples.reporting_role[unit],
    )


@pytest.fixture
async def samples(resources: Resources, db_connection: AsyncConnection) -> Samples:
    uow = resources.new_uow()
    async with uow:
        job = await uow.schedule("jobs.prune", {"older_than_days": 30})
        await uow.commit()
    roles = {}
    for unit in UNITS.values():
        roles[unit] = str(
            await db_connection.scalar(
                text(
                    "SELECT r.id FROM programme_role r JOIN org_unit u ON u.id = r.unit_id "
                    "JOIN programme p ON p.id = r.programme_id WHERE u.key = :unit "
                    "AND r.role = 'reporting_unit' AND p.key = 'bac-kan-nscl'"
                ),
                {"unit": unit},
            )
        )
    return Samples(job_id=str(job.id), reporting_role=roles)


async def call(
    http: httpx.AsyncClient, method: str, path: str, unit: str, samples: Samples, token: str | None
) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return await http.request(
        method, url_for(path, unit, samples), json=body_for(method, path, unit), headers=headers
    )


def test_every_route_declares_a_permission() -> None:
    undeclared = [
        (method, route.path)
        for route in route_table(_APP)
        if route.is_api_route
        for method in route.methods
        if (method, route.path) not in PUBLIC and not route.required_scopes
    ]
    assert undeclared == [], "routes without a declared permission (deny by default)"
    assert len(ROUTES) >= 20


@pytest.mark.parametrize(
    ("method", "path", "scopes", "role", "side"),
    CELLS,
    ids=[f"{m} {p} {r.value} {s}" for m, p, _, r, s in CELLS],
)
async def test_cell(
    anonymous: httpx.AsyncClient,
    keys: KeyRing,
    samples: Samples,
    method: str,
    path: str,
    scopes: frozenset[str],
    role: Role,
    side: str,
) -> None:
    suffix = "" if side == "own" else "-other"
    token = mint_token(keys, f"test-{role.value}{suffix}")
    # The path and body name the caller's own unit, or the unit of the other district.
    unit = OWN_UNIT if side == "own" else OTHER_UNIT
    response = await call(anonymous, method, path, unit, samples, token)
    allowed = scopes <= {p.value for p in ROLE_PERMISSIONS[role]}
    if allowed:
        assert response.status_code == success_status(method, path), response.text
    else:
        assert response.status_code == 403, response.text
        assert response.json()["code"] == "insufficient_scope"
        assert "items" not in response.text


@pytest.mark.parametrize(
    ("method", "path", "scopes"), ROUTES, ids=[f"{m} {p}" for m, p, _ in ROUTES]
)
async def test_anonymous_cell(
    anonymous: httpx.AsyncClient, samples: Samples, method: str, path: str, scopes: frozenset[str]
) -> None:
    response = await call(anonymous, method, path, OWN_UNIT, samples, None)
    assert response.status_code == 401
    assert response.json()["code"] == "missing_token"
