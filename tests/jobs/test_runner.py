"""The job runner: records every run, never lets a job crash the service, keeps the loop free."""

from __future__ import annotations

import asyncio
import fcntl
import threading

import pytest

from churnguard import Settings
from jobs.alerts import AlertDraft, recent_alerts, unsent
from jobs.notifier import RecordingNotifier
from jobs.runner import FollowUp, JobResult, JobRunner
from jobs.runs import recent_runs
from storage.errors import UserError


@pytest.fixture
def settings(home, db):
    return Settings(database_url=db.url)


def _alerting_job(ctx):
    ctx.progress("looking")
    return JobResult("found drift", details={"batches": [1]}, alerts=[
        AlertDraft("drift", "warning", "v1", "Data drift", "Contract drifted", {"drifted_share": 0.4}, level=0.4)])


def _crashing_job(ctx):
    raise RuntimeError("training exploded")


def _refusing_job(ctx):
    raise UserError("no labelled data stored")


def test_a_job_run_is_recorded_and_its_alert_stored_and_delivered(settings, db):
    notifier = RecordingNotifier(deliveries=2)
    runner = JobRunner(settings, db, notifier, jobs={"drift": _alerting_job})
    [report] = runner.run_sync("drift", trigger="schedule", follow=False)
    assert report.outcome == "ok" and report.summary == "found drift"
    assert report.run.details["batches"] == [1] and report.run.details["trigger"] == "schedule"
    assert report.run.finished_at is not None
    [decision] = report.alerts
    assert decision.stored
    assert report.delivered == {decision.alert_id: 2}
    assert notifier.kinds() == ["drift"]
    assert recent_alerts(db)[0].sent_at is not None


def test_without_a_notifier_alerts_wait_in_the_outbox(settings, db):
    runner = JobRunner(settings, db, None, jobs={"drift": _alerting_job})
    [report] = runner.run_sync("drift", follow=False)
    assert report.alerts[0].stored
    assert [row.id for row in unsent(db)] == [report.alerts[0].alert_id]
    # when the service (with a notifier) passes over the outbox, it is delivered
    notifier = RecordingNotifier()
    service = JobRunner(settings, db, notifier)
    assert asyncio.run(service.flush_outbox()) == {report.alerts[0].alert_id: 1}
    assert unsent(db) == []


def test_a_crash_becomes_a_failed_run_and_a_job_failed_alert_to_admins(settings, db):
    notifier = RecordingNotifier()
    runner = JobRunner(settings, db, notifier, jobs={"retrain": _crashing_job})
    [report] = runner.run_sync("retrain")
    assert report.outcome == "failed"
    assert report.run.error == "RuntimeError: training exploded"
    [sent] = notifier.sent
    assert sent.kind == "job_failed" and sent.audience == "admins" and sent.severity == "critical"
    assert "champion model is unchanged" in sent.text
    assert sent.figures["run_id"] == report.run.id


def test_a_user_error_is_shown_plainly(settings, db):
    runner = JobRunner(settings, db, None, jobs={"ingest": _refusing_job})
    [report] = runner.run_sync("ingest")
    assert report.outcome == "failed" and report.run.error == "no labelled data stored"


def test_a_repeated_failure_is_not_alerted_again_within_the_cooldown(settings, db):
    notifier = RecordingNotifier()
    runner = JobRunner(settings, db, notifier, jobs={"ingest": _crashing_job})
    runner.run_sync("ingest")
    runner.run_sync("ingest")
    assert notifier.kinds() == ["job_failed"]
    assert [r.outcome for r in recent_runs(db, job="ingest")] == ["failed", "failed"]


def test_follow_ups_run_after_the_job_each_recorded_once(settings, db):
    order = []

    def ingest(ctx):
        order.append("ingest")
        return JobResult("stored batch #2", follow_ups=[FollowUp("drift", "new_batch", {"batch_ids": [2]}),
                                                        FollowUp("retrain", "new_labels")])

    def drift(ctx):
        order.append(("drift", ctx.trigger, ctx.params["batch_ids"]))
        return JobResult("drift", follow_ups=[FollowUp("retrain", "drift")])

    def retrain(ctx):
        order.append(("retrain", ctx.trigger))
        return JobResult("retrained")

    runner = JobRunner(settings, db, None, jobs={"ingest": ingest, "drift": drift, "retrain": retrain})
    reports = runner.run_sync("ingest")
    assert [r.job for r in reports] == ["ingest", "drift", "retrain"]
    assert order == ["ingest", ("drift", "new_batch", [2]), ("retrain", "new_labels")]
    assert reports[0].run.details["follow_ups"] == ["drift", "retrain"]
    # and with follow=False only the job itself runs
    assert [r.job for r in runner.run_sync("ingest", follow=False)] == ["ingest"]


def test_an_unknown_job_is_refused_with_the_list(settings, db):
    runner = JobRunner(settings, db, None)
    with pytest.raises(UserError, match="unknown job 'backup'; jobs are: ingest, drift, performance, retrain"):
        runner.run_sync("backup")


def test_a_job_held_by_another_process_is_skipped(settings, db):
    runner = JobRunner(settings, db, None, jobs={"ingest": _alerting_job})
    lock = settings.home / "locks" / "ingest.lock"
    lock.parent.mkdir(parents=True)
    with lock.open("a") as other:  # another process holding the job's lock file
        fcntl.flock(other.fileno(), fcntl.LOCK_EX)
        [report] = runner.run_sync("ingest")
        fcntl.flock(other.fileno(), fcntl.LOCK_UN)
    assert report.outcome == "skipped" and "already running" in report.summary
    assert runner.run_sync("ingest", follow=False)[0].outcome == "ok"


def test_the_event_loop_keeps_running_while_a_job_works(settings, db):
    loop_answered = threading.Event()

    def slow_job(ctx):
        # the job can only finish if the loop runs the coroutine below meanwhile
        if not loop_answered.wait(timeout=30):
            raise AssertionError("the event loop was blocked by the job")
        return JobResult("done")

    async def scenario():
        runner = JobRunner(settings, db, None, jobs={"retrain": slow_job})
        job = asyncio.create_task(runner.run("retrain"))
        await asyncio.sleep(0)
        while not runner.is_running("retrain") and not job.done():
            await asyncio.sleep(0.01)
        assert runner.is_running("retrain")
        loop_answered.set()  # "a /score answered while training"
        return await job

    [report] = asyncio.run(scenario())
    assert report.outcome == "ok"


def test_progress_lines_reach_an_async_callback_on_the_loop(settings, db):
    seen = []

    def chatty(ctx):
        for step in ("loading", "tuning", "saving"):
            ctx.progress(step)
        return JobResult("done")

    async def on_progress(line):
        seen.append((line, threading.current_thread() is threading.main_thread()))

    runner = JobRunner(settings, db, None, jobs={"retrain": chatty})
    runner.run_sync("retrain", progress=on_progress)
    assert seen, "no progress reached the callback"
    assert seen[-1] == ("saving", True)  # newest line always arrives, on the loop's thread
    assert [line for line, _ in seen] == [s for s in ("loading", "tuning", "saving") if s in dict(seen)]
