"""Access control: roles from settings, one polite refusal for strangers, audited refusals
and admin actions — checked on the storage side (both engines) and end to end through the
emulator."""

from __future__ import annotations

from pathlib import Path

from bot.access import (
    STRANGER_ACTION,
    STRANGER_REPLIED,
    STRANGER_SILENT,
    AccessList,
    Role,
    audit_entries,
    record_audit,
    stranger_was_told,
)
from bot.app import all_commands
from bot.emulator import Emulator
from bot.guard import PRIVATE_ONLY, PRIVATE_UPLOAD, STRANGER_TEXT
from storage.db import Database
from tests.bot.churnguard_fixtures import ADMIN, STRANGER, VIEWER, live_bot, make_settings  # noqa: F401

ADMIN_COMMANDS = [command.name for command in all_commands() if command.role == Role.ADMIN]


def test_roles_come_from_the_two_lists_and_admin_wins_over_viewer() -> None:
    access = AccessList.from_ids(admins=[1, 2], viewers=[2, 3])

    assert access.role(1) == Role.ADMIN
    assert access.role(2) == Role.ADMIN
    assert access.role(3) == Role.VIEWER
    assert access.role(4) == Role.STRANGER
    assert access.role(None) == Role.STRANGER
    assert "Admins (2): 1, 2" in access.describe()
    assert "Viewers (1): 3" in access.describe()


def test_audit_rows_record_who_what_and_result_and_remember_told_strangers(db: Database) -> None:
    record_audit(db, actor=7, action=STRANGER_ACTION, detail="/top", result=STRANGER_SILENT)
    assert not stranger_was_told(db, 7)

    record_audit(db, actor=7, action=STRANGER_ACTION, detail="/start", result=STRANGER_REPLIED)
    record_audit(db, actor=ADMIN, action="promote", detail="/promote v2", result="promoted v2")

    assert stranger_was_told(db, 7)
    assert not stranger_was_told(db, 8)
    rows = audit_entries(db, actor=ADMIN)
    assert [(row.action, row.detail, row.result) for row in rows] == [("promote", "/promote v2", "promoted v2")]
    assert rows[0].at is not None


def test_a_stranger_gets_exactly_one_polite_refusal_for_everything_even_after_a_restart(
        home: Path, emulator: Emulator, live_bot) -> None:  # noqa: F811
    settings = make_settings(home, emulator)
    attempts = [f"/{command.name}" for command in all_commands()] + ["/score 7590-VHVEG", "/top 5", "hello"]
    bot = live_bot(settings)

    for text in attempts:
        emulator.inject_message(STRANGER, text)
    emulator.inject_document(STRANGER, "clients.csv", b"customerID,Churn\n1,Yes\n")
    bot.wait_audits(STRANGER, len(attempts) + 1, action=STRANGER_ACTION)

    messages = bot.bot_messages(STRANGER)
    assert [message.text for message in messages] == [STRANGER_TEXT.format(user_id=STRANGER)]
    assert [output.kind for output in emulator.outputs(STRANGER)] == ["message"]  # no typing, no answers
    assert emulator.calls("getFile") == []  # the document was never fetched
    results = [row.result for row in audit_entries(bot.db, actor=STRANGER)]
    assert results.count(STRANGER_REPLIED) == 1
    assert results.count(STRANGER_SILENT) == len(attempts)

    bot.__exit__(None, None, None)
    restarted = live_bot(settings)
    emulator.inject_message(STRANGER, "/start")
    restarted.wait_audits(STRANGER, len(attempts) + 2, action=STRANGER_ACTION)
    assert len(restarted.bot_messages(STRANGER)) == 1


def test_a_viewer_is_refused_every_admin_command_and_upload_and_each_refusal_is_audited(
        home: Path, emulator: Emulator, live_bot) -> None:  # noqa: F811
    bot = live_bot(make_settings(home, emulator))

    for name in ADMIN_COMMANDS:
        assert bot.ask(VIEWER, f"/{name}") == f"Sorry, /{name} is for admins only. Your attempt has been recorded."
    update = emulator.inject_document(VIEWER, "clients.csv", b"customerID,Churn\n1,Yes\n")
    reply = emulator.wait_for_replies(update)[0]

    assert reply.text == "Sorry, only admins can upload data. Your attempt has been recorded."
    assert emulator.calls("getFile") == []
    rows = audit_entries(bot.db, actor=VIEWER)
    assert [row.action for row in rows] == [*ADMIN_COMMANDS, "upload"]
    assert {row.result for row in rows} == {"refused: viewer"}
    assert bot.db.row_counts()["batch"] == 0


def test_viewers_get_their_commands_and_admin_actions_are_audited_with_their_result(
        home: Path, emulator: Emulator, live_bot) -> None:  # noqa: F811
    bot = live_bot(make_settings(home, emulator))

    assert "Subscribed" in bot.ask(VIEWER, "/subscribe")
    assert "Admins (2): 111, 112" in bot.ask(ADMIN, "/users")
    bot.wait_audits(ADMIN, 1)  # the row is written just after the reply
    assert "No model version 'v9'" in bot.ask(ADMIN, "/promote v9")
    bot.wait_audits(ADMIN, 2)

    assert audit_entries(bot.db, actor=VIEWER) == []  # viewers' reads are not admin actions
    rows = [(row.action, row.detail, row.result) for row in audit_entries(bot.db, actor=ADMIN)]
    assert rows[0] == ("users", "/users", "listed")
    assert rows[1][0] == "promote" and rows[1][2] == "refused" and "v9" in rows[1][1]


def test_in_a_group_client_data_and_admin_tools_stay_private_but_alerts_can_be_subscribed(
        home: Path, emulator: Emulator, live_bot) -> None:  # noqa: F811
    bot = live_bot(make_settings(home, emulator))
    group = -100200300

    def ask_in_group(user: int, text: str) -> str:
        update = emulator.inject_message(user, text, chat_id=group)
        return emulator.wait_for_replies(update)[0].text or ""

    assert ask_in_group(ADMIN, "/score 7590-VHVEG") == PRIVATE_ONLY.format(name="score")
    assert ask_in_group(ADMIN, "/users") == PRIVATE_ONLY.format(name="users")
    assert ask_in_group(VIEWER, "/subscribe").startswith("Subscribed: alerts")
    update = emulator.inject_document(ADMIN, "clients.csv", b"customerID,Churn\n1,Yes\n", chat_id=group)
    assert emulator.wait_for_replies(update)[0].text == PRIVATE_UPLOAD
    assert emulator.calls("getFile") == []
    # nothing ran, and each refusal is on record (a request for client data in a group is worth knowing about)
    rows = [(row.action, row.result) for row in audit_entries(bot.db, actor=ADMIN)]
    assert rows == [("score", "refused: not a private chat"), ("users", "refused: not a private chat"),
                    ("upload", "refused: not a private chat")]
