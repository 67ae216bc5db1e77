"""Read a unit's indicator values from an uploaded CSV or XLSX file, and build its template.

Pure functions: no database, no web framework, every number a ``Decimal``.

- :func:`read_rows` turns the file into ``(row number, {column: text})`` pairs, or raises
  :class:`ImportFormatError` when it is not a readable table at all, and
  :class:`ImportLimitError` as soon as what it has read (rows, columns, cells, shared
  strings, inflated bytes, wall time) passes one of the :class:`UploadLimits`. It is
  CPU-bound: the API runs it in a worker process (:mod:`nscl_domain.offload`).
- :func:`check_rows` checks every row against the indicator catalogue and the obligation,
  and reports every problem it finds, so that a unit can fix the whole file in one go.
- :func:`build_template_xlsx` and :func:`build_template_csv` write a file with one row per
  value the unit may type; it reads back through the two functions above.

Row numbers are the ones the user sees in the spreadsheet: the header is row 1.
"""

from __future__ import annotations

import contextlib
import csv
import io
import itertools
import re
import zipfile
from collections.abc import Generator, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import Decimal, InvalidOperation
from time import monotonic
from typing import Any

from openpyxl import Workbook
from openpyxl.cell.text import Text
from openpyxl.reader.excel import ExcelReader
from openpyxl.styles import Alignment, Font, PatternFill, Protection
from openpyxl.styles.stylesheet import (
    apply_stylesheet,
)
from openpyxl.utils import get_column_letter, range_boundaries

# The cell parser of openpyxl's sheet reader: the module is private, the parser stable since
# openpyxl 2.6; the tests of dates, numbers and shared strings would catch a change.
from openpyxl.worksheet import _reader
from openpyxl.worksheet.datavalidation import DataValidation
from openpyxl.xml.constants import (
    SHARED_STRINGS,
    SHEET_MAIN_NS,
)

# defusedxml's parser when it is installed (a dependency): no entity expansion bombs.
from openpyxl.xml.functions import iterparse

from nscl_domain.errors import ProblemCode
from nscl_domain.reports.content import MAX_INDICATOR_VALUES
from nscl_domain.text import nfc

XLSX_MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
CSV_MEDIA_TYPE = "text/csv"
_CSV_MEDIA_TYPES = frozenset({CSV_MEDIA_TYPE, "application/csv"})

MAX_FILE_BYTES = 5 * 1024 * 1024
# A row gives at most one value: a file the reader takes never holds more than a report.
MAX_DATA_ROWS = MAX_INDICATOR_VALUES

UNIT_COLUMN = "unit"
YEAR_COLUMN = "year"
INDICATOR_COLUMN = "indicator"
VALUE_COLUMN = "value"
REQUIRED_COLUMNS = (INDICATOR_COLUMN, VALUE_COLUMN)
# Written into the template to help the person filling it in; never read back.
INFORMATIONAL_COLUMNS = ("name_vi", "name_en", "unit_of_measure", "note")
_RESERVED_COLUMNS = frozenset(
    {UNIT_COLUMN, YEAR_COLUMN, INDICATOR_COLUMN, VALUE_COLUMN, *INFORMATIONAL_COLUMNS}
)

PERCENT_UNIT = "percent"
_HUNDRED = Decimal(100)
_TOO_LARGE = Decimal(10) ** 16
# Plain decimal notation only: Decimal() alone would also take "NaN", "1_000" and non-ASCII
# digits, none of which a person means as a figure in a report.
_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_WHITESPACE = re.compile(r"\s+")

_STRING_TAG = f"{{{SHEET_MAIN_NS}}}si"
_FORMULA_TAG = f"{{{SHEET_MAIN_NS}}}f"
_MERGE_TAG = f"{{{SHEET_MAIN_NS}}}mergeCell"
# A header is looked for in the first rows: a template has a title block above it.
HEADER_SEARCH_ROWS = 20
# The most rows a file may have above its data: a header found as low as it is looked for,
# and the template's row of column keys under its headings.
_MAX_HEADER_ROWS = HEADER_SEARCH_ROWS + 1
MAX_MERGES = 10_000


@dataclass(frozen=True)
class CellFault:
    """A cell whose value cannot be taken as typed: a formula, or a cell of a merged range.

    The reader keeps the fault in place of the text, so that the checker names it for the
    cell ("formula", "merged") instead of reporting a value as missing."""

    code: str
    cell: str
    detail: str

    def params(self) -> dict[str, str]:
        name = "formula" if self.code == "formula_not_allowed" else "range"
        return {"cell": self.cell, name: self.detail}

    def message(self) -> str:
        if self.code == "formula_not_allowed":
            return (
                f"Cell {self.cell} holds a formula ({self.detail}); type the figure, not a formula."
            )
        return (
            f"Cell {self.cell} is part of the merged cells {self.detail}; unmerge them and "
            "type each value in its own cell."
        )


Cell = str | CellFault | None
Row = tuple[int, dict[str, Cell]]

# Column headings of the template, (Vietnamese, English); the key row under them is what
# the reader matches, and the headings are recognised too for files made by hand.
COLUMN_LABELS: dict[str, tuple[str, str]] = {
    UNIT_COLUMN: ("Đơn vị", "Unit"),
    YEAR_COLUMN: ("Năm", "Year"),
    INDICATOR_COLUMN: ("Mã chỉ tiêu", "Indicator"),
    VALUE_COLUMN: ("Giá trị", "Value"),
    "name_vi": ("Tên chỉ tiêu", "Name (Vietnamese)"),
    "name_en": ("Tên chỉ tiêu (tiếng Anh)", "Name (English)"),
    "unit_of_measure": ("Đơn vị tính", "Unit of measure"),
    "note": ("Ghi chú", "Note"),
    # Dimensions of the catalogue's breakdowns.
    "trainee_group": ("Nhóm học viên", "Trainee group"),
    "certification_level": ("Cấp chứng nhận", "Certification level"),
    "size": ("Quy mô", "Size"),
    "sex": ("Giới tính", "Sex"),
}
# Units of measure of the catalogue in words, (Vietnamese, English).
MEASURE_LABELS: dict[str, tuple[str, str]] = {
    "person": ("người", "person"),
    "course": ("lớp", "course"),
    "enterprise": ("doanh nghiệp", "enterprise"),
    "certificate": ("giấy chứng nhận", "certificate"),
    "percent": ("%", "percent"),
    "model": ("mô hình", "model"),
    "most": ("bộ", "set"),
}
_ALIASES = {
    nfc(label).strip().lower(): key for key, labels in COLUMN_LABELS.items() for label in labels
}


