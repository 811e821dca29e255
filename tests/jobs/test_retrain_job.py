"""Retrain job: the gate alone decides promotion, a crash leaves the champion untouched,
automatic triggers only retrain on new labels, and /retrain's worker runs one at a time."""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass, field
from typing import Any

import pytest
from sqlmodel import select

from churnguard import Settings
from jobs.notifier import RecordingNotifier
from jobs.reports import reports
from jobs.retrain_job import (
    RetrainBusy,
    RetrainWorker,
    labelled_batch_ids,
    new_labels_since_last_training,
    window_batches,
)
from jobs.runner import JobResult, JobRunner
from model.sources import SnapshotSource, SourceConfig
from storage.tables import ModelVersion

# ------------------------------------------------------------------ the story (real training)


def versions(scenario) -> dict[str, ModelVersion]:
    with scenario.db.session() as session:
        return {row.version: row for row in session.exec(select(ModelVersion)).all()}


def test_the_first_model_is_trained_and_crowned_by_the_gate(scenario):
    if scenario.adopted:
        pytest.skip("this engine's v1 is a copy of the other engine's (trained once per session)")
    [run] = scenario.steps["first_model"].reports
    assert run.outcome == "ok"
    assert run.summary == "v1 passed the acceptance gate and is the champion now"
    result = run.run.details["result"]
    assert result["promoted"] and result["champion_before"] is None and result["champion_after"] == "v1"


def test_the_champion_changes_exactly_when_the_gate_passes(scenario):
    [run] = scenario.steps["retrain"].reports
    result = run.run.details["result"]
    row = versions(scenario)[result["version"]]
    gate = row.metrics["gate"]
    before, after = scenario.champion_history[-2], scenario.champion_history[-1]
    if gate["passed"]:
        assert row.status == "champion" and after == result["version"] != before
        assert result["promoted"] and "passed the acceptance gate" in run.summary
    else:
        assert row.status == "rejected" and after == before
        assert not result["promoted"] and f"champion {before} stays" in run.summary
        assert all(reason in run.summary for reason in row.reasons)
    # every version in the store agrees with its own gate
    for version in versions(scenario).values():
        assert (version.status in ("champion", "retired")) == bool(version.metrics["gate"]["passed"])


def test_the_retrain_report_is_stored(scenario):
    newest = reports(scenario.db, "retrain", limit=1)[0]
    result = scenario.steps["retrain"].reports[0].run.details["result"]
    assert newest.model_version == result["version"]
    assert newest.body["trigger"] == "manual" and newest.body["gate"]["passed"] == result["promoted"]
    assert newest.body["window"] == "all labelled data"


def test_a_crash_mid_training_leaves_the_champion_and_the_store_untouched(scenario):
    [run] = scenario.steps["crash"].reports
    assert run.outcome == "failed"
    assert run.run.error.startswith("TrainingCrashed: killed while 'tuning")
    assert scenario.champion_history[1] == scenario.champion_history[2] == "v1"
    # no version was registered by the crashed run, and no half-written files were left
    assert sorted(versions(scenario)) == ["v1", "v2"]
    assert not list(scenario.settings.models_dir.glob(".staging-*"))
    # and the admins were told
    [decision] = run.alerts
    assert decision.stored and decision.draft.kind == "job_failed" and decision.draft.audience == "admins"
    assert "champion model is unchanged" in decision.draft.text


def test_an_automatic_trigger_without_new_labels_does_not_retrain(scenario):
    [run] = scenario.steps["retrain_again"].reports
    assert run.outcome == "skipped"
    assert run.summary == "nothing new to learn from: no labelled batch arrived since v2 was trained"


# ------------------------------------------------------------------ triggers and windows (fake trainer)


@dataclass
class FakeResult:
    version: str
    status: str
    reasons: list[str] = field(default_factory=list)
    report: dict[str, Any] = field(default_factory=dict)


