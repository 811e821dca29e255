"""ChurnModel: batch == single-client scores, explanations, save/load round trip, bad directories."""

import json
import math

import numpy as np
import pandas as pd
import pytest

from model.artifact import ChurnModel, Contribution
from storage.errors import UserError
from tests.model.test_features import perturbed_records
from tests.model.training_data import telco_frame, trained_telco


@pytest.fixture(scope="module")
def model() -> ChurnModel:
    return trained_telco().model


@pytest.fixture(scope="module")
def records(model):
    frame = telco_frame()
    return perturbed_records(frame, model.raw_columns_, set(model.categorical_levels_))


def test_public_attributes(model):
    assert 0 < model.threshold_ < 1
    assert "TotalCharges_per_tenure" in model.feature_names_
    assert "customerID" not in model.raw_columns_ and "Churn" not in model.raw_columns_
    assert model.categorical_levels_["Contract"][0] == "Month-to-month"
    assert model.train_columns_types_["tenure"] == "numeric" and model.train_columns_types_["Contract"] == "categorical"
    assert sum(model.importances_.values()) == pytest.approx(1.0)
    assert list(model.importances_.values()) == sorted(model.importances_.values(), reverse=True)


def test_single_client_scores_equal_batch_scores_row_by_row(model, records):
    batch = model.predict_proba_frame(pd.DataFrame(records, dtype=object))
    single = np.array([model.predict_proba_record(record) for record in records])

    np.testing.assert_array_equal(batch, single)
    assert ((batch >= 0) & (batch <= 1)).all()


def test_scores_ignore_extra_columns_and_treat_absent_ones_as_missing(model):
    frame = telco_frame().head(50)

    with_extras = frame.assign(unrelated="x", Churn=1)
    without = frame.drop(columns=["PaymentMethod", "TotalCharges"])

    np.testing.assert_array_equal(model.predict_proba_frame(with_extras), model.predict_proba_frame(frame))
    records = without.drop(columns=["customerID", "Churn"]).to_dict("records")
    np.testing.assert_array_equal(model.predict_proba_frame(without),
                                  [model.predict_proba_record(r) for r in records])


def test_explanations_are_the_strongest_log_odds_contributions(model):
    record = telco_frame().drop(columns=["customerID", "Churn"]).iloc[0].to_dict()

    reasons = model.explain_record(record, top=3)
    everything = model.explain_record(record, top=100)

    assert len(reasons) == 3 and all(isinstance(r, Contribution) for r in reasons)
    assert [abs(r.effect) for r in everything] == sorted((abs(r.effect) for r in everything), reverse=True)
    assert reasons == everything[:3]
    by_name = {r.feature: r for r in everything}
    assert by_name["Contract"].value == record["Contract"]
    assert by_name["TotalCharges_per_tenure"].value == pytest.approx(record["TotalCharges"] / record["tenure"])
    # contributions + bias add up to the booster's raw log-odds
    row = model.encoder_.transform_record(record)
    margin = model.booster_.predict(row, raw_score=True)[0]
    bias = model.booster_.predict(row, pred_contrib=True)[0, -1]
    assert sum(r.effect for r in everything) + bias == pytest.approx(margin)


def test_explaining_a_record_with_missing_and_unknown_values(model):
    reasons = model.explain_record({"Contract": "Lifetime", "tenure": None}, top=50)

    values = {r.feature: r.value for r in reasons}
    assert values["Contract"] == "Lifetime" and values["tenure"] is None
    assert values["TotalCharges_per_tenure"] is None


