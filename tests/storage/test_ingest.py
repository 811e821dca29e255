"""Storing batches: one transaction, nothing stored on refusal, history kept, repeats ignored.

Every test runs on SQLite and on PostgreSQL (the ``db`` fixture)."""

from __future__ import annotations

import gzip

import pandas as pd
import pytest
from sqlmodel import col, select

import storage.ingest as ingest_module
from storage.errors import IngestRejected, SchemaConflict
from storage.ingest import NEGATIVE_LABEL_KEY, ingest_file, ingest_frame
from storage.readers import Limits
from storage.schema import Schema, remembered_schema
from storage.tables import Batch, ClientRecord, Meta
from tests.conftest import DATA, TELCO

SCHEMA = Schema("id", "Churn", "Yes")


def write(tmp_path, name: str, content: bytes | str):
    path = tmp_path / name
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return path


def records(db) -> list[ClientRecord]:
    with db.session() as session:
        return list(session.exec(select(ClientRecord).order_by(col(ClientRecord.id))).all())


def batches(db) -> list[Batch]:
    with db.session() as session:
        return list(session.exec(select(Batch).order_by(col(Batch.id))).all())


FIRST = "id,spend,plan,Churn\n1,10,basic,Yes\n2,20.5,pro,No\n3,,pro,No\n"


def test_telco_is_stored_with_numeric_total_charges_and_its_schema(db):
    schema = Schema("customerID", "Churn", "Yes")

    report = ingest_file(db, TELCO, schema=schema, explicit=(), limits=Limits())

    assert (report.rows, report.positives, report.labelled) == (7043, 1869, True)
    assert report.columns["TotalCharges"] == "numeric" and report.columns["Contract"] == "categorical"
    assert "customerID" not in report.columns and "Churn" not in report.columns
    assert report.warnings == []
    counts = db.row_counts()
    assert counts["client_record"] == 7043 and counts["batch"] == 1
    with db.session() as session:
        stored = remembered_schema(session)
        assert stored is not None and stored.id_column == "customerID" and stored.first_batch_id == report.batch_id
        assert session.get(Meta, NEGATIVE_LABEL_KEY).value == "No"
        blanks = [r for r in session.exec(select(ClientRecord)).all() if r.data["TotalCharges"] is None]
        first = session.exec(select(ClientRecord).where(ClientRecord.client_id == "7590-VHVEG")).one()
    assert len(blanks) == 11 and all(r.data["tenure"] == 0 for r in blanks)
    assert first.label == 0 and first.is_latest
    assert first.data["MonthlyCharges"] == 29.85 and first.data["tenure"] == 1
    assert first.data["Contract"] == "Month-to-month"
    (batch,) = batches(db)
    assert batch.sha256 == report.sha256 and batch.status == "stored" and batch.row_count == 7043
    assert batch.columns == report.columns and batch.labelled and batch.positives == 1869


BAD_FILES = {
    "empty": b"",
    "png": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00",
    "html": b"<html><head><title>Login</title></head><body></body></html>",
    "json": b'{"clients": [{"id": 1}]}',
    "tabs": b"id\tspend\tChurn\n1\t5\tYes\n2\t6\tNo\n",
    "mixed-separators": b"id;spend;Churn\n1;5;Yes\n2,6,No\n",
    "missing-id": b"client,spend,Churn\n1,5,Yes\n2,6,No\n",
    "duplicate-ids": b"id,spend,Churn\n1,5,Yes\n2,6,No\n1,7,No\n",
    "bad-labels": b"id,spend,Churn\n1,5,Yes\n2,6,No\n3,7,Unknown\n",
    "single-class": b"id,spend,Churn\n1,5,No\n2,6,No\n",
    "blank-labels": b"id,spend,Churn\n1,5,Yes\n2,6,\n",
    "all-null-column": b"id,spend,notes,Churn\n1,5,,Yes\n2,6,,No\n",
}


LIMITS = {
    "too-big": (Limits(max_file_mb=0.00001), "too_big"),
    "too-many-rows": (Limits(max_rows=2), "too_many_rows"),
    "too-many-columns": (Limits(max_columns=3), "too_many_columns"),
}


def test_rejected_files_store_nothing(db, tmp_path, subtests):
    # Subtests share one store: a fresh PostgreSQL schema per case would cost more than the cases.
    before = db.row_counts()
    cases: dict[str, tuple[bytes, Limits, str | None]] = {
        name: (data, Limits(), None) for name, data in BAD_FILES.items()
    }
    cases.update({name: (FIRST.encode(), limits, problem) for name, (limits, problem) in LIMITS.items()})
    for name, (data, limits, problem) in cases.items():
        with subtests.test(name=name):
            with pytest.raises(IngestRejected) as caught:
                ingest_file(db, write(tmp_path, f"{name}.csv", data), schema=SCHEMA, limits=limits)
            assert caught.value.exit_code == 2
            assert caught.value.details["problem"] == (problem or caught.value.details["problem"])
            assert db.row_counts() == before


