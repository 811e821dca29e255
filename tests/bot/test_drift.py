"""/drift: says none exists until the drift job has run; then its text and chart."""

from __future__ import annotations

from pathlib import Path

from bot.emulator import Emulator
from bot.handlers.drift import NO_REPORT_TEXT
from jobs.reports import latest_drift
from jobs.runner import JobRunner
from storage.db import Database
from tests.bot.churnguard_fixtures import (  # noqa: F401
    VIEWER,
    live_bot,
    make_settings,
    trained_home,
    trained_template,
)


def test_drift_says_none_exists_yet_before_the_job_has_run(home: Path, emulator: Emulator, live_bot) -> None:  # noqa: F811
    bot = live_bot(make_settings(home, emulator))

    assert bot.ask(VIEWER, "/drift") == NO_REPORT_TEXT


def test_drift_shows_the_latest_report_with_its_chart(trained_home: Path, emulator: Emulator, live_bot) -> None:  # noqa: F811
    settings = make_settings(trained_home, emulator)
    db = Database(settings.database_url)
    try:
        [report] = JobRunner(settings, db).run_sync("drift")
        assert report.outcome == "ok", report.summary
        view = latest_drift(db)
    finally:
        db.dispose()
    assert view is not None
    bot = live_bot(settings)

    text, chart = bot.send(VIEWER, "/drift", replies=2)  # the summary first, its chart after

    assert chart.kind == "photo" and chart.photo is not None and chart.photo.startswith(b"\x89PNG")
    assert chart.caption is not None and chart.caption.startswith(f"Drift report #{view.report_id} of ")
    assert text.text is not None and text.text.startswith(f"Drift report #{view.report_id} of ")
    assert view.text in text.text and "(model v1, batch #1)" in text.text