@dataclass(frozen=True)
class IndicatorSpec:
    """What the import needs to know of an indicator of the catalogue."""

    key: str
    name_vi: str
    name_en: str
    unit: str
    derived: bool
    disaggregations: Mapping[str, Sequence[str]]


@dataclass(frozen=True)
class ObligationScope:
    """The unit and year a report is for; rows naming another one do not belong in it."""

    unit_key: str
    year: int


@dataclass(frozen=True)
class ImportedValue:
    """One checked figure of the file."""

    indicator_key: str
    disaggregation: Mapping[str, str]
    value: Decimal
    row: int


@dataclass(frozen=True)
class RowError:
    """One problem with one row (or cell) of the file; ``params`` name what the message
    names (the value, the indicator …), so the message can be written in another language."""

    row: int
    column: str | None
    code: str
    message: str
    params: tuple[tuple[str, str], ...] = field(default=(), compare=False)


@dataclass(frozen=True)
class ImportResult:
    """The figures of the rows without problems, and every problem found."""

    values: tuple[ImportedValue, ...]
    errors: tuple[RowError, ...]
    rows_read: int

    @property
    def ok(self) -> bool:
        """Tell whether no row had a problem."""
        return not self.errors


# A checked figure as it crosses back from the parser process: (indicator, breakdown as
# (dimension, value) pairs, the figure in plain decimal notation). Strings and tuples only:
# the server unpickles 20,000 of them in milliseconds, where as many dataclasses holding
# a Decimal and a dict take a good part of a second of its event loop.
PackedValue = tuple[str, tuple[tuple[str, str], ...], str]


@dataclass(frozen=True)
class CheckedUpload:
    """What :func:`read_and_check` sends back to the server: the counts and every problem,
    and the figures only when they are to be written."""

    rows_read: int
    value_count: int
    errors: tuple[RowError, ...]
    values: tuple[PackedValue, ...] = ()

    @property
    def ok(self) -> bool:
        """Tell whether no row had a problem."""
        return not self.errors


class ImportFormatError(ValueError):
    """The file cannot be read as a table of values at all (not CSV/XLSX, no header, missing
    required column)."""


class ImportLimitError(ImportFormatError):
    """The file is over one of the reader's limits (:class:`UploadLimits`); reading stopped.

    ``code`` names the limit (``upload_too_many_rows``…), ``limit`` is its value and
    ``value`` what the file reached when reading stopped; ``too_large`` tells a limit on the
    amount of content (the file is too big) from one on its shape or on time.
    """

    def __init__(
        self,
        code: ProblemCode,
        detail: str,
        limit: float,
        value: float | None,
        too_large: bool = True,
    ) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail
        self.limit = limit
        self.value = value
        self.too_large = too_large

    def __reduce__(self) -> tuple[type[ImportLimitError], tuple[object, ...]]:
        # Raised in a worker process and unpickled in the server's: rebuild it whole.
        return (type(self), (self.code, self.detail, self.limit, self.value, self.too_large))


@dataclass(frozen=True)
class UploadLimits:
    """What one upload may make the reader do. Every count is of what is *read* (empty rows,
    cells under no header, strings no cell uses), never of what is kept, so that a file
    cannot make the reader work without getting closer to a limit."""

    max_file_bytes: int = MAX_FILE_BYTES
    # The rows after the header (a template's two heading rows), empty or not, up to the last
    # one the file has; a title block above the header is not counted.
    max_rows: int = MAX_DATA_ROWS
    # The template has about ten columns; the sheet could have 16,384.
    max_columns: int = 100
    max_cells: int = 500_000
    max_shared_strings: int = 100_000
    max_shared_string_chars: int = 5_000_000
    # A workbook is a zip: its parts may inflate to this much in all…
    max_uncompressed_bytes: int = 64 * 1024 * 1024
    # …and none over a mebibyte may inflate more than this (spreadsheets do ~10:1, bombs ~1000:1).
    max_compression_ratio: int = 200
    max_zip_members: int = 500
    seconds: float = 15.0


DEFAULT_LIMITS = UploadLimits()
_RATIO_FLOOR_BYTES = 1024 * 1024
_CHECK_TIME_EVERY = 4096


class _Budget:
    """Counts what is read against the limits; raises :class:`ImportLimitError` when over."""

    def __init__(self, limits: UploadLimits) -> None:
        self.limits = limits
        self.cells = 0
        self.work = 0
        self.deadline = monotonic() + limits.seconds

    def row(self, number: int) -> None:
        # While reading, where the header is is not known yet: reading stops as soon as no
        # header the reader would find leaves room for the rows read; ``_rows_of`` counts
        # exactly once the header is found.
        if number > self.limits.max_rows + _MAX_HEADER_ROWS:
            raise _too_many_rows(self.limits.max_rows, number, number - 1)
        self.tick()

    def column(self, index: int, row: int) -> None:
        if index > self.limits.max_columns:
            raise ImportLimitError(
                "upload_too_many_columns",
                f"Row {row:,} has a cell in column {_letter(index)} (column {index:,}); a file "
                f"may use at most {self.limits.max_columns} columns. Delete the columns on "
                "the right, even empty-looking ones.",
                limit=self.limits.max_columns,
                value=index,
            )

    def add_cells(self, count: int) -> None:
        self.cells += count
        if self.cells > self.limits.max_cells:
            raise ImportLimitError(
                "upload_too_many_cells",
                f"The file has more than {self.limits.max_cells:,} cells (empty ones written "
                "in the file count too).",
                limit=self.limits.max_cells,
                value=self.cells,
            )
        self.tick(count)

    def tick(self, work: int = 1) -> None:
        """Check the wall time every few thousand steps (a clock read is not free)."""
        self.work += work
        if self.work >= _CHECK_TIME_EVERY:
            self.work = 0
            if monotonic() > self.deadline:
                raise ImportLimitError(
                    "upload_parse_timeout",
                    f"Reading the file took more than {self.limits.seconds:g} s; "
                    "split it into smaller files.",
                    limit=self.limits.seconds,
                    value=None,
                    too_large=False,
                )


