"""/start and /help, and the command menus published with setMyCommands per role."""

from __future__ import annotations

from pathlib import Path

from bot.access import Role, audit_entries
from bot.app import all_commands
from bot.emulator import Emulator
from bot.guard import UNKNOWN_BUTTON
from bot.handlers.start import help_text
from tests.bot.churnguard_fixtures import ADMIN, STRANGER, VIEWER, live_bot, make_settings  # noqa: F401

ADMIN_ONLY = {command.name for command in all_commands() if command.role == Role.ADMIN}
VIEWER_COMMANDS = [command.name for command in all_commands() if command.role == Role.VIEWER]


def test_help_lists_what_the_role_may_use() -> None:
    admin = help_text(Role.ADMIN, all_commands())
    viewer = help_text(Role.VIEWER, all_commands(), notes=["Sandbox: you are an admin."])

    assert "You are an admin." in admin and "/retrain — train a new model now (admin)" in admin
    assert "Send a CRM export as a .csv or .csv.gz file" in admin and "churnguard" not in admin
    assert "You are a viewer." in viewer and "/score <client id> — churn risk of one client" in viewer
    assert not any(f"/{name} " in viewer for name in ADMIN_ONLY)
    assert viewer.endswith("Sandbox: you are an admin.")


def test_start_answers_each_role_and_menus_are_scoped(home: Path, emulator: Emulator, live_bot) -> None:  # noqa: F811
    bot = live_bot(make_settings(home, emulator))

    assert "You are an admin." in bot.ask(ADMIN, "/start")
    assert "You are a viewer." in bot.ask(VIEWER, "/help")
    assert [c["command"] for c in emulator.commands("default")] == ["start"]
    assert [c["command"] for c in emulator.commands({"type": "chat", "chat_id": VIEWER})] == VIEWER_COMMANDS
    admin_menu = [c["command"] for c in emulator.commands({"type": "chat", "chat_id": ADMIN})]
    assert admin_menu == [command.name for command in all_commands()]
    assert emulator.commands({"type": "chat", "chat_id": STRANGER}) == []


def test_a_user_who_lost_access_gets_the_strangers_menu_back(home: Path, emulator: Emulator, live_bot) -> None:  # noqa: F811
    first = live_bot(make_settings(home, emulator))
    first.__exit__(None, None, None)

    live_bot(make_settings(home, emulator, viewer_ids=[]))

    assert [c["command"] for c in emulator.commands({"type": "chat", "chat_id": VIEWER})] == ["start"]


def test_an_unknown_or_forged_button_is_answered_not_left_spinning(home: Path, emulator: Emulator, live_bot) -> None:  # noqa: F811
    bot = live_bot(make_settings(home, emulator))
    message = bot.send(VIEWER, "/start")[0]

    press = emulator.inject_callback(VIEWER, message.message_id, "bogus:1", strict=False)

    answer = emulator.wait_for_answer(press)
    assert answer.text == UNKNOWN_BUTTON and answer.show_alert
    assert bot.bot_messages(VIEWER) == [message]  # nothing was sent into the chat
    bot.wait_audits(VIEWER, 1)
    assert [(row.action, row.result) for row in audit_entries(bot.db, actor=VIEWER)] == [
        ("button", "refused: unknown button")]
