"""Batches that lack columns: outcomes delivered later (id + label only), partial exports.

The client's latest record must stay complete: the columns a batch lacks are carried forward
from the client's previous record, and a client such a batch cannot describe at all is not
stored as an empty record (it is named in the report instead).  Every test runs on SQLite and
on PostgreSQL (the ``db`` fixture)."""

from __future__ import annotations

import math
import threading

import pandas as pd
import pytest
from sqlmodel import col, select

import storage.ingest as ingest_module
from storage.clients import get_latest, load_frame
from storage.db import Database
from storage.errors import IngestRejected
from storage.ingest import ingest_file, ingest_frame
from storage.schema import Schema
from storage.tables import Batch, ClientRecord

SCHEMA = Schema("id", "Churn", "Yes")
FEATURES = "id,spend,plan\n1,10,basic\n2,20.5,pro\n3,,pro\n"  # unlabelled: scored now, outcomes later
OUTCOMES = "id,Churn\n1,Yes\n2,No\n3,No\n"


def write(tmp_path, name: str, content: str):
    path = tmp_path / name
    path.write_text(content)
    return path


def latest(db) -> dict[str, tuple[int, int | None, dict]]:
    with db.session() as session:
        rows = session.exec(
            select(ClientRecord).where(col(ClientRecord.is_latest).is_(True)).order_by(col(ClientRecord.id))
        ).all()
    return {r.client_id: (r.batch_id, r.label, r.data) for r in rows}


def batch_row(db, batch_id: int) -> Batch:
    with db.session() as session:
        row = session.get(Batch, batch_id)
    assert row is not None
    return row


def test_outcomes_only_batch_keeps_each_clients_features_and_updates_the_label(db, tmp_path):
    first = ingest_file(db, write(tmp_path, "march.csv", FEATURES), schema=SCHEMA)

    report = ingest_file(db, write(tmp_path, "april-outcomes.csv", OUTCOMES), schema=SCHEMA)

    assert (report.rows, report.positives, report.labelled) == (3, 1, True)
    assert report.columns == {} and report.carried_columns == ["spend", "plan"] and report.carried_clients == 3
    assert report.skipped_clients == 0
    assert latest(db) == {
        "1": (report.batch_id, 1, {"spend": 10, "plan": "basic"}),
        "2": (report.batch_id, 0, {"spend": 20.5, "plan": "pro"}),
        "3": (report.batch_id, 0, {"spend": None, "plan": "pro"}),
    }
    # The March records stay as history, unlabelled, as they were.
    with db.session() as session:
        old = session.exec(select(ClientRecord).where(ClientRecord.batch_id == first.batch_id)).all()
        one = get_latest(session, "1")
    assert [(r.is_latest, r.label) for r in old] == [(False, None)] * 3
    assert one is not None and one.data == {"spend": 10, "plan": "basic"}
    # One note says what was carried; no "missing column" noise for each feature.
    assert [w["column"] for w in report.warnings] == [None]
    assert "carried forward" in report.warnings[0]["message"] and "spend, plan" in report.warnings[0]["message"]
    assert batch_row(db, report.batch_id).warnings == report.warnings
    # The batch row records what the batch itself brought: the jobs tell outcome-only batches by it.
    assert batch_row(db, report.batch_id).columns == {}
    assert "no feature columns" in report.to_text() and "1 churners" in report.to_text()
    payload = report.to_dict()
    assert payload["carried_columns"] == ["spend", "plan"] and payload["skipped_clients"] == 0


def test_training_and_scoring_frames_see_the_carried_features_typed(db, tmp_path):
    ingest_file(db, write(tmp_path, "march.csv", FEATURES), schema=SCHEMA)
    ingest_file(db, write(tmp_path, "april-outcomes.csv", OUTCOMES), schema=SCHEMA)

    training = load_frame(db, SCHEMA, labelled_only=True)
    current = load_frame(db, SCHEMA, labelled_only=False, latest_only=True)

    for frame in (training, current):
        assert list(frame.columns) == ["id", "spend", "plan", "Churn"]
        assert frame["spend"].dtype == "float64" and frame["plan"].dtype == object
        assert frame["id"].tolist() == ["1", "2", "3"]
        assert frame["spend"].tolist()[:2] == [10.0, 20.5] and math.isnan(frame["spend"].tolist()[2])
        assert frame["plan"].tolist() == ["basic", "pro", "pro"]
        assert frame["Churn"].tolist() == [1, 0, 0]


