"""Every path of the contract names one operation: no request matches two of them."""

from __future__ import annotations

import json
from itertools import combinations
from pathlib import Path

import httpx
import pytest

from tests.api.test_problems import assert_problem

DOCUMENT = Path(__file__).resolve().parents[2] / "openapi.json"


def ambiguous(a: str, b: str) -> bool:
    """Whether one request could match both paths, judged as Redocly's no-ambiguous-paths
    judges it: as many segments and parameters, literals equal wherever both have one."""
    left, right = a.split("/"), b.split("/")
    if len(left) != len(right):
        return False
    segments = list(zip(left, right, strict=True))
    parameters = [(x.startswith("{"), y.startswith("{")) for x, y in segments]
    if sum(p for p, _ in parameters) != sum(q for _, q in parameters):
        return False
    return all(p or q or x == y for (x, y), (p, q) in zip(segments, parameters, strict=True))


def test_no_two_paths_match_one_request() -> None:
    paths = json.loads(DOCUMENT.read_text())["paths"]
    assert [(a, b) for a, b in combinations(paths, 2) if ambiguous(a, b)] == []


@pytest.mark.parametrize("phase", ["runs", "provenance"])
async def test_a_phase_named_like_a_part_of_a_year_is_still_a_phase(
    client: httpx.AsyncClient, phase: str
) -> None:
    # Under /v1/rollups/{programme}/phases/{phase} the year's routes took these (422: not a year).
    answer = await client.get(f"/v1/phase-rollups/bac-kan-nscl/{phase}")
    assert_problem(answer, 404, "phase_not_found")
