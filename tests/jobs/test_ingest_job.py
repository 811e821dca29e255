"""The inbox: good files stored and moved to processed/, bad ones to rejected/ with the reason,
admins alerted, nothing of a bad file stored.  Both engines; no model needed (retrain is a fake)."""

from __future__ import annotations

import os
import sqlite3
import time
from datetime import datetime

import pytest

from churnguard import Settings
from jobs import ingest_job
from jobs.ingest_job import ARRIVAL_JOB, ARRIVAL_TARGET, inbox_files
from jobs.notifier import RecordingNotifier
from jobs.runner import FollowUp, JobContext, JobResult, JobRunner
from storage.ingest import ingest_file
from storage.schema import schema_from_settings
from storage.tables import Batch
from tests.conftest import TELCO

LINES = TELCO.read_text(encoding="utf-8").splitlines(keepends=True)


def telco_rows(start: int, stop: int, *, label: bool = True) -> str:
    """Telco lines start..stop (data rows, 0-based) with the header; optionally without the label."""
    rows = [LINES[0], *LINES[1 + start : 1 + stop]]
    if not label:
        rows = [line.rstrip("\n").rsplit(",", 1)[0] + "\n" for line in rows]
    return "".join(rows)


@pytest.fixture
def settings(home, db):
    return Settings(database_url=db.url)


@pytest.fixture
def retrains():
    return []


@pytest.fixture
def runner(settings, db, retrains):
    def fake_retrain(ctx):
        retrains.append(ctx.trigger)
        return JobResult("fake retrain")

    return JobRunner(settings, db, RecordingNotifier(), jobs={"retrain": fake_retrain, ARRIVAL_JOB: ARRIVAL_TARGET})


def drop(settings, name: str, content: str | bytes):
    inbox = settings.inbox_dir
    inbox.mkdir(parents=True, exist_ok=True)
    path = inbox / name
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return path


def batches(db) -> list[Batch]:
    with db.session() as session:
        from sqlmodel import col, select

        return list(session.exec(select(Batch).order_by(col(Batch.id))).all())


def test_a_good_file_is_stored_and_moved_to_processed(settings, db, runner, retrains):
    drop(settings, "crm_2024_01.csv", telco_rows(0, 300))
    reports = runner.run_sync("ingest")
    ingest = reports[0]
    assert ingest.outcome == "ok"
    assert ingest.summary.startswith("1 batch(es) stored, 0 already known, 0 rejected")
    [batch] = batches(db)
    assert (batch.source_name, batch.row_count, batch.labelled) == ("crm_2024_01.csv", 300, True)
    assert not (settings.inbox_dir / "crm_2024_01.csv").exists()
    assert (settings.inbox_dir / "processed" / "crm_2024_01.csv").is_file()
    assert ingest.run.details["new_batch_ids"] == [batch.id]
    assert "no champion yet" in ingest.summary
    # the new batch is handed to the checks, and a labelled batch asks for a retrain
    assert [r.job for r in reports] == ["ingest", "drift", "performance", "retrain"]
    assert [r.outcome for r in reports[1:3]] == ["skipped", "skipped"]  # no champion to compare with
    assert retrains == ["new_labels"]


def test_an_unlabelled_batch_asks_for_no_retrain(settings, db, runner, retrains):
    drop(settings, "scores_only.csv", telco_rows(0, 100, label=False))
    reports = runner.run_sync("ingest")
    assert [r.job for r in reports] == ["ingest", "drift", "performance"]
    assert retrains == []


def test_new_labels_do_not_retrain_when_the_trigger_is_off(settings, db, retrains):
    quiet = settings.model_copy(update={"retrain_on": ["schedule", "recall"]})
    runner = JobRunner(quiet, db, None, jobs={"retrain": lambda ctx: retrains.append(1) or JobResult("x")})
    drop(quiet, "a.csv", telco_rows(0, 100))
    assert [r.job for r in runner.run_sync("ingest")] == ["ingest", "drift", "performance"]


