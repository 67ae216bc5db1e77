"""DOCX and XLSX files of a document, byte for byte the same for the same document.

Both formats are zip packages whose entries carry the time they were written, and both
carry core properties with a creation time: the entries are written again with one fixed
date (the document's own), the properties set to it, so the checksum names the content.
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from datetime import datetime, time
from decimal import Decimal
from typing import Any

import xlsxwriter
from docx import Document as new_docx
from docx.enum.section import WD_ORIENT
from docx.enum.table import WD_TABLE_ALIGNMENT
from docx.enum.text import WD_ALIGN_PARAGRAPH, WD_BREAK
from docx.oxml.ns import qn
from docx.shared import Cm, Pt
from docx.table import Table as DocxTable
from docx.text.paragraph import Paragraph

from nscl_domain.documents.annex import Annex, annexes
from nscl_domain.documents.charts import all_charts
from nscl_domain.documents.content import (
    Document,
    money,
    quantity,
    signed_on_words,
)

FONT = "Times New Roman"
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _fixed_zip(data: bytes) -> bytes:
    """The package again, entries in the same order, each dated the same fixed day."""
    out = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(data)) as source,
        zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target,
    ):
        for info in source.infolist():
            entry = zipfile.ZipInfo(info.filename, date_time=ZIP_EPOCH)
            entry.compress_type = zipfile.ZIP_DEFLATED
            entry.external_attr = 0o600 << 16
            target.writestr(entry, source.read(info.filename))
    return out.getvalue()


def _signed_at(document: Document) -> datetime:
    return datetime.combine(datetime.fromisoformat(document.signed_on).date(), time(8, 0))


# --- DOCX ----------------------------------------------------------------------------------


def _run_font(paragraph: Paragraph, size: float, *, bold: bool = False, italic: bool = False,
              text: str = "") -> None:  # fmt: skip
    run = paragraph.add_run(text)
    run.bold, run.italic = bold, italic
    run.font.size = Pt(size)
    run.font.name = FONT


def _para(container: object, text: str = "", *, size: float = 13, bold: bool = False,
          italic: bool = False, align: WD_ALIGN_PARAGRAPH | None = None,
          indent: bool = False) -> Paragraph:  # fmt: skip
    paragraph: Paragraph = container.add_paragraph()  # type: ignore[attr-defined]
    if align is not None:
        paragraph.alignment = align
    paragraph.paragraph_format.space_after = Pt(3)
    if indent:
        paragraph.paragraph_format.first_line_indent = Cm(1)
    if text:
        _run_font(paragraph, size, bold=bold, italic=italic, text=text)
    return paragraph


def _no_borders(table: DocxTable) -> None:
    borders = table._tbl.tblPr.first_child_found_in("w:tblBorders")
    if borders is not None:
        table._tbl.tblPr.remove(borders)


def _widths(table: DocxTable, *widths: Any) -> None:
    # Word reads the grid, LibreOffice the cells: set both, or the motto wraps.
    table.autofit = False
    for column, width in zip(table.columns, widths, strict=True):
        column.width = width
        for cell in column.cells:
            cell.width = width


def _cell_text(value: object, kind: str) -> str:
    if value is None:
        return ""
    if kind == "money" and isinstance(value, int):
        return money(value)
    if isinstance(value, Decimal):
        return quantity(value)
    return str(value)


def _heading(docx: object, text: str) -> None:
    _para(docx, text, bold=True)


def _annex_table(docx: object, annex: Annex) -> None:
    _para(docx, annex.title_vi, bold=True, align=WD_ALIGN_PARAGRAPH.CENTER)
    table = docx.add_table(rows=1, cols=len(annex.columns))  # type: ignore[attr-defined]
    table.style = "Table Grid"
    table.alignment = WD_TABLE_ALIGNMENT.CENTER
    # The annex pages are landscape A4: share their 26.7 cm as the sheet shares its columns.
    scale = 26.7 / sum(c.width for c in annex.columns)
    for cell, column in zip(table.rows[0].cells, annex.columns, strict=True):
        cell.text = ""
        _run_font(cell.paragraphs[0], 10, bold=True, text=column.header_vi)
        cell.paragraphs[0].alignment = WD_ALIGN_PARAGRAPH.CENTER
    for row in annex.rows:
        cells = table.add_row().cells
        group = isinstance(row[0], str) and "." not in row[0]
        for cell, value, column in zip(cells, row, annex.columns, strict=True):
            cell.text = ""
            _run_font(cell.paragraphs[0], 10, bold=group, text=_cell_text(value, column.kind))
            if column.kind != "text":
                cell.paragraphs[0].alignment = WD_ALIGN_PARAGRAPH.RIGHT
    _widths(table, *(Cm(c.width * scale) for c in annex.columns))
    _para(docx)


def _picture(docx: object, png: bytes, caption: str) -> None:
    paragraph = _para(docx, align=WD_ALIGN_PARAGRAPH.CENTER)
    paragraph.add_run().add_picture(io.BytesIO(png), width=Cm(15))
    _para(docx, caption, size=11, italic=True, align=WD_ALIGN_PARAGRAPH.CENTER)


def _header(docx: object, document: Document) -> None:
    table = docx.add_table(rows=1, cols=2)  # type: ignore[attr-defined]
    _no_borders(table)
    _widths(table, Cm(7.6), Cm(10))
    left, right = table.rows[0].cells
    left.text = right.text = ""
    p = left.paragraphs[0]
    p.alignment = WD_ALIGN_PARAGRAPH.CENTER
    _run_font(p, 12, text=document.superior_vi.upper())
    p = _para(left, align=WD_ALIGN_PARAGRAPH.CENTER)
    _run_font(p, 12, bold=True, text=document.issuer_vi.upper())
    _para(left, "‾‾‾‾‾‾‾‾", size=8, align=WD_ALIGN_PARAGRAPH.CENTER)
    _para(left, f"Số:        /{document.symbol}", align=WD_ALIGN_PARAGRAPH.CENTER)
    p = right.paragraphs[0]
    p.alignment = WD_ALIGN_PARAGRAPH.CENTER
    _run_font(p, 12, bold=True, text="CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM")
    _para(right, "Độc lập - Tự do - Hạnh phúc", bold=True, align=WD_ALIGN_PARAGRAPH.CENTER)
    _para(right, "‾‾‾‾‾‾‾‾‾‾‾‾‾‾‾‾‾‾‾‾", size=8, align=WD_ALIGN_PARAGRAPH.CENTER)
    _para(
        right,
        f"{document.place_vi}, {signed_on_words(document.signed_on)}",
        italic=True,
        align=WD_ALIGN_PARAGRAPH.CENTER,
    )


def _narrative(docx: object, document: Document, parts: tuple[str, ...]) -> int:
    written = 0
    for n in document.narratives:
        texts = [n.parts[p] for p in parts if n.parts.get(p)]
        if not texts:
            continue
        _para(docx, f"- {n.unit_vi} (báo cáo năm {n.year}, phiên bản {n.version_no}):",
              italic=True, indent=True)  # fmt: skip
        for text in texts:
            _para(docx, text, indent=True)
        written += 1
    if not written:
        _para(docx, "Các đơn vị không nêu nội dung này trong báo cáo.", italic=True, indent=True)
    return written


def render_docx(document: Document, charts: dict[str, bytes] | None = None) -> bytes:
    """The report as a Vietnamese administrative document (Decree 30/2020/NĐ-CP)."""
    charts = charts if charts is not None else all_charts(document)
    docx = new_docx()
    style = docx.styles["Normal"]
    style.font.name, style.font.size = FONT, Pt(13)
    style.element.rPr.rFonts.set(qn("w:eastAsia"), FONT)
    section = docx.sections[0]
    section.page_height, section.page_width = Cm(29.7), Cm(21)
    section.top_margin, section.bottom_margin = Cm(2), Cm(2)
    section.left_margin, section.right_margin = Cm(3), Cm(1.5)
    props = docx.core_properties
    signed_at = _signed_at(document)
    props.created = props.modified = props.last_printed = signed_at
    props.author = props.last_modified_by = document.issuer_vi
    props.title = f"Báo cáo {document.title_vi}"
    props.revision = 1

    _header(docx, document)
    _para(docx)
    _para(docx, "BÁO CÁO", size=14, bold=True, align=WD_ALIGN_PARAGRAPH.CENTER)
    _para(docx, document.title_vi + "\n" + document.programme_vi, bold=True,
          align=WD_ALIGN_PARAGRAPH.CENTER)  # fmt: skip
    _para(docx, "‾‾‾‾‾‾‾‾‾‾", size=8, align=WD_ALIGN_PARAGRAPH.CENTER)

    reporting = len(document.timeliness)
    on_time = sum(1 for r in document.timeliness if r.status == "on_time")
    accepted = sum(1 for r in document.timeliness if r.accepted)
    _heading(docx, "I. TỔNG QUAN")
    _para(
        docx,
        f"Thực hiện {document.programme_vi}, {document.issuer_vi} tổng hợp báo cáo của "
        f"{reporting} đơn vị có nghĩa vụ báo cáo; {accepted} báo cáo đã được chấp nhận, "
        f"{on_time} đơn vị gửi đúng hạn. Số liệu trong báo cáo này lấy từ kết quả tổng hợp "
        f"đã công bố (mã lần tổng hợp {document.run_id}).",
        indent=True,
    )

    _heading(docx, "II. KẾT QUẢ THỰC HIỆN")
    _heading(docx, "1. Kết quả theo nhóm nhiệm vụ")
    for number, name, lines in document.task_groups:
        done = sum(line.counts.get("completed", 0) for line in lines)
        going = sum(line.counts.get("in_progress", 0) for line in lines)
        _para(docx, f"{number}. {name}: {done} lượt nhiệm vụ hoàn thành, {going} lượt đang "
                    "thực hiện (chi tiết tại Biểu 06).", indent=True)  # fmt: skip
    _heading(docx, "2. Kết quả thực hiện các mục tiêu")
    for t in document.targets:
        _para(docx, f"{t.number}. {t.text_vi}", indent=True)
        _para(docx, f"{t.arithmetic_vi} Đánh giá: {t.status_vi}.", italic=True, indent=True)
    if document.kind != "annual_report":
        _para(docx, "Số liệu các năm của giai đoạn được trình bày song song tại Biểu 03; "
                    "kết quả theo đơn vị, các đơn vị đã sắp xếp thể hiện dưới đơn vị kế thừa, "
                    "tại Biểu 07.", indent=True)  # fmt: skip
    _picture(docx, charts["targets"], "Hình 1. Kết quả thực hiện các chỉ tiêu qua các năm")
    _heading(docx, "3. Kết quả do các đơn vị báo cáo")
    _narrative(docx, document, ("results",))

    _heading(docx, "III. KINH PHÍ THỰC HIỆN")
    estimated = sum(x.estimated for x in document.budget)
    allocated = sum(x.allocated for x in document.budget)
    spent = sum(x.spent for x in document.budget)
    _para(docx, f"Tổng dự toán {money(estimated)} đồng; được giao {money(allocated)} đồng; "
                f"đã chi {money(spent)} đồng (chi tiết tại Biểu 04).", indent=True)  # fmt: skip
    _picture(docx, charts["budget"], "Hình 2. Kinh phí theo nguồn và nơi nhận dự toán")

    _heading(docx, "IV. TÌNH HÌNH GỬI BÁO CÁO CỦA CÁC ĐƠN VỊ")
    late = [r.unit_vi for r in document.timeliness if r.status == "late"]
    missing = [r.unit_vi for r in document.timeliness if r.status == "missing"]
    _para(docx, f"{on_time}/{reporting} đơn vị gửi báo cáo đúng hạn"
                + (f"; chậm hạn: {', '.join(late)}" if late else "")
                + (f"; chưa gửi: {', '.join(missing)}" if missing else "") + ".",
          indent=True)  # fmt: skip
    _picture(docx, charts["timeliness"], "Hình 3. Tình hình gửi báo cáo")

    _heading(docx, "V. TỒN TẠI, HẠN CHẾ VÀ NGUYÊN NHÂN")
    _heading(docx, "1. Tồn tại, hạn chế")
    _narrative(docx, document, ("shortcomings",))
    _heading(docx, "2. Nguyên nhân")
    _narrative(docx, document, ("causes",))
    _heading(docx, "VI. ĐỀ XUẤT, KIẾN NGHỊ")
    _narrative(docx, document, ("proposals",))
    _para(docx, f"Trên đây là báo cáo {document.title_vi[0].lower()}{document.title_vi[1:]}, "
                f"{document.issuer_vi} kính báo cáo./.", indent=True)  # fmt: skip

    table = docx.add_table(rows=1, cols=2)
    _no_borders(table)
    _widths(table, Cm(8), Cm(8.5))
    left, right = table.rows[0].cells
    left.text = right.text = ""
    _run_font(left.paragraphs[0], 12, bold=True, italic=True, text="Nơi nhận:")
    for recipient in document.recipients_vi:
        _para(left, f"- {recipient};" if not recipient.endswith(".") else f"- {recipient}",
              size=11)  # fmt: skip
    right.paragraphs[0].alignment = WD_ALIGN_PARAGRAPH.CENTER
    _run_font(right.paragraphs[0], 13, bold=True, text=document.signer_vi)
    _para(right, "(Ký, ghi rõ họ tên và đóng dấu)", size=12, italic=True,
          align=WD_ALIGN_PARAGRAPH.CENTER)  # fmt: skip

    docx.add_paragraph().add_run().add_break(WD_BREAK.PAGE)
    annex_section = docx.add_section()
    annex_section.orientation = WD_ORIENT.LANDSCAPE
    annex_section.page_width, annex_section.page_height = Cm(29.7), Cm(21)
    _para(docx, "PHỤ LỤC", size=14, bold=True, align=WD_ALIGN_PARAGRAPH.CENTER)
    _para(docx, f"(Kèm theo Báo cáo số       /{document.symbol} của {document.issuer_vi})",
          italic=True, align=WD_ALIGN_PARAGRAPH.CENTER)  # fmt: skip
    for annex in annexes(document):
        _annex_table(docx, annex)

    buffer = io.BytesIO()
    docx.save(buffer)
    return _fixed_zip(buffer.getvalue())


# --- XLSX ----------------------------------------------------------------------------------

_FORMATS = {"money": "#,##0", "quantity": "#,##0.####", "count": "#,##0", "text": "@"}


def render_xlsx(document: Document) -> bytes:
    """The annex tables on named sheets, with native charts, Vietnamese headers, đồng with
    thousand separators, frozen headers and a print set-up."""
    buffer = io.BytesIO()
    workbook = xlsxwriter.Workbook(buffer, {"in_memory": True, "strings_to_numbers": False})
    signed_at = _signed_at(document)
    workbook.set_properties(
        {
            "title": f"Phụ lục báo cáo {document.title_vi}",
            "author": document.issuer_vi,
            "company": document.superior_vi,
            "created": signed_at,
        }
    )
    title = workbook.add_format({"bold": True, "font_name": FONT, "font_size": 13})
    header = workbook.add_format(
        {"bold": True, "font_name": FONT, "font_size": 11, "border": 1, "text_wrap": True,
         "align": "center", "valign": "vcenter", "bg_color": "#DDEBF7"}
    )  # fmt: skip
    formats = {
        (kind, bold): workbook.add_format(
            {
                "font_name": FONT,
                "font_size": 11,
                "border": 1,
                "text_wrap": kind == "text",
                "valign": "top",
                "num_format": _FORMATS[kind],
                "bold": bold,
            }
        )
        for kind in _FORMATS
        for bold in (False, True)
    }
    for annex in annexes(document):
        sheet = workbook.add_worksheet(annex.sheet)
        sheet.write(0, 0, annex.title_vi, title)
        sheet.write(1, 0, f"{document.issuer_vi} - {document.place_vi}, "
                          f"{signed_on_words(document.signed_on)}")  # fmt: skip
        for c, column in enumerate(annex.columns):
            sheet.set_column(c, c, column.width)
            sheet.write(3, c, column.header_vi, header)
        for r, row in enumerate(annex.rows, start=4):
            group = isinstance(row[0], str) and "." not in row[0]
            for c, (value, column) in enumerate(zip(row, annex.columns, strict=True)):
                fmt = formats[(column.kind, group)]
                if value is None:
                    sheet.write_blank(r, c, None, fmt)
                elif isinstance(value, Decimal):
                    sheet.write_number(r, c, float(value), fmt)
                elif isinstance(value, int) and not isinstance(value, bool):
                    sheet.write_number(r, c, value, fmt)
                else:
                    sheet.write_string(r, c, str(value), fmt)
        sheet.freeze_panes(4, 2)
        sheet.set_landscape()
        sheet.set_paper(9)  # A4
        sheet.fit_to_pages(1, 0)
        sheet.repeat_rows(3)
        sheet.set_margins(left=0.6, right=0.4, top=0.6, bottom=0.6)
        sheet.set_footer("&CTrang &P/&N")
        _chart(workbook, sheet, annex, len(annex.rows))
    workbook.close()
    return _fixed_zip(buffer.getvalue())


def _chart(workbook: xlsxwriter.Workbook, sheet: object, annex: Annex, count: int) -> None:
    if annex.chart is None or count == 0:
        return
    first, last = 4, 3 + count
    name = annex.sheet
    value_columns = [i for i, c in enumerate(annex.columns) if c.kind != "text"]
    if annex.chart == "pie":
        # Timeliness: one slice per status, counted from the status column by formula.
        chart = workbook.add_chart({"type": "column"})
        chart.add_series(
            {
                "name": "Số ngày chậm",
                "categories": [name, first, 1, last, 1],
                "values": [name, first, 5, last, 5],
            }
        )
    else:
        chart = workbook.add_chart({"type": annex.chart})
        columns = value_columns if annex.chart != "column" else value_columns[-1:]
        for c in columns:
            chart.add_series(
                {
                    "name": [name, 3, c],
                    "categories": [name, first, 0, last, 0],
                    "values": [name, first, c, last, c],
                }
            )
    chart.set_title({"name": annex.title_vi, "name_font": {"size": 10}})
    chart.set_legend({"position": "bottom"})
    chart.set_size({"width": 720, "height": 360})
    sheet.insert_chart(last + 2, 1, chart)  # type: ignore[attr-defined]


def render(document: Document) -> tuple[bytes, bytes]:
    """Both files of the document: (docx, xlsx)."""
    return render_docx(document), render_xlsx(document)
