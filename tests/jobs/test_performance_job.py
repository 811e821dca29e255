"""Performance job on the month-by-month story: realised recall once outcomes arrive (checked
against an independent sklearn computation), no verdict on too few churners, and the
estimated recall (CBPE) before labels arrive."""

from __future__ import annotations

import pandas as pd
import pytest
from sklearn.metrics import recall_score

from churnguard import Settings
from jobs.notifier import RecordingNotifier
from jobs.reports import latest_report
from jobs.runner import JobRunner
from model.artifact import ChurnModel
from model.service import open_registry
from storage.ingest import ingest_file
from storage.schema import schema_from_settings
from tests.jobs.scenario import _FIRST_MODEL, adopt

PNG = b"\x89PNG"


def independent_recall(path, model_dir, threshold) -> tuple[float, int, int]:
    """Recall of the champion on a CRM file, computed without any ChurnGuard storage or job code:
    read the file, score it with the saved model, compare with the file's labels."""
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    model = ChurnModel.load(model_dir)
    y_true = (frame["Churn"] == "Yes").to_numpy()
    features = frame.drop(columns=["customerID", "Churn"]).replace({"": None})
    scored = ~(pd.to_numeric(frame["tenure"], errors="coerce") <= 0).to_numpy()  # CHURNGUARD_NO_HISTORY_RULE
    y_pred = model.predict_proba_frame(features.loc[scored]) >= threshold
    truth = y_true[scored]
    return float(recall_score(truth, y_pred)), int(truth.sum()), int((truth & y_pred).sum())


def v1(scenario):
    return scenario.runner.services["registry"].get("v1")


def test_a_recall_drop_raises_an_alert_that_matches_sklearn(scenario):
    step = scenario.steps["concept"]
    [decision] = step.alerts("recall")
    assert decision.stored
    figures = decision.draft.figures
    info = v1(scenario)
    recall, churners, caught = independent_recall(step.file, info.artifact_dir, info.threshold)
    assert recall < scenario.settings.recall_target
    assert figures["recall"] == pytest.approx(recall, abs=1e-12)
    assert (figures["churners"], figures["caught"]) == (churners, caught)
    assert figures["model_version"] == "v1" and figures["threshold"] == pytest.approx(info.threshold)


def test_the_recall_alert_gives_the_interval_and_the_churners_behind_it(scenario):
    [decision] = scenario.steps["concept"].alerts("recall")
    figures = decision.draft.figures
    low, high = figures["recall_ci"]
    assert low < figures["recall"] < high and figures["confidence"] == 0.95
    assert figures["churners"] >= scenario.settings.min_churners
    assert figures["missed"] == figures["churners"] - figures["caught"]
    assert 0 < figures["precision"] < 1 and 0 < figures["pr_auc"] < 1
    assert decision.draft.severity == ("critical" if high < 0.9 else "warning")
    sent = next(m for m in scenario.notifier.sent if m.alert_id == decision.alert_id)
    assert sent.audience == "subscribers+admins" and sent.chart_png.startswith(PNG)
    assert f"{figures['caught']} of {figures['churners']} churners caught" in sent.text


def test_the_realised_result_is_stored_as_a_report(scenario):
    batch_id = scenario.steps["concept"].run("ingest").run.details["new_batch_ids"][0]
    report = latest_report(scenario.db, "performance", batch_id=batch_id)
    assert report.model_version == "v1"
    assert report.body["realised"]["status"] == "below_target"
    assert report.body["predictions"] == "scored by v1, which never trained on them"
    assert report.body["estimated"] is None  # every record of the batch has its outcome


def test_too_few_churners_give_no_alert_and_the_report_says_so(scenario):
    step = scenario.steps["small_labelled"]
    assert step.alerts("recall") == []
    [checked] = step.run("performance").run.details["checked"]
    assert checked["realised"] == "insufficient_data"
    report = latest_report(scenario.db, "performance", batch_id=checked["batch_id"])
    assert report.body["text"].startswith("Not enough churners for a reliable recall")
    assert report.body["realised"]["n_churners"] < scenario.settings.min_churners


@pytest.mark.parametrize("month", [1, 2, 3])
def test_before_labels_arrive_the_estimated_recall_is_reported(scenario, month):
    step = scenario.steps[f"stable_{month}"]
    [checked] = step.run("performance").run.details["checked"]
    assert checked["realised"] is None
    assert checked["estimated"] == "ok" and checked["estimated_recall"] >= scenario.settings.recall_target
    assert step.alerts("early_warning") == []