def test_a_bad_file_is_rejected_with_its_reason_and_admins_are_alerted(settings, db, runner):
    # given a file without the client id column
    before = db.row_counts()
    bad = "plan,Churn\nbasic,Yes\npro,No\n"
    drop(settings, "broken.csv", bad)
    [report] = runner.run_sync("ingest")
    # then it moved to rejected/ with an .error.txt that says why, and nothing was stored
    rejected = settings.inbox_dir / "rejected"
    assert (rejected / "broken.csv").read_text() == bad
    reason = (rejected / "broken.csv.error.txt").read_text()
    assert "Nothing of it was stored" in reason and "customerID" in reason
    after = db.row_counts()
    assert {k: v for k, v in after.items() if k not in ("alert", "job_run")} == \
        {k: v for k, v in before.items() if k not in ("alert", "job_run")}
    assert report.summary.startswith("0 batch(es) stored, 0 already known, 1 rejected")
    # and the admins got an ingest_rejected alert naming the file
    [alert] = runner.notifier.sent
    assert alert.kind == "ingest_rejected" and alert.audience == "admins"
    assert alert.figures["file"] == "broken.csv" and "customerID" in alert.text


def test_rejecting_the_same_bytes_again_is_not_alerted_twice(settings, db, runner):
    drop(settings, "broken.csv", "plan,Churn\nbasic,Yes\n")
    runner.run_sync("ingest")
    drop(settings, "broken.csv", "plan,Churn\nbasic,Yes\n")
    runner.run_sync("ingest")
    rejected = sorted(p.name for p in (settings.inbox_dir / "rejected").iterdir())
    assert len([n for n in rejected if n.endswith(".error.txt")]) == 2  # both kept, none overwritten
    assert runner.notifier.kinds() == ["ingest_rejected"]


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("picture.csv", b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, "PNG"),
        ("empty.csv", b"", "empty"),
        ("dupes.csv", "customerID,tenure,Churn\nA,1,Yes\nA,2,No\n", "A"),
    ],
)
def test_each_kind_of_bad_file_is_rejected_and_nothing_stored(settings, db, runner, name, content, expected):
    drop(settings, name, content)
    [report] = runner.run_sync("ingest")
    assert report.outcome == "ok" and "1 rejected" in report.summary
    assert expected in (settings.inbox_dir / "rejected" / f"{name}.error.txt").read_text()
    assert db.row_counts()["client_record"] == 0 and db.row_counts()["batch"] == 0


def test_a_file_sent_twice_is_stored_once(settings, db, runner):
    drop(settings, "jan.csv", telco_rows(0, 50, label=False))
    runner.run_sync("ingest", follow=False)
    drop(settings, "jan.csv", telco_rows(0, 50, label=False))
    [report] = runner.run_sync("ingest", follow=False)
    assert report.summary.startswith("0 batch(es) stored, 1 already known")
    assert len(batches(db)) == 1
    assert len(list((settings.inbox_dir / "processed").iterdir())) == 2  # the second copy kept beside
    assert runner.notifier.sent == []


def test_files_are_taken_in_natural_order_and_partial_ones_are_left(settings, db, runner):
    drop(settings, "month_10.csv", telco_rows(200, 250, label=False))
    drop(settings, "month_2.csv", telco_rows(100, 150, label=False))
    drop(settings, "month_1.csv", telco_rows(0, 50, label=False))
    drop(settings, "month_11.csv.part", "being copied")
    drop(settings, ".month_12.csv", "hidden")
    runner.run_sync("ingest", follow=False)
    assert [b.source_name for b in batches(db)] == ["month_1.csv", "month_2.csv", "month_10.csv"]
    assert sorted(p.name for p in settings.inbox_dir.iterdir() if p.is_file()) == [".month_12.csv",
                                                                                  "month_11.csv.part"]


