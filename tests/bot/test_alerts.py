"""/alerts: the newest alerts first, with kind, severity, time and figures."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from bot.emulator import Emulator
from bot.handlers.alerts import format_alert
from storage.tables import Alert
from tests.bot.churnguard_fixtures import VIEWER, live_bot, make_settings  # noqa: F401


def alert(minute: int, kind: str, severity: str, message: str, **figures: object) -> Alert:
    return Alert(created_at=datetime(2025, 3, 1, 9, minute), kind=kind, severity=severity,
                 fingerprint=f"{kind}:{minute}", message=message, figures=dict(figures))


def test_an_alert_reads_as_time_severity_kind_message_and_figures() -> None:
    text = format_alert(alert(5, "recall", "critical", "Realised recall 0.82 < 0.90", recall=0.8213, churners=84))

    assert text == ("2025-03-01 09:05 UTC · CRITICAL · recall\nRealised recall 0.82 < 0.90\n"
                    "  recall=0.8213, churners=84")


def test_alerts_lists_the_newest_first_and_honours_the_count(home: Path, emulator: Emulator, live_bot) -> None:  # noqa: F811
    bot = live_bot(make_settings(home, emulator))
    assert bot.ask(VIEWER, "/alerts").startswith("No alerts yet.")
    with bot.db.session() as session:
        session.add(alert(1, "drift", "warning", "Drift in 5 features", share=0.26))
        session.add(alert(2, "job_failed", "warning", "Job ingest failed"))
        session.add(alert(3, "early_warning", "warning", "Estimated recall 0.87"))

    everything = bot.ask(VIEWER, "/alerts")
    newest_two = bot.ask(VIEWER, "/alerts 2")

    assert everything.startswith("The 3 most recent alert(s), newest first:")
    kinds = [line.split(" · ")[2] for line in everything.splitlines() if " UTC · " in line]
    assert kinds == ["early_warning", "job_failed", "drift"]
    assert "Estimated recall 0.87" in newest_two and "Job ingest failed" in newest_two
    assert "Drift in 5 features" not in newest_two
