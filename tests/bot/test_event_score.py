"""/score and /top with a champion trained on event history: the same answer as the CLI,
with the event reasons in plain words, and the "Why?" chart labelled with them."""

from __future__ import annotations

from bot.emulator import Emulator
from model.scoring import SCORED
from tests.bot.churnguard_fixtures import VIEWER, live_bot, make_settings  # noqa: F401
from tests.model.event_store import trained_event_store

ACTIVE_CLIENT, GONE_CLIENT = "C00161", "C00004"  # active at the end of the sample; cancelled in May 2025


def test_given_an_event_champion_when_a_viewer_asks_then_reasons_are_plain_words(
        emulator: Emulator, live_bot) -> None:  # noqa: F811
    store = trained_event_store("sqlite")
    settings = make_settings(store.settings.home, emulator, database_url=store.db.url, training_source="events")
    bot = live_bot(settings)
    expected = store.scorer().score_client(ACTIVE_CLIENT)
    assert expected.status == SCORED

    answer = bot.send(VIEWER, f"/score {ACTIVE_CLIENT}")[0]

    assert answer.text == expected.to_text()
    reasons = [line[4:] for line in answer.text.splitlines() if line.startswith("  - ")]
    assert len(reasons) == 3
    assert all(" = " not in reason and reason.endswith(("risk",)) for reason in reasons)
    assert any(" in the last " in reason or " since the last " in reason or "client for" in reason
               for reason in reasons)
    assert "Features as of " in answer.text

    press = bot.press(VIEWER, answer, answer.buttons()[0].callback_data)
    chart = emulator.wait_for_replies(press)[0]
    assert chart.kind == "photo" and chart.photo is not None and chart.photo.startswith(b"\x89PNG")

    gone = bot.ask(VIEWER, f"/score {GONE_CLIENT}")
    assert "has already left (on 2025-05-03)" in gone and "churn risk" not in gone

    top = bot.ask(VIEWER, "/top 3")
    assert top.count("\n") >= 3 and " = " not in top

    model = bot.send(VIEWER, "/model")[0].text
    assert "rows of event history" in model and "one row per client and observation date" in model
    assert "Split (by client: no client on two sides)" in model
