"""Deadline reminders reach a real SMTP server on loopback, each exactly once.

The test starts aiosmtpd on 127.0.0.1 and runs the daily job on two arq workers at once,
then once more as after a restart: every contact of every unit that has not submitted
receives each reminder once, and a unit that submitted receives none. The same holds for
two `nscl worker` processes, one of them stopped and started again between the runs.
"""

from __future__ import annotations

import asyncio
import dataclasses
import email
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import date, timedelta
from email.message import Message
from email.policy import default as default_policy
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from arq.connections import ArqRedis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from nscl_api.auth.tokens import KeyRing
from nscl_api.resources import Resources
from nscl_domain.jobs import JobStatus
from nscl_domain.jobs import service as jobs
from nscl_domain.reports.reminders import MISSED, reminder_kind
from nscl_domain.settings import Settings
from nscl_domain.uow import UnitOfWork
from nscl_worker.deps import WorkerDeps
from nscl_worker.settings import build_worker
from tests.conftest import mint_token


class Inbox:
    """What the SMTP server on loopback received."""

    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        assert isinstance(envelope.content, bytes)
        self.messages.append(email.message_from_bytes(envelope.content, policy=default_policy))
        return "250 OK"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def smtp(monkeypatch: pytest.MonkeyPatch) -> Iterator[Inbox]:
    inbox = Inbox()
    port = _free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    monkeypatch.setenv("NSCL_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("NSCL_SMTP_PORT", str(port))
    monkeypatch.setenv("NSCL_SMTP_STARTTLS", "false")
    monkeypatch.setenv("NSCL_SMTP_FROM", "nhac-han@nscl.backan.gov.vn")
    monkeypatch.setenv("NSCL_PUBLIC_BASE_URL", "https://nscl.example.vn")
    yield inbox
    controller.stop()


@pytest.fixture
async def own_queue(committed_resources: Resources, redis: ArqRedis) -> AsyncIterator[Resources]:
    settings = committed_resources.settings.model_copy(
        update={"queue_name": f"nscl:test:reminders:{uuid.uuid4().hex[:8]}"}
    )
    yield dataclasses.replace(committed_resources, settings=settings)
    await redis.delete(settings.queue_name)


@dataclasses.dataclass
class Obligations:
    due: date
    silent: list[str]  # unit keys that have not submitted
    submitted: str
    contacts: dict[str, list[str]]


@pytest.fixture
async def obligations(owner_engine: AsyncEngine) -> AsyncIterator[Obligations]:
    """Obligations of a far year for four units, one of which submitted; two contacts each."""
    year = 2090 + uuid.uuid4().int % 9
    due = date(year, 11, 30)
    async with owner_engine.begin() as conn:
        regime = (
            await conn.execute(
                text("SELECT id, programme_id FROM reporting_regime WHERE key = 'bk-annual'")
            )
        ).one()
        units = (
            await conn.execute(
                text("SELECT id, key FROM org_unit WHERE kind = 'department' ORDER BY key LIMIT 4")
            )
        ).all()
        contacts: dict[str, list[str]] = {}
        ids = []
        for unit_id, key in units:
            mails = [f"lanh-dao.{key}.{year}@example.vn", f"chuyen-vien.{key}.{year}@example.vn"]
            contacts[key] = mails
            people = [
                {"name": "Trần Thị Bình", "email": mails[0], "role": "Lãnh đạo"},
                {"name": "Lê Văn Cường", "email": mails[1], "role": "Chuyên viên"},
                # The same person twice (different case) is reminded once.
                {"name": "Lê Văn Cường", "email": mails[1].upper(), "role": ""},
            ]
            await conn.execute(
                text("UPDATE org_unit SET contacts = CAST(:c AS jsonb) WHERE id = :id"),
                {"c": json.dumps(people), "id": unit_id},
            )
            obligation = (
                await conn.execute(
                    text(
                        "INSERT INTO reporting_obligation (id, programme_id, regime_id, unit_id,"
                        " year, due_date, cutoff_date) VALUES (gen_random_uuid(), :p, :r, :u,"
                        " :y, :d, :d) RETURNING id"
                    ),
                    {"p": regime.programme_id, "r": regime.id, "u": unit_id, "y": year, "d": due},
                )
            ).scalar_one()
            ids.append(obligation)
        submitted_key = units[0][1]
        await conn.execute(
            text(
                "INSERT INTO report (id, obligation_id, unit_id, status, draft,"
                " latest_version_no, first_submitted_at) VALUES (gen_random_uuid(), :o, :u,"
                " 'submitted', '{}'::jsonb, 1, now())"
            ),
            {"o": ids[0], "u": units[0][0]},
        )
    yield Obligations(due, [k for _, k in units[1:]], submitted_key, contacts)
    async with owner_engine.begin() as conn:
        await conn.execute(
            text("DELETE FROM reminder_sent WHERE obligation_id = ANY(:ids)"), {"ids": ids}
        )
        await conn.execute(text("DELETE FROM report WHERE obligation_id = ANY(:ids)"), {"ids": ids})
        await conn.execute(
            text("DELETE FROM reporting_obligation WHERE id = ANY(:ids)"), {"ids": ids}
        )
        await conn.execute(
            text("UPDATE org_unit SET contacts = '[]'::jsonb WHERE key = ANY(:k)"),
            {"k": list(contacts)},
        )


def _worker(resources: Resources) -> Any:
    deps = WorkerDeps(
        settings=resources.settings,
        engine=resources.engine,
        sessionmaker=resources.sessionmaker,
        queue=resources.queue,
        registry=resources.registry,
    )
    return build_worker(
        resources.settings,
        database_url=resources.database_url,
        redis=resources.redis,
        burst=True,
        with_cron=False,
        deps=deps,
    )


async def _send(resources: Resources, on: date) -> uuid.UUID:
    uow = UnitOfWork(resources.sessionmaker, resources.queue)
    async with uow:
        job = await uow.schedule("reminders.send", {"on": on.isoformat()})
        await uow.commit()
    return job.id


async def _until_done(resources: Resources, engine: AsyncEngine) -> None:
    """Run two workers until no reminder job is left pending; the deliveries the daily job
    wrote are handed over by the outbox sweep, as every worker runs it every few seconds."""
    for _ in range(20):
        await jobs.sweep(resources.sessionmaker, resources.queue, grace=timedelta(0))
        await asyncio.gather(_worker(resources).main(), _worker(resources).main())
        async with engine.connect() as conn:
            left = (
                await conn.execute(
                    text(
                        "SELECT count(*) FROM job WHERE name LIKE 'reminders.%' "
                        "AND status IN ('pending', 'running')"
                    )
                )
            ).scalar_one()
        if not left:
            return
        await asyncio.sleep(0.5)
    raise AssertionError("reminder jobs did not finish")


def _received(inbox: Inbox, obligations: Obligations) -> list[tuple[str, str]]:
    mine = {m for mails in obligations.contacts.values() for m in mails}
    return sorted(
        (str(m["To"]), str(m["X-NSCL-Reminder"])) for m in inbox.messages if str(m["To"]) in mine
    )


class TestReminderDays:
    def test_the_nearest_reminder_whose_day_has_come(self) -> None:
        due = date(2026, 11, 30)
        days = [14, 3, 1]
        assert reminder_kind(due, due - timedelta(days=15), days) is None
        assert reminder_kind(due, due - timedelta(days=14), days) == "before_14"
        assert reminder_kind(due, due - timedelta(days=4), days) == "before_14"
        assert reminder_kind(due, due - timedelta(days=3), days) == "before_3"
        assert reminder_kind(due, due - timedelta(days=1), days) == "before_1"
        assert reminder_kind(due, due, days) == "before_1"
        assert reminder_kind(due, due + timedelta(days=1), days) == MISSED
        assert reminder_kind(due, due + timedelta(days=30), days) is None


class TestRemindersOverSmtp:
    async def test_each_unit_without_a_submission_gets_each_reminder_once(
        self, smtp: Inbox, own_queue: Resources, obligations: Obligations, owner_engine: AsyncEngine
    ) -> None:
        three_days_before = obligations.due - timedelta(days=3)
        # Two runs of the day's job at once, on two workers.
        await _send(own_queue, three_days_before)
        await _send(own_queue, three_days_before)
        await _until_done(own_queue, owner_engine)

        expected = sorted(
            (mail, "before_3") for key in obligations.silent for mail in obligations.contacts[key]
        )
        assert _received(smtp, obligations) == expected

        # After a restart the day's job runs again: nothing is sent twice.
        await _send(own_queue, three_days_before)
        await _until_done(own_queue, owner_engine)
        assert _received(smtp, obligations) == expected

        # The day after the due date: the missed reminder, once, to the same people.
        await _send(own_queue, obligations.due + timedelta(days=1))
        await _send(own_queue, obligations.due + timedelta(days=1))
        await _until_done(own_queue, owner_engine)
        missed = sorted(
            (mail, "missed") for key in obligations.silent for mail in obligations.contacts[key]
        )
        assert _received(smtp, obligations) == sorted(expected + missed)

        sample = next(m for m in smtp.messages if str(m["X-NSCL-Reminder"]) == "missed")
        body = sample.get_body(("plain",))
        assert body is not None
        content = body.get_content()
        assert "Quá hạn" in str(sample["Subject"])
        assert f"{obligations.due:%d/%m/%Y}" in content
        assert "https://nscl.example.vn/v1/programmes/" in content
        assert "Kính gửi" in content

        async with owner_engine.connect() as conn:
            statuses = (
                await conn.execute(
                    text("SELECT DISTINCT status FROM job WHERE name = 'reminders.deliver'")
                )
            ).scalars()
            assert set(statuses) <= {JobStatus.SUCCEEDED.value}
            events = (
                await conn.execute(
                    text(
                        "SELECT action, count(*) FROM audit_event WHERE object_id IN"
                        " (SELECT id::text FROM reporting_obligation WHERE due_date = :d)"
                        " GROUP BY action ORDER BY action"
                    ),
                    {"d": obligations.due},
                )
            ).all()
        # One event per unit without a submission and reminder kind.
        assert [tuple(e) for e in events] == [
            ("obligation.deadline_approaching", 3),
            ("obligation.deadline_missed", 3),
        ]

    async def test_a_delivery_run_again_after_success_sends_nothing(
        self, smtp: Inbox, own_queue: Resources, obligations: Obligations, owner_engine: AsyncEngine
    ) -> None:
        await _send(own_queue, obligations.due - timedelta(days=1))
        await _until_done(own_queue, owner_engine)
        before = len(_received(smtp, obligations))
        assert before == 2 * len(obligations.silent)
        async with owner_engine.begin() as conn:
            # An operator retries a finished delivery: the row says it went.
            await conn.execute(
                text(
                    "UPDATE job SET status = 'pending', attempts = 0, finished_at = NULL "
                    "WHERE id IN (SELECT job_id FROM reminder_sent WHERE obligation_id IN "
                    "(SELECT id FROM reporting_obligation WHERE due_date = :d))"
                ),
                {"d": obligations.due},
            )
        await _until_done(own_queue, owner_engine)
        assert len(_received(smtp, obligations)) == before


class WorkerProcesses:
    """`nscl worker` processes on the test database and the resources' own queue."""

    def __init__(self, settings: Settings, logs: Path) -> None:
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("NSCL_")}
        self.env |= {k: v for k, v in os.environ.items() if k.startswith("NSCL_SMTP_")}
        self.env |= {
            "NSCL_PUBLIC_BASE_URL": os.environ["NSCL_PUBLIC_BASE_URL"],
            "NSCL_DATABASE_URL": str(settings.database_url),
            "NSCL_REDIS_URL": str(settings.redis_url),
            "NSCL_QUEUE_NAME": settings.queue_name,
            "NSCL_AUTH_REDIS_PREFIX": f"{settings.auth_redis_prefix}:reminders",
            "NSCL_SEED_ON_START": "false",
            "NSCL_OUTBOX_GRACE_SECONDS": "0",
            "NSCL_LOG_LEVEL": "WARNING",
        }
        self.logs = logs
        self.running: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str) -> None:
        with (self.logs / f"{name}.log").open("ab") as sink:
            self.running[name] = subprocess.Popen(
                [str(Path(sys.executable).parent / "nscl"), "worker"],
                env=self.env,
                stdout=sink,
                stderr=subprocess.STDOUT,
            )

    def stop(self, name: str) -> None:
        """Stop as an operator's restart does: SIGTERM, and the worker drains."""
        process = self.running.pop(name)
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def stop_all(self) -> None:
        for name in list(self.running):
            self.stop(name)

    def check_alive(self) -> None:
        for name, process in self.running.items():
            assert process.poll() is None, (self.logs / f"{name}.log").read_text()


