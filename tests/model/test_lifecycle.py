"""End to end: real data sets in, a gated model and a complete JSON report out."""

import json

import numpy as np
import pandas as pd
import pytest

from model.artifact import ChurnModel
from model.config import TrainConfig
from model.evaluation import classification_metrics
from model.lifecycle import train_lifecycle
from model.split import split_rows
from storage.errors import UserError
from storage.schema import Schema
from tests.model.training_data import (
    CHURN_MODELLING_SCHEMA,
    FAST,
    TELCO_SCHEMA,
    churn_modelling_frame,
    telco_frame,
    trained_telco,
)

REPORT_KEYS = {"threshold", "threshold_rule", "split", "metrics", "baselines", "roi", "processing", "tuning",
               "gate", "training_seconds"}


def test_telco_end_to_end_meets_the_recall_target_with_a_complete_report():
    outcome = trained_telco()
    report = outcome.report

    assert set(report) >= REPORT_KEYS
    json.dumps(report, allow_nan=False)
    test = report["metrics"]["test"]
    assert set(test) == {"lightgbm", "majority", "logistic"}
    assert test["lightgbm"]["recall"] >= 0.90
    assert test["lightgbm"]["precision"] > test["majority"]["precision"]
    assert set(report["metrics"]["validation"]) == set(report["metrics"]["oof"]) == {"lightgbm"}
    for name in ("majority", "logistic"):
        assert report["baselines"][name]["threshold"] == test[name]["threshold"]
    assert report["baselines"]["majority"]["test"]["flagged_share"] == 1.0
    # split sizes: 70/10/20 of 7043 rows, every churner somewhere
    split = report["split"]
    assert [split[p]["rows"] for p in ("train", "validation", "test")] == [4929, 705, 1409]
    assert sum(split[p]["positives"] for p in ("train", "validation", "test")) == 1869
    # processing
    processing = report["processing"]
    assert processing["dropped_columns"] == {"customerID": "identifier"}
    assert processing["imputed"]["TotalCharges"] == 11
    assert processing["engineered"][0]["name"] == "TotalCharges_per_tenure"
    assert processing["scaled_for"] == "logistic"
    # ROI on the test split uses the LightGBM confusion matrix
    roi = report["roi"]
    assert (roi["tp"], roi["flagged"]) == (test["lightgbm"]["tp"], test["lightgbm"]["flagged"])
    assert roi["benefit"] == pytest.approx(roi["tp"] * 0.25 * 300)
    assert roi["roi"] == pytest.approx((roi["benefit"] - roi["cost"]) / roi["cost"])
    assert report["tuning"]["trials"] == 2 and "num_boost_round" in report["tuning"]["best_params"]
    assert report["threshold"] == outcome.model.threshold_
    assert report["threshold_rule"]["lower_bound"] >= 0.90
    assert isinstance(report["gate"]["passed"], bool) and isinstance(report["gate"]["reasons"], list)


def test_reported_test_metrics_are_what_the_saved_model_scores(tmp_path):
    outcome = trained_telco()
    outcome.model.save(tmp_path / "m")

    scores = ChurnModel.load(tmp_path / "m").predict_proba_frame(outcome.test_frame)

    np.testing.assert_array_equal(scores, outcome.test_scores["lightgbm"])
    flagged = scores >= outcome.report["threshold"]
    assert int(flagged.sum()) == outcome.report["metrics"]["test"]["lightgbm"]["flagged"]
    assert outcome.test_labels.sum() == outcome.report["split"]["test"]["positives"]


def test_churn_modelling_end_to_end_with_a_champion_from_another_schema():
    messages = []
    champion = trained_telco().model  # knows none of Churn_Modelling's columns

    outcome = train_lifecycle(churn_modelling_frame(), schema=CHURN_MODELLING_SCHEMA, config=FAST,
                              champion=champion, progress=messages.append)

    report = outcome.report
    assert report["metrics"]["test"]["lightgbm"]["recall"] >= 0.90
    assert report["metrics"]["test"]["lightgbm"]["pr_auc"] > report["metrics"]["test"]["logistic"]["pr_auc"]
    assert report["processing"]["dropped_columns"] == {
        "RowNumber": "ignored by settings", "CustomerId": "identifier", "Surname": "ignored by settings"}
    assert report["processing"]["engineered"] == []
    # the champion scored the same rows, every column it needs counted as missing
    assert report["metrics"]["test"]["champion"]["rows"] == report["split"]["test"]["rows"]
    assert "treated as missing" in report["champion"]["note"]
    assert report["gate"]["passed"], report["gate"]["reasons"]
    assert messages[0] == "preparing data" and messages[-1] == "done"
    assert any(m.startswith("tuning 1/2 trials") for m in messages) and "threshold" in messages


class Unusable(ChurnModel):
    def __init__(self):  # a champion whose files cannot score anything
        self.threshold_ = 0.5
        self.raw_columns_ = []

    def predict_proba_frame(self, frame):
        raise RuntimeError("booster file damaged")


def small_frame(rows=400, positives=80, seed=0):
    rng = np.random.default_rng(seed)
    y = np.r_[np.ones(positives, int), np.zeros(rows - positives, int)]
    return pd.DataFrame({
        "id": [f"c{i}" for i in range(rows)],
        "label": y,
        "usage": rng.normal(size=rows) - y,
        "plan": rng.choice(["a", "b", "c"], size=rows),
    })