def _too_many_rows(limit: int, reached: int, value: int) -> ImportLimitError:
    return ImportLimitError(
        "upload_too_many_rows",
        f"The file has more than {limit:,} rows after the header (empty rows count too: "
        f"row {reached:,} was reached); split it into smaller files.",
        limit=limit,
        value=value,
    )


def _letter(index: int) -> str:
    return str(get_column_letter(index)) if index <= 18_278 else f"#{index}"


# --- reading ---------------------------------------------------------------------------


def read_rows(
    data: bytes,
    media_type: str,
    limits: UploadLimits = DEFAULT_LIMITS,
    required: Sequence[str] = REQUIRED_COLUMNS,
) -> list[Row]:
    """Read the non-empty data rows of a CSV or XLSX file, keyed by normalised column name;
    the header must name the ``required`` columns.

    CPU-bound and bounded by ``limits``, wall time included: call it in a worker process.
    """
    kind = media_type.split(";", 1)[0].strip().lower()
    if kind not in _CSV_MEDIA_TYPES and kind != XLSX_MEDIA_TYPE:
        raise ImportFormatError(
            f"Files of type {media_type!r} are not accepted; upload a CSV ({CSV_MEDIA_TYPE}) "
            "or an Excel workbook (.xlsx)."
        )
    if len(data) > limits.max_file_bytes:
        raise ImportLimitError(
            "upload_too_large",
            f"The file is {len(data):,} bytes; files over {limits.max_file_bytes:,} bytes "
            f"({limits.max_file_bytes / 1024 / 1024:g} MB) are not accepted.",
            limit=limits.max_file_bytes,
            value=len(data),
        )
    if not data.strip():
        raise ImportFormatError("The file is empty.")
    budget = _Budget(limits)
    table = _csv_table(data, budget) if kind in _CSV_MEDIA_TYPES else _xlsx_table(data, budget)
    # Closing at once releases the workbook even when reading stops at an error.
    with contextlib.closing(table):
        return _rows_of(table, required, limits.max_rows)


def _rows_of(
    table: Iterator[tuple[int, list[Cell]]],
    required: Sequence[str] = REQUIRED_COLUMNS,
    max_rows: int = MAX_DATA_ROWS,
) -> list[Row]:
    # The reader's row limit bounds the rows kept (to a few more than ``max_rows``).
    read = list(table)
    header_at = _header_position(read, required)
    columns = _header(read[header_at][1], required)
    after = header_at + 1
    # A second heading row (the template's keys under its Vietnamese headings) is no data.
    if after < len(read) and _is_header(read[after][1], required):
        after += 1
    # Every row after the header counts, empty ones too (gaps are read as empty rows); the
    # merged ranges, numbered below zero, are no rows.
    last = max((number for number, _ in read), default=0)
    data_rows = last - read[after - 1][0]
    if data_rows > max_rows:
        raise _too_many_rows(max_rows, last, data_rows)
    rows: list[Row] = []
    for number, cells in read[after:]:
        if number < 0:  # the merged ranges, read after the rows
            continue
        record = {
            name: cells[position] if position < len(cells) else None for position, name in columns
        }
        if any(record.values()):
            rows.append((number, record))
    return rows


def _header_position(
    read: Sequence[tuple[int, list[Cell]]], required: Sequence[str] = REQUIRED_COLUMNS
) -> int:
    """Where the header is: the first row naming the required columns, within the first
    rows (a title block may come first), else the first non-empty row."""
    first = None
    for position, (number, cells) in enumerate(read[:HEADER_SEARCH_ROWS]):
        if number < 0:
            break
        if first is None and any(cells):
            first = position
        if _is_header(cells, required):
            return position
    if first is None:
        raise ImportFormatError("The first row must be a header naming the columns.")
    return first


def _is_header(cells: Sequence[Cell], required: Sequence[str] = REQUIRED_COLUMNS) -> bool:
    names = {_column_name(c) for c in cells if isinstance(c, str)}
    return all(name in names for name in required)


def _apply_merges(
    rows: list[tuple[int, list[Cell]]], merges: Sequence[str]
) -> list[tuple[int, list[Cell]]]:
    """Mark every cell of a merged range but its first: the workbook keeps no value
    there, and a reader would otherwise take it for a value left out."""
    at = {number: position for position, (number, _) in enumerate(rows)}
    for reference in merges:
        try:
            first_col, first_row, last_col, last_row = range_boundaries(reference)
        except (ValueError, TypeError):
            continue
        if None in (first_col, first_row, last_col, last_row):
            continue
        for number in range(first_row, last_row + 1):
            position = at.get(number)
            if position is None:
                continue
            cells = rows[position][1]
            for column in range(first_col, last_col + 1):
                if (number, column) == (first_row, first_col):
                    continue
                while len(cells) < column:
                    cells.append(None)
                if not isinstance(cells[column - 1], CellFault):
                    cells[column - 1] = CellFault(
                        "merged_cell", f"{_letter(column)}{number}", reference
                    )
    return rows