async def _settled(
    engine: AsyncEngine, workers: WorkerProcesses, inbox: Inbox, obligations: Obligations, want: int
) -> None:
    """Wait until ``want`` reminders reached the inbox and no reminder job is left."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        workers.check_alive()
        async with engine.connect() as conn:
            left = (
                await conn.execute(
                    text(
                        "SELECT count(*) FROM job WHERE name LIKE 'reminders.%' "
                        "AND status IN ('pending', 'running')"
                    )
                )
            ).scalar_one()
        if not left and len(_received(inbox, obligations)) >= want:
            # A moment more, so that a duplicate on its way would arrive too.
            await asyncio.sleep(1.0)
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"reminders did not settle: {_received(inbox, obligations)}")


class TestRemindersAcrossWorkerProcesses:
    async def test_two_processes_and_a_restart_remind_each_unit_once(
        self,
        smtp: Inbox,
        own_queue: Resources,
        obligations: Obligations,
        owner_engine: AsyncEngine,
        tmp_path: Path,
    ) -> None:
        workers = WorkerProcesses(own_queue.settings, tmp_path)
        try:
            workers.start("first")
            workers.start("second")
            one_day_before = obligations.due - timedelta(days=1)
            # The daily job twice at once, as two schedulers racing would enqueue it.
            await _send(own_queue, one_day_before)
            await _send(own_queue, one_day_before)
            expected = sorted(
                (mail, "before_1")
                for key in obligations.silent
                for mail in obligations.contacts[key]
            )
            await _settled(owner_engine, workers, smtp, obligations, len(expected))
            assert _received(smtp, obligations) == expected

            # One process is restarted; the day's job runs again: nothing is sent twice.
            workers.stop("first")
            workers.start("first")
            await _send(own_queue, one_day_before)
            await _settled(owner_engine, workers, smtp, obligations, len(expected))
            assert _received(smtp, obligations) == expected

            # The missed reminder the day after, once, whichever process takes it.
            await _send(own_queue, obligations.due + timedelta(days=1))
            await _send(own_queue, obligations.due + timedelta(days=1))
            missed = sorted(
                (mail, "missed") for key in obligations.silent for mail in obligations.contacts[key]
            )
            await _settled(owner_engine, workers, smtp, obligations, len(expected + missed))
            assert _received(smtp, obligations) == sorted(expected + missed)
        finally:
            workers.stop_all()


class TestContactsOverTheApi:
    async def test_admins_set_and_see_contacts_others_do_not_see_them(
        self, client: httpx.AsyncClient, keys: KeyRing
    ) -> None:
        # The client's changes stay in the test's transaction, rolled back at its end.
        unit = "bk-dost"
        answer = await client.patch(
            f"/v1/org-units/{unit}",
            json={
                "contacts": [
                    {"name": "Nguyễn Văn An", "email": "An.NV@BacKan.gov.vn", "role": "Chuyên viên"}
                ]
            },
        )
        assert answer.status_code == 200, answer.text
        assert answer.json()["contacts"] == [
            {"name": "Nguyễn Văn An", "email": "an.nv@backan.gov.vn", "role": "Chuyên viên"}
        ]
        viewer = {"Authorization": f"Bearer {mint_token(keys, 'test-viewer')}"}
        seen = await client.get(f"/v1/org-units/{unit}", headers=viewer)
        assert seen.status_code == 200
        assert seen.json()["contacts"] is None
        bad = await client.patch(
            f"/v1/org-units/{unit}", json={"contacts": [{"name": "X", "email": "not-an-address"}]}
        )
        assert bad.status_code == 422
