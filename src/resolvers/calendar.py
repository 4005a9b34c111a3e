"""The users' calendar, Asia/Shanghai: quota days, ages and birthdays all count its dates.

Pass it the one clock's `now` (`services.clock()`), never the wall clock."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

SHANGHAI = ZoneInfo("Asia/Shanghai")


def local_day(now: datetime) -> date:
    return now.astimezone(SHANGHAI).date()


def next_local_midnight(now: datetime) -> datetime:
    """The next midnight in Asia/Shanghai, in UTC like every time the API returns."""
    return datetime.combine(local_day(now) + timedelta(days=1), time(0), SHANGHAI).astimezone(UTC)