def _header(
    cells: Sequence[Cell], required: Sequence[str] = REQUIRED_COLUMNS
) -> list[tuple[int, str]]:
    columns: list[tuple[int, str]] = []
    seen: set[str] = set()
    for position, cell in enumerate(cells):
        if not cell or not isinstance(cell, str):
            continue
        name = _column_name(cell)
        if name in seen:
            raise ImportFormatError(f"The header names the column {name!r} twice.")
        seen.add(name)
        columns.append((position, name))
    missing = [name for name in required if name not in seen]
    if missing:
        raise ImportFormatError(
            "The header has no "
            + " and no ".join(repr(name) for name in missing)
            + " column; the first row must name the columns: "
            + " and ".join(required)
            + ", and optionally "
            + ("unit, year and " if tuple(required) == REQUIRED_COLUMNS else "")
            + "one column per breakdown."
        )
    return columns


def _column_name(header: str) -> str:
    """Normalise a header cell the way columns are matched: NFC, trimmed, lower case, a
    heading of the template read as its key ("Giá trị" is "value")."""
    name = nfc(header).strip().lower()
    return _ALIASES.get(name, name)


def _clean(text: Cell) -> Cell:
    if text is None or isinstance(text, CellFault):
        return text
    cleaned = nfc(text).strip()
    return cleaned or None


def _csv_table(data: bytes, budget: _Budget) -> Generator[tuple[int, list[Cell]]]:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ImportFormatError(
            f"The CSV file is not UTF-8 text (byte {exc.start} cannot be read); "
            "save it as 'CSV UTF-8'."
        ) from exc
    if not text.strip():
        raise ImportFormatError("The file is empty.")
    first_line = text.split("\n", 1)[0]
    # The header names the columns and holds no numbers, so its separators are the file's:
    # decimal commas in the values cannot mislead this, as they can a sniffer.
    delimiter = ";" if first_line.count(";") > first_line.count(",") else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        # A record spanning several lines (a quoted newline) is one row in a spreadsheet.
        for number, record in enumerate(reader, start=1):
            budget.row(number)
            budget.column(len(record), number)
            budget.add_cells(len(record))
            yield number, [_clean(cell) for cell in record]
    except csv.Error as exc:
        raise ImportFormatError(f"The CSV file cannot be read: {exc}.") from exc


def _check_archive(data: bytes, limits: UploadLimits) -> None:
    """Refuse a zip bomb from its central directory, before inflating anything.

    The sizes there are declared, not measured; a part that inflates to more than it
    declares fails its CRC check when read (zipfile stops at the declared size).
    """
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, ValueError) as exc:
        raise ImportFormatError("The file is not an Excel workbook (.xlsx).") from exc
    if len(members) > limits.max_zip_members:
        raise ImportLimitError(
            "upload_too_many_parts",
            f"The workbook has {len(members):,} parts; at most {limits.max_zip_members:,} "
            "are accepted.",
            limit=limits.max_zip_members,
            value=len(members),
        )
    inflated = sum(member.file_size for member in members)
    if inflated > limits.max_uncompressed_bytes:
        raise ImportLimitError(
            "upload_uncompressed_too_large",
            f"The workbook inflates to {inflated:,} bytes; at most "
            f"{limits.max_uncompressed_bytes:,} bytes are accepted.",
            limit=limits.max_uncompressed_bytes,
            value=inflated,
        )
    for member in members:
        ratio = member.file_size / max(member.compress_size, 1)
        if member.file_size > _RATIO_FLOOR_BYTES and ratio > limits.max_compression_ratio:
            raise ImportLimitError(
                "upload_compression_ratio",
                f"The workbook part {member.filename!r} inflates {ratio:,.0f} times; "
                f"at most {limits.max_compression_ratio} times is accepted.",
                limit=limits.max_compression_ratio,
                value=round(ratio),
                too_large=False,
            )


def _xlsx_table(data: bytes, budget: _Budget) -> Generator[tuple[int, list[Cell]]]:
    _check_archive(data, budget.limits)
    # openpyxl parses lazily and raises a different exception for each way a workbook can
    # be broken, while opening or while reading rows: any of them means "unreadable".
    try:
        reader = ExcelReader(io.BytesIO(data), read_only=True, data_only=True)
    except zipfile.BadZipFile as exc:
        raise ImportFormatError("The file is not an Excel workbook (.xlsx).") from exc
    except Exception as exc:
        raise ImportFormatError(f"The Excel workbook cannot be read: {exc}.") from exc
    try:
        # Only the parts the values need, each bounded: not load_workbook, which reads every
        # sheet's size (the whole sheet when it declares none) and every shared string.
        reader.read_manifest()
        reader.shared_strings = _shared_strings(reader, budget)
        reader.read_workbook()
        apply_stylesheet(reader.archive, reader.wb)
        path = _first_worksheet(reader)
        if path is None:
            raise ImportFormatError("The Excel workbook has no worksheet.")
        workbook = reader.wb
        parser = _reader.WorkSheetParser(
            None,
            reader.shared_strings,
            data_only=True,
            epoch=workbook.epoch,
            date_formats=workbook._date_formats,
            timedelta_formats=workbook._timedelta_formats,
        )
        with reader.archive.open(path) as source:
            merges: list[str] = []
            rows = list(_sheet_rows(source, parser, budget, merges))
        yield from _apply_merges(rows, merges)
    except ImportFormatError:
        raise
    except Exception as exc:
        raise ImportFormatError(f"The Excel workbook cannot be read: {exc}.") from exc
    finally:
        reader.archive.close()


def _shared_strings(reader: Any, budget: _Budget) -> list[str]:
    content_type = reader.package.find(SHARED_STRINGS)
    if content_type is None:
        return []
    limits = budget.limits
    strings: list[str] = []
    chars = 0
    with reader.archive.open(content_type.PartName[1:]) as source:
        for _, node in iterparse(source):
            if node.tag != _STRING_TAG:
                continue
            text = str(Text.from_tree(node).content).replace("x005F_", "")
            node.clear()
            strings.append(text)
            chars += len(text)
            if len(strings) > limits.max_shared_strings:
                raise ImportLimitError(
                    "upload_too_many_shared_strings",
                    f"The workbook's table of texts has more than "
                    f"{limits.max_shared_strings:,} entries.",
                    limit=limits.max_shared_strings,
                    value=len(strings),
                )
            if chars > limits.max_shared_string_chars:
                raise ImportLimitError(
                    "upload_shared_strings_too_large",
                    f"The workbook's table of texts holds more than "
                    f"{limits.max_shared_string_chars:,} characters.",
                    limit=limits.max_shared_string_chars,
                    value=chars,
                )
            budget.tick()
    return strings


