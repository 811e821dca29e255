"""A stopping service: a cancellable job ends as "cancelled", nothing new starts, and the
follow-ups a shutdown interrupted or never started run once at the next start (issue 11, item 2).

The jobs here are stand-ins with the real jobs' shape; the real retrain's worker process is
cancelled in tests/bot/test_training.py, and the whole service in tests/bot/test_shutdown.py.
"""

from __future__ import annotations

import asyncio
import json
import threading

import pytest
from sqlmodel import select

from churnguard import Settings, main
from jobs.owed import claim_orphaned, owe, owed_jobs
from jobs.runner import FollowUp, JobCancelled, JobResult, JobRunner
from jobs.runs import close_interrupted, get_run, recent_runs, start_run
from jobs.scheduler import JobScheduler
from storage.tables import JobRun, OwedJob


@pytest.fixture
def settings(home, db):
    return Settings(database_url=db.url, ingest_cron="off", drift_cron="off", performance_cron="off",
                    retrain_cron="off")


class Pipeline:
    """An upload's follow-up chain: arrival -> drift, retrain, performance; the retrain can be
    told to meet a SIGTERM half-way (it then stops as the real one does: JobCancelled)."""

    def __init__(self, *, stop_during_retrain: bool = False) -> None:
        self.calls: list[str] = []
        self.stop_during_retrain = stop_during_retrain
        self.runner: JobRunner | None = None

    def jobs(self):
        def arrival(ctx):
            self.calls.append("arrival")
            batches = {"batch_ids": ctx.params["batch_ids"]}
            return JobResult("new batch", follow_ups=[FollowUp("drift", "new_batch", batches),
                                                      FollowUp("retrain", "new_labels"),
                                                      FollowUp("performance", "new_batch", batches)])

        def drift(ctx):
            self.calls.append("drift")
            return JobResult("no drift")

        def retrain(ctx):
            self.calls.append("retrain")
            if self.stop_during_retrain:
                assert self.runner is not None
                self.runner.begin_shutdown()  # SIGTERM arrives while it trains
                assert ctx.cancel.wait(1)
                raise JobCancelled("the service is stopping; the training worker was stopped")
            return JobResult("v2 is the champion now")

        def performance(ctx):
            self.calls.append("performance")
            return JobResult("recall 0.93")

        return {"arrival": arrival, "drift": drift, "retrain": retrain, "performance": performance}

    def make_runner(self, settings, db) -> JobRunner:
        self.runner = JobRunner(settings, db, None, jobs=self.jobs())
        return self.runner


def _as_if_this_process_had_died(db) -> None:
    """What a restart looks like to the store: the owner's pid may even come back (pid 1 in a
    container), but its token never does."""
    with db.session() as session:
        for row in session.exec(select(OwedJob)).all():
            row.token = "an-earlier-process"
            session.add(row)


def _start(scheduler: JobScheduler) -> list[str]:
    async def start_and_settle():
        due = await scheduler.start()
        await scheduler.shutdown()
        return due

    return asyncio.run(start_and_settle())


def test_a_shutdown_during_an_uploads_retrain_cancels_it_and_the_next_start_runs_what_is_left_once(settings, db):
    interrupted = Pipeline(stop_during_retrain=True)
    runner = interrupted.make_runner(settings, db)

    reports = runner.run_sync("arrival", trigger="upload", params={"batch_ids": [7]}, owe=True)

    assert [(r.job, r.outcome) for r in reports] == [("arrival", "ok"), ("drift", "ok"), ("retrain", "cancelled")]
    assert interrupted.calls == ["arrival", "drift", "retrain"]  # performance never started
    cancelled = reports[-1].run
    assert cancelled.error == "the service is stopping; the training worker was stopped"
    assert reports[-1].alerts == []  # a shutdown is no failure: admins get no job_failed alert
    assert [(o.job, o.trigger, o.params) for o in owed_jobs(db)] == [
        ("retrain", "new_labels", {}), ("performance", "new_batch", {"batch_ids": [7]})]
    # nothing new starts while stopping
    assert runner.run_sync("drift", trigger="new_batch", params={"batch_ids": [7]}, owe=True) == []
    assert [o.job for o in owed_jobs(db)] == ["retrain", "performance", "drift"]

    _as_if_this_process_had_died(db)
    resumed = Pipeline()
    _start(JobScheduler(resumed.make_runner(settings, db)))

    assert resumed.calls == ["retrain", "performance", "drift"]
    assert owed_jobs(db) == []
    newest = {run.job: run for run in reversed(recent_runs(db))}
    assert newest["retrain"].outcome == "ok" and newest["retrain"].details["resumed"] is True
    assert newest["retrain"].details["trigger"] == "new_labels"
    # once: the start after that has nothing left to run
    again = Pipeline()
    _start(JobScheduler(again.make_runner(settings, db)))
    assert again.calls == []


