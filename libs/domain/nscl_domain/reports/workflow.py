"""The one state machine of a report: draft → submitted → returned → resubmitted → accepted."""

from __future__ import annotations

from enum import StrEnum

from nscl_domain.errors import Conflict


class Action(StrEnum):
    SUBMIT = "submit"
    RETURN = "return"
    ACCEPT = "accept"
    CORRECT = "correct"


TRANSITIONS: dict[tuple[str, Action], str] = {
    ("draft", Action.SUBMIT): "submitted",
    ("returned", Action.SUBMIT): "resubmitted",
    ("submitted", Action.RETURN): "returned",
    ("resubmitted", Action.RETURN): "returned",
    ("submitted", Action.ACCEPT): "accepted",
    ("resubmitted", Action.ACCEPT): "accepted",
    # A correction after acceptance reopens a draft; submitting it makes a new version.
    ("accepted", Action.CORRECT): "draft",
}
EDITABLE = frozenset({"draft", "returned"})


def next_status(current: str, action: Action) -> str:
    """The status after ``action``, or Conflict when the report's status does not allow it."""
    try:
        return TRANSITIONS[(current, action)]
    except KeyError:
        allowed = sorted(a.value for (status, a) in TRANSITIONS if status == current)
        raise Conflict(
            f"A {current} report cannot be {_past[action]}"
            + (f"; it can be: {', '.join(allowed)}." if allowed else "."),
            code="transition_not_allowed",
        ) from None


_past = {
    Action.SUBMIT: "submitted",
    Action.RETURN: "returned",
    Action.ACCEPT: "accepted",
    Action.CORRECT: "corrected",
}
