"""The retrain job when the model learns from event history instead of the client table.

New event files are what make a retrain worth it (each one can settle outcomes and move
features), the client-table window setting does not apply, and the monitoring jobs, which read
client-table batches, say plainly that they do not check an event champion.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from churnguard import Settings
from jobs.retrain_job import new_labels_since_last_training
from jobs.runner import JobRunner
from model.event_source import event_batch_ids
from model.registry import NewVersion
from model.service import open_registry
from storage.db import Database
from tests.model.test_event_training import ingest_sample


def settings_for(db: Database, home: Path, **changes: Any) -> Settings:
    values: dict[str, Any] = {"home": home, "database_url": db.url, "retrain_on": ["new_labels", "schedule"],
                              "training_source": "events", "retrain_window_batches": 2, **changes}
    return Settings(**values)


def register(db: Database, settings: Settings, batch_ids: list[int]) -> None:
    def write(directory: Path, version: str) -> None:
        (directory / "model.txt").write_text(version)

    open_registry(db, settings).register(write, NewVersion(threshold=0.5, seed=1, train_rows=10,
                                                           batch_ids=batch_ids), promote=False, rejected=True)


@pytest.fixture
def events_db(db: Database) -> Database:
    ingest_sample(db)
    return db


def test_given_event_data_and_no_model_then_a_retrain_is_due(events_db, tmp_path):
    settings = settings_for(events_db, tmp_path / "home")

    due, why = new_labels_since_last_training(events_db, settings)

    assert due and "no model trained yet" in why


def test_given_a_model_trained_on_every_event_file_then_nothing_new_until_another_file_arrives(events_db, tmp_path):
    settings = settings_for(events_db, tmp_path / "home")
    register(events_db, settings, event_batch_ids(events_db))

    due, why = new_labels_since_last_training(events_db, settings)
    assert not due and "no event batch arrived" in why

    from storage.events.ingest import ingest_events

    extra = tmp_path / "late_usage.csv"
    extra.write_text("client_id,timestamp,event_type\nC00002,2026-01-02 10:00:00,login\n", encoding="utf-8")
    ingest_events(events_db, extra, kind="usage")

    due, why = new_labels_since_last_training(events_db, settings)
    assert due and "event batch(es)" in why


def test_given_event_training_when_the_job_runs_then_the_client_window_is_not_applied(events_db, tmp_path):
    settings = settings_for(events_db, tmp_path / "home")
    calls: list[dict[str, Any]] = []

    def trainer(db: Database, given: Any, **kwargs: Any) -> Any:
        calls.append(kwargs)
        raise RuntimeError("stop after recording the call")

    runner = JobRunner(settings, events_db, None, services={"trainer": trainer})

    reports = runner.run_sync("retrain", follow=False)

    assert calls, reports[0].summary
    assert "frame" not in calls[0]
    assert reports[0].outcome == "failed"
    assert open_registry(events_db, settings).list_versions() == []
