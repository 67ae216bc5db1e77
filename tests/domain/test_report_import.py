"""Importing a unit's indicator values from CSV and XLSX files, and the template for them.

Pure functions, no database: workbooks are built in memory with openpyxl.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from openpyxl import Workbook, load_workbook

from nscl_domain.reports.content import MAX_INDICATOR_VALUES
from nscl_domain.reports.importing import (
    CSV_MEDIA_TYPE,
    DEFAULT_LIMITS,
    MAX_DATA_ROWS,
    MAX_FILE_BYTES,
    TITLE_ROWS,
    XLSX_MEDIA_TYPE,
    ImportedValue,
    ImportFormatError,
    ImportLimitError,
    ImportResult,
    IndicatorSpec,
    ObligationScope,
    RowError,
    build_template_csv,
    build_template_xlsx,
    check_rows,
    parse_number,
    read_and_check,
    read_rows,
)

D = Decimal
SCOPE = ObligationScope(unit_key="bk-cho-don", year=2025)
CATALOGUE: dict[str, IndicatorSpec] = {
    spec.key: spec
    for spec in (
        IndicatorSpec(
            key="training-courses",
            name_vi="Số lớp đào tạo, tập huấn về năng suất chất lượng",
            name_en="Training courses on productivity and quality held",
            unit="course",
            derived=False,
            disaggregations={},
        ),
        IndicatorSpec(
            key="people-trained",
            name_vi="Số lượt người được đào tạo, tập huấn",
            name_en="People trained",
            unit="person",
            derived=False,
            disaggregations={"trainee_group": ["manager", "worker"]},
        ),
        IndicatorSpec(
            key="experts-certified",
            name_vi="Số chuyên gia năng suất được chứng nhận",
            name_en="Productivity experts certified",
            unit="person",
            derived=True,
            disaggregations={"certification_level": ["national", "regional", "international"]},
        ),
        IndicatorSpec(
            key="enterprises-advised",
            name_vi="Số doanh nghiệp được tư vấn",
            name_en="Enterprises advised",
            unit="enterprise",
            derived=False,
            disaggregations={"size": ["micro", "small", "medium"]},
        ),
        IndicatorSpec(
            key="enterprises-applying-share",
            name_vi="Tỷ lệ doanh nghiệp áp dụng công cụ cải tiến năng suất",
            name_en="Share of enterprises applying productivity tools",
            unit="percent",
            derived=False,
            disaggregations={},
        ),
    )
}
HEADER = ["unit", "year", "indicator", "trainee_group", "size", "value", "note"]


def _xlsx(rows: Sequence[Sequence[object]]) -> bytes:
    workbook = Workbook()
    sheet = workbook.active
    for cells in rows:
        sheet.append(list(cells))
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def _import(data: bytes, media_type: str = XLSX_MEDIA_TYPE) -> ImportResult:
    return check_rows(read_rows(data, media_type), CATALOGUE, SCOPE)


def _check(*records: dict[str, str | None]) -> ImportResult:
    return check_rows(list(enumerate(records, start=2)), CATALOGUE, SCOPE)


def _codes(result: ImportResult) -> list[tuple[int, str]]:
    return [(error.row, error.code) for error in result.errors]


class TestReadRows:
    def test_csv_rows_are_keyed_by_normalised_header_with_sheet_row_numbers(self) -> None:
        data = b" Indicator ,VALUE,Unit\ntraining-courses,12,bk-cho-don\n\npeople-trained,  7 ,\n"
        assert read_rows(data, "text/csv; charset=utf-8") == [
            (2, {"indicator": "training-courses", "value": "12", "unit": "bk-cho-don"}),
            (4, {"indicator": "people-trained", "value": "7", "unit": None}),
        ]

    def test_semicolon_csv_with_bom_and_decimal_commas(self) -> None:
        data = (
            "\ufeffindicator;value;note\n"
            "training-courses;3;Lớp tập huấn\n"
            "enterprises-applying-share;12,5;\n"
        ).encode()
        rows = read_rows(data, "application/csv")
        assert rows == [
            (2, {"indicator": "training-courses", "value": "3", "note": "Lớp tập huấn"}),
            (3, {"indicator": "enterprises-applying-share", "value": "12,5", "note": None}),
        ]
        result = check_rows(rows, CATALOGUE, SCOPE)
        assert result.ok
        assert [(v.indicator_key, v.value) for v in result.values] == [
            ("training-courses", D(3)),
            ("enterprises-applying-share", D("12.5")),
        ]

    def test_text_is_nfc_normalised(self) -> None:
        decomposed = "Lơ\u0301p"  # "Lớp" typed with a combining accent
        rows = read_rows(f"indicator,value,note\nx,1,{decomposed}\n".encode(), CSV_MEDIA_TYPE)
        assert rows[0][1]["note"] == "Lớp"

    def test_xlsx_cells_become_exact_text(self) -> None:
        data = _xlsx(
            [
                ["indicator", "value", "year", "note", None],
                ["a", 12, 2025, date(2025, 3, 1), None],
                [None, None, None, None, None],
                ["b", 0.1, 2025.0, datetime(2025, 3, 1, 8, 30), None],
                ["c", 1e20, None, 1e-7, None],
            ]
        )
        assert read_rows(data, XLSX_MEDIA_TYPE) == [
            (2, {"indicator": "a", "value": "12", "year": "2025", "note": "2025-03-01"}),
            (
                4,
                {"indicator": "b", "value": "0.1", "year": "2025", "note": "2025-03-01T08:30:00"},
            ),
            (
                5,
                {
                    "indicator": "c",
                    "value": "100000000000000000000",
                    "year": None,
                    "note": "0.0000001",
                },
            ),
        ]

    def test_missing_value_column(self) -> None:
        with pytest.raises(ImportFormatError, match="'value'"):
            read_rows(b"unit,year,indicator\nbk-cho-don,2025,training-courses\n", CSV_MEDIA_TYPE)

    def test_missing_value_column_in_xlsx(self) -> None:
        with pytest.raises(ImportFormatError, match="'value'"):
            read_rows(_xlsx([["indicator", "amount"], ["training-courses", 3]]), XLSX_MEDIA_TYPE)

    @pytest.mark.parametrize("media_type", [CSV_MEDIA_TYPE, XLSX_MEDIA_TYPE])
    def test_empty_file(self, media_type: str) -> None:
        with pytest.raises(ImportFormatError, match="empty"):
            read_rows(b"", media_type)

    def test_csv_with_only_a_bom_is_empty(self) -> None:
        with pytest.raises(ImportFormatError, match="empty"):
            read_rows(b"\xef\xbb\xbf\r\n", CSV_MEDIA_TYPE)

    def test_header_without_rows_reads_nothing(self) -> None:
        rows = read_rows(b"indicator,value\r\n", CSV_MEDIA_TYPE)
        assert rows == []
        assert check_rows(rows, CATALOGUE, SCOPE) == ImportResult((), (), 0)

    def test_header_is_found_below_a_title_block(self) -> None:
        data = _xlsx(
            [
                ["BIỂU NHẬP SỐ LIỆU", None],
                [None, None],
                ["Mã chỉ tiêu", "Giá trị"],
                ["indicator", "value"],
                ["training-courses", 1],
            ]
        )
        assert read_rows(data, XLSX_MEDIA_TYPE) == [
            (5, {"indicator": "training-courses", "value": "1"})
        ]

    def test_header_must_be_within_the_first_rows(self) -> None:
        rows: list[list[object]] = [["title", None]] + [[None, None]] * 25
        data = _xlsx([*rows, ["indicator", "value"], ["training-courses", 1]])
        with pytest.raises(ImportFormatError, match="header"):
            read_rows(data, XLSX_MEDIA_TYPE)

    def test_empty_workbook_has_no_header(self) -> None:
        with pytest.raises(ImportFormatError, match="header"):
            read_rows(_xlsx([]), XLSX_MEDIA_TYPE)

    def test_random_bytes_labelled_as_xlsx(self) -> None:
        noise = bytes(range(256)) * 8
        with pytest.raises(ImportFormatError, match="not an Excel workbook"):
            read_rows(noise, XLSX_MEDIA_TYPE)

    def test_zip_that_is_not_a_workbook(self) -> None:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            archive.writestr("hello.txt", "not a workbook")
        with pytest.raises(ImportFormatError, match="cannot be read"):
            read_rows(buffer.getvalue(), XLSX_MEDIA_TYPE)

    def test_csv_that_is_not_utf8(self) -> None:
        with pytest.raises(ImportFormatError, match="UTF-8"):
            read_rows("indicator,value,note\nx,1,Đơn\n".encode("cp1258"), CSV_MEDIA_TYPE)

    @pytest.mark.parametrize("media_type", ["application/pdf", "application/vnd.ms-excel", ""])
    def test_unsupported_media_type(self, media_type: str) -> None:
        with pytest.raises(ImportFormatError, match="not accepted"):
            read_rows(b"indicator,value\nx,1\n", media_type)

    def test_duplicate_header(self) -> None:
        with pytest.raises(ImportFormatError, match="twice"):
            read_rows(b"indicator,value,Value\nx,1,2\n", CSV_MEDIA_TYPE)

    def test_file_over_5_mb(self) -> None:
        data = b"indicator,value\n" + b"x" * MAX_FILE_BYTES
        with pytest.raises(ImportFormatError, match="5 MB"):
            read_rows(data, CSV_MEDIA_TYPE)

    def test_more_than_20000_rows(self) -> None:
        lines = ["indicator,value", *(f"x{i},1" for i in range(MAX_DATA_ROWS + 1))]
        with pytest.raises(ImportFormatError, match="20,000 rows"):
            read_rows("\n".join(lines).encode(), CSV_MEDIA_TYPE)

    def test_exactly_20000_rows_are_read(self) -> None:
        lines = ["indicator,value", *(f"x{i},1" for i in range(MAX_DATA_ROWS))]
        assert len(read_rows("\n".join(lines).encode(), CSV_MEDIA_TYPE)) == MAX_DATA_ROWS

    def test_rows_are_counted_after_the_header_not_from_the_title_block(self) -> None:
        # The template's layout: a title block, its headings, then the key row.
        above = ["Biểu nhập số liệu", "Đơn vị báo cáo: bk-cho-don", "", "", "Mã chỉ tiêu,Giá trị"]
        lines = [*above, "indicator,value", *(f"x{i},1" for i in range(MAX_DATA_ROWS))]
        assert len(read_rows("\n".join(lines).encode(), CSV_MEDIA_TYPE)) == MAX_DATA_ROWS
        with pytest.raises(ImportLimitError) as refused:
            read_rows("\n".join([*lines, "y,1"]).encode(), CSV_MEDIA_TYPE)
        assert (refused.value.limit, refused.value.value) == (MAX_DATA_ROWS, MAX_DATA_ROWS + 1)

    def test_empty_rows_after_the_header_count(self) -> None:
        lines = ["indicator,value", *([""] * (MAX_DATA_ROWS - 1)), "x,1"]
        assert len(read_rows("\n".join(lines).encode(), CSV_MEDIA_TYPE)) == 1
        with pytest.raises(ImportLimitError) as refused:
            read_rows("\n".join([*lines, "y,1"]).encode(), CSV_MEDIA_TYPE)
        assert (refused.value.code, refused.value.value) == ("upload_too_many_rows", 20_001)

    def test_the_reader_holds_as_many_rows_as_a_report_holds_values(self) -> None:
        assert MAX_DATA_ROWS == MAX_INDICATOR_VALUES


class TestCheckRows:
    def test_good_csv_gives_decimal_values(self) -> None:
        data = (
            "unit,year,indicator,trainee_group,value,name_vi\n"
            "bk-cho-don,2025,training-courses,,4,Số lớp đào tạo\n"
            "BK-Cho-Don,2025,people-trained,manager,120,\n"
            ",,people-trained,Worker,85,\n"
            "bk-cho-don,2025,enterprises-applying-share,,37.25,\n"
        ).encode()
        result = _import(data, CSV_MEDIA_TYPE)
        assert result.ok
        assert result.rows_read == 4
        assert result.values == (
            ImportedValue("training-courses", {}, D(4), 2),
            ImportedValue("people-trained", {"trainee_group": "manager"}, D(120), 3),
            ImportedValue("people-trained", {"trainee_group": "worker"}, D(85), 4),
            ImportedValue("enterprises-applying-share", {}, D("37.25"), 5),
        )
        assert all(isinstance(v.value, Decimal) for v in result.values)

    def test_good_xlsx_gives_decimal_values(self) -> None:
        data = _xlsx(
            [
                HEADER,
                ["bk-cho-don", 2025, "training-courses", None, None, 4, "Lớp"],
                ["bk-cho-don", 2025, "people-trained", "manager", None, 120.0, None],
                ["bk-cho-don", 2025, "enterprises-advised", None, "small", 7, None],
                [" BK-CHO-DON ", "2025", " enterprises-applying-share ", "", None, 0.1, None],
            ]
        )
        result = _import(data)
        assert result.ok
        assert [(v.indicator_key, v.disaggregation, v.value, v.row) for v in result.values] == [
            ("training-courses", {}, D(4), 2),
            ("people-trained", {"trainee_group": "manager"}, D(120), 3),
            ("enterprises-advised", {"size": "small"}, D(7), 4),
            ("enterprises-applying-share", {}, D("0.1"), 5),
        ]
        assert all(type(v.value) is Decimal for v in result.values)

    def test_bad_rows_are_each_reported_and_good_rows_still_parse(self) -> None:
        unit, year = SCOPE.unit_key, SCOPE.year
        data = _xlsx(
            [
                HEADER,
                [unit, year, "training-courses", None, None, 4, None],  # 2 good
                [unit, year, "no-such-indicator", None, None, 1, None],  # 3
                [unit, year, "people-trained", "manager", None, "mười", None],  # 4
                [unit, year, "people-trained", "worker", None, -3, None],  # 5
                [unit, year, "training-courses", None, None, 5, None],  # 6, as row 2
                [unit, year, "enterprises-advised", None, "micro", 2.5, None],  # 7
                ["bk-ba-be", year, "enterprises-advised", None, "small", 9, None],  # 8
                [unit, year, "experts-certified", None, None, 2, None],  # 9
                [unit, year, "enterprises-applying-share", None, None, 101, None],  # 10
                [unit, 2024, "enterprises-advised", None, "medium", 50, None],  # 11
                [unit, year, "people-trained", "farmer", None, 1, None],  # 12
                [unit, year, "training-courses", "manager", None, 1, None],  # 13
                [unit, year, "people-trained", None, None, 30, "total"],  # 14 good
                [None, None, "enterprises-advised", None, None, "12,0", None],  # 15 good
            ]
        )
        result = _import(data)
        assert _codes(result) == [
            (3, "unknown_indicator"),
            (4, "not_a_number"),
            (5, "negative_value"),
            (6, "duplicate_row"),
            (7, "fractional_count"),
            (8, "outside_obligation"),
            (9, "derived_indicator"),
            (10, "percent_out_of_range"),
            (11, "outside_obligation"),
            (12, "unknown_disaggregation"),
            (13, "unknown_disaggregation"),
        ]
        assert [(v.row, v.indicator_key, v.disaggregation, v.value) for v in result.values] == [
            (2, "training-courses", {}, D(4)),
            (14, "people-trained", {}, D(30)),
            (15, "enterprises-advised", {}, D(12)),
        ]
        assert result.rows_read == 14
        assert not result.ok
        by_row = {error.row: error for error in result.errors}
        assert by_row[3].column == "indicator"
        assert "no-such-indicator" in by_row[3].message
        assert by_row[4].column == "value"
        assert "mười" in by_row[4].message
        assert "'-3'" in by_row[5].message
        assert "row 2" in by_row[6].message
        assert by_row[6].column is None
        assert "'2.5'" in by_row[7].message
        assert by_row[8].column == "unit"
        assert "bk-ba-be" in by_row[8].message
        assert "derived from records" in by_row[9].message
        assert by_row[11].column == "year"
        assert "2024" in by_row[11].message
        assert "'farmer'" in by_row[12].message
        assert by_row[13].column == "trainee_group"

    def test_every_error_of_a_row_is_reported(self) -> None:
        result = _check(
            {
                "unit": "bk-ba-be",
                "year": "2024",
                "indicator": "people-trained",
                "trainee_group": "farmer",
                "value": "-1,5",
            }
        )
        assert sorted(error.code for error in result.errors) == [
            "negative_value",
            "outside_obligation",
            "outside_obligation",
            "unknown_disaggregation",
        ]
        assert result.values == ()

    def test_unknown_indicator_still_reports_a_bad_value(self) -> None:
        result = _check({"indicator": "nope", "value": "abc"}, {"indicator": None, "value": "1"})
        assert _codes(result) == [
            (2, "unknown_indicator"),
            (2, "not_a_number"),
            (3, "unknown_indicator"),
        ]

    def test_duplicate_of_a_row_with_errors_is_still_a_duplicate(self) -> None:
        result = _check(
            {"indicator": "training-courses", "value": None},
            {"indicator": "training-courses", "value": "3"},
        )
        assert _codes(result) == [(2, "missing_value"), (3, "duplicate_row")]
        assert result.values == ()

    def test_total_and_breakdowns_are_different_rows(self) -> None:
        result = _check(
            {"indicator": "people-trained", "trainee_group": None, "value": "3"},
            {"indicator": "people-trained", "trainee_group": "manager", "value": "1"},
            {"indicator": "people-trained", "trainee_group": "MANAGER", "value": "2"},
        )
        assert _codes(result) == [(4, "duplicate_row")]

    @pytest.mark.parametrize(
        ("text", "codes"),
        [
            ("0", []),
            ("100", []),
            ("33.3333", []),
            ("100.01", ["percent_out_of_range"]),
            ("-1", ["negative_value"]),
        ],
    )
    def test_percent_boundaries(self, text: str, codes: list[str]) -> None:
        result = _check({"indicator": "enterprises-applying-share", "value": text})
        assert [error.code for error in result.errors] == codes

    def test_zero_and_whole_decimals_are_fine_counts(self) -> None:
        result = _check(
            {"indicator": "training-courses", "value": "-0"},
            {"indicator": "people-trained", "trainee_group": "worker", "value": "12.00"},
        )
        assert result.ok
        assert [v.value for v in result.values] == [D(0), D(12)]
        assert not result.values[0].value.is_signed()

    def test_informational_and_unknown_columns_are_ignored(self) -> None:
        result = _check(
            {
                "indicator": "training-courses",
                "value": "1",
                "name_vi": "x",
                "unit_of_measure": "course",
                "remarks": "anything",
            }
        )
        assert result.ok

    def test_error_is_a_row_error(self) -> None:
        (error,) = _check({"indicator": "training-courses", "value": "1.234,5"}).errors
        assert error == RowError(
            row=2,
            column="value",
            code="not_a_number",
            message="The value '1.234,5' is not a number.",
        )


class TestParseNumber:
    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("12", D(12)),
            ("12.5", D("12.5")),
            ("12,5", D("12.5")),
            (" 1 234 ", D(1234)),
            ("1e3", D(1000)),
            ("-4", D(-4)),
        ],
    )
    def test_accepted(self, text: str, expected: Decimal) -> None:
        assert parse_number(text) == expected

    @pytest.mark.parametrize(
        "text", ["mười", "1.234,5", "1,234,5", "NaN", "Infinity", "1_000", "١٢", "", "12%"]
    )
    def test_rejected(self, text: str) -> None:
        assert parse_number(text) is None


TEMPLATE_HEADER = (
    "unit",
    "year",
    "indicator",
    "trainee_group",
    "size",
    "value",
    "name_vi",
    "name_en",
    "unit_of_measure",
)
# The workbook's first row to fill in: under the title block and the two heading rows.
FIRST_DATA_ROW = TITLE_ROWS + 3
# (indicator, trainee_group, size) of each template row: no derived indicator, and no total
# row for an indicator that is broken down.
TEMPLATE_ROWS = [
    ("training-courses", None, None),
    ("people-trained", "manager", None),
    ("people-trained", "worker", None),
    ("enterprises-advised", None, "micro"),
    ("enterprises-advised", None, "small"),
    ("enterprises-advised", None, "medium"),
    ("enterprises-applying-share", None, None),
]


def _allowed_values(
    template: list[tuple[int, dict[str, str | None]]],
) -> st.SearchStrategy[list[int]]:
    """Draw a valid figure for each template row: a share up to 100, any whole count."""
    return st.tuples(
        *(
            st.integers(0, 100)
            if CATALOGUE[record["indicator"] or ""].unit == "percent"
            else st.integers(0, 10**15)
            for _, record in template
        )
    ).map(list)


class TestBuildTemplateXlsx:
    def test_round_trips_to_only_missing_values(self) -> None:
        data = build_template_xlsx(list(CATALOGUE.values()), SCOPE)
        result = _import(data)
        assert {error.code for error in result.errors} == {"missing_value"}
        first = FIRST_DATA_ROW
        assert [error.row for error in result.errors] == list(
            range(first, first + len(TEMPLATE_ROWS))
        )
        assert result.values == ()

    def test_layout(self) -> None:
        workbook = load_workbook(io.BytesIO(build_template_xlsx(list(CATALOGUE.values()), SCOPE)))
        assert workbook.sheetnames == ["values", "indicators"]
        values = workbook["values"]
        rows = list(values.iter_rows(values_only=True))
        assert rows[0][0] == "BIỂU NHẬP SỐ LIỆU CHỈ TIÊU NĂM 2025"
        assert rows[1][0] == "Đơn vị báo cáo: bk-cho-don"
        heading = FIRST_DATA_ROW - 3
        assert rows[heading] == (
            "Đơn vị", "Năm", "Mã chỉ tiêu", "Nhóm học viên", "Quy mô", "Giá trị",
            "Tên chỉ tiêu", "Tên chỉ tiêu (tiếng Anh)", "Đơn vị tính",
        )  # fmt: skip
        assert rows[heading + 1] == TEMPLATE_HEADER
        data = rows[heading + 2 :]
        assert [row[2:5] for row in data] == TEMPLATE_ROWS
        assert {row[:2] for row in data} == {("bk-cho-don", 2025)}
        assert {row[5] for row in data} == {None}
        assert data[0][6:] == (
            "Số lớp đào tạo, tập huấn về năng suất chất lượng",
            "Training courses on productivity and quality held",
            "lớp",
        )
        assert {row[8] for row in data} == {"lớp", "người", "doanh nghiệp", "%"}
        assert values.freeze_panes == f"A{FIRST_DATA_ROW}"
        assert all(cell.font.bold for cell in values[heading + 1])
        assert values.column_dimensions["G"].width > values.column_dimensions["B"].width
        indicators = list(workbook["indicators"].iter_rows(values_only=True))
        assert indicators[1] == ("key", "name_vi", "name_en", "unit", "derived")
        assert [(r[0], r[4]) for r in indicators[2:]] == [
            (spec.key, "có" if spec.derived else "không") for spec in CATALOGUE.values()
        ]
        assert ("experts-certified", "người", "có") in {(r[0], r[3], r[4]) for r in indicators}

    def test_headings_in_english_on_request(self) -> None:
        data = build_template_xlsx(list(CATALOGUE.values()), SCOPE, language="en")
        rows = list(load_workbook(io.BytesIO(data))["values"].iter_rows(values_only=True))
        assert rows[0][0] == "INDICATOR VALUES FOR 2025"
        assert rows[FIRST_DATA_ROW - 3][:6] == (
            "Unit", "Year", "Indicator", "Trainee group", "Size", "Value"
        )  # fmt: skip
        assert rows[FIRST_DATA_ROW - 1][8] == "course"
        assert _import(data).values == ()  # read back alike

    def test_only_value_cells_are_unlocked_and_they_are_checked(self) -> None:
        workbook = load_workbook(io.BytesIO(build_template_xlsx(list(CATALOGUE.values()), SCOPE)))
        sheet = workbook["values"]
        assert sheet.protection.sheet
        last = FIRST_DATA_ROW + len(TEMPLATE_ROWS) - 1
        for number in range(FIRST_DATA_ROW, last + 1):
            for column in range(1, 10):
                assert sheet.cell(number, column).protection.locked is (column != 6)
        checks = {
            (v.type, v.operator, v.formula1, v.formula2): str(v.sqref)
            for v in sheet.data_validations.dataValidation
        }
        shares = f"F{last}"  # the percentage is the last row
        assert checks[("decimal", "between", "0", "100")] == shares
        whole = checks[("whole", "greaterThanOrEqual", "0", None)].split()
        assert whole == [f"F{n}" for n in range(FIRST_DATA_ROW, last)]
        # Closed sets are drop-down lists.
        assert '"manager,worker"' in {v.formula1 for v in sheet.data_validations.dataValidation}
        assert all(v.showErrorMessage for v in sheet.data_validations.dataValidation)

    def test_draft_values_are_filled_in(self) -> None:
        prefill = {
            ("training-courses", frozenset()): D(4),
            ("people-trained", frozenset({("trainee_group", "worker")})): D(12),
        }
        data = build_template_xlsx(list(CATALOGUE.values()), SCOPE, prefill)
        rows = read_rows(data, XLSX_MEDIA_TYPE)
        assert [(r["indicator"], r["trainee_group"], r["value"]) for _, r in rows[:3]] == [
            ("training-courses", None, "4"),
            ("people-trained", "manager", None),
            ("people-trained", "worker", "12"),
        ]
        csv_rows = read_rows(
            build_template_csv(list(CATALOGUE.values()), SCOPE, prefill), CSV_MEDIA_TYPE
        )
        assert [r for _, r in csv_rows] == [r for _, r in rows]

    def test_formula_and_merged_cells_are_named(self) -> None:
        workbook = load_workbook(io.BytesIO(build_template_xlsx(list(CATALOGUE.values()), SCOPE)))
        sheet = workbook["values"]
        first = FIRST_DATA_ROW
        sheet[f"F{first}"] = "=2+3"
        sheet[f"F{first + 1}"] = 7
        sheet.merge_cells(f"F{first + 1}:F{first + 2}")
        buffer = io.BytesIO()
        workbook.save(buffer)
        errors = {(e.row, e.code): e for e in _import(buffer.getvalue()).errors}
        formula = errors[(first, "formula_not_allowed")]
        assert formula.column == "value"
        assert formula.message == (
            f"Cell F{first} holds a formula (=2+3); type the figure, not a formula."
        )
        assert dict(formula.params) == {"cell": f"F{first}", "formula": "=2+3"}
        merged = errors[(first + 2, "merged_cell")]
        assert f"F{first + 1}:F{first + 2}" in merged.message
        assert (first + 1, "missing_value") not in errors  # the merge's first cell is read
        assert not any(code == "missing_value" and row <= first + 2 for row, code in errors)

    def test_formula_in_a_csv_is_named(self) -> None:
        data = b"indicator,value\r\ntraining-courses,=SUM(A1:A3)\r\n"
        [error] = _import(data, CSV_MEDIA_TYPE).errors
        assert (error.code, error.column) == ("formula_not_allowed", "value")

    def test_dimension_of_a_derived_indicator_gets_no_column(self) -> None:
        workbook = load_workbook(io.BytesIO(build_template_xlsx(list(CATALOGUE.values()), SCOPE)))
        header = list(workbook["values"].iter_rows(values_only=True))[FIRST_DATA_ROW - 2]
        assert "certification_level" not in header

    @settings(max_examples=30, deadline=None)
    @given(data=st.data())
    def test_filled_template_gives_back_exactly_the_values(self, data: st.DataObject) -> None:
        specs = list(CATALOGUE.values())
        template = read_rows(build_template_xlsx(specs, SCOPE), XLSX_MEDIA_TYPE)
        values = data.draw(_allowed_values(template))
        workbook = load_workbook(io.BytesIO(build_template_xlsx(specs, SCOPE)))
        sheet = workbook["values"]
        value_column = TEMPLATE_HEADER.index("value") + 1
        for (row, _), value in zip(template, values, strict=True):
            sheet.cell(row=row, column=value_column, value=value)
        buffer = io.BytesIO()
        workbook.save(buffer)

        result = _import(buffer.getvalue())

        assert result.errors == ()
        assert [(v.row, v.value) for v in result.values] == [
            (row, D(value)) for (row, _), value in zip(template, values, strict=True)
        ]


class TestBuildTemplateCsv:
    def test_round_trips_to_only_missing_values(self) -> None:
        data = build_template_csv(list(CATALOGUE.values()), SCOPE)
        result = _import(data, CSV_MEDIA_TYPE)
        assert {error.code for error in result.errors} == {"missing_value"}
        assert result.rows_read == len(TEMPLATE_ROWS)

    def test_utf8_with_bom_and_comma_delimiter(self) -> None:
        data = build_template_csv(list(CATALOGUE.values()), SCOPE)
        assert data.startswith(b"\xef\xbb\xbf")
        lines = data.decode("utf-8-sig").splitlines()
        assert lines[0].startswith("Đơn vị,Năm,Mã chỉ tiêu,")
        assert lines[1] == ",".join(TEMPLATE_HEADER)
        assert lines[3].startswith("bk-cho-don,2025,people-trained,manager,,,")
        assert '"Số lớp đào tạo, tập huấn về năng suất chất lượng"' in lines[2]

    def test_same_rows_as_the_xlsx_template(self) -> None:
        specs = list(CATALOGUE.values())
        from_csv = read_rows(build_template_csv(specs, SCOPE), CSV_MEDIA_TYPE)
        from_xlsx = read_rows(build_template_xlsx(specs, SCOPE), XLSX_MEDIA_TYPE)
        assert [record for _, record in from_csv] == [record for _, record in from_xlsx]

    @given(data=st.data())
    def test_filled_template_gives_back_exactly_the_values(self, data: st.DataObject) -> None:
        template = read_rows(build_template_csv(list(CATALOGUE.values()), SCOPE), CSV_MEDIA_TYPE)
        values = data.draw(_allowed_values(template))
        filled = [
            (row, {**record, "value": str(value)})
            for (row, record), value in zip(template, values, strict=True)
        ]

        result = check_rows(filled, CATALOGUE, SCOPE)

        assert result.errors == ()
        assert [v.value for v in result.values] == [D(value) for value in values]


def test_values_finer_than_storage_are_refused() -> None:
    indicators = {
        "share": IndicatorSpec(
            key="share",
            name_vi="Tỷ lệ",
            name_en="Share",
            unit="percent",
            derived=False,
            disaggregations={},
        )
    }
    rows = [(2, {"indicator": "share", "value": "12.34567"})]
    result = check_rows(rows, indicators, ObligationScope(unit_key="bk-doh", year=2024))
    assert [e.code for e in result.errors] == ["too_precise"]
    assert result.values == ()


class TestReadAndCheck:
    """What crosses back from the parser process to the server."""

    FILE = (
        b"indicator,trainee_group,value\n"
        b"training-courses,,6\npeople-trained,manager,10.50\npeople-trained,worker,-0\n"
    )

    def test_a_dry_run_gets_counts_and_errors_but_no_values(self) -> None:
        checked = read_and_check(
            self.FILE, CSV_MEDIA_TYPE, DEFAULT_LIMITS, CATALOGUE, SCOPE, keep_values=False
        )
        assert (checked.ok, checked.rows_read, checked.value_count, checked.values) == (
            False, 3, 2, ()
        )  # fmt: skip
        assert [(e.row, e.code) for e in checked.errors] == [(3, "fractional_count")]

    def test_values_to_write_come_back_as_plain_strings_and_tuples(self) -> None:
        good = self.FILE.replace(b"10.50", b"10.0")
        checked = read_and_check(
            good, CSV_MEDIA_TYPE, DEFAULT_LIMITS, CATALOGUE, SCOPE, keep_values=True
        )
        assert checked.ok
        assert checked.value_count == 3
        assert checked.values == (
            ("training-courses", (), "6"),
            ("people-trained", (("trainee_group", "manager"),), "10"),
            ("people-trained", (("trainee_group", "worker"),), "0"),
        )
