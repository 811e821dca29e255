"""Cron expressions as people write them, turned into APScheduler triggers.

APScheduler 3 reads the day-of-week field with 0 = Monday, while every crontab (and every
admin) means 0 = Sunday.  A schedule "0 3 * * 0" would silently run on Mondays, so the
weekday field is translated to names before APScheduler sees it.  All schedules are in UTC
because every timestamp in storage is naive UTC; mixing zones would break the misfire check.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from apscheduler.triggers.cron import CronTrigger

OFF = ("off", "never", "none", "disabled")
_DAY_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_DAY_NUMBERS = {name: i for i, name in enumerate(_DAY_NAMES)}


def is_off(expr: str) -> bool:
    return expr.strip().lower() in OFF


def _day(token: str) -> int:
    token = token.strip().lower()
    if token in _DAY_NUMBERS:
        return _DAY_NUMBERS[token]
    if not token.isdigit() or not 0 <= int(token) <= 7:
        raise ValueError(f"day of week {token!r} must be 0-7 (0 or 7 = Sunday) or sun..sat")
    return int(token) % 7


def _weekdays(field: str) -> str:
    """Standard crontab day-of-week (lists, ranges, steps, names) to APScheduler day names."""
    if field in ("*", "?"):
        return "*"
    days: set[int] = set()
    for part in field.split(","):
        base, _, step_text = part.partition("/")
        step = 1
        if step_text:
            if not step_text.isdigit() or int(step_text) < 1:
                raise ValueError(f"day-of-week step {step_text!r} must be a whole number >= 1")
            step = int(step_text)
        if base == "*":
            first, last = 0, 6
        elif "-" in base:
            lo, _, hi = base.partition("-")
            # 7 may close a range ("1-7" = Monday to Sunday), so it is kept as 7 here.
            first, last = _day(lo), 7 if hi.strip() == "7" else _day(hi)
            if last < first:
                raise ValueError(f"day-of-week range {base!r} runs backwards")
        else:
            first = _day(base)
            last = 6 if step_text else first
        days.update(day % 7 for day in range(first, last + 1, step))
    return ",".join(_DAY_NAMES[day] for day in sorted(days))


def cron_trigger(expr: str) -> CronTrigger:
    """An APScheduler trigger (UTC) for a 5-field crontab line; ValueError when it is not one."""
    values = expr.split()
    if len(values) != 5:
        raise ValueError(f"a cron expression has 5 fields (minute hour day month weekday), got {len(values)}")
    minute, hour, day, month, weekday = values
    return CronTrigger(minute=minute, hour=hour, day=day, month=month, day_of_week=_weekdays(weekday),
                       timezone=UTC)


def check_cron(expr: str) -> str:
    """The settings validator: the expression, normalised, or a ValueError saying what is wrong."""
    text = " ".join(str(expr).split())
    if is_off(text):
        return "off"
    try:
        cron_trigger(text)
    except ValueError as error:
        raise ValueError(f"not a valid cron expression ({error}); e.g. '*/5 * * * *', or 'off'") from None
    return text


def next_fire(expr: str, after: datetime) -> datetime | None:
    """The first fire time strictly after ``after`` (naive UTC in, naive UTC out); None when off."""
    if is_off(expr):
        return None
    trigger = cron_trigger(expr)
    start = after.replace(tzinfo=UTC)
    fire = trigger.get_next_fire_time(None, start)
    if fire is not None and fire <= start:  # a fire exactly at ``after`` is not "after" it
        fire = trigger.get_next_fire_time(None, start + timedelta(microseconds=1))
    return None if fire is None else fire.astimezone(UTC).replace(tzinfo=None)


def first_missed(expr: str, last: datetime, now: datetime) -> datetime | None:
    """The first schedule slot in (last, now] that nobody ran, or None.

    The caller runs the job once for it, however many slots were missed: a service that was
    down for a week catches up with one run, not one per missed slot.
    """
    fire = next_fire(expr, last)
    return None if fire is None or fire > now else fire
