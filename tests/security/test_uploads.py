"""One spreadsheet upload must never stall the service.

Every hostile file is refused with its own problem code, counted on what the reader read
(not on what it kept); parsing runs in worker processes, so that the event loop keeps
answering while the worst of them are read; a parse past its wall time is killed.
"""

from __future__ import annotations

import asyncio
import io
import os
import signal
import time
import zipfile
from collections.abc import Callable

import httpx
import pytest
from bench import hostile_files
from fastapi import FastAPI

from nscl_api.auth.tokens import KeyRing
from nscl_api.resources import Resources
from nscl_domain.offload import PoolBusy, ProcessPool, WorkerLost, WorkTimedOut
from nscl_domain.reports import importing, imports
from nscl_domain.reports.importing import (
    CSV_MEDIA_TYPE,
    XLSX_MEDIA_TYPE,
    ImportLimitError,
    UploadLimits,
    read_rows,
)
from tests.api.test_problems import assert_problem
from tests.api.test_reports import Desk

# (file, media type, status, code): built once, each small on the wire.
HOSTILE: dict[str, tuple[Callable[[], bytes], str, int, str]] = {
    "one cell in column XFD on 20,000 rows": (
        hostile_files.xfd_column_rows,
        XLSX_MEDIA_TYPE,
        413,
        "upload_too_many_columns",
    ),
    "100,000 rows under no header": (
        hostile_files.unheaded_rows,
        XLSX_MEDIA_TYPE,
        413,
        "upload_too_many_rows",
    ),
    "1,000,000 rows": (hostile_files.million_rows, XLSX_MEDIA_TYPE, 413, "upload_too_many_rows"),
    "zip bomb": (
        lambda: hostile_files.zip_bomb(128 * 1024 * 1024),
        XLSX_MEDIA_TYPE,
        413,
        "upload_uncompressed_too_large",
    ),
    "200,000 shared strings": (
        hostile_files.many_shared_strings,
        XLSX_MEDIA_TYPE,
        413,
        "upload_too_many_shared_strings",
    ),
    "rows 200 cells wide": (
        lambda: hostile_files.wide_rows(rows=50, columns=200),
        XLSX_MEDIA_TYPE,
        413,
        "upload_too_many_columns",
    ),
    "CSV of 1,000,000 rows": (hostile_files.csv_rows, CSV_MEDIA_TYPE, 413, "upload_too_many_rows"),
    "CSV of 1,000,000 empty lines": (
        lambda: b"indicator,value\n" + b"\n" * 1_000_000,
        CSV_MEDIA_TYPE,
        413,
        "upload_too_many_rows",
    ),
    "CSV row 100,000 cells wide": (
        hostile_files.csv_wide,
        CSV_MEDIA_TYPE,
        413,
        "upload_too_many_columns",
    ),
}
_BUILT: dict[str, bytes] = {}


def hostile(name: str) -> tuple[bytes, str, int, str]:
    build, media_type, status, code = HOSTILE[name]
    if name not in _BUILT:
        _BUILT[name] = build()
    return _BUILT[name], media_type, status, code


@pytest.fixture
def desk(anonymous: httpx.AsyncClient, keys: KeyRing) -> Desk:
    return Desk(anonymous, keys)


async def upload(desk: Desk, report_id: str, data: bytes, media_type: str) -> httpx.Response:
    return await desk.http.post(
        f"/v1/reports/{report_id}/indicator-values/import?dry_run=true",
        content=data,
        headers={**desk.reporter, "Content-Type": media_type},
    )