def _first_worksheet(reader: Any) -> str | None:
    for _sheet, relation in reader.parser.find_sheets():
        if relation.target in reader.valid_files and relation.Type.endswith("/worksheet"):
            return str(relation.target)
    return None


def _sheet_rows(
    source: Any, parser: Any, budget: _Budget, merges: list[str]
) -> Iterator[tuple[int, list[Cell]]]:
    """Yield the sheet's rows, gaps as empty rows, counting each row and cell as it is read.

    openpyxl's own read-only rows are padded to the widest row seen (16,384 cells for one
    cell in column XFD) before anything could count them; its cell parser, driven here
    one row at a time, lets each cell be counted first. Cells are counted as the XML
    parser finishes them, so that not even one huge row is built whole.
    """
    number = last = elements = 0
    after_data = False
    for _, element in iterparse(source):
        tag = element.tag
        if after_data:
            # After the cells only the merged ranges matter; the rest is formatting.
            if tag == _MERGE_TAG and len(merges) < MAX_MERGES:
                merges.append(str(element.get("ref", "")))
            element.clear()
            budget.tick()
            continue
        if tag == _reader.CELL_TAG:
            budget.add_cells(1)
        elif tag == _reader.ROW_TAG:
            elements += 1
            number = _row_number(element.get("r"), number)
            budget.row(max(number, elements))
            # As openpyxl does: a row numbered at or above one already read is dropped.
            if number > last:
                for gap in range(last + 1, number):
                    yield gap, []
                yield number, _row_values(element, number, parser, budget)
                last = number
            element.clear()
        elif tag == _reader.DATA_TAG:
            after_data = True


def _row_values(row: Any, number: int, parser: Any, budget: _Budget) -> list[Cell]:
    parser.row_counter, parser.col_counter = number, 0
    values: dict[int, Cell] = {}
    for element in row:
        if element.tag != _reader.CELL_TAG:
            continue
        formula = element.find(_FORMULA_TAG)
        cell = parser.parse_cell(element)
        budget.column(cell["column"], number)
        if formula is not None:
            # A formula's cached result may be stale or absent (files saved by a library
            # keep none): it is named as a formula, never read as a figure or a gap.
            text = f"={formula.text or ''}"
            values[cell["column"]] = CellFault(
                "formula_not_allowed", f"{_letter(cell['column'])}{number}", text[:100]
            )
            continue
        values[cell["column"]] = _clean(_cell_text(cell["value"]))
    return [values.get(column) for column in range(1, max(values, default=0) + 1)]


def _row_number(attribute: str | None, previous: int) -> int:
    if attribute is None:
        return previous + 1
    try:
        return int(attribute)
    except ValueError as exc:
        raise ImportFormatError(f"The worksheet has a row numbered {attribute!r}.") from exc


def _cell_text(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float | Decimal):
        # str() of a float is its shortest round-tripping form: 0.1 stays "0.1".
        return _plain(Decimal(str(value)))
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == time() else value.isoformat()
    if isinstance(value, date | time):
        return value.isoformat()
    return str(value)


def _plain(number: Decimal) -> str:
    """Write a Decimal without exponent or trailing zeros: 1E+2 → "100", 12.50 → "12.5"."""
    if not number.is_finite():
        return str(number)
    return format(number.normalize(), "f")


# --- checking --------------------------------------------------------------------------


def read_and_check(
    data: bytes,
    media_type: str,
    limits: UploadLimits,
    indicators: Mapping[str, IndicatorSpec],
    scope: ObligationScope,
    *,
    keep_values: bool,
) -> CheckedUpload:
    """:func:`read_rows`, then :func:`check_rows` on what it read, in one call.

    Both are CPU-bound (checking 20,000 rows takes about as long as a second of reading):
    run in one worker process, neither holds up the event loop, and only what the answer
    needs crosses back to the server, never the rows: the figures only with
    ``keep_values`` (a dry run answers with counts and problems), and packed.
    """
    result = check_rows(read_rows(data, media_type, limits), indicators, scope)
    values = (
        tuple(
            (v.indicator_key, tuple(v.disaggregation.items()), _plain(v.value))
            for v in result.values
        )
        if keep_values and result.ok
        else ()
    )
    return CheckedUpload(result.rows_read, len(result.values), result.errors, values)


def check_rows(
    rows: Iterable[tuple[int, Mapping[str, Cell]]],
    indicators: Mapping[str, IndicatorSpec],
    scope: ObligationScope,
) -> ImportResult:
    """Check every row against the catalogue and the obligation, and collect their values."""
    checker = _Checker(indicators, scope)
    rows_read = 0
    for number, record in rows:
        rows_read += 1
        checker.check(number, {_column_name(k): _clean(v) for k, v in record.items()})
    return ImportResult(
        values=tuple(checker.values), errors=tuple(checker.errors), rows_read=rows_read
    )


