"""The command line: `churnguard jobs list|run`, `churnguard drift`, `churnguard alerts`, text and --json.

These run `churnguard.main` in-process against a store on both engines; the model-dependent
outputs (a drift report, recall alerts) are checked in test_pipeline-style modules that train.
"""

from __future__ import annotations

import json

import pytest

from churnguard import main
from jobs.alerts import AlertDraft, raise_alert
from jobs.reports import store_report

BAD = "plan,Churn\nbasic,Yes\n"


@pytest.fixture
def cli(home, db, monkeypatch, capsys):
    monkeypatch.setenv("CHURNGUARD_DATABASE_URL", db.url)

    def run(*argv: str) -> tuple[int, str, str]:
        code = main(list(argv))
        out, err = capsys.readouterr()
        return code, out, err

    return run


def test_jobs_list_shows_each_schedule_in_text_and_json(cli):
    code, out, _ = cli("jobs", "list")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith("Job") and "Schedule (UTC)" in lines[0]
    assert any(line.startswith("ingest") and "*/5 * * * *" in line for line in lines)
    code, out, _ = cli("jobs", "list", "--json")
    jobs = {item["job"]: item for item in json.loads(out)["jobs"]}
    assert set(jobs) == {"ingest", "drift", "performance", "retrain"}
    assert jobs["retrain"] == {**jobs["retrain"], "cron": "0 3 * * 0", "setting": "CHURNGUARD_RETRAIN_CRON",
                               "enabled": True, "last_run": None}
    assert jobs["ingest"]["next_run"] is not None


def test_jobs_list_shows_a_disabled_schedule_and_the_last_run(cli, monkeypatch):
    monkeypatch.setenv("CHURNGUARD_DRIFT_CRON", "off")
    assert cli("jobs", "run", "ingest")[0] == 0
    code, out, _ = cli("jobs", "list")
    assert code == 0 and "off (CHURNGUARD_DRIFT_CRON)" in out
    ingest_line = next(line for line in out.splitlines() if line.startswith("ingest"))
    assert ingest_line.rstrip().endswith("ok")
    payload = json.loads(cli("jobs", "list", "--json")[1])
    ingest = next(item for item in payload["jobs"] if item["job"] == "ingest")
    assert ingest["last_run"]["outcome"] == "ok" and ingest["last_run"]["details"]["trigger"] == "manual"


def test_jobs_run_ingest_rejects_a_bad_file_and_stores_the_alert_for_the_bot(cli, home, db):
    inbox = home / "inbox"
    inbox.mkdir(parents=True)
    (inbox / "broken.csv").write_text(BAD)
    code, out, _ = cli("jobs", "run", "ingest", "--json")
    assert code == 0
    payload = json.loads(out)
    assert payload["job"] == "ingest" and payload["outcome"] == "ok"
    [run] = payload["runs"]
    assert run["details"]["files"][0]["status"] == "rejected"
    assert run["alerts"][0]["kind"] == "ingest_rejected" and run["alerts"][0]["stored"]
    assert (inbox / "rejected" / "broken.csv.error.txt").is_file()
    # the alert waits for the running service to deliver it
    code, out, _ = cli("alerts", "--json")
    [alert] = json.loads(out)["alerts"]
    assert alert["kind"] == "ingest_rejected" and alert["sent_at"] is None
    assert alert["figures"]["file"] == "broken.csv"


def test_jobs_run_prints_a_line_per_run(cli, home):
    code, out, _ = cli("jobs", "run", "drift")
    assert code == 0
    assert out.strip() == "drift: skipped — no champion model yet: nothing to compare with"


def test_jobs_run_of_an_unknown_job_is_one_clear_line(cli):
    code, out, err = cli("jobs", "run", "backup")
    assert code == 2 and out == ""
    assert err.strip() == "churnguard: unknown job 'backup'; jobs are: ingest, drift, performance, retrain"


def test_retrain_without_labelled_data_is_skipped_with_the_reason(cli):
    code, out, _ = cli("jobs", "run", "retrain")
    assert code == 0
    assert out.strip() == ("retrain: skipped — no labelled data stored yet: ingest a CRM export with the label "
                           "column first")


def test_a_failed_job_exits_1_and_says_why(cli, home, monkeypatch):
    # given labelled data and a trainer that crashes
    inbox = home / "inbox"
    inbox.mkdir(parents=True)
    (inbox / "labelled.csv").write_text("customerID,tenure,Churn\nA,1,Yes\nB,5,No\nC,7,No\n")
    monkeypatch.setenv("CHURNGUARD_RETRAIN_ON", "schedule")
    assert cli("jobs", "run", "ingest")[0] == 0

    def crash(db, settings, **kwargs):
        raise MemoryError("out of memory while training")

    monkeypatch.setattr("jobs.retrain_job.default_trainer", crash)
    code, out, _ = cli("jobs", "run", "retrain")
    assert code == 1
    assert out.startswith("retrain: failed — retrain failed: MemoryError: out of memory while training")
    assert "critical job_failed alert" in out


def test_drift_without_a_report_says_so(cli):
    code, out, _ = cli("drift")
    assert code == 0 and out.startswith("No drift report yet")
    code, out, _ = cli("drift", "--json")
    assert json.loads(out)["report"] is None


def test_drift_shows_the_latest_report(cli, db):
    store_report(db, "drift", {"verdict": "no_drift", "text": "old"}, model_version="v1", batch_id=1)
    store_report(db, "drift", {"verdict": "drift", "text": "Data drift: DRIFT — 40% of the feature weight"},
                 model_version="v1", batch_id=2)
    code, out, _ = cli("drift")
    assert code == 0 and "batch #2" in out and "DRIFT — 40%" in out and "old" not in out
    report = json.loads(cli("drift", "--json")[1])["report"]
    assert (report["verdict"], report["batch_id"], report["model_version"]) == ("drift", 2, "v1")


def test_alerts_lists_the_newest_first_with_kind_severity_time_and_figures(cli, db):
    assert cli("alerts")[1].strip() == "No alerts yet."
    for n, kind in enumerate(("drift", "recall", "early_warning")):
        raise_alert(db, AlertDraft(kind, "warning", "v1", f"{kind} title", f"{kind} text", {"n": n}),
                    cooldown_hours=24)
    code, out, _ = cli("alerts", "-n", "2")
    assert code == 0
    lines = [line for line in out.splitlines() if not line.startswith("    ")]
    assert len(lines) == 2 and "early_warning" in lines[0] and "recall" in lines[1]
    items = json.loads(cli("alerts", "--json")[1])["alerts"]
    assert [a["kind"] for a in items] == ["early_warning", "recall", "drift"]
    assert set(items[0]) >= {"kind", "severity", "time", "figures", "title", "message"}
    assert items[2]["figures"]["n"] == 0


@pytest.mark.parametrize("n", ["0", "1001"])
def test_alerts_n_out_of_range_is_refused(cli, n):
    code, _, err = cli("alerts", "-n", n)
    assert code == 2 and "-n must be between 1 and 1000" in err