def test_reingesting_identical_bytes_changes_nothing_and_says_so(db, tmp_path):
    first = ingest_file(db, write(tmp_path, "a.csv", FIRST), schema=SCHEMA)
    counts = db.row_counts()

    again = ingest_file(db, write(tmp_path, "renamed.csv", FIRST), schema=SCHEMA)

    assert again.duplicate_of == first.batch_id == again.batch_id
    assert not again.stored
    assert again.rows == 3 and again.positives == 1
    assert db.row_counts() == counts
    assert f"identical to batch #{first.batch_id}" in again.to_text()
    assert again.to_dict()["duplicate_of"] == first.batch_id


def test_second_batch_keeps_history_and_moves_the_latest_flag(db, tmp_path):
    ingest_file(db, write(tmp_path, "jan.csv", FIRST), schema=SCHEMA)

    second = ingest_file(db, write(tmp_path, "feb.csv", "id,spend,plan,Churn\n2,25,pro,Yes\n4,5,basic,No\n"),
                         schema=SCHEMA)

    rows = [(r.client_id, r.batch_id, r.is_latest, r.label) for r in records(db)]
    data = [r.data for r in records(db)]
    first_id = second.batch_id - 1
    assert rows == [
        ("1", first_id, True, 1),
        ("2", first_id, False, 0),
        ("3", first_id, True, 0),
        ("2", second.batch_id, True, 1),
        ("4", second.batch_id, True, 0),
    ]
    assert data[:3] == [{"spend": 10.0, "plan": "basic"}, {"spend": 20.5, "plan": "pro"},
                        {"spend": None, "plan": "pro"}]  # JSON-safe: missing is None, not NaN


def test_unlabelled_batch_is_stored_for_scoring(db, tmp_path):
    ingest_file(db, write(tmp_path, "jan.csv", FIRST), schema=SCHEMA)

    report = ingest_file(db, write(tmp_path, "now.csv", "id,spend,plan\n1,11,basic\n9,1,pro\n"), schema=SCHEMA)

    assert not report.labelled and report.positives is None
    assert "unlabelled" in report.to_text()
    latest = {r.client_id: r.label for r in records(db) if r.is_latest}
    assert latest == {"1": None, "2": 0, "3": 0, "9": None}


def test_unlabelled_first_batch_is_accepted(db, tmp_path):
    report = ingest_file(db, write(tmp_path, "now.csv", "id,spend\n1,11\n2,1\n"), schema=SCHEMA)

    assert report.stored and not report.labelled
    with db.session() as session:
        assert remembered_schema(session) is not None
        assert session.get(Meta, NEGATIVE_LABEL_KEY) is None


def test_later_single_class_batch_is_stored_with_a_warning(db, tmp_path):
    ingest_file(db, write(tmp_path, "jan.csv", FIRST), schema=SCHEMA)

    report = ingest_file(db, write(tmp_path, "feb.csv", "id,spend,plan,Churn\n5,1,pro,No\n6,2,pro,No\n"),
                         schema=SCHEMA)

    assert report.positives == 0
    assert [w["column"] for w in report.warnings] == ["Churn"]
    assert batches(db)[-1].warnings == report.warnings


def test_label_values_must_match_the_first_batch(db, tmp_path):
    ingest_file(db, write(tmp_path, "jan.csv", FIRST), schema=SCHEMA)
    before = db.row_counts()

    with pytest.raises(IngestRejected) as caught:
        ingest_file(db, write(tmp_path, "feb.csv", "id,spend,plan,Churn\n5,1,pro,no\n6,2,pro,Yes\n"),
                    schema=SCHEMA)

    assert "'Yes' (churned) and 'No' (stayed)" in str(caught.value)
    assert db.row_counts() == before


def test_column_changes_since_the_previous_batch_are_stored_as_warnings(db, tmp_path):
    ingest_file(db, write(tmp_path, "jan.csv", FIRST), schema=SCHEMA)

    report = ingest_file(db, write(tmp_path, "feb.csv", "id,spend,region,Churn\n5,low,N,Yes\n6,high,S,No\n"),
                         schema=SCHEMA)

    assert {w["column"]: w["message"].split(":")[0].split(",")[0] for w in report.warnings} == {
        "spend": "type changed", "region": "new column", "plan": "missing",
    }
    assert batches(db)[-1].warnings == report.warnings
    assert "3 warning(s)" in report.to_text()


def test_remembered_schema_wins_and_explicit_conflicts_store_nothing(db, tmp_path):
    ingest_file(db, write(tmp_path, "jan.csv", FIRST), schema=SCHEMA)
    report = ingest_file(db, write(tmp_path, "feb.csv", "id,spend,plan,Churn\n7,1,pro,Yes\n8,2,pro,No\n"),
                         schema=Schema("customerID", "Exited", "1"), explicit=())
    assert report.positives == 1  # defaults that differ from the remembered schema do not clash
    before = db.row_counts()

    with pytest.raises(SchemaConflict) as caught:
        ingest_file(db, write(tmp_path, "other.csv", "CLIENTNUM,x,Churn\n1,1,Yes\n2,2,No\n"),
                    schema=Schema("CLIENTNUM", "Churn", "Yes"), explicit={"id_column"})

    assert "--id-column" in str(caught.value) and caught.value.exit_code == 2
    assert db.row_counts() == before


