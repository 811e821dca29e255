"""The demo CRM stream: stable when asked, drifting the way it claims, reproducible by seed.

These tests also run the drift and recall checks on the stream end to end: monitoring must
stay quiet on the stable stream and speak up on the drifted ones.
"""

import numpy as np
import pandas as pd
import pytest

from model.monitoring.drift import detect_drift
from model.monitoring.performance import realised_performance
from model.monitoring.stream import monthly_stream, without_labels
from storage.errors import UserError
from tests.conftest import TELCO

ID, LABEL = "customerID", "Churn"
# Synthetic importances shaped like a churn model's on Telco (contract, tenure and charges lead).
IMPORTANCES = {"Contract": 25, "tenure": 20, "MonthlyCharges": 15, "TotalCharges": 15, "InternetService": 10,
               "PaymentMethod": 5}  # fmt: skip


@pytest.fixture(scope="module")
def telco() -> pd.DataFrame:
    return pd.read_csv(TELCO)


def features(frame: pd.DataFrame) -> list[str]:
    return [c for c in frame.columns if c not in (ID, LABEL)]


def check(reference: pd.DataFrame, batch: pd.DataFrame):
    return detect_drift(reference, batch, features=features(reference), importances=IMPORTANCES)


def test_months_have_the_source_columns_the_requested_size_and_fresh_unique_ids(telco):
    stream = monthly_stream(telco, 3, seed=1, rows_per_month=400)
    assert len(stream) == 3
    for month, batch in enumerate(stream, start=1):
        assert list(batch.columns) == list(telco.columns)
        assert len(batch) == 400
        assert batch[ID].is_unique
        assert batch[ID].str.startswith(f"M{month:02d}-").all()
    all_ids = pd.concat([batch[ID] for batch in stream])
    assert all_ids.is_unique
    assert not set(all_ids) & set(telco[ID])


def test_same_seed_same_stream_other_seed_other_stream(telco):
    first = monthly_stream(telco, 2, drift="covariate", seed=5, rows_per_month=300)
    again = monthly_stream(telco, 2, drift="covariate", seed=5, rows_per_month=300)
    other = monthly_stream(telco, 2, drift="covariate", seed=6, rows_per_month=300)
    for a, b in zip(first, again, strict=True):
        pd.testing.assert_frame_equal(a, b)
    assert not first[1].drop(columns=ID).equals(other[1].drop(columns=ID))
    # a month does not depend on how many months follow it
    pd.testing.assert_frame_equal(monthly_stream(telco, 1, seed=5)[0], monthly_stream(telco, 4, seed=5)[0])


def test_repeat_clients_come_back_one_month_older(telco):
    first, second = monthly_stream(telco, 2, seed=2, rows_per_month=500, repeat_share=0.2)
    repeated = second[second[ID].isin(first[ID])]
    assert len(repeated) == 100
    assert second[ID].is_unique
    before = first.set_index(ID).loc[repeated[ID]]
    assert (repeated["tenure"].to_numpy() == before["tenure"].to_numpy() + 1).all()
    assert (repeated[LABEL].to_numpy() == before[LABEL].to_numpy()).all()
    total_before = pd.to_numeric(before["TotalCharges"].str.strip().replace("", "0")).to_numpy()
    total_after = pd.to_numeric(repeated["TotalCharges"]).to_numpy()
    np.testing.assert_allclose(total_after, total_before + before["MonthlyCharges"].to_numpy(), atol=0.01)


def test_batches_survive_a_csv_round_trip_with_blank_total_charges(telco, tmp_path):
    # a covariate month, so charges were rescaled (seed chosen so some blank rows were drawn)
    batch = monthly_stream(telco, 6, drift="covariate", seed=2, rows_per_month=3000)[1]
    blanks = int((batch["TotalCharges"].str.strip() == "").sum())
    assert blanks > 0  # Telco's clients without history are still there, still blank
    path = tmp_path / "month.csv"
    batch.to_csv(path, index=False)
    back = pd.read_csv(path)
    assert list(back.columns) == list(telco.columns)
    assert int((back["TotalCharges"].astype(str).str.strip().isin(["", "nan"])).sum()) == blanks


def test_without_labels_drops_only_the_label(telco):
    batch = monthly_stream(telco, 1, rows_per_month=50)[0]
    unlabelled = without_labels(batch)
    assert list(unlabelled.columns) == [c for c in telco.columns if c != LABEL]
    with pytest.raises(UserError, match="no label column 'Outcome'"):
        without_labels(batch, "Outcome")


def test_stable_stream_gives_no_drift_in_any_month(telco):
    for batch in monthly_stream(telco, 6, drift="none", seed=11, rows_per_month=1000):
        report = check(telco, batch)
        assert report.verdict == "no_drift", report.to_text()


def test_covariate_stream_drifts_in_later_months_led_by_contract_and_charges(telco):
    stream = monthly_stream(telco, 6, drift="covariate", seed=11, rows_per_month=1000)
    reports = [check(telco, batch) for batch in stream]
    assert reports[0].verdict == "no_drift"
    assert [r.verdict for r in reports[-2:]] == ["drift", "drift"]
    top = {row.feature for row in reports[-1].top(3)}
    assert {"Contract", "MonthlyCharges"} <= top
    # the shift is the one described: more month-to-month contracts, higher charges
    last = stream[-1]
    assert (last["Contract"] == "Month-to-month").mean() > 0.75
    assert last["MonthlyCharges"].mean() > 1.2 * telco["MonthlyCharges"].mean()


def test_concept_stream_keeps_the_data_but_breaks_recall(telco):
    # given a "model" that flags month-to-month clients (recall ≈ 0.88 on Telco)
    stream = monthly_stream(telco, 6, drift="concept", seed=11, rows_per_month=1000)

    def recall_check(batch):
        flagged = (batch["Contract"] == "Month-to-month").to_numpy()
        y = (batch[LABEL] == "Yes").to_numpy()
        return realised_performance(y, np.where(flagged, 0.43, 0.07), flagged, target=0.8)

    # then data drift stays quiet every month, while recall falls below target by the end
    assert all(check(telco, batch).verdict == "no_drift" for batch in stream)
    first, last = recall_check(stream[0]), recall_check(stream[-1])
    assert not first.alert and first.recall > 0.8
    assert last.alert and last.recall < 0.6


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"drift": "seasonal"}, "drift must be one of none, covariate, concept"),
        ({"months": 0}, "months must be a whole number"),
        ({"rows_per_month": 0}, "rows_per_month must be a whole number"),
        ({"repeat_share": 1.0}, "repeat_share must be"),
        ({"id_column": "client"}, "no column 'client'"),
        ({"seed": -1}, "seed must be"),
    ],
)
def test_bad_stream_requests_are_refused_with_the_reason(telco, kwargs, message):
    with pytest.raises(UserError, match=message):
        monthly_stream(telco, **{"months": 2, **kwargs})


def test_drift_scenarios_need_the_telco_columns(telco):
    with pytest.raises(UserError, match="needs the Telco columns Contract"):
        monthly_stream(telco.drop(columns="Contract"), 2, drift="covariate")
    assert len(monthly_stream(telco.drop(columns="Contract"), 2, drift="none", rows_per_month=10)) == 2
