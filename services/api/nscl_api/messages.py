"""The words of problems, field errors and import errors, in Vietnamese and in English.

A message is looked up by its stable ``code``, never by translating the English text: the
catalogue holds, per code, a template in each language whose ``{names}`` are filled from the
parameters the error carries (an import row error's value, the limit of a refused upload).
A code the catalogue lacks keeps the text the error was raised with (English).

Which language: ``Accept-Language`` (q-values honoured, ``vi``/``vi-VN`` and ``en``/``en-*``
recognised). JSON answers default to English; files made for people (exports, templates)
default to Vietnamese. The language of a request is set by the edge middleware
(nscl_api.middleware) so that every problem, wherever it is built, is written in it.
"""

from __future__ import annotations

import functools
import string
from collections.abc import Mapping
from contextvars import ContextVar, Token
from http import HTTPStatus
from typing import Literal

Language = Literal["vi", "en"]
LANGUAGES: tuple[Language, ...] = ("vi", "en")

_request_language: ContextVar[Language] = ContextVar("nscl_language", default="en")


def preferred_language(header: str | None, *, default: Language) -> Language:
    """The language of ``Accept-Language`` the client prefers most among ours."""
    if not header:
        return default
    best: tuple[float, int] | None = None
    chosen: Language = default
    for position, part in enumerate(header.split(",")):
        tag, *params = (p.strip() for p in part.split(";"))
        primary = tag.lower().split("-", 1)[0]
        if primary not in LANGUAGES and primary != "*":
            continue
        quality = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if quality <= 0:
            continue
        language: Language = default if primary == "*" else primary  # type: ignore[assignment]
        rank = (quality, -position)
        if best is None or rank > best:
            best, chosen = rank, language
    return chosen


def current_language() -> Language:
    """The language of the request being answered (English outside a request)."""
    return _request_language.get()


@functools.lru_cache(maxsize=256)
def _language_of(header: str) -> Language:
    # Clients repeat the same header on every request: parse each one once.
    return preferred_language(header, default="en")


def enter_language(header: bytes | None) -> Token[Language]:
    """Make ``Accept-Language`` (raw, as the ASGI scope holds it) the language of what is
    built until :func:`leave_language`: the edge middleware calls both around a request."""
    return _request_language.set("en" if not header else _language_of(header.decode("latin-1")))


def leave_language(token: Token[Language]) -> None:
    _request_language.reset(token)


# Titles of problems by status (RFC 9457 `title`): English is the HTTP reason phrase.
TITLES_VI: dict[int, str] = {
    400: "Yêu cầu không hợp lệ",
    401: "Chưa xác thực",
    403: "Không có quyền",
    404: "Không tìm thấy",
    405: "Phương thức không được phép",
    406: "Không có định dạng phù hợp",
    409: "Xung đột",
    412: "Dữ liệu đã thay đổi",
    413: "Dữ liệu gửi lên quá lớn",
    415: "Định dạng dữ liệu không được hỗ trợ",
    422: "Dữ liệu không hợp lệ",
    428: "Yêu cầu phải có điều kiện",
    429: "Quá nhiều yêu cầu",
    500: "Lỗi hệ thống",
    503: "Dịch vụ tạm thời không sẵn sàng",
}

