"""The one review workflow: its transitions, and messages that name what is reviewed."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

import pytest
from sqlalchemy.dialects import postgresql

from nscl_domain.budget.models import BudgetEstimate
from nscl_domain.errors import Conflict, PreconditionFailed
from nscl_domain.plans.models import Plan
from nscl_domain.reports.models import Report
from nscl_domain.workflow import Action, EnumText, Reviewed, ReviewStatus

NOW = datetime(2026, 11, 30, 8, tzinfo=UTC)
S = ReviewStatus
# The workflow as the programme's rules describe it: status, action, the status after.
RULES = """
    draft       submit   submitted
    returned    submit   resubmitted
    submitted   return   returned
    resubmitted return   returned
    submitted   accept   accepted
    resubmitted accept   accepted
    accepted    correct  draft
"""
ALLOWED = {
    (S(status), Action(action)): S(after)
    for status, action, after in (line.split() for line in RULES.strip().splitlines())
}


def plan(status: ReviewStatus, revision: int = 3) -> Plan:
    return Plan(status=status, revision=revision)


@pytest.mark.parametrize(("status", "action"), list(itertools.product(S, Action)))
def test_every_status_and_action(status: ReviewStatus, action: Action) -> None:
    row = plan(status)
    if (status, action) in ALLOWED:
        assert row.next_status(action) == ALLOWED[(status, action)]
    else:
        with pytest.raises(Conflict) as refused:
            row.next_status(action)
        assert refused.value.code == "transition_not_allowed"


@pytest.mark.parametrize(
    ("row", "noun"),
    [
        (Report(status=S.DRAFT, revision=1), "report"),
        (Plan(status=S.DRAFT, revision=1), "plan"),
        (BudgetEstimate(status=S.DRAFT, revision=1), "budget estimate"),
    ],
)
def test_messages_name_what_is_reviewed(row: Reviewed, noun: str) -> None:
    with pytest.raises(Conflict, match=f"^A draft {noun} cannot be accepted; it can be: submit"):
        row.accept(NOW)
    with pytest.raises(PreconditionFailed, match=f"^The {noun} changed \\(revision 1\\)"):
        row.check_revision(7)
    row.submit(NOW)
    with pytest.raises(Conflict, match=f"^A submitted {noun} cannot be edited") as refused:
        row.check_editable()
    assert refused.value.code == f"{type(row).code}_not_editable"
    for other in ("report", "plan", "estimate"):
        if other not in noun:
            assert other not in str(refused.value)


def test_a_review_records_the_decision_and_bumps_the_revision() -> None:
    returned = plan(S.SUBMITTED)
    returned.review(Action.RETURN, NOW, "Thiếu sản phẩm chủ lực")
    assert (returned.status, returned.returned_reason, returned.revision) == (
        S.RETURNED,
        "Thiếu sản phẩm chủ lực",
        4,
    )
    assert returned.submit(NOW) == S.RETURNED  # the status it had: a resubmission
    assert (returned.status, returned.returned_reason, returned.submitted_at) == (
        S.RESUBMITTED,
        None,
        NOW,
    )
    returned.review(Action.ACCEPT, NOW)
    assert (returned.status, returned.accepted_at, returned.revision) == (S.ACCEPTED, NOW, 6)


def test_an_accepted_report_reopens_for_a_correction() -> None:
    report = Report(status=S.RESUBMITTED, revision=2, latest_version_no=2)
    report.accept(NOW)
    assert (report.accepted_version_no, report.updated_at) == (2, NOW)
    report.correct("Sai số liệu", NOW)
    assert (report.status, report.correction_reason, report.revision) == (S.DRAFT, "Sai số liệu", 4)
    report.check_editable()
    report.submit(NOW)
    assert (report.status, report.correction_reason) == (S.SUBMITTED, None)


def test_the_status_column_keeps_its_varchar_and_refuses_unknown_values() -> None:
    column = EnumText(ReviewStatus, 20)
    dialect = postgresql.dialect()
    assert str(column.impl_instance.compile(dialect=dialect)) == "VARCHAR(20)"
    assert column.process_bind_param("accepted", dialect) == "accepted"
    assert column.process_result_value("returned", dialect) is S.RETURNED
    with pytest.raises(ValueError, match="corrected"):
        column.process_bind_param("corrected", dialect)
