"""The one error handler: the user gets a plain apology (no traceback), admins the details."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import text

from bot.emulator import Emulator
from bot.handlers.errors import GENERIC_TEXT
from tests.bot.churnguard_fixtures import ADMIN, SECOND_ADMIN, VIEWER, live_bot, make_settings  # noqa: F401


def test_a_crash_in_a_handler_gives_the_user_a_generic_message_and_the_admins_the_error(
        home: Path, emulator: Emulator, live_bot) -> None:  # noqa: F811
    bot = live_bot(make_settings(home, emulator))
    with bot.db.engine.begin() as connection:  # a broken store: the alerts table is gone
        connection.execute(text("DROP TABLE alert"))

    reply = bot.ask(VIEWER, "/alerts")
    notices = [emulator.wait_for_messages(admin)[0].text or "" for admin in (ADMIN, SECOND_ADMIN)]

    assert reply == GENERIC_TEXT
    assert "Traceback" not in reply and "alert" not in reply
    for notice in notices:
        assert notice.startswith(f"⚠️ ChurnGuard error while handling /alerts from user {VIEWER}:")
        assert "OperationalError" in notice and "no such table: alert" in notice
    assert "You are a viewer" in bot.ask(VIEWER, "/help")  # the bot carries on


def test_a_user_error_is_the_answer_and_bothers_no_admin(home: Path, emulator: Emulator, live_bot) -> None:  # noqa: F811
    bot = live_bot(make_settings(home, emulator))

    assert bot.ask(VIEWER, "/alerts many") == "'many' is not a whole number; try /alerts 10."
    assert bot.ask(VIEWER, "/alerts 3 4") == "Give at most one number, for example /alerts 10."
    assert bot.bot_messages(ADMIN) == [] and bot.bot_messages(SECOND_ADMIN) == []
