"""Cron lines as admins write them: standard weekdays, UTC, "off", and clear refusals."""

from __future__ import annotations

from datetime import datetime

import pytest

from jobs.cron import check_cron, cron_trigger, first_missed, is_off, next_fire


def test_sunday_is_zero_and_seven_as_in_crontab():
    # given 1 January 2024, a Monday
    monday = datetime(2024, 1, 1, 12, 0)
    # when the weekly schedule names day 0 or 7
    # then both fire on Sunday 7 January (APScheduler alone would read 0 as Monday)
    assert next_fire("0 3 * * 0", monday) == datetime(2024, 1, 7, 3, 0)
    assert next_fire("0 3 * * 7", monday) == datetime(2024, 1, 7, 3, 0)
    assert next_fire("0 3 * * sun", monday) == datetime(2024, 1, 7, 3, 0)


def test_weekday_ranges_lists_and_steps_keep_their_crontab_meaning():
    friday = datetime(2024, 1, 5, 12, 0)
    assert next_fire("0 9 * * 1-5", friday) == datetime(2024, 1, 8, 9, 0)  # next Monday
    assert next_fire("0 9 * * 5-7", friday) == datetime(2024, 1, 6, 9, 0)  # Saturday
    assert next_fire("0 9 * * */3", friday) == datetime(2024, 1, 6, 9, 0)  # Sun, Wed, Sat
    assert str(cron_trigger("0 9 * * 1,3").fields[4]) == "mon,wed"


def test_next_fire_is_strictly_after_the_given_time():
    at_slot = datetime(2024, 1, 1, 0, 5)
    assert next_fire("*/5 * * * *", at_slot) == datetime(2024, 1, 1, 0, 10)


@pytest.mark.parametrize("text", ["off", "OFF", " never ", "disabled", "none"])
def test_off_disables_a_schedule(text):
    assert check_cron(text) == "off"
    assert is_off(check_cron(text))
    assert next_fire(check_cron(text), datetime(2024, 1, 1)) is None


def test_a_valid_line_is_normalised():
    assert check_cron("  */5   *  * * * ") == "*/5 * * * *"


@pytest.mark.parametrize(
    ("line", "hint"),
    [
        ("* * *", "5 fields"),
        ("61 * * * *", "61"),
        ("* 25 * * *", "25"),
        ("* * * * 8", "0-7"),
        ("* * * * 5-1", "backwards"),
        ("every hour", "5 fields"),
        ("", "5 fields"),
    ],
)
def test_bad_lines_are_refused_with_the_reason(line, hint):
    with pytest.raises(ValueError, match="not a valid cron expression") as caught:
        check_cron(line)
    assert hint in str(caught.value)


def test_first_missed_slot_after_downtime():
    last_run = datetime(2024, 1, 1, 10, 0)
    # given the service stopped right after a run and came back a week later
    back = datetime(2024, 1, 8, 10, 2)
    # then the first missed slot is reported once (the caller runs the job once, not 2016 times)
    assert first_missed("*/5 * * * *", last_run, back) == datetime(2024, 1, 1, 10, 5)
    # and nothing is missed when the next slot is still ahead
    assert first_missed("*/5 * * * *", last_run, datetime(2024, 1, 1, 10, 4)) is None
    assert first_missed("off", last_run, back) is None
