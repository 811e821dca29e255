"""Admin commands end to end: /retrain while 20 users keep scoring (progress as edits, a
second /retrain told one is running), then /models, /promote, /rollback and their audit."""

from __future__ import annotations

import threading
from collections import Counter
from pathlib import Path

from bot.access import audit_entries
from bot.emulator import Emulator
from tests.bot.churnguard_fixtures import (  # noqa: F401
    ADMIN,
    SECOND_ADMIN,
    VIEWER,
    live_bot,
    make_settings,
    trained_home,
    trained_template,
)

USERS = list(range(5001, 5021))
CLIENTS = ["7590-VHVEG", "5575-GNVDE", "7795-CFOCW", "1452-KIOVK", "6388-TABGU"]  # active (not churned) clients
RETRAIN_TIMEOUT = 300.0


def keep_scoring(emulator: Emulator, user: int, stop: threading.Event, answers: dict[int, list[str]]) -> None:
    """One retention manager: /score after /score until told to stop, recording every answer."""
    emulator.add_user(user)
    turn = 0
    while not stop.is_set() or turn < 2:
        client = CLIENTS[(user + turn) % len(CLIENTS)]
        update = emulator.inject_message(user, f"/score {client}")
        reply = emulator.wait_for_replies(update, timeout=60)[0]
        answers[user].append(reply.text or "")
        turn += 1


def test_retrain_runs_beside_twenty_scoring_users_and_admin_actions_are_audited(
        trained_home: Path, emulator: Emulator, live_bot) -> None:  # noqa: F811
    bot = live_bot(make_settings(trained_home, emulator, viewer_ids=[VIEWER, *USERS]))
    stop = threading.Event()
    answers: dict[int, list[str]] = {user: [] for user in USERS}
    workers = [threading.Thread(target=keep_scoring, args=(emulator, user, stop, answers)) for user in USERS]
    for worker in workers:
        worker.start()

    try:
        started = bot.send(ADMIN, "/retrain")[0]
        assert started.text is not None and started.text.startswith("Retraining on the stored labelled data.")
        second = bot.ask(SECOND_ADMIN, "/retrain")
        finished = emulator.wait_for(
            lambda: (m := emulator.message(ADMIN, started.message_id)).text.startswith("Retrain finished") and m,
            timeout=RETRAIN_TIMEOUT, what="the retrain's final summary")
    finally:
        stop.set()
        for worker in workers:
            worker.join(120)

    assert second.startswith("A retrain is already running (started ") and "by telegram:111" in second
    assert len(finished.edits) >= 2  # progress lines, then the summary
    assert "v2" in (finished.text or "")
    for user in USERS:
        assert len(answers[user]) >= 2
        assert all(text.startswith("Client ") and "churn risk" in text for text in answers[user]), answers[user]

    versions = bot.ask(ADMIN, "/models")
    assert "2 model version(s)" in versions and "v1 " in versions and "v2 " in versions
    promoted = bot.ask(ADMIN, "/promote v2")
    assert promoted.startswith(("v2 is now the champion (was v1)", "v2 is already the champion"))
    assert bot.ask(ADMIN, "/rollback") == "Rolled back: v1 is the champion again (was v2)."
    assert "★ v1 champion" in bot.ask(ADMIN, "/models")
    assert bot.ask(ADMIN, "/promote v7").startswith("No model version 'v7'; known versions: v1, v2")

    bot.wait_audits(ADMIN, 6)  # each row is written right after its reply went out
    audit = Counter((row.action, row.result) for row in audit_entries(bot.db, actor=ADMIN))
    retrain_rows = [key for key in audit if key[0] == "retrain"]
    assert len(retrain_rows) == 1 and retrain_rows[0][1].startswith("ok: v2 ")
    promote_result = "promoted v2 (was v1)" if "(was v1)" in promoted else "unchanged: v2 already champion"
    assert audit - Counter({retrain_rows[0]: 1}) == Counter({
        ("models", "listed 2"): 2, ("promote", promote_result): 1, ("rollback", "rolled back to v1 (was v2)"): 1,
        ("promote", "refused"): 1})
    assert [(row.action, row.result) for row in audit_entries(bot.db, actor=SECOND_ADMIN)] == [
        ("retrain", "refused: already running")]
