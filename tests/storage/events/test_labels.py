"""Churn labels within a horizon after D, observation dates and the training frame."""

from __future__ import annotations

from datetime import datetime, timedelta

import pandas as pd
import pytest

from storage.db import Database
from storage.errors import UserError
from storage.events.labels import GROUP_COLUMN, data_end, labels_as_of, observation_dates, training_frame
from tests.storage.events.conftest import Ingest

D = datetime(2024, 6, 1)


def _day(offset: int) -> str:
    return f"{D + timedelta(days=offset):%Y-%m-%d}"


def _store(ingest: Ingest) -> None:
    ingest("clients", [
        {"client_id": "renews", "churn_date": None},       # back-to-back renewals: no churn
        {"client_id": "lapses", "churn_date": None},       # last subscription ends within the horizon
        {"client_id": "edge", "churn_date": None},         # ends exactly at D + 30 days
        {"client_id": "later", "churn_date": None},        # ends after the horizon
        {"client_id": "told", "churn_date": _day(10)},     # the clients table says so, subscription runs on
        {"client_id": "overrides", "churn_date": _day(90)},  # clients table overrides the subscription end
        {"client_id": "gap", "churn_date": None},          # lapses, then comes back: the lapse is a churn
    ])
    ingest("subscriptions", [
        {"client_id": "renews", "start": _day(-20), "end": _day(10), "monthly_amount": 5},
        {"client_id": "renews", "start": _day(10), "end": _day(40), "monthly_amount": 5},
        {"client_id": "renews", "start": _day(40), "end": None, "monthly_amount": 5},
        {"client_id": "lapses", "start": _day(-20), "end": _day(10), "monthly_amount": 5},
        {"client_id": "edge", "start": _day(-20), "end": _day(30), "monthly_amount": 5},
        {"client_id": "later", "start": _day(-20), "end": _day(31), "monthly_amount": 5},
        {"client_id": "told", "start": _day(-20), "end": None, "monthly_amount": 5},
        {"client_id": "overrides", "start": _day(-20), "end": _day(5), "monthly_amount": 5},
        {"client_id": "gap", "start": _day(-20), "end": _day(5), "monthly_amount": 5},
        {"client_id": "gap", "start": _day(8), "end": None, "monthly_amount": 5},
    ])
    ingest("usage", [{"client_id": "renews", "timestamp": _day(d), "event_type": "login"} for d in range(-60, 80, 7)])


def test_labels_follow_churn_dates_and_subscription_ends(db: Database, ingest: Ingest) -> None:
    _store(ingest)
    labels = labels_as_of(db, D, horizon_days=30)
    assert labels.to_dict() == {"edge": 1, "gap": 1, "lapses": 1, "later": 0, "overrides": 0, "renews": 0,
                                "told": 1}
    assert labels.index.name == "client_id"


def test_a_churn_date_from_the_clients_table_overrides_the_subscription_end(db: Database, ingest: Ingest) -> None:
    _store(ingest)
    seven = labels_as_of(db, D, horizon_days=7)
    assert seven["gap"] == 1 and seven["overrides"] == 0 and seven["lapses"] == 0 and seven.sum() == 1
    later = labels_as_of(db, D + timedelta(days=60), horizon_days=31, client_ids=["overrides"],
                         known_until=D + timedelta(days=100))
    assert later.to_dict() == {"overrides": 1}


def test_outcomes_beyond_the_data_are_refused(db: Database, ingest: Ingest) -> None:
    _store(ingest)
    # usage runs to day 74, subscriptions start up to day 40: the data is complete up to day 40
    assert data_end(db) == D + timedelta(days=40)
    with pytest.raises(UserError, match="is not known yet: the event data runs to 2024-07-11"):
        labels_as_of(db, D + timedelta(days=11), horizon_days=30)
    later = labels_as_of(db, D + timedelta(days=11), horizon_days=30, known_until=D + timedelta(days=41))
    assert later.to_dict() == {"edge": 1, "gap": 0, "later": 1, "renews": 0}


def test_observation_dates() -> None:
    assert observation_dates("2024-01-15", "2024-04-01") == [datetime(2024, 2, 1), datetime(2024, 3, 1),
                                                            datetime(2024, 4, 1)]
    assert observation_dates("2024-01-01 10:00", "2024-01-15", "week") == [datetime(2024, 1, 1),
                                                                         datetime(2024, 1, 8),
                                                                         datetime(2024, 1, 15)]
    assert len(observation_dates("2024-01-01", "2024-01-10", "3d")) == 4
    with pytest.raises(UserError, match="unknown observation frequency 'hourly'"):
        observation_dates("2024-01-01", "2024-02-01", "hourly")
    with pytest.raises(UserError, match=r"ends .* before it starts"):
        observation_dates("2024-02-01", "2024-01-01")


def test_training_frame_has_active_clients_per_date_with_labels(db: Database, ingest: Ingest) -> None:
    ingest("clients", [{"client_id": c, "signup_date": "2024-01-01"} for c in ("a", "b", "c")])
    ingest("subscriptions", [
        {"client_id": "a", "start": "2024-01-01", "end": None, "monthly_amount": 10, "plan": "x"},
        {"client_id": "b", "start": "2024-01-01", "end": "2024-03-20", "monthly_amount": 10, "plan": "y"},
        {"client_id": "c", "start": "2024-03-01", "end": None, "monthly_amount": 10, "plan": "x"},
    ])
    ingest("usage", [{"client_id": c, "timestamp": f"2024-{m:02d}-10", "event_type": "login"}
                     for c in ("a", "b", "c") for m in range(1, 7)])
    # The data is complete up to the last subscription start (2024-03-01), although usage runs on
    with pytest.raises(UserError, match="the event data runs to 2024-03-01"):
        training_frame(db, start="2024-02-01", end="2024-12-01", windows=(30,))
    frame = training_frame(db, start="2024-02-01", end="2024-12-01", windows=(30,), known_until="2024-06-10")
    assert sorted(set(frame["as_of"])) == [pd.Timestamp(f"2024-{m:02d}-01") for m in (2, 3, 4, 5)]
    assert frame.attrs["dropped_dates"][0] == "2024-06-01T00:00:00"
    rows = {(r.client_id, f"{r.as_of:%m}"): r.label for r in frame.itertuples()}
    assert rows == {("a", "02"): 0, ("b", "02"): 0, ("a", "03"): 0, ("b", "03"): 1, ("c", "03"): 0,
                    ("a", "04"): 0, ("c", "04"): 0, ("a", "05"): 0, ("c", "05"): 0}
    assert list(frame.columns[:2]) == ["client_id", "as_of"] and frame.columns[-1] == "label"
    assert frame.attrs["group_column"] == GROUP_COLUMN == "client_id"
    assert frame.attrs["spec"]["windows"] == [30] and frame.attrs["spec"]["event_types"] == ["login"]
    assert frame["usage_login_30d"].notna().all()


def test_training_frame_explains_when_nothing_is_known(db: Database, ingest: Ingest) -> None:
    with pytest.raises(UserError, match="ingest a clients table first"):
        training_frame(db)
    ingest("clients", [{"client_id": "a", "signup_date": "2024-01-01"}])
    with pytest.raises(UserError, match="nothing to learn churn from"):
        training_frame(db)
    ingest("subscriptions", [{"client_id": "a", "start": "2024-01-01", "monthly_amount": 1}])
    with pytest.raises(UserError, match="has a known 30-day outcome"):
        training_frame(db)
    with pytest.raises(UserError, match="churn horizon must be a positive number"):
        training_frame(db, horizon_days=0)
