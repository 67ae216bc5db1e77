"""Plans and budget estimates go through the reports' review workflow, and its refusals
speak of a plan or an estimate, never of a report."""

from __future__ import annotations

import httpx
import pytest

from nscl_api.auth.tokens import KeyRing
from tests.api.test_problems import assert_problem
from tests.conftest import mint_token

BK = "/v1/programmes/bac-kan-nscl"
CASES = [
    pytest.param(
        f"{BK}/plans", {"kind": "annual", "start_year": 2024}, "/v1/plans", "plan", id="plan"
    ),
    pytest.param(
        f"{BK}/budget-estimates",
        {"budget_year": 2025},
        "/v1/budget-estimates",
        "budget estimate",
        id="estimate",
    ),
]


@pytest.mark.parametrize(("create", "body", "base", "noun"), CASES)
async def test_refusals_name_what_is_reviewed(
    anonymous: httpx.AsyncClient,
    keys: KeyRing,
    create: str,
    body: dict[str, object],
    base: str,
    noun: str,
) -> None:
    me = {"Authorization": f"Bearer {mint_token(keys, 'test-reporter')}"}
    dost = {"Authorization": f"Bearer {mint_token(keys, 'test-reviewer')}"}
    created = await anonymous.post(create, json=body, headers=me)
    assert created.status_code == 201, created.text
    url = f"{base}/{created.json()['id']}"

    missing = await anonymous.post(f"{url}/submission", headers=me)
    assert missing.status_code == 428, missing.text
    stale = await anonymous.post(f"{url}/acceptance", headers={**dost, "If-Match": '"99"'})
    stale_body = assert_problem(stale, 412, "stale_revision")
    early = await anonymous.post(
        f"{url}/acceptance", headers={**dost, "If-Match": created.headers["etag"]}
    )
    early_body = assert_problem(early, 409, "transition_not_allowed")

    assert f"{noun}'s ETag" in missing.json()["detail"]
    assert str(stale_body["detail"]).startswith(f"The {noun} changed (revision 1)")
    assert str(early_body["detail"]).startswith(f"A draft {noun} cannot be accepted")
    for answer in (missing.json(), stale_body, early_body):
        assert "report" not in str(answer["detail"])
