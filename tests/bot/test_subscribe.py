"""/subscribe and /unsubscribe: stored in the database, so a restart keeps them."""

from __future__ import annotations

from pathlib import Path

from bot.emulator import Emulator
from bot.handlers.subscribe import active_chats, subscribe_chat, unsubscribe_chat
from storage.db import Database
from tests.bot.churnguard_fixtures import ADMIN, VIEWER, live_bot, make_settings  # noqa: F401


def test_subscriptions_are_stored_and_reactivated_not_duplicated(db: Database) -> None:
    assert subscribe_chat(db, 10, 10)
    assert not subscribe_chat(db, 10, 10)
    assert subscribe_chat(db, -20, 5)  # a group chat, subscribed by user 5
    assert active_chats(db) == [-20, 10]

    assert unsubscribe_chat(db, 10)
    assert not unsubscribe_chat(db, 10)
    assert not unsubscribe_chat(db, 99)
    assert active_chats(db) == [-20]

    assert subscribe_chat(db, 10, 10)
    assert active_chats(db) == [-20, 10]
    assert db.row_counts()["subscriber"] == 2


def test_a_restart_keeps_the_subscriptions(home: Path, emulator: Emulator, live_bot) -> None:  # noqa: F811
    settings = make_settings(home, emulator)
    first = live_bot(settings)
    assert first.ask(VIEWER, "/subscribe").startswith("Subscribed: alerts")
    assert first.ask(ADMIN, "/subscribe").startswith("Subscribed: alerts")
    assert first.ask(ADMIN, "/unsubscribe").startswith("Unsubscribed")
    first.__exit__(None, None, None)

    second = live_bot(settings)

    assert active_chats(second.db) == [VIEWER]
    assert second.ask(VIEWER, "/subscribe") == "This chat is already subscribed to alerts. /unsubscribe stops them."
    assert second.ask(ADMIN, "/unsubscribe") == "This chat is not subscribed to alerts. /subscribe turns them on."
