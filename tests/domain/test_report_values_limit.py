"""One limit on the typed indicator values of a report, wherever they are written or read."""

from __future__ import annotations

import uuid
from typing import Any, cast

import pytest
from pydantic import ValidationError

from nscl_domain.errors import Invalid
from nscl_domain.identity import SYSTEM
from nscl_domain.reports import imports
from nscl_domain.reports.content import MAX_INDICATOR_VALUES, ReportContent
from nscl_domain.reports.importing import CheckedUpload, ObligationScope
from nscl_domain.types import STORED
from nscl_domain.uow import UnitOfWork

ENTRY = {"indicator": "training-courses", "value": "1"}


def _content(count: int) -> dict[str, Any]:
    return {"indicator_values": [ENTRY] * count}


class TestContent:
    def test_input_holds_up_to_the_limit(self) -> None:
        content = ReportContent.model_validate(_content(MAX_INDICATOR_VALUES))
        assert len(content.indicator_values) == MAX_INDICATOR_VALUES

    def test_input_past_the_limit_is_refused_as_too_long(self) -> None:
        with pytest.raises(ValidationError) as refused:
            ReportContent.model_validate(_content(MAX_INDICATOR_VALUES + 1))
        [error] = refused.value.errors()
        assert (error["loc"], error["type"]) == (("indicator_values",), "too_long")
        assert error["ctx"]["max_length"] == MAX_INDICATOR_VALUES

    def test_a_stored_draft_past_the_limit_is_still_read(self) -> None:
        content = ReportContent.model_validate(_content(MAX_INDICATOR_VALUES + 1), context=STORED)
        assert len(content.indicator_values) == MAX_INDICATOR_VALUES + 1

    def test_the_contract_states_the_limit(self) -> None:
        schema = ReportContent.model_json_schema()
        assert schema["properties"]["indicator_values"]["maxItems"] == MAX_INDICATOR_VALUES


class _Untouched:
    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"the database was used ({name})")


@pytest.mark.parametrize("dry_run", [True, False])
async def test_an_import_of_more_values_than_a_report_holds_is_refused(dry_run: bool) -> None:
    checked = CheckedUpload(
        rows_read=MAX_INDICATOR_VALUES + 1, value_count=MAX_INDICATOR_VALUES + 1, errors=()
    )
    target = imports.ImportTarget({}, ObligationScope("bk-cho-don", 2024))
    with pytest.raises(Invalid) as refused:
        await imports.import_values(
            cast(UnitOfWork, _Untouched()), SYSTEM, uuid.uuid4(), checked, target,
            dry_run=dry_run, expected_revision=1,
        )  # fmt: skip
    assert refused.value.code == "too_many_values"
    assert refused.value.extra == {
        "limit": MAX_INDICATOR_VALUES,
        "value": MAX_INDICATOR_VALUES + 1,
    }
