"""Schedules survive restarts; a slot missed while the service was down runs once on start."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from churnguard import Settings
from jobs.alerts import AlertDraft, raise_alert, unsent
from jobs.notifier import RecordingNotifier
from jobs.runner import JobResult, JobRunner
from jobs.runs import recent_runs, start_run
from jobs.scheduler import (
    JobScheduler,
    due_on_start,
    remember_schedules,
    schedule_table,
    stored_schedules,
)
from storage.tables import JobRun, utcnow


@pytest.fixture
def settings(home, db):
    return Settings(database_url=db.url)


class Calls:
    """Fake jobs that count their runs (the real ones are tested in their own modules)."""

    def __init__(self):
        self.calls: list[tuple[str, str]] = []

    def jobs(self):
        def make(name):
            def job(ctx):
                self.calls.append((name, ctx.trigger))
                return JobResult(f"{name} ran")
            return job
        return {name: make(name) for name in ("ingest", "drift", "performance", "retrain")}


async def _start_and_settle(scheduler, **kwargs):
    due = await scheduler.start(**kwargs)
    await scheduler.shutdown()
    return due


def test_schedules_are_remembered_in_storage(settings, db):
    # given a first start
    t0 = datetime(2024, 1, 1, 12, 0)
    remember_schedules(db, settings, now=t0)
    stored = stored_schedules(db)
    assert stored["ingest"] == {"cron": "*/5 * * * *", "since": t0}
    assert stored["retrain"]["cron"] == "0 3 * * 0"
    # when the drift schedule changes before a restart
    changed = settings.model_copy(update={"drift_cron": "30 6 * * *"})
    remember_schedules(db, changed, now=t0 + timedelta(days=1))
    # then the new line is kept and the original "since" stays
    again = stored_schedules(db)
    assert again["drift"] == {"cron": "30 6 * * *", "since": t0}


def test_retrain_has_no_schedule_when_retrain_on_lacks_schedule(settings, db):
    manual_only = settings.model_copy(update={"retrain_on": ["recall"]})
    table = {view.job: view for view in schedule_table(db, manual_only)}
    assert table["retrain"].cron == "off" and not table["retrain"].enabled
    assert table["retrain"].next_run is None
    assert table["ingest"].enabled and table["ingest"].next_run > utcnow()


def test_a_fresh_store_misses_nothing(settings, db):
    assert due_on_start(db, settings) == []


def test_a_missed_job_runs_once_on_start_not_once_per_slot(settings, db):
    # given a service that scheduled the jobs a week ago and then stopped
    remember_schedules(db, settings, now=utcnow() - timedelta(days=7, minutes=1))
    calls = Calls()
    runner = JobRunner(settings, db, None, jobs=calls.jobs())
    # when a new scheduler starts on the same store
    scheduler = JobScheduler(runner)

    async def restart():
        due = await scheduler.start()
        await asyncio.gather(*scheduler.catch_up)
        await scheduler.shutdown()
        return due

    due = asyncio.run(restart())
    # then each job runs exactly once (2016 missed ingest slots -> 1 run), in pipeline order
    assert due == ["ingest", "drift", "performance", "retrain"]
    assert calls.calls == [(job, "catch_up") for job in due]
    assert {r.details["trigger"] for r in recent_runs(db)} == {"catch_up"}
    # and a second restart right after has nothing to catch up
    calls.calls.clear()
    assert asyncio.run(_start_and_settle(JobScheduler(JobRunner(settings, db, None, jobs=calls.jobs())))) == []
    assert calls.calls == []


def test_only_jobs_whose_slot_passed_since_their_last_run_catch_up(settings, db):
    remember_schedules(db, settings, now=utcnow() - timedelta(days=7, minutes=1))
    # given every job ran a moment ago except drift, which last ran three hours ago
    for job in ("ingest", "performance", "retrain"):
        start_run(db, job, trigger="schedule")
    with db.session() as session:
        session.add(JobRun(job="drift", started_at=utcnow() - timedelta(hours=3), outcome="ok"))
    assert due_on_start(db, settings) == ["drift"]
    view = {v.job: v for v in schedule_table(db, settings)}["drift"]
    assert view.missed is not None and view.last_run.outcome == "ok"


def test_the_cron_triggers_are_registered_and_fire(settings, db):
    calls = Calls()
    runner = JobRunner(settings, db, None, jobs=calls.jobs())

    async def scenario():
        scheduler = JobScheduler(runner)
        await scheduler.start()
        jobs = scheduler.next_runs()
        # when the ingest trigger is due now
        scheduler.scheduler.modify_job("ingest", next_run_time=datetime.now(UTC))
        for _ in range(1500):  # up to 30 s on a busy machine; normally a few hundred ms
            if calls.calls:
                break
            await asyncio.sleep(0.02)
        await scheduler.shutdown()
        return jobs

    jobs = asyncio.run(scenario())
    assert set(jobs) == {"ingest", "drift", "performance", "retrain"}  # no outbox without a notifier
    assert all(when is not None for when in jobs.values())
    assert calls.calls == [("ingest", "schedule")]


def test_a_disabled_schedule_is_not_registered(settings, db):
    off = settings.model_copy(update={"performance_cron": "off"})
    runner = JobRunner(off, db, None, jobs=Calls().jobs())

    async def scenario():
        scheduler = JobScheduler(runner)
        await scheduler.start()
        jobs = scheduler.next_runs()
        await scheduler.shutdown()
        return jobs

    assert "performance" not in asyncio.run(scenario())


def test_the_outbox_delivers_alerts_raised_by_another_process(settings, db):
    # given an alert stored by `churnguard jobs run` in a shell (no notifier there)
    decision = raise_alert(db, AlertDraft("recall", "warning", "v1", "Recall 0.81", "below target"),
                           cooldown_hours=24)
    notifier = RecordingNotifier()
    runner = JobRunner(settings, db, notifier, jobs=Calls().jobs())

    async def scenario():
        scheduler = JobScheduler(runner, outbox_seconds=0.05)
        await scheduler.start()
        for _ in range(1500):  # up to 30 s on a busy machine; normally a few hundred ms
            if notifier.sent:
                break
            await asyncio.sleep(0.02)
        await scheduler.shutdown()

    asyncio.run(scenario())
    assert [m.alert_id for m in notifier.sent] == [decision.alert_id]
    assert unsent(db) == []


def test_runs_left_running_by_a_killed_service_are_closed_on_start(settings, db):
    with db.session() as session:
        session.add(JobRun(job="retrain", outcome="running", details={"pid": 2**22 + 12345, "host": _host()}))
    asyncio.run(_start_and_settle(JobScheduler(JobRunner(settings, db, None, jobs=Calls().jobs()))))
    [run] = recent_runs(db, job="retrain")
    assert run.outcome == "failed" and "interrupted" in run.error


def _host():
    import socket

    return socket.gethostname()
