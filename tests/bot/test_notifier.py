"""Alert broadcasts: subscribers and admins get them; a user who blocked the bot is skipped
and unsubscribed, and the broadcast goes on."""

from __future__ import annotations

from pathlib import Path

from bot.emulator import Emulator
from bot.handlers.subscribe import active_chats, subscribe_chat
from bot.notifier import TelegramNotifier, alert_text
from jobs.notifier import AlertMessage, Notifier
from tests.bot.churnguard_fixtures import ADMIN, SECOND_ADMIN, VIEWER, live_bot, make_settings  # noqa: F401
from tests.bot.emulator_fixtures import tiny_png

BLOCKER, FAN = 444, 555


def drift_alert(**changes: object) -> AlertMessage:
    values: dict[str, object] = {
        "kind": "drift", "severity": "warning", "title": "Data drift in batch #7",
        "text": "4 of 19 features drifted (PSI above 0.25).", "figures": {"share_drifted": 0.2105, "psi_max": 0.41},
    }
    values.update(changes)
    return AlertMessage(**values)  # type: ignore[arg-type]


def test_the_alert_text_carries_severity_kind_title_and_sentences_but_not_the_raw_figures() -> None:
    nested = {"drifted_features": {"tenure": {"psi": 3.784, "p_value": 3.24e-150}}, "share_drifted": 0.2105}

    text = alert_text(drift_alert(figures=nested))

    assert text == "⚠️ WARNING · drift: Data drift in batch #7\n4 of 19 features drifted (PSI above 0.25)."
    assert "{" not in text and "share_drifted" not in text  # figures are for the chart and --json


def test_an_alert_is_sent_in_its_chat_wording() -> None:
    alert = drift_alert(kind="ingest_rejected", text="x.csv was not stored: ... (churnguard ingest FILE)",
                        chat_text="x.csv was not stored: ... an admin must fix the file")

    assert alert_text(alert).endswith("x.csv was not stored: ... an admin must fix the file")


def test_a_blocked_subscriber_is_deactivated_and_everyone_else_still_gets_the_alert(
        home: Path, emulator: Emulator, live_bot) -> None:  # noqa: F811
    bot = live_bot(make_settings(home, emulator))
    for user in (BLOCKER, FAN):
        emulator.add_user(user)
    for chat in (VIEWER, BLOCKER, FAN):
        subscribe_chat(bot.db, chat, chat)
    emulator.block(BLOCKER)
    notifier = bot.services.notifier
    assert isinstance(notifier, TelegramNotifier) and isinstance(notifier, Notifier)

    delivered = bot.thread.run(notifier.notify(drift_alert(chart_png=tiny_png())))

    assert delivered == 4  # two admins, the viewer and the fan
    for chat in (ADMIN, SECOND_ADMIN, VIEWER, FAN):
        photo = bot.bot_messages(chat)[-1]
        assert photo.kind == "photo" and photo.photo == tiny_png()
        assert photo.caption is not None and photo.caption.startswith("⚠️ WARNING · drift: Data drift in batch #7")
    assert bot.bot_messages(BLOCKER) == []
    assert active_chats(bot.db) == [VIEWER, FAN]


def test_operational_alerts_go_to_admins_only(home: Path, emulator: Emulator, live_bot) -> None:  # noqa: F811
    bot = live_bot(make_settings(home, emulator))
    subscribe_chat(bot.db, VIEWER, VIEWER)
    alert = drift_alert(kind="job_failed", severity="critical", title="Job retrain failed", text="MemoryError",
                        figures={}, audience="admins")

    delivered = bot.thread.run(bot.services.notifier.notify(alert))

    assert delivered == 2
    assert bot.bot_messages(VIEWER) == []
    assert bot.bot_messages(ADMIN)[-1].text == "🚨 CRITICAL · job_failed: Job retrain failed\nMemoryError"