# Messages by code: (Vietnamese, English). English None: keep the text raised in English,
# which names the particular objects; the Vietnamese template names them from the params.
CATALOGUE: dict[str, tuple[str, str | None]] = {
    # problems
    "not_found": ("Không có tài nguyên tại địa chỉ này.", None),
    "not_acceptable": (
        "Tài nguyên này chỉ có ở dạng JSON, CSV hoặc XLSX; yêu cầu không chấp nhận dạng nào.",
        None,
    ),
    "method_not_allowed": ("Không dùng được phương thức này ở địa chỉ này.", None),
    "validation_failed": ("Yêu cầu có {count} chỗ không hợp lệ.", None),
    "malformed_json": ("Nội dung gửi lên không phải JSON hợp lệ.", None),
    "unauthenticated": ("Thiếu mã truy cập, hoặc mã không hợp lệ hay đã hết hạn.", None),
    "invalid_token": ("Mã truy cập không hợp lệ hoặc đã hết hạn.", None),
    "forbidden": ("Tài khoản này không được làm việc này.", None),
    "insufficient_scope": ("Mã truy cập không có phạm vi cần cho việc này.", None),
    "conflict": ("Thay đổi xung đột với dữ liệu đã lưu.", None),
    "precondition_failed": (
        "Tài nguyên đã thay đổi từ khi bạn đọc nó (If-Match); hãy đọc lại rồi sửa.",
        None,
    ),
    "precondition_required": ("Yêu cầu này phải kèm tiêu đề If-Match.", None),
    "stale_revision": (
        "Tài nguyên đã thay đổi từ khi bạn đọc nó (If-Match); hãy đọc lại rồi sửa.",
        None,
    ),
    "database_unavailable": ("Không kết nối được cơ sở dữ liệu; hãy thử lại sau.", None),
    "queue_unavailable": ("Không kết nối được hàng đợi công việc; hãy thử lại sau.", None),
    "internal_error": ("Đã xảy ra lỗi ngoài dự kiến; lỗi đã được ghi lại.", None),
    "unsupported_media_type": (
        "Hãy gửi tệp CSV (text/csv) hoặc bảng tính Excel (.xlsx).",
        None,
    ),
    "unreadable_file": ("Không đọc được tệp thành bảng số liệu: {reason}", None),
    "import_rejected": ("Tệp có {count} lỗi; chưa có số liệu nào được nhập.", None),
    "too_many_values": (
        "Báo cáo có quá nhiều giá trị chỉ tiêu: {value}, giới hạn {limit}; không có gì được ghi.",
        None,
    ),
    "upload_too_large": ("Tệp quá lớn: {value} byte, giới hạn {limit} byte.", None),
    "upload_too_many_rows": ("Tệp có quá nhiều dòng: giới hạn {limit} dòng.", None),
    "upload_too_many_columns": ("Tệp có quá nhiều cột: giới hạn {limit} cột.", None),
    "upload_too_many_cells": ("Tệp có quá nhiều ô: giới hạn {limit} ô.", None),
    "upload_uncompressed_too_large": (
        "Tệp khi giải nén quá lớn: giới hạn {limit} byte.",
        None,
    ),
    "upload_parse_timeout": ("Đọc tệp quá {limit} giây; hãy chia nhỏ tệp.", None),
    "upload_parsers_busy": ("Các bộ đọc tệp đều đang bận; hãy thử lại sau.", None),
    "missing_token": ("Thiếu mã truy cập (Authorization: Bearer …).", None),
    "token_expired": ("Mã truy cập đã hết hạn; hãy lấy mã mới.", None),
    "transition_not_allowed": ("Báo cáo đang ở trạng thái không cho phép thao tác này.", None),
    "report_not_editable": ("Chỉ sửa được bản nháp; phiên bản đã gửi không sửa được.", None),
    "report_exists": ("Nghĩa vụ báo cáo này đã có báo cáo.", None),
    "invalid_content": ("Nội dung báo cáo không hợp lệ.", None),
    "request_in_progress": ("Một yêu cầu cùng khoá đang được xử lý; hãy thử lại sau.", None),
    "too_many_requests": ("Quá nhiều yêu cầu; hãy thử lại sau.", None),
    "rate_limited": ("Quá nhiều yêu cầu; hãy thử lại sau.", None),
    # field errors of the request (pydantic's types)
    "missing": ("Bắt buộc phải có.", None),
    "string_too_long": ("Dài quá {max_length} ký tự.", None),
    "string_too_short": ("Ngắn hơn {min_length} ký tự.", None),
    "string_pattern_mismatch": ("Không đúng mẫu {pattern}.", None),
    "int_parsing": ("Phải là số nguyên.", None),
    "int_type": ("Phải là số nguyên.", None),
    "decimal_parsing": ("Phải là số.", None),
    "greater_than_equal": ("Phải lớn hơn hoặc bằng {ge}.", None),
    "less_than_equal": ("Phải nhỏ hơn hoặc bằng {le}.", None),
    "greater_than": ("Phải lớn hơn {gt}.", None),
    "less_than": ("Phải nhỏ hơn {lt}.", None),
    "literal_error": ("Phải là một trong: {expected}.", None),
    "enum": ("Phải là một trong: {expected}.", None),
    "uuid_parsing": ("Phải là một UUID.", None),
    "date_from_datetime_parsing": ("Phải là ngày dạng YYYY-MM-DD.", None),
    "date_parsing": ("Phải là ngày dạng YYYY-MM-DD.", None),
    "datetime_parsing": ("Phải là thời điểm theo ISO 8601.", None),
    "extra_forbidden": ("Trường này không được phép.", None),
    "bool_parsing": ("Phải là true hoặc false.", None),
    "value_error": ("Giá trị không hợp lệ.", None),
    # import row errors (nscl_domain.reports.importing)
    "missing_value": ("Chưa nhập giá trị cho {subject_vi}.", None),
    "not_a_number": ("Giá trị {value} không phải là số.", None),
    "negative_value": ("Giá trị {value} là số âm.", None),
    "percent_out_of_range": ("Giá trị {value} là tỷ lệ phần trăm, phải từ 0 đến 100.", None),
    "too_precise": ("Giá trị {value} có quá bốn chữ số thập phân hoặc quá lớn.", None),
    "fractional_count": (
        "Giá trị {value} là số đếm ({unit_vi}) nên phải là số nguyên.",
        None,
    ),
    "unknown_indicator": ("Chỉ tiêu {indicator} không có trong danh mục.", None),
    "no_indicator": ("Dòng này không ghi chỉ tiêu.", None),
    "derived_indicator": (
        "Chỉ tiêu {indicator} được tính từ hồ sơ doanh nghiệp hoặc chuyên gia; hãy báo cáo "
        "bằng hồ sơ, không nhập số.",
        None,
    ),
    "unknown_disaggregation": (
        "Chỉ tiêu {indicator} không phân tổ theo {dimension} với giá trị {value}.",
        None,
    ),
    "outside_obligation": (
        "{column_vi} {value} không phải là {expected} của báo cáo này.",
        None,
    ),
    "duplicate_row": ("Chỉ tiêu {indicator} {described} đã có ở dòng {earlier}.", None),
    "formula_not_allowed": (
        "Ô {cell} chứa công thức ({formula}); hãy nhập số, không nhập công thức.",
        "Cell {cell} holds a formula ({formula}); type the figure, not a formula.",
    ),
    "merged_cell": (
        "Ô {cell} nằm trong vùng ô đã gộp {range}; hãy bỏ gộp ô và nhập giá trị vào từng ô.",
        "Cell {cell} is part of the merged cells {range}; unmerge them and type each value "
        "in its own cell.",
    ),
}