def test_a_scheduled_run_waits_for_a_file_that_is_still_changing(settings, db, runner):
    path = drop(settings, "fresh.csv", telco_rows(0, 20, label=False))
    assert inbox_files(settings.inbox_dir, settle_seconds=60) == []
    # a scheduled run leaves it, a manual one takes it
    [scheduled] = runner.run_sync("ingest", trigger="schedule", follow=False)
    assert "empty" in scheduled.summary and path.exists()
    old = time.time() - 120
    os.utime(path, (old, old))
    [later] = runner.run_sync("ingest", trigger="schedule", follow=False)
    assert later.summary.startswith("1 batch(es) stored")


def test_an_explicit_schema_that_conflicts_with_the_store_rejects_the_file(settings, db, runner):
    drop(settings, "first.csv", telco_rows(0, 30, label=False))
    runner.run_sync("ingest", follow=False)
    other = settings.model_copy(update={"id_column": "CLIENTNUM"}, deep=True)
    other.model_fields_set.add("id_column")
    conflicting = JobRunner(other, db, RecordingNotifier())
    drop(settings, "second.csv", telco_rows(30, 60, label=False))
    [report] = conflicting.run_sync("ingest", follow=False)
    assert "1 rejected" in report.summary
    assert "remembers id column 'customerID'" in (settings.inbox_dir / "rejected" / "second.csv.error.txt").read_text()
    assert len(batches(db)) == 1


def test_inbox_files_are_dated_by_the_as_of_column_setting(settings, db):
    dated = Settings(database_url=db.url, as_of_column="snapshot")
    runner = JobRunner(dated, db, RecordingNotifier())
    rows = telco_rows(0, 20).splitlines(keepends=True)
    content = "".join([f"snapshot,{rows[0]}", *(f"31.03.2024,{line}" for line in rows[1:])])
    drop(dated, "crm_2024_03.csv", content)

    [report] = runner.run_sync("ingest", follow=False)

    assert report.outcome == "ok" and "1 batch(es) stored" in report.summary
    with db.read_session() as session:
        from sqlmodel import select

        from storage.tables import ClientRecord

        stored = session.exec(select(ClientRecord)).all()
    assert len(stored) == 20 and {r.as_of for r in stored} == {datetime(2024, 3, 31)}
    assert all("snapshot" not in r.data for r in stored)


def test_the_inbox_folders_are_created(settings, db, runner):
    [report] = runner.run_sync("ingest", follow=False)
    assert "is empty" in report.summary
    assert (settings.inbox_dir / "processed").is_dir() and (settings.inbox_dir / "rejected").is_dir()


def test_rows_are_pulled_from_a_sql_source_once(settings, db, runner, tmp_path):
    # given a CRM database with a clients table that has an update time
    source = tmp_path / "crm.db"
    with sqlite3.connect(source) as crm:
        crm.execute("create table clients (customerID text, tenure int, Contract text, updated_at text)")
        crm.executemany("insert into clients values (?, ?, ?, ?)",
                        [(f"C{i}", i % 40, "One year" if i % 3 else "Month-to-month", "2024-01-01") for i in range(60)])
    sql = settings.model_copy(update={
        "source_url": f"sqlite:///{source}",
        "source_query": "select customerID, tenure, Contract from clients where updated_at > :since",
    })
    runner = JobRunner(sql, db, RecordingNotifier())
    [first] = runner.run_sync("ingest", follow=False)
    assert first.summary.startswith("1 batch(es) stored")
    [batch] = batches(db)
    assert batch.row_count == 60 and batch.source_name.startswith("sql:sqlite:///")
    # when nothing changed since the last pull, nothing new is stored
    [second] = runner.run_sync("ingest", follow=False)
    assert second.summary.startswith("0 batch(es) stored, 1 already known")
    assert len(batches(db)) == 1