def test_failure_during_the_write_leaves_nothing_half_written(db, tmp_path, monkeypatch):
    ingest_file(db, write(tmp_path, "jan.csv", FIRST), schema=SCHEMA)
    before = db.row_counts()
    real_chunks = ingest_module._record_chunks

    def crash_after_first_chunk(*args):
        chunks = real_chunks(*args)
        yield next(chunks)
        raise RuntimeError("disk full")

    monkeypatch.setattr(ingest_module, "_INSERT_CHUNK", 1)
    monkeypatch.setattr(ingest_module, "_record_chunks", crash_after_first_chunk)
    with pytest.raises(RuntimeError):
        ingest_file(db, write(tmp_path, "feb.csv", "id,spend,plan,Churn\n1,2,pro,No\n9,1,pro,Yes\n"),
                    schema=SCHEMA)

    assert db.row_counts() == before
    assert all(r.is_latest for r in records(db))


def test_frames_from_a_query_are_ingested_and_recognised_when_repeated(db):
    frame = pd.DataFrame({"id": [101, 102, 103], "spend": [1.5, None, 3.0], "Churn": ["Yes", "No", "No"]})

    report = ingest_frame(db, frame, schema=SCHEMA, source_name="crm.sql")
    again = ingest_frame(db, frame.copy(), schema=SCHEMA, source_name="crm.sql")

    assert report.stored and report.rows == 3 and report.format == "frame"
    assert again.duplicate_of == report.batch_id
    assert [r.client_id for r in records(db)] == ["101", "102", "103"]


def test_gzip_and_parquet_files_are_ingested(db, tmp_path):
    gz = write(tmp_path, "jan.csv.gz", gzip.compress(FIRST.encode()))
    parquet = tmp_path / "feb.parquet"
    pd.DataFrame({"id": [4, 5], "spend": [1.0, 2.0], "plan": ["a", "b"], "Churn": ["Yes", "No"]}).to_parquet(parquet)

    first = ingest_file(db, gz, schema=SCHEMA)
    second = ingest_file(db, parquet, schema=SCHEMA)

    assert (first.format, second.format) == ("csv.gz", "parquet")
    assert [r.client_id for r in records(db)][-2:] == ["4", "5"]


def test_cp1251_semicolon_file_with_cyrillic_columns(db, tmp_path):
    schema = Schema("Клиент", "Отток", "Да")
    text = "Клиент;Город;Платёж;Отток\r\nК-1;Москва;1,5;Да\r\nК-2;Омск;2;Нет\r\n"

    report = ingest_file(db, write(tmp_path, "выгрузка.csv", text.encode("cp1251")), schema=schema)

    assert report.encoding == "cp1251" and report.delimiter == ";"
    assert report.columns == {"Город": "categorical", "Платёж": "numeric"}
    assert {r.client_id: r.data for r in records(db)} == {
        "К-1": {"Город": "Москва", "Платёж": 1.5}, "К-2": {"Город": "Омск", "Платёж": 2},
    }


def test_bankchurners_with_its_schema_has_no_leak_warnings(db):
    schema = Schema("CLIENTNUM", "Attrition_Flag", "Attrited Customer",
                    ("Naive_Bayes_Classifier_Attrition_Flag_Card_Category_Contacts_Count_12_mon_Dependent_count_"
                     "Education_Level_Months_Inactive_12_mon_1",
                     "Naive_Bayes_Classifier_Attrition_Flag_Card_Category_Contacts_Count_12_mon_Dependent_count_"
                     "Education_Level_Months_Inactive_12_mon_2"))

    report = ingest_file(db, DATA / "BankChurners.csv", schema=schema)

    assert (report.rows, report.positives) == (10127, 1627)
    assert report.warnings == []
    with db.session() as session:
        stored = remembered_schema(session)
    assert stored is not None and list(stored.ignore_columns) == list(schema.ignore_columns)


def test_churn_modelling_with_numeric_label(db):
    schema = Schema("CustomerId", "Exited", "1", ("RowNumber", "Surname"))

    report = ingest_file(db, DATA / "Churn_Modelling.csv", schema=schema)

    assert (report.rows, report.positives) == (10000, 2037)
    assert report.warnings == []
    with db.session() as session:
        assert session.get(Meta, NEGATIVE_LABEL_KEY).value == "0"
        first = session.exec(select(ClientRecord).where(ClientRecord.client_id == "15634602")).one()
    assert first.label == 1 and first.data["Surname"] == "Hargrave"


def test_bigml_with_a_synthesised_id_column(db):
    frame = pd.read_csv(DATA / "churn-bigml-20.csv")
    frame.insert(0, "phone", [f"p{i:05d}" for i in range(len(frame))])

    report = ingest_frame(db, frame, schema=Schema("phone", "Churn", "True"), source_name="bigml-20")

    assert report.rows == len(frame) == 667
    assert report.positives == int(frame["Churn"].sum())
    assert report.columns["International plan"] == "categorical"
    assert report.columns["Total day minutes"] == "numeric"