def test_new_client_in_an_outcomes_only_batch_is_reported_not_stored_empty(db, tmp_path):
    ingest_file(db, write(tmp_path, "march.csv", FEATURES), schema=SCHEMA)
    before = db.row_counts()["client_record"]

    report = ingest_file(db, write(tmp_path, "april.csv", "id,Churn\n1,Yes\n2,No\n99,Yes\n"), schema=SCHEMA)

    assert report.rows == 2 and report.positives == 1  # what was stored
    assert report.skipped_clients == 1 and report.skipped_examples == ["99"]
    assert batch_row(db, report.batch_id).row_count == 2
    assert db.row_counts()["client_record"] == before + 2
    assert "99" not in latest(db)  # not a scoring candidate with empty features
    assert "99" not in load_frame(db, SCHEMA, labelled_only=True)["id"].tolist()
    (note,) = [w for w in report.warnings if w["column"] == "id"]
    assert "1 client(s) not stored" in note["message"] and "'99'" in note["message"]
    assert "not stored" in report.to_text()
    assert report.to_dict()["skipped_examples"] == ["99"]


def test_outcomes_for_clients_the_store_never_saw_are_refused_and_can_be_resent(db, tmp_path):
    outcomes = write(tmp_path, "outcomes.csv", OUTCOMES)
    before = db.row_counts()

    with pytest.raises(IngestRejected) as caught:
        ingest_file(db, outcomes, schema=SCHEMA)

    assert caught.value.details["problem"] == "unknown_clients" and caught.value.exit_code == 2
    assert "none of the 3 client(s) is in the store" in str(caught.value)
    assert db.row_counts() == before
    # Once the features are in, the very same file is accepted (it was never stored).
    ingest_file(db, write(tmp_path, "march.csv", FEATURES), schema=SCHEMA)
    report = ingest_file(db, outcomes, schema=SCHEMA)
    assert report.stored and report.rows == 3 and report.carried_clients == 3


def test_a_batch_with_only_the_id_column_is_refused(db, tmp_path):
    ingest_file(db, write(tmp_path, "march.csv", FEATURES), schema=SCHEMA)
    before = db.row_counts()

    for attempt in (lambda: ingest_file(db, write(tmp_path, "ids.csv", "id\n1\n2\n"), schema=SCHEMA),
                    lambda: ingest_frame(db, pd.DataFrame({"id": ["1", "2"]}), schema=SCHEMA)):
        with pytest.raises(IngestRejected) as caught:
            attempt()
        assert caught.value.details["problem"] == "not_a_table"
    assert db.row_counts() == before


@pytest.mark.parametrize("lookup", ["one scan", "by id in chunks"])
def test_mixed_batch_carries_only_the_missing_columns(db, tmp_path, monkeypatch, lookup):
    if lookup == "by id in chunks":  # how a small batch finds its clients in a large store
        monkeypatch.setattr(ingest_module, "_SCAN_SHARE", 0)
        monkeypatch.setattr(ingest_module, "_LOOKUP_CHUNK", 2)
    ingest_file(db, write(tmp_path, "jan.csv", "id,spend,plan,Churn\n1,10,basic,Yes\n2,20,pro,No\n3,30,pro,No\n"),
                schema=SCHEMA)

    # spend is present (blank for client 2: now unknown, not carried), plan is missing,
    # region is new, client 4 is new.
    report = ingest_file(db, write(tmp_path, "feb.csv", "id,spend,region,Churn\n1,11,N,No\n2,,S,Yes\n4,5,N,No\n"),
                         schema=SCHEMA)

    assert report.columns == {"spend": "numeric", "region": "categorical"}
    assert report.carried_columns == ["plan"] and report.carried_clients == 2 and report.skipped_clients == 0
    assert latest(db) == {
        "1": (report.batch_id, 0, {"spend": 11, "region": "N", "plan": "basic"}),
        "2": (report.batch_id, 1, {"spend": None, "region": "S", "plan": "pro"}),
        "3": (report.batch_id - 1, 0, {"spend": 30, "plan": "pro"}),
        "4": (report.batch_id, 0, {"spend": 5, "region": "N"}),
    }
    messages = {w["column"]: w["message"] for w in report.warnings}
    assert set(messages) == {"region", None}  # "plan missing" is answered by the carried note
    assert messages["region"].startswith("new column") and "plan" in messages[None]
    frame = load_frame(db, SCHEMA, labelled_only=True).set_index("id")
    assert frame.loc["4", "plan"] != frame.loc["4", "plan"]  # NaN: client 4 never had a plan
    assert frame.loc["1", "plan"] == "basic" and frame.loc["3", "region"] != frame.loc["3", "region"]