class _Checker:
    """Checks rows one by one, remembering which (indicator, disaggregation) came where."""

    def __init__(self, indicators: Mapping[str, IndicatorSpec], scope: ObligationScope) -> None:
        self.scope = scope
        self.indicators = {key.casefold(): spec for key, spec in indicators.items()}
        # Every dimension of the catalogue: a column named so is a disaggregation, whichever
        # indicator its row is for; other unknown columns are notes and are ignored.
        self.dimensions = {
            _column_name(dimension)
            for spec in indicators.values()
            for dimension in spec.disaggregations
        } - _RESERVED_COLUMNS
        self.read_columns = {UNIT_COLUMN, YEAR_COLUMN, INDICATOR_COLUMN, VALUE_COLUMN}
        self.read_columns |= self.dimensions
        self.first_row_of: dict[tuple[str, frozenset[tuple[str, str]]], int] = {}
        self.values: list[ImportedValue] = []
        self.errors: list[RowError] = []

    def check(self, row: int, cells: Mapping[str, Cell]) -> None:
        """Record the row's errors, or its value if it has none."""
        faults = [
            (column, cell)
            for column, cell in cells.items()
            if isinstance(cell, CellFault) and column in self.read_columns
        ]
        for column, fault in faults:
            self._error(row, column, fault.code, fault.message(), **fault.params())
        if faults:
            return
        record = {k: v for k, v in cells.items() if not isinstance(v, CellFault)}
        errors_before = len(self.errors)
        self._check_scope(row, record)
        spec = self._indicator(row, record.get(INDICATOR_COLUMN))
        if spec is None:
            # The value's own faults are still worth reporting; its unit is unknown.
            self._value(row, record.get(VALUE_COLUMN), indicator=None)
            return
        if spec.derived:
            # Nothing else on the row matters: the whole row has to go.
            self._error(
                row,
                INDICATOR_COLUMN,
                "derived_indicator",
                f"Indicator {spec.key!r} is derived from records; report it as enterprise "
                "or expert records, not as a typed value.",
                indicator=spec.key,
            )
            return
        disaggregation = self._disaggregation(row, record, spec)
        value = self._value(row, record.get(VALUE_COLUMN), indicator=spec)
        if disaggregation is not None:
            self._check_duplicate(row, spec, disaggregation)
        if value is not None and disaggregation is not None and len(self.errors) == errors_before:
            self.values.append(ImportedValue(spec.key, disaggregation, value, row))

    def _error(
        self, row: int, column: str | None, code: str, message: str, **params: object
    ) -> None:
        named = tuple((name, str(value)) for name, value in params.items())
        self.errors.append(RowError(row, column, code, message, named))

    def _check_scope(self, row: int, record: Mapping[str, str | None]) -> None:
        unit = record.get(UNIT_COLUMN)
        if unit is not None and unit.casefold() != self.scope.unit_key.casefold():
            self._error(
                row,
                UNIT_COLUMN,
                "outside_obligation",
                f"Unit {unit!r} is not {self.scope.unit_key!r}, the unit this report is for.",
                column_vi="Đơn vị",
                value=unit,
                expected=self.scope.unit_key,
            )
        year = record.get(YEAR_COLUMN)
        if year is not None and _as_year(year) != self.scope.year:
            self._error(
                row,
                YEAR_COLUMN,
                "outside_obligation",
                f"Year {year!r} is not {self.scope.year}, the year this report is for.",
                column_vi="Năm",
                value=year,
                expected=self.scope.year,
            )

    def _indicator(self, row: int, key: str | None) -> IndicatorSpec | None:
        if key is None:
            self._error(
                row, INDICATOR_COLUMN, "unknown_indicator", "The row names no indicator.",
                indicator="(trống)",
            )  # fmt: skip
            return None
        spec = self.indicators.get(key.casefold())
        if spec is None:
            self._error(
                row,
                INDICATOR_COLUMN,
                "unknown_indicator",
                f"Indicator {key!r} is not in the catalogue.",
                indicator=key,
            )
        return spec

    def _disaggregation(
        self, row: int, record: Mapping[str, str | None], spec: IndicatorSpec
    ) -> dict[str, str] | None:
        allowed_by_column = {_column_name(dim): dim for dim in spec.disaggregations}
        disaggregation: dict[str, str] = {}
        valid = True
        for column, text in record.items():
            if text is None or column not in self.dimensions:
                continue
            dimension = allowed_by_column.get(column)
            if dimension is None:
                valid = False
                self._error(
                    row,
                    column,
                    "unknown_disaggregation",
                    f"Indicator {spec.key!r} is not broken down by {column!r}; "
                    f"leave {column!r} empty (it says {text!r}).",
                    indicator=spec.key,
                    dimension=column,
                    value=text,
                )
                continue
            allowed = spec.disaggregations[dimension]
            chosen = next((v for v in allowed if nfc(v).casefold() == text.casefold()), None)
            if chosen is None:
                valid = False
                self._error(
                    row,
                    column,
                    "unknown_disaggregation",
                    f"{text!r} is not a {dimension!r} of indicator {spec.key!r}; "
                    f"use one of {', '.join(repr(v) for v in allowed)}.",
                    indicator=spec.key,
                    dimension=dimension,
                    value=text,
                )
                continue
            disaggregation[dimension] = chosen
        return disaggregation if valid else None

    def _value(self, row: int, text: str | None, indicator: IndicatorSpec | None) -> Decimal | None:
        if text is None:
            subject = "this row" if indicator is None else f"indicator {indicator.key!r}"
            subject_vi = "dòng này" if indicator is None else f"chỉ tiêu {indicator.key}"
            self._error(
                row, VALUE_COLUMN, "missing_value", f"No value is given for {subject}.",
                subject_vi=subject_vi,
            )  # fmt: skip
            return None
        unit = None if indicator is None else indicator.unit
        if text.startswith("="):
            # A formula typed into a CSV (or kept as text): Excel would compute it, we don't.
            fault = CellFault("formula_not_allowed", f"{VALUE_COLUMN}{row}", text[:100])
            self._error(row, VALUE_COLUMN, fault.code, fault.message(), **fault.params())
            return None
        value = parse_number(text)
        if value is None:
            self._error(
                row, VALUE_COLUMN, "not_a_number", f"The value {text!r} is not a number.",
                value=text,
            )  # fmt: skip
            return None
        if value < 0:
            self._error(
                row, VALUE_COLUMN, "negative_value", f"The value {text!r} is negative.",
                value=text,
            )  # fmt: skip
            return None
        if unit == PERCENT_UNIT and value > _HUNDRED:
            self._error(
                row,
                VALUE_COLUMN,
                "percent_out_of_range",
                f"The value {text!r} is a percentage and must be between 0 and 100.",
                value=text,
            )
            return None
        # Figures are stored with four decimal places, and up to 10^16.
        exponent = value.as_tuple().exponent
        if (isinstance(exponent, int) and exponent < -4) or value >= _TOO_LARGE:
            self._error(
                row,
                VALUE_COLUMN,
                "too_precise",
                f"The value {text!r} has more than four decimal places or is too large.",
                value=text,
            )
            return None
        if unit is not None and unit != PERCENT_UNIT and value != value.to_integral_value():
            self._error(
                row,
                VALUE_COLUMN,
                "fractional_count",
                f"The value {text!r} is a count ({unit}) and must be a whole number.",
                value=text,
                unit_vi=MEASURE_LABELS.get(unit, (unit, unit))[0],
            )
            return None
        # "-0" is zero, and is stored as zero.
        return value.copy_abs() if value.is_zero() else value

    def _check_duplicate(
        self, row: int, spec: IndicatorSpec, disaggregation: dict[str, str]
    ) -> None:
        identity = (spec.key, frozenset(disaggregation.items()))
        earlier = self.first_row_of.setdefault(identity, row)
        if earlier != row:
            self._error(
                row,
                None,
                "duplicate_row",
                f"Indicator {spec.key!r} {_describe(disaggregation)} was already given in "
                f"row {earlier}.",
                indicator=spec.key,
                described=_describe(disaggregation),
                earlier=earlier,
            )


