"""Import a province's history of received reports from one spreadsheet (many units × years).

:func:`import_history` is the use case; the reading below it is pure. The rows come from
:func:`~nscl_domain.reports.importing.read_rows` (the upload parser pool runs it);
:func:`read_history` groups them by unit and year into backfill entries and says where
each part of an entry came from, so that a problem the domain finds later (a rule of the
report, a unit that did not report that year) is given back at its row and column.

The file: one row per figure or record, each naming its ``unit`` and ``year``::

    unit, year, letter_number, letter_date, letter_issuer, received_on, reason,
    record, indicator, <breakdown columns>, value,
    tax_code, name, solution, certificate_issued, certified_on, model_enterprise,
    level, organisation, results, shortcomings, causes, proposals

- ``record`` says what a row is: ``value`` (or empty: a typed indicator figure),
  ``enterprise`` (a supported enterprise), ``expert`` (a certified expert) or ``letter``
  (nothing but the letter: a report without figures).
- The letter (``letter_number``, ``letter_date``, ``letter_issuer``), ``received_on``,
  ``reason`` and the narrative (``results`` …) belong to the unit-year: give them on any of
  its rows; given on several, they must agree.
- Dates are ``YYYY-MM-DD`` or ``DD/MM/YYYY``; booleans ``yes``/``no`` (``có``/``không``,
  ``true``/``false``, ``1``/``0``, ``x``/empty).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from pydantic import ValidationError

from nscl_domain.catalogue.repository import CatalogueRepository
from nscl_domain.catalogue.service import programme_or_404
from nscl_domain.identity import Caller, Permission
from nscl_domain.reports.backfill import BackfillEntry, Entered, Letter, Location, backfill
from nscl_domain.reports.content import (
    CertifiedExpert,
    IndicatorEntry,
    Narrative,
    ReportContent,
    SupportedEnterprise,
)
from nscl_domain.reports.importing import (
    INDICATOR_COLUMN,
    UNIT_COLUMN,
    VALUE_COLUMN,
    YEAR_COLUMN,
    Cell,
    CellFault,
    IndicatorSpec,
    ObligationScope,
    RowError,
    _as_year,
    _Checker,
    _clean,
    _column_name,
)
from nscl_domain.uow import UnitOfWork

RECORD_COLUMN = "record"
REQUIRED_COLUMNS = (UNIT_COLUMN, YEAR_COLUMN)
# The unit-year's own fields: given on any of its rows, the same wherever given.
LETTER_COLUMNS = ("letter_number", "letter_date", "letter_issuer", "received_on", "reason")
NARRATIVE_COLUMNS = ("results", "shortcomings", "causes", "proposals")
GROUP_COLUMNS = LETTER_COLUMNS + NARRATIVE_COLUMNS
ENTERPRISE_COLUMNS = {
    "tax_code": "tax_code",
    "name": "name",
    "solution": "solution",
    "certificate_issued": "certificate_issued",
    "certified_on": "certified_on",
    "model_enterprise": "model_enterprise",
}
EXPERT_COLUMNS = {
    "full_name": "name",
    "level": "level",
    "certified_on": "certified_on",
    "organisation": "organisation",
}
RECORD_KINDS = ("value", "enterprise", "expert", "letter")
_TRUE = {"yes", "có", "co", "true", "1", "x"}
_FALSE = {"no", "không", "khong", "false", "0", ""}
_DMY = re.compile(r"(\d{1,2})/(\d{1,2})/(\d{4})")


@dataclass(frozen=True)
class HistoryImport:
    """What an import of history found: every problem at its row, and (applied) what was
    entered."""

    dry_run: bool
    rows_read: int
    reports: int
    errors: tuple[RowError, ...]
    entered: tuple[Entered, ...]
    obligations_created: int

    @property
    def ok(self) -> bool:
        """Tell whether no row had a problem."""
        return not self.errors


async def import_history(
    uow: UnitOfWork,
    actor: Caller,
    programme_ref: str,
    rows: Iterable[tuple[int, Mapping[str, Cell]]],
    *,
    regime_key: str,
    dry_run: bool,
) -> HistoryImport:
    """Check every row of a history file (the file's own checks, then each unit-year's as a
    backfill); unless a dry run, and only if no row has a problem, enter them all."""
    actor.require(Permission.REPORTS_MANAGE)
    async with uow:
        programme = await programme_or_404(uow, programme_ref)
        specs = {
            i.key: IndicatorSpec(
                key=i.key,
                name_vi=i.name_vi,
                name_en=i.name_en,
                unit=i.unit,
                derived=i.derived_from is not None,
                disaggregations={d["dimension"]: d["values"] for d in i.disaggregations},
            )
            for i in await uow.get(CatalogueRepository).indicators(programme.id, 0, 10_000)
        }
    read = read_history(rows, specs)
    # The entries the file makes are checked in any case, so that one dry run lists every
    # problem of the file; they are entered only when the file has none at all.
    checked = await backfill(
        uow, actor, programme_ref, read.entries, regime_key=regime_key,
        dry_run=dry_run or not read.ok,
    )  # fmt: skip
    errors = list(read.errors)
    for problem in checked.problems:
        row, column = read.locate(problem.entry, problem.location)
        errors.append(RowError(row, column, problem.code, problem.message))
    errors.sort(key=lambda e: (e.row, e.column or ""))
    return HistoryImport(
        dry_run=dry_run,
        rows_read=read.rows_read,
        reports=len(read.entries),
        errors=tuple(errors),
        entered=checked.entered,
        obligations_created=checked.obligations_created,
    )


@dataclass(frozen=True)
class HistoryRead:
    """What the file holds: the entries it makes, the problems of its rows, and where each
    part of an entry came from."""

    entries: tuple[BackfillEntry, ...]
    errors: tuple[RowError, ...]
    rows_read: int
    origins: tuple[Mapping[Location, tuple[int, str | None]], ...]

    @property
    def ok(self) -> bool:
        """Tell whether no row had a problem of its own."""
        return not self.errors

    def locate(self, entry: int, location: Location) -> tuple[int, str | None]:
        """The row and column of a part of an entry (its first row when nothing closer)."""
        origin = self.origins[entry]
        for length in range(len(location), 0, -1):
            found = origin.get(location[:length])
            if found is not None:
                return found
        return origin[()]


@dataclass
class _Group:
    unit: str
    year: int
    first_row: int
    fields: dict[str, tuple[str, int]] = field(default_factory=dict)
    values: list[IndicatorEntry] = field(default_factory=list)
    enterprises: list[SupportedEnterprise] = field(default_factory=list)
    experts: list[CertifiedExpert] = field(default_factory=list)
    origin: dict[Location, tuple[int, str | None]] = field(default_factory=dict)
    checker: _Checker = field(kw_only=True)


def _text(cell: Cell) -> str | None:
    cleaned = _clean(cell)
    return None if isinstance(cleaned, CellFault) else cleaned


def parse_day(text: str) -> date | None:
    """A date as ``YYYY-MM-DD`` or ``DD/MM/YYYY``, or None."""
    found = _DMY.fullmatch(text)
    try:
        if found:
            day, month, year = (int(part) for part in found.groups())
            return date(year, month, day)
        return date.fromisoformat(text) if len(text) == 10 else None
    except ValueError:
        return None


def _flag(text: str | None) -> bool | None:
    folded = (text or "").strip().casefold()
    if folded in _TRUE:
        return True
    if folded in _FALSE:
        return False
    return None


def read_history(
    rows: Iterable[tuple[int, Mapping[str, Cell]]],
    indicators: Mapping[str, IndicatorSpec],
) -> HistoryRead:
    """Group the rows into entries (one per unit and year) and check what can be checked
    without the database: figures against the catalogue, records, dates, agreement."""
    errors: list[RowError] = []
    groups: dict[tuple[str, int], _Group] = {}
    rows_read = 0
    for number, raw in rows:
        rows_read += 1
        # A formula or a merged cell is named as such, not read as a value left out.
        faults = [(k, v) for k, v in raw.items() if isinstance(v, CellFault)]
        for column, fault in faults:
            errors.append(
                RowError(number, _column_name(column), fault.code, fault.message(),
                         tuple(fault.params().items()))
            )  # fmt: skip
        if faults:
            continue
        record = {_column_name(k): _text(v) for k, v in raw.items()}
        group = _group_of(number, record, groups, errors, indicators)
        if group is None:
            continue
        _take_group_fields(number, record, group, errors)
        kind = (record.get(RECORD_COLUMN) or "value").casefold()
        if kind == "value":
            if record.get(INDICATOR_COLUMN) is None and record.get(VALUE_COLUMN) is None:
                continue  # a row of the letter or narrative only
            _take_value(number, record, group, errors)
        elif kind == "enterprise":
            _take_record(number, record, group, errors, SupportedEnterprise, ENTERPRISE_COLUMNS)
        elif kind == "expert":
            _take_record(number, record, group, errors, CertifiedExpert, EXPERT_COLUMNS)
        elif kind != "letter":
            errors.append(
                RowError(number, RECORD_COLUMN, "unknown_record",
                         f"{record[RECORD_COLUMN]!r} is not one of {', '.join(RECORD_KINDS)}.")
            )  # fmt: skip
    entries, origins = [], []
    for group in groups.values():
        entry = _entry_of(group, errors)
        if entry is not None:
            entries.append(entry)
            origins.append(group.origin)
    errors.sort(key=lambda e: (e.row, e.column or ""))
    return HistoryRead(tuple(entries), tuple(errors), rows_read, tuple(origins))


def _group_of(
    number: int,
    record: Mapping[str, str | None],
    groups: dict[tuple[str, int], _Group],
    errors: list[RowError],
    indicators: Mapping[str, IndicatorSpec],
) -> _Group | None:
    unit, year_text = record.get(UNIT_COLUMN), record.get(YEAR_COLUMN)
    if unit is None:
        errors.append(RowError(number, UNIT_COLUMN, "missing_unit", "The row names no unit."))
    year = _as_year(year_text) if year_text is not None else None
    if year is None:
        errors.append(
            RowError(number, YEAR_COLUMN, "invalid_year",
                     f"{year_text!r} is not a year." if year_text else "The row names no year.")
        )  # fmt: skip
    if unit is None or year is None:
        return None
    # Unit keys are lower case; a spreadsheet may have capitalised them.
    unit = unit.casefold()
    key = (unit, year)
    group = groups.get(key)
    if group is None:
        group = groups[key] = _Group(
            unit, year, number, checker=_Checker(indicators, ObligationScope(unit, year))
        )
        group.origin[()] = (number, None)
        group.origin[("unit",)] = (number, UNIT_COLUMN)
        group.origin[("year",)] = (number, YEAR_COLUMN)
    return group


def _take_group_fields(
    number: int, record: Mapping[str, str | None], group: _Group, errors: list[RowError]
) -> None:
    for column in GROUP_COLUMNS:
        text = record.get(column)
        if text is None:
            continue
        earlier = group.fields.get(column)
        if earlier is None:
            group.fields[column] = (text, number)
        elif earlier[0] != text:
            errors.append(
                RowError(number, column, "conflicting_value",
                         f"{group.unit} {group.year} has {column} {earlier[0]!r} in row "
                         f"{earlier[1]}, not {text!r}.")
            )  # fmt: skip


def _take_value(
    number: int, record: Mapping[str, str | None], group: _Group, errors: list[RowError]
) -> None:
    # The import's own checker: the same messages as a unit's upload of its figures.
    checker = group.checker
    before = len(checker.values)
    errors_before = len(checker.errors)
    checker.check(number, record)
    errors += checker.errors[errors_before:]
    for value in checker.values[before:]:
        position = len(group.values)
        group.values.append(
            IndicatorEntry(
                indicator=value.indicator_key,
                disaggregation=dict(value.disaggregation),
                value=value.value,
            )
        )
        at: Location = ("content", "indicator_values", position)
        group.origin[at] = (number, None)
        group.origin[(*at, "indicator")] = (number, INDICATOR_COLUMN)
        group.origin[(*at, "value")] = (number, VALUE_COLUMN)


def _take_record(
    number: int,
    record: Mapping[str, str | None],
    group: _Group,
    errors: list[RowError],
    model: type[SupportedEnterprise] | type[CertifiedExpert],
    columns: Mapping[str, str],
) -> None:
    data: dict[str, Any] = {}
    for name, column in columns.items():
        text = record.get(column)
        if text is None:
            continue
        if name in ("certificate_issued", "model_enterprise"):
            flag = _flag(text)
            if flag is None:
                errors.append(
                    RowError(number, column, "not_a_flag", f"{text!r} is neither yes nor no.")
                )
                return
            data[name] = flag
        elif name == "certified_on":
            day = parse_day(text)
            if day is None:
                errors.append(RowError(number, column, "invalid_date", f"{text!r} is not a date."))
                return
            data[name] = day
        else:
            data[name] = text
    try:
        parsed = model.model_validate(data)
    except ValidationError as exc:
        for error in exc.errors():
            field_name = str(error["loc"][0]) if error["loc"] else None
            column_name = columns.get(field_name, field_name) if field_name else None
            errors.append(RowError(number, column_name, error["type"], f"{error['msg']}."))
        return
    kind = "enterprises" if isinstance(parsed, SupportedEnterprise) else "experts"
    records: list[Any] = group.enterprises if kind == "enterprises" else group.experts
    at: Location = ("content", kind, len(records))
    records.append(parsed)
    group.origin[at] = (number, None)
    for name, column in columns.items():
        group.origin[(*at, name)] = (number, column)


def _entry_of(group: _Group, errors: list[RowError]) -> BackfillEntry | None:
    def field_of(column: str) -> str | None:
        found = group.fields.get(column)
        if found is not None:
            group.origin.setdefault(_LOCATIONS[column], (found[1], column))
        return found[0] if found else None

    problems = len(errors)
    number, letter_date_text = field_of("letter_number"), field_of("letter_date")
    received_text, issuer = field_of("received_on"), field_of("letter_issuer")
    for column, text in (
        ("letter_number", number), ("letter_date", letter_date_text), ("received_on", received_text)
    ):  # fmt: skip
        if text is None:
            errors.append(
                RowError(group.first_row, column, "missing_letter",
                         f"{group.unit} {group.year} gives no {column} on any of its rows.")
            )  # fmt: skip
    letter_day = parse_day(letter_date_text) if letter_date_text else None
    received = parse_day(received_text) if received_text else None
    for column, text, day in (
        ("letter_date", letter_date_text, letter_day), ("received_on", received_text, received)
    ):  # fmt: skip
        if text is not None and day is None:
            row = group.fields[column][1]
            errors.append(RowError(row, column, "invalid_date", f"{text!r} is not a date."))
    if len(errors) > problems or number is None or letter_day is None or received is None:
        return None
    narrative = Narrative.model_validate(
        {c: t for c in NARRATIVE_COLUMNS if (t := field_of(c)) is not None}
    )
    return BackfillEntry(
        unit=group.unit,
        year=group.year,
        letter=Letter(number=number, date=letter_day, issuer=issuer),
        received_on=received,
        content=ReportContent(
            indicator_values=group.values,
            enterprises=group.enterprises,
            experts=group.experts,
            narrative=narrative,
        ),
        reason=field_of("reason"),
    )


_LOCATIONS: dict[str, Location] = {
    "letter_number": ("letter", "number"),
    "letter_date": ("letter", "date"),
    "letter_issuer": ("letter", "issuer"),
    "received_on": ("received_on",),
    "reason": ("reason",),
    **{c: ("content", "narrative", c) for c in NARRATIVE_COLUMNS},
}
