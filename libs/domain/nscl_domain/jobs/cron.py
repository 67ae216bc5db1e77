"""Cron expressions of schedules, read in the programme's time zone (Vietnam: UTC+7, no DST)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from croniter import croniter

TIME_ZONE_NAME = "Asia/Ho_Chi_Minh"
TIME_ZONE = ZoneInfo(TIME_ZONE_NAME)


def is_valid(expression: str) -> bool:
    """Five fields (minute hour day-of-month month day-of-week): a fire time is a minute."""
    return len(expression.split()) == 5 and bool(croniter.is_valid(expression))


def latest_at_or_before(expression: str, now: datetime) -> datetime:
    """The latest fire time not after ``now``, in UTC."""
    # croniter's previous time is strictly before its start: start just after ``now``'s
    # second, so a fire time equal to ``now`` counts.
    start = now.astimezone(TIME_ZONE).replace(microsecond=0) + timedelta(seconds=1)
    found: datetime = croniter(expression, start).get_prev(datetime)
    return found.astimezone(UTC)


def next_after(expression: str, after: datetime, count: int) -> list[datetime]:
    """The ``count`` fire times after ``after``, in the programme's time zone."""
    times = croniter(expression, after.astimezone(TIME_ZONE))
    return [times.get_next(datetime) for _ in range(count)]