def test_save_and_load_round_trip_gives_identical_predictions(model, tmp_path, records):
    paths = model.save(tmp_path / "v1")
    loaded = ChurnModel.load(tmp_path / "v1")

    assert sorted(p.name for p in paths) == ["model.json", "model.txt", "reference.parquet", "training_ids.npy"]
    assert not [p for p in (tmp_path / "v1").iterdir() if p.name.startswith(".")]  # no temporary files left
    frame = pd.DataFrame(records, dtype=object)
    np.testing.assert_array_equal(loaded.predict_proba_frame(frame), model.predict_proba_frame(frame))
    assert loaded.predict_proba_record(records[7]) == model.predict_proba_record(records[7])
    assert loaded.threshold_ == model.threshold_
    assert loaded.feature_names_ == model.feature_names_ and loaded.importances_ == model.importances_
    assert loaded.metadata_["raw_threshold"] == model.metadata_["raw_threshold"]
    assert loaded.explain_record(records[3]) == model.explain_record(records[3])


def test_reference_sample_has_raw_columns_and_calibrated_scores(model, tmp_path):
    model.save(tmp_path / "v1")
    loaded = ChurnModel.load(tmp_path / "v1")

    reference = loaded.reference_frame()

    assert len(reference) <= 5000 and list(reference.columns) == [*model.raw_columns_, "score"]
    np.testing.assert_allclose(reference["score"], loaded.predict_proba_frame(reference))
    assert reference["tenure"].dtype == "float64"
    # a loaded model saved again keeps its reference sample
    loaded.save(tmp_path / "copy")
    assert len(ChurnModel.load(tmp_path / "copy").reference_frame()) == len(reference)


def test_loading_a_missing_or_damaged_model_is_a_clear_error(model, tmp_path):
    with pytest.raises(UserError, match="missing"):
        ChurnModel.load(tmp_path / "nothing-here")
    model.save(tmp_path / "v1")
    meta = json.loads((tmp_path / "v1" / "model.json").read_text())
    (tmp_path / "v1" / "model.json").write_text(json.dumps({**meta, "format_version": 99}))
    with pytest.raises(UserError, match="unreadable"):
        ChurnModel.load(tmp_path / "v1")
    model.save(tmp_path / "v2")
    (tmp_path / "v2" / "model.txt").write_text("not a model")
    with pytest.raises(UserError, match="unreadable"):
        ChurnModel.load(tmp_path / "v2")


def test_metadata_is_json(model):
    text = json.dumps(model.metadata_, allow_nan=False)

    assert "raw_threshold" in text and not math.isnan(model.metadata_["raw_threshold"])


def test_training_clients_are_recorded_and_survive_save_and_load(model, tmp_path):
    frame = telco_frame()
    seen = model.trained_on(frame["customerID"])

    assert seen is not None and int(seen.sum()) == model.metadata_["training_rows"]  # the fit rows, no others
    model.save(tmp_path / "v1")
    loaded = ChurnModel.load(tmp_path / "v1")
    np.testing.assert_array_equal(loaded.training_ids_, model.training_ids_)
    np.testing.assert_array_equal(loaded.trained_on(frame["customerID"]), seen)


def test_client_ids_match_across_types_and_a_missing_id_counts_as_seen(model, tmp_path):
    model.save(tmp_path / "v1")
    loaded = ChurnModel.load(tmp_path / "v1")  # a private copy: the shared model stays untouched

    loaded.set_training_ids([3, "a", None])

    assert loaded.trained_on([3.0, "3", " a", "b", 4, None]).tolist() == [True, True, True, False, False, True]


def test_an_artifact_without_training_clients_does_not_know_them_and_a_damaged_list_is_refused(model, tmp_path):
    model.save(tmp_path / "old")
    (tmp_path / "old" / "training_ids.npy").unlink()

    old = ChurnModel.load(tmp_path / "old")

    assert old.training_ids_ is None and old.trained_on(["7590-VHVEG"]) is None
    assert "training_ids.npy" not in [p.name for p in old.save(tmp_path / "old-again")]
    model.save(tmp_path / "bad")
    np.save(tmp_path / "bad" / "training_ids.npy", np.array([0.5, 1.5]))
    with pytest.raises(UserError, match=r"unreadable.*training_ids\.npy"):
        ChurnModel.load(tmp_path / "bad")