def test_unlabelled_partial_batch_carries_features_and_leaves_the_label_unknown(db, tmp_path):
    ingest_file(db, write(tmp_path, "jan.csv", "id,spend,plan,Churn\n1,10,basic,Yes\n2,20,pro,No\n"), schema=SCHEMA)

    report = ingest_file(db, write(tmp_path, "now.csv", "id,spend\n1,12\n"), schema=SCHEMA)

    assert not report.labelled and report.carried_columns == ["plan"]
    assert latest(db)["1"] == (report.batch_id, None, {"spend": 12, "plan": "basic"})
    assert [w["column"] for w in report.warnings] == [None]


def test_complete_batches_are_stored_exactly_as_before(db, tmp_path):
    ingest_file(db, write(tmp_path, "jan.csv", "id,spend,plan,Churn\n1,10,basic,Yes\n2,20,pro,No\n"), schema=SCHEMA)

    report = ingest_file(db, write(tmp_path, "feb.csv", "id,spend,plan,Churn\n1,,pro,No\n3,7,basic,Yes\n"),
                         schema=SCHEMA)

    assert report.carried_columns == [] and report.carried_clients == 0 and report.skipped_clients == 0
    assert report.warnings == [] and report.rows == 2
    assert latest(db)["1"] == (report.batch_id, 0, {"spend": None, "plan": "pro"})
    assert latest(db)["3"] == (report.batch_id, 1, {"spend": 7, "plan": "basic"})
    assert "2 columns" in report.to_text()


def test_features_and_their_outcomes_arriving_at_once_are_stored_in_order(db, tmp_path, monkeypatch):
    # The bot's upload (features) and the inbox job (outcomes) store at the same moment, each
    # through its own connection pool, as two processes would.  The outcomes must wait for
    # the features' transaction and then see its records; reading them while the features
    # were still being written would refuse the outcomes (every client "unknown").
    features = write(tmp_path, "march.csv", FEATURES)
    outcomes = write(tmp_path, "outcomes.csv", OUTCOMES)
    features_reading = threading.Event()
    outcomes_reading = threading.Event()
    real = ingest_module.carry_forward

    def observed(connection, batch):
        if batch.labels is None:  # the features' transaction, now open
            features_reading.set()
            outcomes_reading.wait(timeout=1)  # it must not come: the outcomes wait for our lock
        else:
            outcomes_reading.set()
        return real(connection, batch)

    monkeypatch.setattr(ingest_module, "carry_forward", observed)
    results: dict[str, object] = {}

    def store(name, path):
        own = Database(db.url)
        try:
            results[name] = ingest_file(own, path, schema=SCHEMA)
        except Exception as error:  # reported by the assertion below
            results[name] = error
        finally:
            own.dispose()

    first = threading.Thread(target=store, args=("features", features))
    first.start()
    assert features_reading.wait(timeout=60)
    second = threading.Thread(target=store, args=("outcomes", outcomes))
    second.start()
    first.join()
    second.join()

    assert not isinstance(results["features"], Exception), results["features"]
    assert not isinstance(results["outcomes"], Exception), results["outcomes"]
    assert {cid: (label, data["plan"]) for cid, (_, label, data) in latest(db).items()} == {
        "1": (1, "basic"), "2": (0, "pro"), "3": (0, "pro"),
    }
