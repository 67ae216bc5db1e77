"""Jobs the reporting context runs: deadline reminders."""

from __future__ import annotations

from nscl_domain.jobs import JobName
from nscl_domain.jobs.registry import JobKind
from nscl_domain.reports import reminders

JOBS: tuple[JobKind, ...] = (
    JobKind(
        name=JobName.SEND_REMINDERS,
        args_model=reminders.SendRemindersArgs,
        handler=reminders.send,
        description=(
            "Remind the units that have not submitted of approaching and missed deadlines "
            "(daily), each reminder once."
        ),
        operator_may_schedule=True,
    ),
    JobKind(
        name=JobName.DELIVER_REMINDER,
        args_model=reminders.DeliverReminderArgs,
        handler=reminders.deliver,
        description="Mail one deadline reminder to one contact.",
    ),
)