def test_a_champion_that_cannot_score_is_reported_not_fatal():
    outcome = train_lifecycle(small_frame(), schema=Schema("id", "label", "1", ()),
                              config=TrainConfig(seed=1, tuning_seconds=60, max_trials=1),
                              champion=Unusable())

    assert "champion" not in outcome.report["metrics"]["test"]
    assert "could not score" in outcome.report["champion"]["note"]
    assert outcome.report["gate"]["checks"][-1]["message"].startswith("the champion could not score")


@pytest.mark.parametrize("rows,positives", [(150, 60), (400, 30), (400, 370)])
def test_too_little_data_is_refused_clearly(rows, positives):
    with pytest.raises(UserError, match="too little labelled data"):
        train_lifecycle(small_frame(rows, positives), schema=Schema("id", "label", "1", ()), config=FAST)


def test_labels_other_than_zero_and_one_are_refused():
    frame = small_frame().astype({"label": object})
    frame.loc[3, "label"] = "Yes"
    frame.loc[5, "label"] = None

    with pytest.raises(UserError, match="2 rows have a label other than 0/1"):
        train_lifecycle(frame, schema=Schema("id", "label", "1", ()), config=FAST)


def test_missing_label_column_and_no_features_are_refused():
    frame = small_frame()
    with pytest.raises(UserError, match="no label column 'churned'"):
        train_lifecycle(frame, schema=Schema("id", "churned", "1", ()), config=FAST)
    with pytest.raises(UserError, match="no usable feature columns"):
        train_lifecycle(frame, schema=Schema("id", "label", "1", ("usage", "plan")), config=FAST)


def test_same_seed_same_model():
    frame = small_frame(rows=600, positives=150, seed=3)
    config = TrainConfig(seed=4, tuning_seconds=60, max_trials=2)

    first = train_lifecycle(frame, schema=Schema("id", "label", "1", ()), config=config)
    again = train_lifecycle(frame, schema=Schema("id", "label", "1", ()), config=config)

    assert first.report["threshold"] == again.report["threshold"]
    np.testing.assert_array_equal(first.test_scores["lightgbm"], again.test_scores["lightgbm"])


QUICK = {"tuning_seconds": 1.0, "max_trials": 1, "n_folds": 3}


@pytest.fixture(scope="module")
def telco_champion():
    """A champion trained on Telco with another seed: its fit rows cover most of any new test split."""
    return train_lifecycle(telco_frame(), schema=TELCO_SCHEMA, config=TrainConfig(seed=1, **QUICK)).model


def test_the_champion_is_compared_only_on_test_clients_it_never_trained_on(telco_champion):
    frame = telco_frame()

    outcome = train_lifecycle(frame, schema=TELCO_SCHEMA, config=TrainConfig(seed=2, **QUICK),
                              champion=telco_champion)

    # the champion's fit rows, from its seed's split: none of them may count in the comparison
    champion_fit = set(frame["customerID"].iloc[split_rows(frame["Churn"].to_numpy(), 1).fit])
    fresh = ~outcome.test_frame["customerID"].isin(champion_fit).to_numpy()
    y, rows = outcome.test_labels, int(fresh.sum())
    assert 200 <= rows < len(fresh)
    compared = outcome.report["champion"]
    assert compared["compared"] and compared["rows"] == rows and compared["positives"] == int(y[fresh].sum())
    assert compared["excluded_rows_champion_trained_on"] == len(fresh) - rows
    champion_scores = telco_champion.predict_proba_frame(outcome.test_frame)[fresh]
    expected = {
        "champion": classification_metrics(y[fresh], champion_scores, telco_champion.threshold_),
        "challenger": classification_metrics(y[fresh], outcome.test_scores["lightgbm"][fresh], outcome.model.threshold_),
    }
    for model_name, metrics in expected.items():
        assert compared[model_name] == {"pr_auc": pytest.approx(metrics["pr_auc"]), "recall": metrics["recall"]}
    assert outcome.report["metrics"]["test"]["champion"]["rows"] == rows
    assert "champion" not in outcome.test_scores  # the card's full-split charts do not mix in other rows
    checks = {c["check"]: c["message"] for c in outcome.report["gate"]["checks"]}
    assert f"on the {rows} test rows it never trained on" in checks["champion_pr_auc"]
    assert f"vs champion {compared['champion']['pr_auc']:.3f}" in checks["champion_pr_auc"]


def test_too_few_fresh_test_clients_skip_the_comparison_without_failing_the_gate(telco_champion):
    # given a challenger trained only on clients the champion trained on: no unseen test row is left
    frame = telco_frame()
    seen = telco_champion.trained_on(frame["customerID"])
    assert seen is not None

    outcome = train_lifecycle(frame[seen], schema=TELCO_SCHEMA, config=TrainConfig(seed=2, **QUICK),
                              champion=telco_champion)

    compared = outcome.report["champion"]
    assert not compared["compared"] and compared["rows"] == 0 and compared["champion"] is None
    assert compared["note"].startswith("comparison with the champion skipped: only 0 of ")
    assert "champion" not in outcome.report["metrics"]["test"]
    champion_check = next(c for c in outcome.report["gate"]["checks"] if c["check"] == "champion")
    assert champion_check == {"check": "champion", "passed": True, "message": compared["note"]}
    assert not [reason for reason in outcome.report["gate"]["reasons"] if "champion" in reason]