# "<noun>_not_found", raised for every kind of object: the noun in Vietnamese.
NOUNS_VI: dict[str, str] = {
    "report": "báo cáo",
    "version": "phiên bản báo cáo",
    "unit": "đơn vị",
    "programme": "chương trình",
    "phase": "giai đoạn",
    "job": "công việc",
    "run": "lượt tổng hợp",
    "rollup": "số liệu tổng hợp",
    "obligation": "nghĩa vụ báo cáo",
    "dossier": "hồ sơ ngân sách",
    "estimate": "dự toán",
    "plan": "kế hoạch",
    "plan_version": "phiên bản kế hoạch",
    "task": "nhiệm vụ",
    "regime": "chế độ báo cáo",
    "rule": "quy tắc kiểm tra",
    "role": "vai trò",
    "client": "tài khoản",
    "indicator": "chỉ tiêu",
    "allocation": "phân bổ",
    "request": "yêu cầu báo cáo",
}
_NOT_FOUND = "_not_found"


class _Params(dict[str, object]):
    def __missing__(self, key: str) -> str:
        raise KeyError(key)


def message(
    code: str,
    fallback: str,
    params: Mapping[str, object] | None = None,
    language: Language | None = None,
) -> str:
    """The message of ``code`` in ``language`` (the request's when None), or ``fallback``
    when the catalogue has none or its template needs a parameter not given."""
    language = language or current_language()
    entry = CATALOGUE.get(code)
    if entry is None and language == "vi" and code.endswith(_NOT_FOUND):
        noun = NOUNS_VI.get(code.removesuffix(_NOT_FOUND), "đối tượng được yêu cầu")
        return f"Không tìm thấy {noun}."
    if entry is None:
        return fallback
    template = entry[0] if language == "vi" else entry[1]
    if template is None:
        return fallback
    try:
        return string.Formatter().vformat(template, (), _Params(params or {}))
    except (KeyError, IndexError, ValueError):
        return fallback


def title(status: int, language: Language | None = None) -> str:
    """A problem's ``title``: the status in words."""
    language = language or current_language()
    if language == "vi" and status in TITLES_VI:
        return TITLES_VI[status]
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"