def test_an_estimated_recall_below_target_is_an_early_warning(scenario):
    step = scenario.steps["safe_clients"]
    [decision] = step.alerts("early_warning")
    figures = decision.draft.figures
    assert figures["estimated_recall"] == 0.0 and figures["flagged"] == 0
    assert figures["expected_churners"] >= scenario.settings.min_churners
    assert decision.draft.audience == "subscribers+admins"


# ------------------------------------------------------------------ batches that did not come through the inbox


@pytest.fixture
def store(scenario, fresh_store, tmp_path):
    """An empty store on the scenario's engine whose champion is a copy of the story's v1."""
    assert _FIRST_MODEL, "the scenario trains v1 first"
    settings = Settings(home=tmp_path / "home", database_url=fresh_store.url, retrain_on=["schedule"])
    registry = open_registry(fresh_store, settings)
    adopt(registry, _FIRST_MODEL["info"], batch_ids=[])
    runner = JobRunner(settings, fresh_store, RecordingNotifier(), services={"registry": registry})
    return settings, runner


def test_a_batch_stored_by_churnguard_ingest_is_scored_by_the_performance_job(scenario, store):
    settings, runner = store
    concept = scenario.steps["concept"]
    schema, explicit = schema_from_settings(settings)
    report = ingest_file(runner.db, concept.file, schema=schema, explicit=explicit)  # no inbox, no scoring
    [run] = runner.run_sync("performance", params={"batch_ids": [report.batch_id]})
    [checked] = run.run.details["checked"]
    body = latest_report(runner.db, "performance", batch_id=report.batch_id).body
    assert body["predictions"] == "scored by v1, which never trained on them"
    assert checked["recall"] == pytest.approx(concept.alerts("recall")[0].draft.figures["recall"], abs=1e-12)


def test_a_batch_of_outcomes_only_measures_the_records_it_completes(scenario, store):
    settings, runner = store
    concept = pd.read_csv(scenario.steps["concept"].file, dtype=str, keep_default_na=False)
    inbox = settings.inbox_dir
    inbox.mkdir(parents=True)
    # given the clients arrived without outcomes (scored on arrival) ...
    concept.drop(columns=["Churn"]).to_csv(inbox / "march_clients.csv", index=False)
    runner.run_sync("ingest")
    # ... and their outcomes come later in a file of ids and labels only
    concept[["customerID", "Churn"]].to_csv(inbox / "march_outcomes.csv", index=False)
    reports = runner.run_sync("ingest")
    drift = next(r for r in reports if r.job == "drift")
    assert drift.run.details["checked"][0]["verdict"] == "not_checked"
    [checked] = next(r for r in reports if r.job == "performance").run.details["checked"]
    body = latest_report(runner.db, "performance", batch_id=checked["batch_id"]).body
    assert body["predictions"] == "scored by v1, which never trained on them"
    info = _FIRST_MODEL["info"]
    recall, churners, _ = independent_recall(scenario.steps["concept"].file, info.artifact_dir, info.threshold)
    assert checked["recall"] == pytest.approx(recall, abs=1e-12)
    assert body["realised"]["n_churners"] == churners
    assert [m.kind for m in runner.notifier.sent] == ["recall"]


def test_rows_the_champion_learnt_from_are_left_out_of_the_measure(scenario, fresh_store, tmp_path):
    settings = Settings(home=tmp_path / "home", database_url=fresh_store.url, retrain_on=["schedule"])
    schema, explicit = schema_from_settings(settings)
    telco = scenario.steps["telco"].file
    trained = ChurnModel.load(_FIRST_MODEL["info"].artifact_dir).newest_training_date()
    # the very rows it learnt from: the same clients at the same as-of date
    report = ingest_file(fresh_store, telco, schema=schema, explicit=explicit, as_of=trained.to_pydatetime())
    registry = open_registry(fresh_store, settings)
    adopt(registry, _FIRST_MODEL["info"], batch_ids=[report.batch_id])
    runner = JobRunner(settings, fresh_store, None, services={"registry": registry})
    [run] = runner.run_sync("performance")
    assert run.outcome == "ok", run.summary
    body = latest_report(fresh_store, "performance", batch_id=report.batch_id).body
    model = registry.serving().model
    clients = pd.read_csv(telco, dtype=str)
    scored = clients.loc[pd.to_numeric(clients["tenure"]) > 0, "customerID"]  # CHURNGUARD_NO_HISTORY_RULE
    fitted = int(model.trained_on(scored).sum())
    assert 0 < fitted < len(scored)
    assert body["n_trained_on"] == fitted  # its own training rows would flatter it
    assert body["n_scored"] + body["n_trained_on"] == len(scored)
    assert f"({fitted} rows it trained on left out)" in body["predictions"]