def test_jobs_list_shows_a_cancelled_run_and_the_follow_ups_left(settings, db, monkeypatch, capsys):
    pipeline = Pipeline(stop_during_retrain=True)
    pipeline.make_runner(settings, db).run_sync("arrival", trigger="upload", params={"batch_ids": [3]}, owe=True)
    monkeypatch.setenv("CHURNGUARD_DATABASE_URL", db.url)

    assert main(["jobs", "list"]) == 0
    out = capsys.readouterr().out
    retrain = next(line for line in out.splitlines() if line.startswith("retrain"))
    assert "cancelled: the service is stopping; the training worker was stopped" in retrain
    assert "Follow-ups not run yet" in out
    assert any(line.split()[:2] == ["retrain", "new_labels"] for line in out.splitlines())
    assert main(["jobs", "list", "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert [row["job"] for row in payload["owed"]] == ["retrain", "performance"]
    assert next(j for j in payload["jobs"] if j["job"] == "retrain")["last_run"]["outcome"] == "cancelled"


def test_a_finished_chain_owes_nothing(settings, db):
    pipeline = Pipeline()
    reports = pipeline.make_runner(settings, db).run_sync("arrival", trigger="upload", params={"batch_ids": [1]},
                                                          owe=True)
    assert [r.outcome for r in reports] == ["ok"] * 4
    assert owed_jobs(db) == []


def test_a_follow_up_waiting_for_a_busy_job_gives_up_when_the_service_stops(settings, db):
    pipeline = Pipeline()
    runner = pipeline.make_runner(settings, db)
    lock = runner._lock("drift")
    with lock.hold(0) as held:  # a scheduled drift check holds the lock
        assert held
        stopper = threading.Timer(0.5, runner.begin_shutdown)
        stopper.start()
        # the chain's drift would wait up to 10 minutes for it; the shutdown ends the wait
        reports = runner.run_sync("arrival", trigger="upload", params={"batch_ids": [2]}, owe=True)
        stopper.join()
    assert [(r.job, r.outcome) for r in reports] == [("arrival", "ok")]
    assert [o.job for o in owed_jobs(db)] == ["drift", "retrain", "performance"]


def test_a_run_asked_for_while_stopping_is_recorded_as_cancelled_not_started(settings, db):
    runner = Pipeline().make_runner(settings, db)
    runner.begin_shutdown()
    [report] = runner.run_sync("retrain", trigger="manual", follow=False)
    assert report.outcome == "cancelled" and "did not start" in report.run.error
    assert owed_jobs(db) == []  # an admin's /retrain is not repeated by itself at the next start


def test_owed_jobs_of_a_live_process_are_left_alone_and_copies_run_once(db):
    [mine] = owe(db, [("drift", "new_batch", {"batch_ids": [1]})])
    assert claim_orphaned(db) == []  # this process is alive: its follow-ups are its own
    owe(db, [("retrain", "new_labels", {}), ("retrain", "new_labels", {}), ("drift", "new_batch", {"batch_ids": [1]})])
    _as_if_this_process_had_died(db)
    taken = claim_orphaned(db)
    assert [(o.job, o.params) for o in taken] == [("drift", {"batch_ids": [1]}), ("retrain", {})]
    assert taken[0].id == mine
    assert len(owed_jobs(db)) == 2  # the copies are gone; the taken rows are this process's now
    assert claim_orphaned(db) == []


def test_a_run_left_running_by_an_earlier_process_with_the_same_pid_is_closed(db):
    # A restarted container runs the service as pid 1 again: the pid alone cannot tell.
    run_id = start_run(db, "retrain", trigger="manual")
    with db.session() as session:
        row = session.get(JobRun, run_id)
        row.details = {**row.details, "token": "an-earlier-process"}
        session.add(row)
    mine = start_run(db, "drift", trigger="manual")
    assert close_interrupted(db) == [run_id]
    assert get_run(db, run_id).outcome == "failed" and get_run(db, mine).outcome == "running"
