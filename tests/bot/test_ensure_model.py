"""What `churnguard run` trains before it starts: the stored events when only events are
stored (never the bundled Telco sample on top of a user's event history), and a clear line
instead of a crash when there is too little to learn from."""

from __future__ import annotations

from pathlib import Path

from bot.commands import ensure_model
from model.event_source import is_event_model
from model.service import open_registry
from storage.clients import client_counts
from storage.db import Database
from tests.bot.churnguard_fixtures import make_settings
from tests.model.event_store import ingest_sample


def test_given_only_event_history_when_run_starts_then_it_trains_on_events_without_the_sample(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "home", tuning_seconds=1.0)
    lines: list[str] = []
    with Database(settings.database_url) as db:
        db.create_schema()
        ingest_sample(db)

        outcome = ensure_model(settings, db, say=lines.append)

        assert outcome.startswith("trained model v1")
        assert client_counts(db)["clients"] == 0  # the bundled Telco sample was not loaded
        assert is_event_model(open_registry(db, settings).load("v1"))
    assert any("event history" in line for line in lines)


def test_given_events_requested_but_none_stored_then_run_says_why_and_trains_nothing(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "home", training_source="events")
    lines: list[str] = []
    with Database(settings.database_url) as db:
        db.create_schema()

        outcome = ensure_model(settings, db, say=lines.append)

        assert "no event clients are stored" in outcome and lines == [outcome]
        assert open_registry(db, settings).list_versions() == []
