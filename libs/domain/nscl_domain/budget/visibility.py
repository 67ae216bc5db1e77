"""Who sees which budget detail: the one policy the budget routes and the rollups follow.

Budget money is shown at two grains.

* Totals by funding source × destination (and task group, when a reader filters by one):
  every reader of rollups sees them. They say what the province plans and spends on the
  programme, and name no unit but the destinations, which are public bodies.
* Per-unit rows: what one unit estimated, was allocated and spent. A caller sees
  - every unit's rows when it reviews budgets (``budget.review``: the lead department) or
    audits (``audit.read``);
  - its own unit's rows when it estimates (``budget.read``: a reporting unit);
  - the rows routed to its own unit when it is a destination (``dossiers.read``: Finance,
    Planning and Investment), which its dossiers show line by line already;
  - no rows otherwise (viewers, operators, administrators, another unit's reporter).

Estimates and the follow-up of money are read in the same scope (every unit's, or the
caller's own), and dossiers in the destination scope (every destination's, or the caller's
own). A caller's class of visibility is small and stable, so a rendered rollup body is
kept per run and per class, not per caller.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from nscl_domain.identity import Caller, Permission


@dataclass(frozen=True)
class BudgetVisibility:
    """What budget detail one caller may see (see the module's docstring)."""

    every_unit: bool
    unit_id: uuid.UUID
    unit_key: str
    own_rows: bool
    routed_rows: bool

    @property
    def estimate_scope(self) -> uuid.UUID | None:
        """The unit whose estimates and money the caller reads; None: every unit's."""
        return None if self.every_unit else self.unit_id

    @property
    def destination_scope(self) -> uuid.UUID | None:
        """The destination whose dossiers the caller reads; None: every destination's."""
        return None if self.every_unit else self.unit_id

    def shows_row(self, unit: str, destination: str | None) -> bool:
        """Whether a per-unit row (the unit's key, its destination's key) is the caller's
        to see."""
        return (
            self.every_unit
            or (self.own_rows and unit == self.unit_key)
            or (self.routed_rows and destination is not None and destination == self.unit_key)
        )

    @property
    def cache_class(self) -> tuple[str, ...]:
        """Callers of one class see the same budget detail: a cache key part."""
        if self.every_unit:
            return ("every_unit",)
        if not (self.own_rows or self.routed_rows):
            return ("totals",)
        return (
            "unit",
            self.unit_key,
            "own" if self.own_rows else "",
            "routed" if self.routed_rows else "",
        )


def budget_visibility(caller: Caller) -> BudgetVisibility:
    """The budget detail ``caller`` may see."""
    return BudgetVisibility(
        every_unit=caller.can(Permission.BUDGET_REVIEW) or caller.can(Permission.AUDIT_READ),
        unit_id=caller.unit_id,
        unit_key=caller.unit_key,
        own_rows=caller.can(Permission.BUDGET_READ),
        routed_rows=caller.can(Permission.DOSSIERS_READ),
    )