def parse_number(text: str) -> Decimal | None:
    """Parse a figure as people type it ("12", "12.5", "12,5", "1 234"), or return None."""
    compact = _WHITESPACE.sub("", text)
    if "." not in compact and compact.count(",") == 1:
        compact = compact.replace(",", ".")
    if not _NUMBER.fullmatch(compact):
        return None
    try:
        number = Decimal(compact)
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def _as_year(text: str) -> int | None:
    number = parse_number(text)
    if number is None or number != number.to_integral_value():
        return None
    return int(number)


def _describe(disaggregation: Mapping[str, str]) -> str:
    if not disaggregation:
        return "(total)"
    return "(" + ", ".join(f"{k}={v}" for k, v in sorted(disaggregation.items())) + ")"


# --- templates -------------------------------------------------------------------------

# What a report already holds: (indicator, its disaggregation as a set of pairs) → figure.
Prefill = Mapping[tuple[str, frozenset[tuple[str, str]]], Decimal]

_TITLES = {
    "vi": (
        "BIỂU NHẬP SỐ LIỆU CHỈ TIÊU NĂM {year}",
        "Đơn vị báo cáo: {unit}",
        "Nhập số vào cột “Giá trị” (mỗi ô một số; không dùng công thức, không gộp ô). "
        "Các cột khác được khoá. Số đã có trong bản nháp được điền sẵn.",
    ),
    "en": (
        "INDICATOR VALUES FOR {year}",
        "Reporting unit: {unit}",
        "Type the figures in the “Value” column (one number per cell; no formulas, no merged "
        "cells). The other columns are locked. Figures already in the draft are filled in.",
    ),
}
# Rows of the title block above the headings.
TITLE_ROWS = 4
_HEADING_FILL = PatternFill("solid", fgColor="DDEBF7")


def _label(column: str, language: str) -> str:
    vi, en = COLUMN_LABELS.get(column, (column, column))
    return vi if language == "vi" else en


def _measure(unit: str, language: str) -> str:
    vi, en = MEASURE_LABELS.get(unit, (unit, unit))
    return vi if language == "vi" else en


