"""Hostile spreadsheet uploads, built deterministically in memory for the tests and the bench.

Each is small on the wire and costly to read naively: rows with one cell in column XFD (the
last), rows whose cells sit under no header, a million rows, a zip bomb, a table of many
shared strings, very wide rows. The workbooks are written by hand (a few XML parts in a
zip), as fast to build as they are small: openpyxl would take minutes to write a million
rows.
"""

from __future__ import annotations

import io
import random
import zipfile
from collections.abc import Iterable, Iterator

XLSX_MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
_MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_RELS = "http://schemas.openxmlformats.org/package/2006/relationships"
_DOC = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_CONTENT_TYPES = f"""<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">
<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>
<Default Extension="xml" ContentType="application/xml"/>
<Override PartName="/xl/workbook.xml" ContentType="{XLSX_MEDIA_TYPE}.main+xml"/>
<Override PartName="/xl/worksheets/sheet1.xml"
 ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>
{{shared}}</Types>"""
_SHARED_CONTENT_TYPE = (
    '<Override PartName="/xl/sharedStrings.xml" ContentType='
    '"application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/>\n'
)
_PACKAGE_RELS = (
    f'<Relationships xmlns="{_RELS}"><Relationship Id="rId1" '
    f'Type="{_DOC}/officeDocument" Target="xl/workbook.xml"/></Relationships>'
)
_WORKBOOK = (
    f'<workbook xmlns="{_MAIN}" xmlns:r="{_DOC}"><sheets>'
    '<sheet name="values" sheetId="1" r:id="rId1"/></sheets></workbook>'
)
_WORKBOOK_RELS = (
    f'<Relationships xmlns="{_RELS}">'
    f'<Relationship Id="rId1" Type="{_DOC}/worksheet" Target="worksheets/sheet1.xml"/>'
    f'<Relationship Id="rId2" Type="{_DOC}/sharedStrings" Target="sharedStrings.xml"/>'
    "</Relationships>"
)
_SHEET_HEAD = f'<worksheet xmlns="{_MAIN}"><sheetData>'
_SHEET_TAIL = "</sheetData></worksheet>"
HEADER = ("indicator", "value")


def _header_row() -> str:
    cells = "".join(
        f'<c r="{letter}1" t="inlineStr"><is><t>{name}</t></is></c>'
        for letter, name in zip("AB", HEADER, strict=True)
    )
    return f'<row r="1">{cells}</row>'


def workbook(rows: Iterable[str], shared_strings: Iterable[str] | None = None) -> bytes:
    """A minimal workbook: a header row (indicator, value), then ``rows`` (``<row>`` XML)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        shared = "" if shared_strings is None else _SHARED_CONTENT_TYPE
        archive.writestr("[Content_Types].xml", _CONTENT_TYPES.format(shared=shared))
        archive.writestr("_rels/.rels", _PACKAGE_RELS)
        archive.writestr("xl/workbook.xml", _WORKBOOK)
        archive.writestr("xl/_rels/workbook.xml.rels", _WORKBOOK_RELS)
        with archive.open("xl/worksheets/sheet1.xml", "w", force_zip64=True) as sheet:
            _write_chunks(sheet, _chain([_SHEET_HEAD, _header_row()], rows, [_SHEET_TAIL]))
        if shared_strings is not None:
            with archive.open("xl/sharedStrings.xml", "w", force_zip64=True) as table:
                strings = (f"<si><t>{text}</t></si>" for text in shared_strings)
                _write_chunks(table, _chain([f'<sst xmlns="{_MAIN}">'], strings, ["</sst>"]))
    return buffer.getvalue()


def _chain(*parts: Iterable[str]) -> Iterator[str]:
    for part in parts:
        yield from part


def _write_chunks(target: io.BufferedIOBase | object, pieces: Iterable[str]) -> None:
    # Joining a few thousand pieces at a time keeps both memory and write calls small.
    batch: list[str] = []
    for piece in pieces:
        batch.append(piece)
        if len(batch) == 4096:
            target.write("".join(batch).encode())  # type: ignore[attr-defined]
            batch.clear()
    target.write("".join(batch).encode())  # type: ignore[attr-defined]


def _digits(count: int, seed: int) -> list[str]:
    # One random digit per cell: enough entropy that the sheet compresses like a real one
    # (about 40:1, not the 1000:1 of a zip bomb), little enough that the file stays small.
    return random.Random(seed).choices("0123456789", k=count)


def xfd_column_rows(rows: int = 20_000) -> bytes:
    """Rows with one number in column XFD, the sheet's 16,384th and last column (~100 KB)."""
    return workbook(f'<row r="{n}"><c r="XFD{n}"><v>1</v></c></row>' for n in range(2, rows + 2))


def unheaded_rows(rows: int = 100_000) -> bytes:
    """Rows whose only cell is in column C, which the header does not name (~80 KB)."""
    return workbook(f"<row><c/><c/><c><v>{d}</v></c></row>" for d in _digits(rows, seed=3))


def million_rows(rows: int = 1_000_000) -> bytes:
    """A million rows with a number under the header's first column (~700 KB)."""
    return workbook(f"<row><c><v>{d}</v></c></row>" for d in _digits(rows, seed=1))


def wide_rows(rows: int = 6_000, columns: int = 100) -> bytes:
    """Rows each ``columns`` cells wide, every cell a number (~300 KB)."""
    digits = iter(_digits(rows * columns, seed=100))

    def row() -> str:
        return "<row>" + "".join(f"<c><v>{next(digits)}</v></c>" for _ in range(columns)) + "</row>"

    return workbook(row() for _ in range(rows))


def many_shared_strings(count: int = 200_000) -> bytes:
    """A shared-string table of ``count`` distinct strings, and a sheet that uses two."""
    return workbook(
        ['<row r="2"><c r="A2" t="s"><v>0</v></c><c r="B2" t="s"><v>1</v></c></row>'],
        shared_strings=(f"s{i}" for i in range(count)),
    )


def zip_bomb(uncompressed_bytes: int = 256 * 1024 * 1024) -> bytes:
    """A workbook whose sheet inflates to ``uncompressed_bytes`` of blank space (~1000:1)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", _CONTENT_TYPES.format(shared=""))
        archive.writestr("_rels/.rels", _PACKAGE_RELS)
        archive.writestr("xl/workbook.xml", _WORKBOOK)
        archive.writestr("xl/_rels/workbook.xml.rels", _WORKBOOK_RELS)
        info = zipfile.ZipInfo("xl/worksheets/sheet1.xml", date_time=(2026, 1, 1, 0, 0, 0))
        info.compress_type = zipfile.ZIP_DEFLATED
        with archive.open(info, "w", force_zip64=True) as sheet:
            sheet.write((_SHEET_HEAD + _header_row()).encode())
            chunk = b" " * (1024 * 1024)
            for _ in range(uncompressed_bytes // len(chunk)):
                sheet.write(chunk)
            sheet.write(_SHEET_TAIL.encode())
    return buffer.getvalue()


def csv_rows(rows: int = 1_000_000) -> bytes:
    """A CSV of ``rows`` data rows under an indicator,value header."""
    return ("indicator,value\n" + "x,1\n" * rows).encode()


def csv_wide(columns: int = 100_000) -> bytes:
    """A CSV whose second line has ``columns`` cells."""
    return ("indicator,value\n" + "," * (columns - 1) + "\n").encode()


def _column_letter(index: int) -> str:
    letters = ""
    while index:
        index, remainder = divmod(index - 1, 26)
        letters = chr(65 + remainder) + letters
    return letters