def test_an_unreachable_sql_source_alerts_the_admins(settings, db, tmp_path):
    broken = settings.model_copy(update={"source_url": f"sqlite:///{tmp_path}/missing/crm.db",
                                         "source_query": "select * from clients"})
    runner = JobRunner(broken, db, RecordingNotifier())
    [report] = runner.run_sync("ingest", follow=False)
    assert report.outcome == "ok" and "1 rejected" in report.summary
    [alert] = runner.notifier.sent
    assert alert.kind == "ingest_rejected" and "could not be read" in alert.text


def context(settings, db, job: str, **params) -> JobContext:
    return JobContext(settings, db, 0, job, "manual", params, lambda _line: None)


def store_like_the_bot(settings, db, path) -> int:
    """What bot/handlers/upload.py does with a document: ``ingest_file``, nothing else."""
    schema, explicit = schema_from_settings(settings)
    report = ingest_file(db, path, schema=schema, explicit=explicit, source_name=path.name)
    assert report.stored
    return report.batch_id


def with_batch(follow_ups: list[FollowUp], batch_id: int) -> list[FollowUp]:
    """The same follow-ups, naming ``batch_id`` as the new batch."""
    return [FollowUp(f.job, f.trigger, {**f.params, "batch_ids": [batch_id]} if "batch_ids" in f.params else f.params)
            for f in follow_ups]


@pytest.mark.parametrize(("labelled", "retrain_on", "jobs"), [
    (True, ["schedule", "new_labels"], ["drift", "performance", "retrain"]),
    (True, ["schedule", "drift"], ["drift", "performance"]),
    (False, ["new_labels"], ["drift", "performance"]),
])
def test_an_upload_asks_for_exactly_the_follow_ups_of_an_inbox_file(settings, db, tmp_path, labelled, retrain_on,
                                                                     jobs):
    settings = settings.model_copy(update={"retrain_on": retrain_on})
    # given one file through the inbox job and one stored as the bot stores an upload
    drop(settings, "inbox.csv", telco_rows(0, 100, label=labelled))
    inbox = ingest_job.run(context(settings, db, "ingest"))
    [inbox_batch] = inbox.details["new_batch_ids"]
    uploaded = tmp_path / "upload.csv"
    uploaded.write_text(telco_rows(100, 200, label=labelled))
    upload_batch = store_like_the_bot(settings, db, uploaded)
    # when the bot's path follows the upload up (the arrival job)
    arrival = ingest_job.run_arrival(context(settings, db, ARRIVAL_JOB, batch_ids=[upload_batch]))
    # then it asks for the same jobs, in the same order, with the same triggers, for its batch
    assert [f.job for f in inbox.follow_ups] == jobs
    assert arrival.follow_ups == with_batch(inbox.follow_ups, upload_batch)
    assert inbox.follow_ups == with_batch(inbox.follow_ups, inbox_batch)
    # and both scored on arrival the same way (no champion in this store)
    assert arrival.details["scoring"] == inbox.details["scoring"] == ["no champion yet, new batches not scored"]


def test_the_arrival_job_runs_its_follow_ups_through_the_runner(settings, db, runner, retrains, tmp_path):
    uploaded = tmp_path / "upload.csv"
    uploaded.write_text(telco_rows(0, 100))
    batch_id = store_like_the_bot(settings, db, uploaded)
    reports = runner.run_sync(ARRIVAL_JOB, trigger="upload", params={"batch_ids": [batch_id]})
    assert [(r.job, r.run.details["trigger"]) for r in reports] == [
        ("arrival", "upload"), ("drift", "new_batch"), ("performance", "new_batch"), ("retrain", "new_labels")]
    assert [r.run.details["params"] for r in reports[1:3]] == [{"batch_ids": [batch_id]}] * 2
    assert retrains == ["new_labels"]
    # an arrival naming no batch does nothing
    [nothing] = runner.run_sync(ARRIVAL_JOB, trigger="upload", params={})
    assert (nothing.outcome, nothing.summary) == ("skipped", "no new batch named: nothing to follow up")