def build_template_xlsx(
    indicators: Sequence[IndicatorSpec],
    scope: ObligationScope,
    prefill: Prefill | None = None,
    language: str = "vi",
) -> bytes:
    """Build an Excel workbook for people: a title block, headings in ``language`` over the
    column keys, a row to fill in per typed value (the draft's figures filled in), the value
    cells checked (whole numbers for counts, 0–100 for percentages) and the only cells not
    locked, the breakdowns as drop-down lists; and the list of indicators."""
    dimensions = _template_dimensions(indicators)
    keys = _template_header(dimensions)
    rows = list(_template_rows(indicators, scope, dimensions, prefill or {}, language))
    workbook = Workbook()
    sheet = workbook.worksheets[0]
    sheet.title = "values"
    titles = _TITLES["vi" if language == "vi" else "en"]
    sheet["A1"] = titles[0].format(year=scope.year)
    sheet["A2"] = titles[1].format(unit=scope.unit_key)
    sheet["A3"] = titles[2]
    sheet["A1"].font = Font(bold=True, size=14)
    sheet["A2"].font = Font(bold=True)
    sheet["A3"].font = Font(italic=True)
    _write_sheet(sheet, [[_label(k, language) for k in keys], keys], rows, first=TITLE_ROWS + 1)
    heading, first_data = TITLE_ROWS + 1, TITLE_ROWS + 3
    last_data = first_data + len(rows) - 1
    value_at = keys.index(VALUE_COLUMN) + 1
    value_letter = get_column_letter(value_at)
    for number in range(first_data, last_data + 1):
        cell = sheet.cell(row=number, column=value_at)
        cell.protection = Protection(locked=False)
        cell.fill = PatternFill("solid", fgColor="FFF2CC")
    # The value cells' checks, by kind of figure.
    vi = language == "vi"
    checks = {
        "whole": DataValidation(
            type="whole", operator="greaterThanOrEqual", formula1="0", allow_blank=True,
            showErrorMessage=True,
            errorTitle="Số không hợp lệ" if vi else "Invalid figure",
            error="Nhập một số nguyên không âm." if vi else "Type a whole number, 0 or more.",
        ),
        "percent": DataValidation(
            type="decimal", operator="between", formula1="0", formula2="100", allow_blank=True,
            showErrorMessage=True,
            errorTitle="Số không hợp lệ" if vi else "Invalid figure",
            error="Nhập một tỷ lệ từ 0 đến 100." if vi else "Type a percentage from 0 to 100.",
        ),
        "decimal": DataValidation(
            type="decimal", operator="greaterThanOrEqual", formula1="0", allow_blank=True,
            showErrorMessage=True,
            errorTitle="Số không hợp lệ" if vi else "Invalid figure",
            error="Nhập một số không âm." if vi else "Type a number, 0 or more.",
        ),
    }  # fmt: skip
    lists: dict[tuple[int, tuple[str, ...]], DataValidation] = {}
    by_key = {spec.key: spec for spec in indicators}
    for offset, cells in enumerate(rows):
        number = first_data + offset
        spec = by_key[str(cells[keys.index(INDICATOR_COLUMN)])]
        kind = "percent" if spec.unit == PERCENT_UNIT else "whole"
        checks[kind].add(f"{value_letter}{number}")
        for dimension, allowed in spec.disaggregations.items():
            if dimension not in keys:
                continue
            at = keys.index(dimension) + 1
            found = lists.get((at, tuple(allowed)))
            if found is None:
                found = lists[(at, tuple(allowed))] = DataValidation(
                    type="list",
                    formula1='"' + ",".join(allowed) + '"',
                    allow_blank=True,
                    showErrorMessage=True,
                )
            found.add(f"{get_column_letter(at)}{number}")
    indicator_letter = get_column_letter(keys.index(INDICATOR_COLUMN) + 1)
    if rows:
        choose = DataValidation(
            type="list",
            formula1=f"=indicators!$A$3:$A${2 + len(indicators)}",
            allow_blank=False,
            showErrorMessage=True,
        )
        choose.add(f"{indicator_letter}{first_data}:{indicator_letter}{last_data}")
        sheet.add_data_validation(choose)
    for validation in [*checks.values(), *lists.values()]:
        if validation.sqref:
            sheet.add_data_validation(validation)
    # Keys locked, values open: no password, the lock guards against slips, not people.
    sheet.protection.sheet = True
    sheet.protection.formatColumns = False
    sheet.freeze_panes = f"A{first_data}"
    sheet.print_title_rows = f"{heading}:{heading + 1}"
    indicators_sheet = workbook.create_sheet("indicators")
    list_keys = ["key", "name_vi", "name_en", "unit", "derived"]
    list_labels = {
        "key": ("Mã chỉ tiêu", "Indicator"),
        "name_vi": COLUMN_LABELS["name_vi"],
        "name_en": COLUMN_LABELS["name_en"],
        "unit": COLUMN_LABELS["unit_of_measure"],
        "derived": ("Tính từ hồ sơ", "Derived from records"),
    }
    _write_sheet(
        indicators_sheet,
        [[list_labels[k][0 if vi else 1] for k in list_keys], list_keys],
        [
            [
                spec.key, spec.name_vi, spec.name_en, _measure(spec.unit, language),
                ("có" if vi else "yes") if spec.derived else ("không" if vi else "no"),
            ]
            for spec in indicators
        ],
    )  # fmt: skip
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def build_template_csv(
    indicators: Sequence[IndicatorSpec],
    scope: ObligationScope,
    prefill: Prefill | None = None,
    language: str = "vi",
) -> bytes:
    """Build the "values" sheet of the template as CSV, UTF-8 with a BOM so Excel reads it:
    the headings in ``language`` over the column keys, then the rows."""
    dimensions = _template_dimensions(indicators)
    keys = _template_header(dimensions)
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, delimiter=",", lineterminator="\r\n")
    writer.writerow([_label(k, language) for k in keys])
    writer.writerow(keys)
    for cells in _template_rows(indicators, scope, dimensions, prefill or {}, language):
        writer.writerow("" if cell is None else _cell_out(cell) for cell in cells)
    return buffer.getvalue().encode("utf-8-sig")


def _cell_out(cell: object) -> object:
    return _plain(cell) if isinstance(cell, Decimal) else cell


def _template_dimensions(indicators: Sequence[IndicatorSpec]) -> list[str]:
    # Only typed indicators get rows, so only their dimensions need a column.
    seen: dict[str, None] = {}
    for spec in indicators:
        if not spec.derived:
            seen.update(dict.fromkeys(spec.disaggregations))
    return list(seen)


def _template_header(dimensions: Sequence[str]) -> list[str]:
    return [
        UNIT_COLUMN,
        YEAR_COLUMN,
        INDICATOR_COLUMN,
        *dimensions,
        VALUE_COLUMN,
        "name_vi",
        "name_en",
        "unit_of_measure",
    ]


def _template_rows(
    indicators: Sequence[IndicatorSpec],
    scope: ObligationScope,
    dimensions: Sequence[str],
    prefill: Prefill,
    language: str,
) -> Iterator[list[str | int | Decimal | None]]:
    for spec in indicators:
        if spec.derived:
            continue
        own = list(spec.disaggregations)
        # An indicator broken down gets one row per combination and no total row: the total
        # is the sum, and asking for it too would invite figures that do not add up.
        for combination in itertools.product(*(spec.disaggregations[d] for d in own)):
            chosen = dict(zip(own, combination, strict=True))
            yield [
                scope.unit_key,
                scope.year,
                spec.key,
                *(chosen.get(dimension) for dimension in dimensions),
                prefill.get((spec.key, frozenset(chosen.items()))),
                spec.name_vi,
                spec.name_en,
                _measure(spec.unit, language),
            ]


def _write_sheet(
    sheet: Any,
    headings: Sequence[Sequence[str]],
    rows: Sequence[Sequence[object]],
    first: int = 1,
) -> None:
    for number, cells in enumerate([*headings, *rows], start=first):
        for column, value in enumerate(cells, start=1):
            if value is not None:
                sheet.cell(row=number, column=column, value=value)
    for number in range(first, first + len(headings)):
        for cell in sheet[number][: len(headings[0])]:
            cell.font = Font(bold=number == first, italic=number != first)
            cell.fill = _HEADING_FILL
            cell.alignment = Alignment(wrap_text=True, vertical="center")
    sheet.freeze_panes = f"A{first + len(headings)}"
    header = headings[0]
    for position, name in enumerate(header, start=1):
        longest = max([len(name), *(len(str(cells[position - 1] or "")) for cells in rows)])
        sheet.column_dimensions[get_column_letter(position)].width = min(longest + 2, 60)
