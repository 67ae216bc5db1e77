"""Deadline reminders: units that have not submitted hear of their due dates, once.

The daily ``reminders.send`` (08:00 in Vietnam) picks, for every obligation not yet
submitted, the reminder of the day: ``before_<N>`` from N days before the due date (the
regime's ``reminder_days_before``, 14, 3 and 1 by default; the nearest one whose day has
come) and ``missed`` after the due date. For each contact of the unit it inserts a
``reminder_sent`` row (unique per obligation × kind × e-mail) and, in the same
transaction, the ``reminders.deliver`` job that mails it. A second run, concurrent on
another worker or after a restart, finds the rows and queues nothing: the unique index
waits for the first run's transaction and then refuses the duplicate.

Delivery is at least once from there: the job marks the row sent in the transaction that
ends it, so a worker dying between the SMTP server's acceptance and that commit sends the
mail again on the retry (same Message-ID, so a mail system or a reader can tell). The
opposite choice (mark, commit, then send) would lose reminders to every crash in that
window; a repeated reminder costs less than a missed deadline.

The webhook event of a reminder (``deadline.approaching`` / ``deadline.missed``) is an
audit event of the obligation, recorded once per obligation × kind through a
``reminder_sent`` row with an empty e-mail, so events too are emitted once.
"""

from __future__ import annotations

import asyncio
import smtplib
import ssl
import uuid
from dataclasses import dataclass
from datetime import date, timedelta
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select, text
from sqlalchemy.dialects.postgresql import insert

from nscl_domain.audit.repository import AuditRepository
from nscl_domain.identity import SYSTEM
from nscl_domain.jobs import JobName, PermanentJobError
from nscl_domain.jobs.cron import TIME_ZONE
from nscl_domain.jobs.registry import JobContext
from nscl_domain.jobs.repository import JobRepository
from nscl_domain.reports.models import ReminderSent
from nscl_domain.repositories import SessionRepository
from nscl_domain.settings import Settings

MISSED = "missed"
# The day after the due date, or the first run within a week of it (a worker down on the
# day still reminds; a worker down for a month does not send stale news).
MISSED_WINDOW_DAYS = 7
EVENT_CHANNEL = ""  # the reminder_sent row that stands for the webhook event
DELIVERY_ATTEMPTS = 8


class SendRemindersArgs(BaseModel):
    """Arguments of ``reminders.send``."""

    model_config = ConfigDict(extra="forbid")

    on: date | None = Field(
        default=None,
        description="The day (in Vietnam) to remind for; default: today. Reminders already "
        "sent for an obligation and kind are not sent again.",
    )


class DeliverReminderArgs(BaseModel):
    """Arguments of ``reminders.deliver``."""

    model_config = ConfigDict(extra="forbid")

    reminder_id: uuid.UUID


def reminder_kind(due: date, today: date, days_before: list[int]) -> str | None:
    """The reminder an obligation due on ``due`` gets on ``today``, if any."""
    if today > due:
        return MISSED if (today - due).days <= MISSED_WINDOW_DAYS else None
    left = (due - today).days
    reached = [n for n in days_before if n >= left]
    return f"before_{min(reached)}" if reached else None


@dataclass(frozen=True)
class Pending:
    obligation_id: uuid.UUID
    due_date: date
    year: int
    unit_key: str
    unit_name: str
    contacts: list[dict[str, Any]]
    days_before: list[int]
    title: str
    regime_key: str | None
    programme_key: str


_PENDING_SQL = text(
    """
    SELECT o.id, o.due_date, o.year, u.key, u.name_vi, u.contacts,
           COALESCE(g.reminder_days_before, ARRAY[14, 3, 1]) AS days,
           COALESCE(g.name_vi, q.title_vi) AS title, g.key AS regime_key, p.key AS programme_key
    FROM reporting_obligation o
    JOIN org_unit u ON u.id = o.unit_id
    JOIN programme p ON p.id = o.programme_id
    LEFT JOIN reporting_regime g ON g.id = o.regime_id
    LEFT JOIN reporting_request q ON q.id = o.request_id
    WHERE o.due_date BETWEEN :earliest AND :latest
      AND NOT EXISTS (
        SELECT 1 FROM report r WHERE r.obligation_id = o.id AND r.latest_version_no > 0
      )
    ORDER BY o.due_date, u.key
    """
)