class TestEachLimitHasItsCode:
    @pytest.mark.parametrize("name", list(HOSTILE))
    async def test_hostile_file_is_refused_with_the_limit_it_broke(
        self, desk: Desk, name: str
    ) -> None:
        data, media_type, status, code = hostile(name)
        report_id = (await desk.draft(2024)).json()["id"]
        body = assert_problem(await upload(desk, report_id, data, media_type), status, code)
        assert isinstance(body["limit"], int | float)
        assert body["value"] > body["limit"]
        assert f"{body['limit']:,}" in str(body["detail"])

    def test_row_limit_names_the_rows_after_the_header(self) -> None:
        data, media_type, _, _ = hostile("100,000 rows under no header")
        with pytest.raises(ImportLimitError, match="more than 20,000 rows") as refused:
            read_rows(data, media_type)
        assert (refused.value.limit, refused.value.too_large) == (20_000, True)

    def test_cells_are_counted_even_when_no_row_is_too_wide(self) -> None:
        data = hostile_files.wide_rows(rows=200, columns=100)
        with pytest.raises(ImportLimitError) as refused:
            read_rows(data, XLSX_MEDIA_TYPE, UploadLimits(max_cells=10_000))
        assert (refused.value.code, refused.value.limit) == ("upload_too_many_cells", 10_000)

    def test_csv_cells_are_counted(self) -> None:
        data = ("indicator,value\n" + "x,1,,,\n" * 100).encode()
        with pytest.raises(ImportLimitError) as refused:
            read_rows(data, CSV_MEDIA_TYPE, UploadLimits(max_cells=300))
        assert refused.value.code == "upload_too_many_cells"

    def test_shared_strings_are_limited_in_size_too(self) -> None:
        data = hostile_files.many_shared_strings(count=300)
        with pytest.raises(ImportLimitError) as refused:
            read_rows(data, XLSX_MEDIA_TYPE, UploadLimits(max_shared_string_chars=1_000))
        assert refused.value.code == "upload_shared_strings_too_large"

    def test_a_part_that_inflates_a_thousand_times_is_refused_before_inflating(self) -> None:
        data = hostile_files.zip_bomb(8 * 1024 * 1024)  # under the inflated-size limit
        with pytest.raises(ImportLimitError) as refused:
            read_rows(data, XLSX_MEDIA_TYPE)
        assert (refused.value.code, refused.value.too_large) == ("upload_compression_ratio", False)

    def test_a_workbook_of_many_parts_is_refused(self) -> None:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            for i in range(20):
                archive.writestr(f"part{i}.xml", "<x/>")
        with pytest.raises(ImportLimitError) as refused:
            read_rows(buffer.getvalue(), XLSX_MEDIA_TYPE, UploadLimits(max_zip_members=10))
        assert refused.value.code == "upload_too_many_parts"

    def test_a_row_numbered_past_the_limit_is_refused_at_once(self) -> None:
        data = hostile_files.workbook(['<row r="1048576"><c r="A1048576"><v>1</v></c></row>'])
        with pytest.raises(ImportLimitError) as refused:
            read_rows(data, XLSX_MEDIA_TYPE)
        assert (refused.value.code, refused.value.value) == ("upload_too_many_rows", 1_048_575)

    def test_the_reader_stops_itself_at_its_wall_time(self) -> None:
        with pytest.raises(ImportLimitError) as refused:
            read_rows(hostile_files.csv_rows(10_000), CSV_MEDIA_TYPE, UploadLimits(seconds=0))
        assert (refused.value.code, refused.value.too_large) == ("upload_parse_timeout", False)

    def test_limits_survive_the_trip_from_a_worker_process(self) -> None:
        import pickle

        error = ImportLimitError("upload_too_many_rows", "Too many.", 20_000, 20_001)
        copy = pickle.loads(pickle.dumps(error))
        assert (copy.code, copy.detail, copy.limit, copy.value, copy.too_large) == (
            "upload_too_many_rows",
            "Too many.",
            20_000,
            20_001,
            True,
        )


class WatchedPool:
    """The app's parser pool, noting how many /health answers came while each parse ran."""

    def __init__(self, pool: ProcessPool, answers: Callable[[], int]) -> None:
        self.pool = pool
        self.answers = answers
        self.during: list[int] = []

    async def run(self, function: Callable[..., object], *args: object, **kwargs: object) -> object:
        before = self.answers()
        try:
            return await self.pool.run(function, *args, **kwargs)
        finally:
            self.during.append(self.answers() - before)


