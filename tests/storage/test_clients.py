"""Queries over client records, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd
import pytest

from storage.clients import (
    client_counts,
    column_types,
    get_latest,
    labelled_history,
    latest_records,
    load_frame,
)
from storage.ingest import ingest_frame
from storage.schema import Schema
from storage.tables import utcnow

SCHEMA = Schema("id", "Churn", "Yes")


def add(db, name: str, **columns):
    return ingest_frame(db, pd.DataFrame(columns), schema=SCHEMA, source_name=name)


@pytest.fixture
def store(db):
    """January: clients a, b, c labelled.  February: b (now churned) and d labelled.
    March: a and e unlabelled (scoring batch), with plan now a number in one column."""
    add(db, "jan", id=["a", "b", "c"], spend=[10.0, 20.0, None], plan=["basic", "pro", None],
        Churn=["No", "No", "Yes"])
    add(db, "feb", id=["b", "d"], spend=[25.0, 5.5], plan=["pro", "basic"], Churn=["Yes", "No"])
    add(db, "mar", id=["a", "e"], spend=[11.0, 1.0], plan=["basic", "7"])
    return db


def test_latest_records_are_one_per_client(store):
    with store.session() as session:
        everyone = latest_records(session)
        some = latest_records(session, ["e", "b", "unknown"])

    assert sorted(r.client_id for r in everyone) == ["a", "b", "c", "d", "e"]
    assert [r.client_id for r in some] == ["e", "b"]
    assert all(r.is_latest for r in everyone)


def test_get_latest_returns_the_newest_record_or_none(store):
    with store.session() as session:
        b = get_latest(session, "b")
        a = get_latest(session, "a")
        nobody = get_latest(session, "zzz")

    assert b is not None and b.label == 1 and b.data == {"spend": 25, "plan": "pro"}
    assert a is not None and a.label is None and a.data["spend"] == 11
    assert nobody is None


def test_training_frame_uses_each_clients_newest_labelled_record(store):
    frame = load_frame(store, SCHEMA, labelled_only=True)

    assert list(frame.columns) == ["id", "spend", "plan", "Churn"]
    assert frame["id"].tolist() == ["a", "c", "b", "d"]  # a's March record has no label: January counts
    assert frame["Churn"].tolist() == [0, 1, 1, 0]
    assert frame["Churn"].dtype == np.int64
    assert frame["spend"].dtype == np.float64
    assert frame["spend"].isna().tolist() == [False, True, False, False]
    assert frame["plan"].dtype == object
    assert pd.isna(frame["plan"].iloc[1])
    assert frame.attrs["batch_ids"] == sorted(frame.attrs["batch_ids"]) and len(frame.attrs["batch_ids"]) == 2


def test_latest_frame_includes_unlabelled_clients_with_nullable_labels(store):
    frame = load_frame(store, SCHEMA, labelled_only=False)

    by_id = frame.set_index("id")
    assert sorted(by_id.index) == ["a", "b", "c", "d", "e"]
    assert str(frame["Churn"].dtype) == "Int64"
    assert by_id["Churn"].isna().to_dict() == {"a": True, "b": False, "c": False, "d": False, "e": True}
    assert by_id.loc["b", "Churn"] == 1
    assert by_id.loc["e", "plan"] == "7"  # text column: numbers stored in it come back as text


def test_history_frame_returns_every_record(store):
    labelled = load_frame(store, SCHEMA, labelled_only=True, latest_only=False)
    everything = load_frame(store, SCHEMA, labelled_only=False, latest_only=False)

    assert labelled["id"].tolist() == ["a", "b", "c", "b", "d"]
    assert len(everything) == 7


def test_column_types_merge_batches_text_wins(db):
    add(db, "jan", id=["a", "b"], code=[1, 2], spend=[1.0, 2.0], Churn=["Yes", "No"])
    add(db, "feb", id=["c", "d"], code=["x1", "x2"], spend=[3.0, 4.0], Churn=["Yes", "No"])

    assert column_types(db) == {"code": "categorical", "spend": "numeric"}
    frame = load_frame(db, SCHEMA, labelled_only=True)
    assert frame["code"].tolist() == ["1", "2", "x1", "x2"]


def test_labelled_history_has_outcomes_with_their_batch_and_time(store):
    history = labelled_history(store)
    only_b = labelled_history(store, client_ids=["b"])
    future = labelled_history(store, since=utcnow() + timedelta(days=1))

    assert list(history.columns) == ["client_id", "batch_id", "observed_at", "label", "as_of"]
    assert history["client_id"].tolist() == ["a", "b", "c", "b", "d"]
    # Undated batches describe the day they were stored: the outcome refers to that date.
    assert (history["as_of"] == history["observed_at"]).all()
    assert only_b["label"].tolist() == [0, 1]
    assert only_b["batch_id"].is_monotonic_increasing
    assert pd.api.types.is_datetime64_any_dtype(history["observed_at"])
    assert future.empty


def test_counts_of_clients_and_known_outcomes(store):
    assert client_counts(store) == {"clients": 5, "labelled_clients": 4}


def test_empty_store_gives_empty_frames(db):
    frame = load_frame(db, SCHEMA, labelled_only=True)

    assert frame.empty and list(frame.columns) == ["id", "Churn"]
    assert labelled_history(db).empty
    assert column_types(db) == {}
