"""Drift job on the month-by-month story (tests/jobs/scenario.py): quiet when the stream is
stable, an alert with a chart when it drifts, and the report behind `churnguard drift`."""

from __future__ import annotations

import json

import pytest

from churnguard import main
from jobs.drift_job import drift_settings
from jobs.reports import latest_drift, latest_report
from model.monitoring.drift import DriftReport

PNG = b"\x89PNG"


@pytest.mark.parametrize("month", [1, 2, 3])
def test_a_stable_month_raises_no_drift_alert(scenario, month):
    step = scenario.steps[f"stable_{month}"]
    drift = step.run("drift")
    assert drift.outcome == "ok"
    [checked] = drift.run.details["checked"]
    assert checked["verdict"] == "no_drift"
    assert checked["drifted"] == []
    assert step.alerts("drift") == []


def test_a_drifted_month_raises_a_drift_alert_with_a_chart(scenario):
    step = scenario.steps["covariate_4"]
    [checked] = step.run("drift").run.details["checked"]
    assert checked["verdict"] == "drift"
    [decision] = step.alerts("drift")
    assert decision.stored
    figures = decision.draft.figures
    assert figures["drifted_share"] > scenario.settings.drift_share
    assert {"Contract", "MonthlyCharges"} & set(figures["drifted_features"])
    assert figures["batch_id"] == checked["batch_id"] and figures["model_version"] == "v1"
    # the subscribers and admins got it, with the chart of the most drifted features
    sent = next(m for m in scenario.notifier.sent if m.alert_id == decision.alert_id)
    assert sent.kind == "drift" and sent.audience == "subscribers+admins"
    assert sent.chart_png is not None and sent.chart_png.startswith(PNG)
    assert "DRIFT" in sent.text and "covariate_04.csv" in sent.title


def test_the_score_distribution_is_tracked_too(scenario):
    stable = latest_report(scenario.db, "drift", batch_id=scenario.steps["stable_1"].run("ingest")
                           .run.details["new_batch_ids"][0])
    drifted = latest_report(scenario.db, "drift", batch_id=scenario.steps["covariate_4"].run("ingest")
                            .run.details["new_batch_ids"][0])
    assert stable.body["score"]["status"] in ("stable", "moderate")
    assert drifted.body["score"]["psi"] > stable.body["score"]["psi"]
    assert "Score distribution" in drifted.body["text"]


def test_concept_drift_leaves_the_data_unchanged(scenario):
    # who churns changed, not what the clients look like: the drift check stays quiet
    [checked] = scenario.steps["concept"].run("drift").run.details["checked"]
    assert checked["verdict"] == "no_drift"


def test_a_small_batch_is_too_small_to_judge(scenario):
    [checked] = scenario.steps["small_labelled"].run("drift").run.details["checked"]
    assert checked["verdict"] == "insufficient_data"
    assert scenario.steps["small_labelled"].alerts("drift") == []


def test_a_worse_drift_is_sent_again_within_the_cooldown(scenario):
    # the safe-clients batch drifts further than covariate month 4, within the same 24 h cooldown
    [decision] = scenario.steps["safe_clients"].alerts("drift")
    assert decision.stored and "worse than alert" in decision.reason
    first = scenario.steps["covariate_4"].alerts("drift")[0]
    assert decision.draft.level > first.draft.level


def test_every_check_is_stored_as_a_report_restorable_for_the_bot(scenario):
    view = latest_drift(scenario.db)
    assert view is not None and view.model_version == "v1"
    assert isinstance(view.report, DriftReport)
    assert view.report.settings == drift_settings(scenario.settings)
    assert view.chart_png().startswith(PNG)
    assert view.text.startswith("Data drift:")


def test_churnguard_drift_shows_the_latest_report(scenario, monkeypatch, capsys):
    monkeypatch.setenv("CHURNGUARD_HOME", str(scenario.settings.home))
    monkeypatch.setenv("CHURNGUARD_DATABASE_URL", scenario.settings.database_url)
    assert main(["drift", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)["report"]
    newest = latest_report(scenario.db, "drift")
    assert report["id"] == newest.id and report["verdict"] == newest.body["verdict"]
    assert {"drifted_share", "features", "score", "text", "batch_id"} <= set(report)
    assert main(["drift"]) == 0
    assert capsys.readouterr().out.startswith(f"Drift report #{newest.id}")