class TestTheLoopKeepsAnswering:
    async def test_health_answers_while_four_worst_case_uploads_are_read(
        self, desk: Desk, shared_app: FastAPI, committed_resources: Resources
    ) -> None:
        # Each upload reads its report before its file: four transactions at once, which
        # the savepoints of one shared connection cannot hold.
        resources = shared_app.state.resources = committed_resources
        report_id = (await desk.draft(2024)).json()["id"]
        names = [
            "one cell in column XFD on 20,000 rows",
            "100,000 rows under no header",
            "1,000,000 rows",
            "zip bomb",
        ]
        files = [hostile(name) for name in names]
        health_answers = 0
        uploads_done = asyncio.Event()
        watched = WatchedPool(resources.parsers, lambda: health_answers)

        async def probe() -> None:
            nonlocal health_answers
            while not uploads_done.is_set():
                assert (await desk.http.get("/health")).status_code == 200
                health_answers += 1
                await asyncio.sleep(0.005)

        async def uploads() -> list[httpx.Response]:
            try:
                return await asyncio.gather(
                    *(upload(desk, report_id, data, media) for data, media, _, _ in files)
                )
            finally:
                uploads_done.set()

        shared, resources.parsers = resources.parsers, watched  # type: ignore[assignment]
        try:
            probing = asyncio.create_task(probe())
            answers = await uploads()
            await probing
        finally:
            resources.parsers = shared
        for answer, (_, _, status, code) in zip(answers, files, strict=True):
            assert_problem(answer, status, code)
        # Parsed on the event loop, a file lets no /health through until it is read: not
        # one answer would come while any of the four parses ran. Off the loop, they come.
        assert len(watched.during) == 4
        assert sum(watched.during) >= 20, watched.during

    async def test_rows_are_checked_off_the_loop_too(
        self, desk: Desk, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        # Checking 20,000 rows takes about a second of CPU: on the event loop it would hold
        # up every other request as long. In this process, the check refuses to run; the
        # parsers are processes of their own, where it runs as written.
        def on_the_loop(*_: object) -> None:
            raise AssertionError("rows were checked on the event loop")

        monkeypatch.setattr(importing, "check_rows", on_the_loop)
        monkeypatch.setattr(imports, "check_rows", on_the_loop, raising=False)
        report = await desk.draft(2024)
        rows = b"indicator,trainee_group,value\npeople-trained,manager,4\nno-such,,1\n"
        answer = await desk.http.post(
            f"/v1/reports/{report.json()['id']}/indicator-values/import?dry_run=false",
            content=rows,
            headers={**desk.reporter, "Content-Type": CSV_MEDIA_TYPE,
                     "If-Match": report.headers["etag"]},
        )  # fmt: skip
        assert_problem(answer, 422, "import_rejected")
        assert [e["location"] for e in answer.json()["errors"]] == [["body", 3, "indicator"]]


class TestTheParserPool:
    async def test_a_runaway_parse_is_killed_and_its_slot_serves_again(self) -> None:
        pool = ProcessPool(1, timeout_seconds=0.5, wait_seconds=30)
        try:
            with pytest.raises(WorkTimedOut):
                await pool.run(time.sleep, 60)
            # The killed worker was replaced: the next call runs.
            assert await pool.run(sum, [1, 2, 3]) == 6
        finally:
            pool.close()

    async def test_errors_of_the_function_come_back_and_the_worker_is_kept(self) -> None:
        pool = ProcessPool(1, timeout_seconds=30, wait_seconds=30)
        try:
            with pytest.raises(ImportLimitError) as refused:
                await pool.run(read_rows, hostile("1,000,000 rows")[0], XLSX_MEDIA_TYPE)
            assert refused.value.code == "upload_too_many_rows"
            assert await pool.run(sum, [1, 2]) == 3
        finally:
            pool.close()

    async def test_a_caller_waits_only_so_long_for_a_free_parser(self) -> None:
        pool = ProcessPool(1, timeout_seconds=60, wait_seconds=0.05)
        busy = asyncio.create_task(pool.run(time.sleep, 60))
        try:
            while not pool._busy:  # noqa: ASYNC110  # the first call takes the only slot
                await asyncio.sleep(0.01)
            with pytest.raises(PoolBusy) as refused:
                await pool.run(sum, [1])
            assert refused.value.retry_after == 60
        finally:
            pool.close()
            with pytest.raises(WorkerLost):
                await busy

    async def test_busy_parsers_answer_503_with_retry_after(
        self, desk: Desk, resources: Resources
    ) -> None:
        report_id = (await desk.draft(2024)).json()["id"]
        shared, resources.parsers = (
            resources.parsers,
            ProcessPool(1, timeout_seconds=60, wait_seconds=0),
        )
        busy = asyncio.create_task(resources.parsers.run(time.sleep, 60))
        try:
            while not resources.parsers._busy:  # noqa: ASYNC110
                await asyncio.sleep(0.01)
            answer = await upload(desk, report_id, b"indicator,value\nx,1\n", CSV_MEDIA_TYPE)
            assert_problem(answer, 503, "upload_parsers_busy")
            assert answer.headers["Retry-After"] == "60"
        finally:
            resources.parsers.close()
            resources.parsers = shared
            with pytest.raises(WorkerLost):
                await busy

    async def test_an_idle_worker_killed_from_outside_is_replaced(self) -> None:
        pool = ProcessPool(1, timeout_seconds=30, wait_seconds=30)
        try:
            pid = await pool.run(os.getpid)
            os.kill(pid, signal.SIGKILL)
            assert await pool.run(sum, [4, 5]) == 9
        finally:
            pool.close()