class FakeTrainer:
    """Records what it was asked and registers a version row, as train_and_register would."""

    def __init__(self, status: str = "rejected"):
        self.calls: list[dict[str, Any]] = []
        self.status = status

    def __call__(self, db, settings, *, actor, progress, registry):
        return self._train(db, actor=actor, frame=None)

    def call_with_window(self, db, settings, *, actor, progress, registry, batch_window=None):
        data = SnapshotSource(db, SourceConfig.from_settings(settings)).training_data(batch_window=batch_window)
        return self._train(db, actor=actor, frame=data.frame)

    def _train(self, db, *, actor, frame):
        self.calls.append({"actor": actor, "frame": frame})
        name = f"v{len(self.calls)}"
        with db.session() as session:
            session.add(ModelVersion(version=name, status=self.status, artifact_dir="/nowhere", sha256="0" * 64,
                                     threshold=0.3, seed=1, train_rows=3, batch_ids=labelled_batch_ids(db),
                                     reasons=["test recall 0.80 is below the target 0.90"]))
        return FakeResult(name, self.status, ["test recall 0.80 is below the target 0.90"])


@pytest.fixture
def settings(home, db):
    return Settings(database_url=db.url)


def labelled_file(settings, name: str, ids: str) -> None:
    inbox = settings.inbox_dir
    inbox.mkdir(parents=True, exist_ok=True)
    rows = "".join(f"{i},{n},{'Yes' if n % 2 else 'No'}\n" for n, i in enumerate(ids.split(",")))
    (inbox / name).write_text("customerID,tenure,Churn\n" + rows)


def test_a_refused_challenger_keeps_the_champion_and_says_why(settings, db):
    labelled_file(settings, "a.csv", "A,B,C")
    trainer = FakeTrainer("rejected")
    runner = JobRunner(settings, db, None, services={"trainer": trainer})
    runner.run_sync("ingest", follow=False)
    [run] = runner.run_sync("retrain")
    assert run.outcome == "ok"
    assert run.summary == "v1 rejected; there is still no champion: test recall 0.80 is below the target 0.90"
    assert trainer.calls[0]["actor"] == "cli"


def test_a_background_promotion_and_a_rejection_are_announced_to_subscribers_and_admins(settings, db):
    # given a store with labelled data, and a retrain that a new labelled batch starts
    labelled_file(settings, "jan.csv", "A,B,C")
    notifier, trainer = RecordingNotifier(), FakeTrainer("champion")
    runner = JobRunner(settings, db, notifier, services={"trainer": trainer})
    runner.run_sync("ingest", follow=False)
    # when it promotes its challenger
    [promoted] = runner.run_sync("retrain", trigger="new_labels")
    # then subscribers and admins are told what changed and why
    assert promoted.run.details["result"]["promoted"]
    [news] = notifier.sent
    assert (news.kind, news.audience, news.severity) == ("retrain", "subscribers+admins", "info")
    assert news.title == "New champion model v1"
    assert news.text.startswith("v1 passed the acceptance gate and now gives every score.")
    assert "because new labelled data arrived (no model trained yet)" in news.text
    # when the next challenger, after new labels, is turned down by the gate
    labelled_file(settings, "feb.csv", "D,E,F")
    runner.run_sync("ingest", follow=False)
    trainer.status = "rejected"
    runner.run_sync("retrain", trigger="new_labels")
    # then that is news too, with the gate's reasons, and the champion is named
    rejected = notifier.sent[-1]
    assert rejected.kind == "retrain" and rejected.title == "Retrained model v2 was not promoted; v1 stays the champion"
    assert "v2 did not pass the acceptance gate, so v1 stays the champion." in rejected.text
    assert rejected.text.endswith("\n- test recall 0.80 is below the target 0.90")


def test_new_labels_trigger_a_retrain_only_once(settings, db):
    trainer = FakeTrainer()
    runner = JobRunner(settings, db, None, services={"trainer": trainer})
    labelled_file(settings, "jan.csv", "A,B,C")
    reports_ = runner.run_sync("ingest")
    assert [r.job for r in reports_][-1] == "retrain" and len(trainer.calls) == 1
    assert new_labels_since_last_training(db, settings) == (False, "no labelled batch arrived since v1 was trained")
    # the same trigger again (e.g. a repeated drift alert) finds nothing new
    [again] = runner.run_sync("retrain", trigger="drift")
    assert again.outcome == "skipped" and len(trainer.calls) == 1
    # a new labelled month is new
    labelled_file(settings, "feb.csv", "D,E,F")
    runner.run_sync("ingest")
    assert len(trainer.calls) == 2


