"""A retrain nobody asked for in the chat (an upload's new labels, drift, recall) is news: its
promotion or rejection reaches subscribers and admins through the jobs' alert path, and
/model then names the real champion with its own figures."""

from __future__ import annotations

from pathlib import Path

from bot.emulator import Emulator
from tests.bot.churnguard_fixtures import (  # noqa: F401
    ADMIN,
    VIEWER,
    live_bot,
    make_settings,
    trained_home,
    trained_template,
)
from tests.bot.test_upload import finished_runs, new_churn_only_clients, upload


def test_a_background_promotion_is_announced_and_model_names_the_new_champion(
        trained_home: Path, emulator: Emulator, live_bot) -> None:  # noqa: F811
    # given a champion v1, a subscribed viewer, and a gate any sound challenger passes
    settings = make_settings(trained_home, emulator, retrain_on=["new_labels"], recall_target=0.5,
                             champion_tolerance=0.5)
    bot = live_bot(settings)
    assert bot.ask(VIEWER, "/subscribe").startswith("Subscribed")
    assert bot.services.registry.champion().version == "v1"
    # when an admin's upload brings new labels and the retrain after it promotes a challenger
    assert upload(bot, "april.csv", new_churn_only_clients(400)).shown_text.startswith("Stored batch #2")
    runs = finished_runs(bot, {"arrival", "drift", "performance", "retrain"}, timeout=300)
    retrain = next(run for run in runs if run.job == "retrain")
    assert retrain.outcome == "ok" and retrain.details["result"]["promoted"], retrain.details

    # then the viewer and the admins are told, in sentences, what changed and why
    for chat in (VIEWER, ADMIN):
        news = [m.shown_text for m in bot.emulator.wait_for(
            lambda chat=chat: [m for m in bot.bot_messages(chat) if "New champion model v2" in m.shown_text],
            timeout=30, what=f"the retrain news in chat {chat}")]
        assert len(news) == 1, news
        assert news[0].startswith("ℹ️ INFO · retrain: New champion model v2 (was v1)\n")
        assert "v2 passed the acceptance gate and now gives every score, replacing v1." in news[0]
        assert "because new labelled data arrived" in news[0] and "{" not in news[0]
    # and /model names v2, when it took over from v1, and does not pass v1's figures off as its own
    text = bot.send(VIEWER, "/model")[0].shown_text
    assert text.startswith("Champion model v2 (champion since ") and ", replacing v1; trained " in text
    assert "Current champion" not in text
    assert "\n  v1, the champion when this version was trained: recall " in text