class ReminderRepository(SessionRepository):
    async def pending(self, today: date) -> list[Pending]:
        rows = await self.session.execute(
            _PENDING_SQL,
            {
                "earliest": today - timedelta(days=MISSED_WINDOW_DAYS),
                "latest": today + timedelta(days=366),
            },
        )
        return [Pending(*row) for row in rows]

    async def claim(
        self, obligation_id: uuid.UUID, kind: str, email: str, name: str
    ) -> uuid.UUID | None:
        """Insert the reminder's row; None when another run has (or is writing) it."""
        stmt = (
            insert(ReminderSent)
            .values(
                id=uuid.uuid4(),
                obligation_id=obligation_id,
                kind=kind,
                email=email,
                contact_name=name,
            )
            .on_conflict_do_nothing(index_elements=["obligation_id", "kind", "email"])
            .returning(ReminderSent.id)
        )
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def set_job(self, reminder_id: uuid.UUID, job_id: uuid.UUID) -> None:
        await self.session.execute(
            text("UPDATE reminder_sent SET job_id = :job WHERE id = :id"),
            {"job": job_id, "id": reminder_id},
        )

    async def for_delivery(self, reminder_id: uuid.UUID) -> tuple[ReminderSent, Pending] | None:
        reminder = (
            await self.session.scalars(
                select(ReminderSent).where(ReminderSent.id == reminder_id).with_for_update(),
                execution_options={"populate_existing": True},
            )
        ).one_or_none()
        if reminder is None:
            return None
        row = (
            await self.session.execute(
                text(
                    """
                    SELECT o.id, o.due_date, o.year, u.key, u.name_vi, u.contacts,
                           COALESCE(g.reminder_days_before, ARRAY[14, 3, 1]),
                           COALESCE(g.name_vi, q.title_vi), g.key, p.key
                    FROM reporting_obligation o
                    JOIN org_unit u ON u.id = o.unit_id
                    JOIN programme p ON p.id = o.programme_id
                    LEFT JOIN reporting_regime g ON g.id = o.regime_id
                    LEFT JOIN reporting_request q ON q.id = o.request_id
                    WHERE o.id = :id
                    """
                ),
                {"id": reminder.obligation_id},
            )
        ).one()
        return reminder, Pending(*row)


def _today(ctx: JobContext) -> date:
    return ctx.now.astimezone(TIME_ZONE).date()


def _contacts(pending: Pending) -> dict[str, str]:
    """The unit's contacts by e-mail (lower-cased, first name kept)."""
    found: dict[str, str] = {}
    for contact in pending.contacts or []:
        email = str(contact.get("email", "")).strip().lower()
        if email and email not in found:
            found[email] = str(contact.get("name", ""))
    return found


async def send(ctx: JobContext, args: SendRemindersArgs) -> dict[str, Any]:
    """Queue the day's reminders of every obligation not submitted, each once."""
    today = args.on or _today(ctx)
    mail = Settings().smtp_host is not None
    reminders = ctx.get(ReminderRepository)
    jobs = ctx.get(JobRepository)
    queued = events = 0
    for pending in await reminders.pending(today):
        kind = reminder_kind(pending.due_date, today, list(pending.days_before))
        if kind is None:
            continue
        if await reminders.claim(pending.obligation_id, kind, EVENT_CHANNEL, "event"):
            deadline_event(ctx, pending, kind, today)
            events += 1
        if not mail:
            continue  # rows are written only for mail that can go: configuring SMTP sends them
        for email, name in _contacts(pending).items():
            reminder_id = await reminders.claim(pending.obligation_id, kind, email, name)
            if reminder_id is None:
                continue
            job = await jobs.add(
                name=JobName.DELIVER_REMINDER,
                args={"reminder_id": str(reminder_id)},
                dedup_key=None,
                not_before=None,
                max_attempts=DELIVERY_ATTEMPTS,
                requested_by=SYSTEM.client_id,
            )
            await reminders.set_job(reminder_id, job.id)
            queued += 1
    return {"on": today.isoformat(), "emails_queued": queued, "events": events}


