"""/alerts: the newest alerts first, in sentences; viewers see the data and model alerts that
subscribers get, admins everything."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from bot.emulator import Emulator
from bot.handlers.alerts import format_alert
from jobs.alerts import CHAT, TITLE
from storage.tables import Alert
from tests.bot.churnguard_fixtures import ADMIN, VIEWER, live_bot, make_settings  # noqa: F401


def alert(minute: int, kind: str, severity: str, message: str, **figures: object) -> Alert:
    return Alert(created_at=datetime(2025, 3, 1, 9, minute), kind=kind, severity=severity,
                 fingerprint=f"{kind}:{minute}", message=message, figures=dict(figures))


def test_an_alert_reads_as_time_severity_title_and_sentences_without_raw_figures() -> None:
    drifted = {"tenure": {"psi": 3.784, "p_value": 3.24e-150, "test": "ks", "importance": 0.31}}
    row = alert(5, "drift", "critical", "Data drift: DRIFT — 45% of the feature weight drifted.",
                drifted_features=drifted, drifted_share=0.45, **{TITLE: "Data drift in batch #2 (april.csv)"})

    text = format_alert(row)

    assert text == ("2025-03-01 09:05 UTC · CRITICAL · drift: Data drift in batch #2 (april.csv)\n"
                    "Data drift: DRIFT — 45% of the feature weight drifted.")
    assert "{" not in text and "p_value" not in text  # the figures stay in the chart and --json


def test_an_alert_is_listed_in_its_chat_wording() -> None:
    row = alert(6, "ingest_rejected", "warning", "x.csv was not stored. It was moved to /srv/inbox/rejected/x.csv",
                **{CHAT: "x.csv was not stored. It was moved to the inbox's rejected folder"})

    assert format_alert(row).endswith("x.csv was not stored. It was moved to the inbox's rejected folder")


def test_alerts_lists_the_newest_first_and_honours_the_count(home: Path, emulator: Emulator, live_bot) -> None:  # noqa: F811
    bot = live_bot(make_settings(home, emulator))
    assert bot.ask(ADMIN, "/alerts").startswith("No alerts yet.")
    with bot.db.session() as session:
        session.add(alert(1, "drift", "warning", "Drift in 5 features", share=0.26))
        session.add(alert(2, "job_failed", "warning", "Job ingest failed"))
        session.add(alert(3, "early_warning", "warning", "Estimated recall 0.87"))

    everything = bot.ask(ADMIN, "/alerts")
    newest_two = bot.ask(ADMIN, "/alerts 2")

    assert everything.startswith("The 3 most recent alert(s), newest first:")
    kinds = [line.split(" · ")[2].split(":")[0] for line in everything.splitlines() if " UTC · " in line]
    assert kinds == ["early_warning", "job_failed", "drift"]
    assert "Estimated recall 0.87" in newest_two and "Job ingest failed" in newest_two
    assert "Drift in 5 features" not in newest_two


def test_viewers_see_the_model_alerts_and_admins_everything(home: Path, emulator: Emulator, live_bot) -> None:  # noqa: F811
    # given alerts of every audience, the operational ones newest
    bot = live_bot(make_settings(home, emulator))
    with bot.db.session() as session:
        session.add(alert(1, "drift", "warning", "Drift in 5 features"))
        session.add(alert(2, "recall", "critical", "Realised recall 0.82 < 0.90"))
        session.add(alert(3, "retrain", "info", "v2 passed the acceptance gate"))
        session.add(alert(4, "ingest_rejected", "warning", "bad.csv was not stored", sha256="ab" * 32,
                          examples=["C-1", "C-2"]))
        session.add(alert(5, "job_failed", "critical", "The retrain job failed: MemoryError"))

    viewer = bot.ask(VIEWER, "/alerts 3")
    admin = bot.ask(ADMIN, "/alerts 3")

    # then a viewer's newest three are the model alerts, never a rejected file or a failed job
    assert viewer.startswith("The 3 most recent alert(s)")
    assert "v2 passed" in viewer and "recall 0.82" in viewer and "Drift in 5" in viewer
    assert "bad.csv" not in viewer and "job failed" not in viewer.lower()
    # and an admin's are simply the newest three
    assert "bad.csv was not stored" in admin and "MemoryError" in admin and "Drift in 5" not in admin
    assert "C-1" not in admin and "abab" not in admin  # figures (file hashes, client ids) stay out of the chat
