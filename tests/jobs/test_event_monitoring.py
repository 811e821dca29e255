"""Drift and realised recall when the champion learns from event history.

Given an event champion, when the drift job runs, then the clients active at the scoring
date are compared, feature by feature, with the rows the model learnt from.  When the
performance job runs, then realised recall is measured on the newest observation date whose
outcome is known and which the model never trained on (point-in-time features make a score
as of that date today equal to the score the model would have given then).
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Iterator

import pytest

from jobs.notifier import RecordingNotifier
from jobs.reports import DRIFT, PERFORMANCE, reports
from jobs.runner import JobRunner
from tests.model.event_store import EventStore, trained_event_store


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest) -> EventStore:
    return trained_event_store(request.param)


@pytest.fixture
def fewer_training_dates(store: EventStore) -> Iterator[list[str]]:
    """As if the champion had been trained three months earlier: data arrived since (its
    metadata names the dates it learnt from)."""
    model = store.registry.serving().model
    saved = copy.deepcopy(model.metadata_)
    model.metadata_["training_dates"] = saved["training_dates"][:-3]
    try:
        yield saved["training_dates"]
    finally:
        model.metadata_.clear()
        model.metadata_.update(saved)


def runner(store: EventStore, **changes: object) -> tuple[JobRunner, RecordingNotifier]:
    notifier = RecordingNotifier()
    settings = store.settings.model_copy(update={"retrain_on": ["schedule"], **changes})
    return JobRunner(settings, store.db, notifier, services={"registry": store.registry}), notifier


def test_given_an_event_champion_when_drift_runs_then_the_active_clients_are_compared(store):
    job, _ = runner(store)

    report = job.run_sync("drift", follow=False)[0]

    assert report.outcome == "ok", report.summary
    assert "event features as of" in report.summary
    stored = reports(store.db, DRIFT, limit=1)[0]
    assert stored.body["as_of"] and stored.body["n_current"] > 0
    assert stored.body["model_version"] == store.registry.serving().version


def test_given_no_date_settled_since_training_when_performance_runs_then_it_says_so(store):
    job, _ = runner(store)

    report = job.run_sync("performance", follow=False)[0]

    assert report.outcome == "skipped"
    assert "nothing to measure" in report.summary and "last training date" in report.summary


def test_given_dates_settled_since_training_then_realised_recall_is_measured_on_the_newest(
        store, fewer_training_dates):
    job, _ = runner(store, min_churners=1, recall_target=0.9)

    report = job.run_sync("performance", follow=False)[0]

    stored = reports(store.db, PERFORMANCE, limit=1)[0]
    assert stored.body["as_of"].startswith(fewer_training_dates[-1][:10])
    realised = stored.body["realised"]
    assert realised["n_scored"] > 0 and realised["n_churners"] >= 1
    below = realised["recall"] < 0.9
    assert report.outcome == "ok", report.summary
    assert any(decision.draft.kind == "recall" for decision in report.alerts) == below


class StrictRegistry:
    """The store's registry, serving its champion with a threshold nobody reaches: every
    churner is missed, as with a model that went stale."""

    def __init__(self, store: EventStore) -> None:
        self.store = store

    def serving(self):  # type: ignore[no-untyped-def]
        return dataclasses.replace(self.store.registry.serving(), threshold=1.01)


def test_given_a_champion_that_misses_churners_then_a_recall_alert_names_the_date(store, fewer_training_dates):
    settings = store.settings.model_copy(update={"retrain_on": ["schedule"], "min_churners": 1})
    job = JobRunner(settings, store.db, RecordingNotifier(), services={"registry": StrictRegistry(store)})

    report = job.run_sync("performance", follow=False)[0]

    realised = reports(store.db, PERFORMANCE, limit=1)[0].body["realised"]
    assert realised["recall"] == 0.0 and realised["n_churners"] >= 1
    alert = next(d.draft for d in report.alerts if d.draft.kind == "recall")
    assert fewer_training_dates[-1][:10] in alert.title
    assert alert.severity == "critical"