def deadline_event(ctx: JobContext, pending: Pending, kind: str, today: date) -> None:
    """The one call that tells other systems (webhooks map these audit actions to
    ``deadline.approaching`` and ``deadline.missed``)."""
    action = "obligation.deadline_missed" if kind == MISSED else "obligation.deadline_approaching"
    ctx.get(AuditRepository).record(
        SYSTEM,
        action,
        "reporting_obligation",
        pending.obligation_id,
        after={
            "due_date": pending.due_date.isoformat(),
            "days": (pending.due_date - today).days,
            "regime": pending.regime_key,
            "unit": pending.unit_key,
            "year": pending.year,
        },
    )


def _vn_date(day: date) -> str:
    return day.strftime("%d/%m/%Y")


def compose(
    settings: Settings, reminder: ReminderSent, pending: Pending, today: date
) -> EmailMessage:
    """The reminder in Vietnamese: the obligation, its due date and a link."""
    title = f"{pending.title} năm {pending.year}"
    due = _vn_date(pending.due_date)
    link = (
        f"{settings.public_base_url.rstrip('/')}/v1/programmes/{pending.programme_key}"
        f"/obligations?unit={pending.unit_key}&year={pending.year}"
    )
    if reminder.kind == MISSED:
        subject = f"[NSCL] Quá hạn nộp {title} (hạn {due})"
        lead = (
            f"{pending.unit_name} chưa nộp {title}. Hạn nộp là ngày {due}, "
            "nay đã quá hạn. Đề nghị đơn vị hoàn thành và nộp báo cáo sớm nhất."
        )
    else:
        left = (pending.due_date - today).days
        when = "hôm nay" if left <= 0 else f"còn {left} ngày"
        subject = f"[NSCL] Nhắc hạn nộp {title}: hạn {due}"
        lead = f"{pending.unit_name} chưa nộp {title}. Hạn nộp là ngày {due} ({when})."
    message = EmailMessage()
    message["Subject"] = subject
    message["From"] = settings.smtp_from
    message["To"] = reminder.email
    message["Date"] = format_datetime(reminder.created_at)
    # The same id on every attempt: a mail resent after a crash is recognisably the same.
    domain = settings.smtp_from.rpartition("@")[2] or "nscl"
    message["Message-ID"] = f"<reminder-{reminder.id}@{domain}>"
    message["X-NSCL-Obligation"] = str(pending.obligation_id)
    message["X-NSCL-Reminder"] = reminder.kind
    message.set_content(
        f"Kính gửi {reminder.contact_name},\n\n{lead}\n\n"
        f"Xem nghĩa vụ báo cáo và nộp báo cáo tại:\n{link}\n\n"
        "Thư này được gửi tự động từ hệ thống theo dõi Chương trình NSCL; "
        "vui lòng không trả lời thư này.\n"
    )
    return message


def _send_sync(settings: Settings, message: EmailMessage) -> None:
    assert settings.smtp_host is not None
    with smtplib.SMTP(
        settings.smtp_host, settings.smtp_port, timeout=settings.smtp_timeout_seconds
    ) as smtp:
        if settings.smtp_starttls:
            smtp.starttls(context=ssl.create_default_context())
        if settings.smtp_username:
            password = settings.smtp_password.get_secret_value() if settings.smtp_password else ""
            smtp.login(settings.smtp_username, password)
        smtp.send_message(message)


async def deliver(ctx: JobContext, args: DeliverReminderArgs) -> dict[str, Any]:
    """Mail one reminder and mark it sent in the job's transaction."""
    settings = Settings()
    if settings.smtp_host is None:
        raise PermanentJobError("NSCL_SMTP_HOST is not set", code="smtp_not_configured")
    found = await ctx.get(ReminderRepository).for_delivery(args.reminder_id)
    if found is None:
        raise PermanentJobError("the reminder no longer exists", code="reminder_not_found")
    reminder, pending = found
    if reminder.sent_at is not None:
        return {"skipped": "already sent", "to": reminder.email}
    message = compose(settings, reminder, pending, _today(ctx))
    try:
        await asyncio.to_thread(_send_sync, settings, message)
    except smtplib.SMTPRecipientsRefused as exc:
        raise PermanentJobError(f"the SMTP server refused {reminder.email}") from exc
    reminder.sent_at = ctx.now
    return {"to": reminder.email, "kind": reminder.kind, "message_id": message["Message-ID"]}
