"""Job runs in storage: start, end, outcome, error; and runs a dead process left open."""

from __future__ import annotations

import subprocess
import sys

import pytest

from jobs.runs import close_interrupted, finish_run, get_run, last_runs, last_success, recent_runs, start_run
from storage.tables import JobRun


def test_a_run_is_recorded_from_start_to_end(db):
    # given a started run
    run_id = start_run(db, "drift", trigger="schedule", details={"params": {"batch_ids": [3]}})
    running = get_run(db, run_id)
    assert running.outcome == "running" and running.finished_at is None
    assert running.details["trigger"] == "schedule"
    # when it finishes
    view = finish_run(db, run_id, "ok", details={"summary": "no drift"})
    # then end time, outcome and merged details are stored
    assert view.outcome == "ok" and view.error is None
    assert view.finished_at >= view.started_at and view.seconds >= 0
    assert view.details["summary"] == "no drift" and view.details["params"] == {"batch_ids": [3]}
    assert get_run(db, run_id).as_dict()["outcome"] == "ok"


def test_a_failed_run_keeps_its_error(db):
    run_id = start_run(db, "retrain", trigger="manual")
    finish_run(db, run_id, "failed", error="RuntimeError: boom")
    assert get_run(db, run_id).error == "RuntimeError: boom"
    assert last_success(db, "retrain") is None


def test_an_unfinished_outcome_is_refused(db):
    run_id = start_run(db, "ingest", trigger="manual")
    with pytest.raises(ValueError, match="ok, failed, skipped or cancelled"):
        finish_run(db, run_id, "running")
    with pytest.raises(LookupError):
        finish_run(db, run_id + 100, "ok")


def test_last_runs_gives_the_newest_run_of_each_job(db):
    first = start_run(db, "ingest", trigger="schedule")
    finish_run(db, first, "ok")
    second = start_run(db, "ingest", trigger="schedule")
    finish_run(db, second, "failed", error="disk full")
    drift = start_run(db, "drift", trigger="manual")
    runs = last_runs(db)
    assert set(runs) == {"ingest", "drift"}
    assert runs["ingest"].id == second and runs["ingest"].outcome == "failed"
    assert runs["drift"].id == drift and runs["drift"].outcome == "running"
    assert last_success(db, "ingest").id == first
    assert [r.id for r in recent_runs(db, job="ingest")] == [second, first]
    assert len(recent_runs(db, limit=2)) == 2


def test_runs_of_a_dead_process_are_closed_as_interrupted(db):
    # given a run started by a process that has since died, and one by this live process
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(dead.stdout)
    orphan = start_run(db, "retrain", trigger="schedule")
    with db.session() as session:
        row = session.get(JobRun, orphan)
        row.details = {**row.details, "pid": dead_pid}
        session.add(row)
    mine = start_run(db, "ingest", trigger="schedule")
    # when a restarted service cleans up
    closed = close_interrupted(db)
    # then only the dead process's run is failed, with a clear error
    assert closed == [orphan]
    assert get_run(db, orphan).outcome == "failed"
    assert "interrupted" in get_run(db, orphan).error
    assert get_run(db, mine).outcome == "running"
