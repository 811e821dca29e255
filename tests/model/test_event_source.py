"""What an event model reads: "never" stays distinguishable from "typical"."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from model.event_source import history_problem, model_inputs, model_record

RAW = pd.DataFrame({
    "tenure_days": [400.0, 12.0, np.nan],
    "days_since_last_purchase": [3.5, np.nan, np.nan],
    "tickets_30d": [2.0, 0.0, 5.0],
    "tickets_trend_30d": [0.5, 0.0, np.nan],
    "purchases_30d": [1.0, 0.0, 0.0],
    "purchases_trend_30d": [np.nan, np.nan, 0.0],
    "plan": ["pro", None, "basic"],
})


def test_given_no_purchase_ever_then_days_since_is_the_whole_tenure():
    out = model_inputs(RAW)

    assert out["days_since_last_purchase"].tolist()[:2] == [3.5, 12.0]
    assert math.isnan(out["days_since_last_purchase"].iloc[2])  # no tenure either: stays unknown


def test_given_growth_from_nothing_then_the_trend_is_the_last_window_count():
    out = model_inputs(RAW)

    assert out["tickets_trend_30d"].tolist() == [0.5, 0.0, 5.0]
    assert out["purchases_trend_30d"].tolist() == [1.0, 0.0, 0.0]


def test_the_raw_frame_is_left_alone_for_the_reasons():
    before = RAW.copy()

    model_inputs(RAW)

    pd.testing.assert_frame_equal(RAW, before)


@pytest.mark.parametrize("row", range(len(RAW)))
def test_one_record_gets_exactly_what_the_frame_gets(row):
    record = {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in RAW.iloc[row].to_dict().items()}

    single = model_record(record)
    batch = model_inputs(RAW).iloc[row].to_dict()

    for name, value in batch.items():
        got = single[name]
        if isinstance(value, float) and math.isnan(value):
            assert got is None or (isinstance(got, float) and math.isnan(got)), name
        else:
            assert got == value, name


@pytest.mark.parametrize("tenure, problem", [
    (None, "no signup date"),
    (float("nan"), "no signup date"),
    (0.5, "less than a day"),
    (1.0, None),
    (900.0, None),
])
def test_history_problem(tenure, problem):
    found = history_problem({"tenure_days": tenure})

    assert (found is None) if problem is None else (problem in found)


def test_the_data_end_is_recomputed_only_when_an_event_file_arrives(db, tmp_path, monkeypatch):
    import model.event_source as source
    from storage.events.ingest import ingest_events

    calls: list[int] = []
    real = source.data_end
    monkeypatch.setattr(source, "data_end", lambda database: calls.append(1) or real(database))
    clients = tmp_path / "clients.csv"
    clients.write_text("client_id,signup_date\nA,2024-01-01\n", encoding="utf-8")
    usage = tmp_path / "usage.csv"
    usage.write_text("client_id,timestamp,event_type\nA,2024-02-01 10:00:00,login\n", encoding="utf-8")
    later = tmp_path / "later.csv"
    later.write_text("client_id,timestamp,event_type\nA,2024-03-05 10:00:00,login\n", encoding="utf-8")
    ingest_events(db, clients, kind="clients")
    ingest_events(db, usage, kind="usage")

    first, again = source.stored_data_end(db), source.stored_data_end(db)
    assert first == again and first is not None and first.month == 2 and len(calls) == 1

    ingest_events(db, later, kind="usage")

    assert source.stored_data_end(db).month == 3 and len(calls) == 2