def test_a_trigger_missing_from_retrain_on_is_skipped(settings, db):
    quiet = settings.model_copy(update={"retrain_on": ["recall"]})
    trainer = FakeTrainer()
    runner = JobRunner(quiet, db, None, services={"trainer": trainer})
    labelled_file(quiet, "jan.csv", "A,B,C")
    runner.run_sync("ingest", follow=False)
    [run] = runner.run_sync("retrain", trigger="schedule")
    assert run.outcome == "skipped" and "retrain on schedule is off" in run.summary
    assert runner.run_sync("retrain", trigger="manual")[0].outcome == "ok"  # an admin always may
    assert len(trainer.calls) == 1


def test_the_window_limits_the_challenger_to_the_newest_batches(settings, db):
    windowed = settings.model_copy(update={"retrain_window_batches": 2, "retrain_on": []})
    trainer = FakeTrainer()
    runner = JobRunner(windowed, db, None, services={"trainer": trainer.call_with_window})
    for month, ids in enumerate(("A,B,C", "D,E,F", "G,H,C"), 1):  # C comes back in month 3
        labelled_file(windowed, f"m{month}.csv", ids)
        runner.run_sync("ingest", follow=False)
    assert window_batches(labelled_batch_ids(db), 2) == labelled_batch_ids(db)[-2:] and len(labelled_batch_ids(db)) == 3
    [run] = runner.run_sync("retrain")
    frame = trainer.calls[0]["frame"]
    assert sorted(frame["customerID"]) == ["C", "D", "E", "F", "G", "H"]
    assert "the newest 2 labelled batch(es)" in run.run.details["result"]["window"]


def test_a_trainer_without_a_frame_says_the_window_was_not_applied(settings, db):
    windowed = settings.model_copy(update={"retrain_window_batches": 1, "retrain_on": []})
    runner = JobRunner(windowed, db, None, services={"trainer": FakeTrainer()})
    labelled_file(windowed, "m1.csv", "A,B,C")
    runner.run_sync("ingest", follow=False)
    [run] = runner.run_sync("retrain")
    assert "not applied" in run.run.details["result"]["window"]


# ------------------------------------------------------------------ /retrain


def test_a_second_retrain_request_is_told_one_is_running(settings, db):
    release = threading.Event()
    lines: list[str] = []

    def slow_retrain(ctx):
        ctx.progress("tuning 1/4")
        release.wait(timeout=30)
        return JobResult("v9 rejected; champion v8 stays")

    runner = JobRunner(settings, db, None, jobs={"retrain": slow_retrain})
    worker = RetrainWorker(runner)

    async def admins():
        async def on_progress(line):
            lines.append(line)

        first = asyncio.create_task(worker.retrain(actor="admin 1", on_progress=on_progress))
        while not worker.busy or not runner.is_running("retrain"):
            await asyncio.sleep(0.01)
        with pytest.raises(RetrainBusy, match=r"already running \(started .* by admin 1\)"):
            await worker.retrain(actor="admin 2")
        release.set()
        return await first

    report = asyncio.run(admins())
    assert report.outcome == "ok" and report.summary == "v9 rejected; champion v8 stays"
    assert lines == ["tuning 1/4"]
    assert not worker.busy


def test_a_crash_through_the_worker_comes_back_as_a_failed_report(settings, db):
    def crash(ctx):
        raise RuntimeError("segfault in training")

    worker = RetrainWorker(JobRunner(settings, db, None, jobs={"retrain": crash}))
    report = asyncio.run(worker.retrain(actor="admin 1"))
    assert report.outcome == "failed" and report.run.error == "RuntimeError: segfault in training"
    assert report.alerts[0].draft.kind == "job_failed"
