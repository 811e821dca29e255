"""As-of dates of client records: where they come from, what is refused, and what they change.

A row's as-of date comes from the as-of column (CHURNGUARD_AS_OF_COLUMN, one value per file
or per row), else ``--as-of``, else the ingest time.  Outcomes that arrive later attach to the
record of the date they refer to, and ``is_latest`` is the newest as-of date.  Every test runs
on SQLite and on PostgreSQL (the ``db`` fixture)."""

from __future__ import annotations

from datetime import datetime, timedelta

import pandas as pd
import pytest
from sqlmodel import col, select

from storage.errors import IngestRejected, SchemaConflict
from storage.ingest import ingest_file, ingest_frame
from storage.schema import Schema, remembered_schema
from storage.tables import Batch, ClientRecord, utcnow

PLAIN = Schema("id", "Churn", "Yes")
DATED = Schema("id", "Churn", "Yes", as_of_column="month")
EXPLICIT = {"as_of_column"}  # as if CHURNGUARD_AS_OF_COLUMN were set


def write(tmp_path, name: str, content: str):
    path = tmp_path / name
    path.write_text(content)
    return path


def records(db) -> list[ClientRecord]:
    with db.read_session() as session:
        return list(session.exec(select(ClientRecord).order_by(col(ClientRecord.id))).all())


def latest(db) -> dict[str, tuple[datetime, int | None, dict]]:
    return {r.client_id: (r.as_of, r.label, r.data) for r in records(db) if r.is_latest}


def day(text: str) -> datetime:
    return datetime.fromisoformat(text)


# ------------------------------------------------------------------------------------------
# Where the date comes from
# ------------------------------------------------------------------------------------------


def test_the_as_of_column_dates_each_row_and_is_not_stored_as_a_feature(db, tmp_path):
    path = write(tmp_path, "march.csv", "id,month,spend,Churn\na,2024-03-31,10,No\nb,2024-03-31,20,Yes\n")

    report = ingest_file(db, path, schema=DATED, explicit=EXPLICIT)

    assert [(r.client_id, r.as_of) for r in records(db)] == [("a", day("2024-03-31")), ("b", day("2024-03-31"))]
    assert all("month" not in r.data for r in records(db))
    assert report.columns == {"spend": "numeric"}
    assert report.as_of == {"first": "2024-03-31T00:00:00", "last": "2024-03-31T00:00:00", "count": 1}
    assert report.as_of_source == "column"
    assert report.to_dict()["as_of"]["count"] == 1 and report.to_dict()["as_of_source"] == "column"
    assert "As of 2024-03-31 (from the as-of column 'month')." in report.to_text()
    with db.read_session() as session:
        stored = remembered_schema(session)
        batch = session.exec(select(Batch)).one()
    assert stored is not None and stored.as_of_column == "month"
    assert "month" not in batch.columns


def test_one_file_may_hold_several_dates_and_a_client_once_per_date(db, tmp_path):
    content = ("id,month,spend,Churn\n"
               "a,2024-01-31 00:00,10,No\nb,2024-01-31 00:00,20,Yes\n"
               "a,2024-02-29 12:30,11,Yes\n")

    report = ingest_file(db, write(tmp_path, "history.csv", content), schema=DATED, explicit=EXPLICIT)

    assert report.rows == 3
    assert report.as_of == {"first": "2024-01-31T00:00:00", "last": "2024-02-29T12:30:00", "count": 2}
    assert "As of 2 dates, 2024-01-31 to 2024-02-29 12:30" in report.to_text()
    assert latest(db) == {"a": (day("2024-02-29 12:30"), 1, {"spend": 11}),
                          "b": (day("2024-01-31"), 1, {"spend": 20})}


@pytest.mark.parametrize(("cell", "expected", "note"), [
    ("2024-03-31", "2024-03-31 00:00", None),
    ("2024-03-31 12:00", "2024-03-31 12:00", None),
    ("2024-03-31T12:00:00+02:00", "2024-03-31 10:00", None),  # an offset is converted to UTC
    ("31.03.2024", "2024-03-31 00:00", "DD.MM.YYYY"),
    ("31/03/2024", "2024-03-31 00:00", "DD/MM/YYYY"),  # day > 12: day-first is unambiguous
    ("03/31/2024", "2024-03-31 00:00", "MM/DD/YYYY"),
])
def test_date_spellings_are_read_and_a_non_iso_choice_is_stated(db, tmp_path, cell, expected, note):
    report = ingest_file(db, write(tmp_path, "m.csv", f"id,month,spend\na,{cell},1\nb,{cell},2\n"),
                         schema=DATED, explicit=EXPLICIT)

    assert {r.as_of for r in records(db)} == {day(expected)}
    notes = [w["message"] for w in report.warnings if w["column"] == "month"]
    assert notes == ([] if note is None else [f"non-ISO dates read as {note}"])


def test_a_numeric_looking_date_column_is_read_as_dates_not_numbers(db, tmp_path):
    report = ingest_file(db, write(tmp_path, "m.csv", "id,month,spend\na,20240331,1\nb,20240331,2\n"),
                         schema=DATED, explicit=EXPLICIT)

    assert {r.as_of for r in records(db)} == {day("2024-03-31")} and report.columns == {"spend": "numeric"}


def test_typed_dates_of_parquet_files_and_sql_pulls_are_taken_as_they_are(db, tmp_path):
    frame = pd.DataFrame({"id": ["a", "b"], "month": pd.to_datetime(["2024-03-31 00:00", "2024-03-31 12:00"]),
                          "spend": [1.0, 2.0]})
    frame.to_parquet(tmp_path / "m.parquet")
    ingest_file(db, tmp_path / "m.parquet", schema=DATED, explicit=EXPLICIT)
    aware = frame.assign(id=["c", "d"], month=frame["month"].dt.tz_localize("Europe/Berlin"))
    ingest_frame(db, aware, schema=DATED, explicit=EXPLICIT)

    assert [(r.client_id, r.as_of) for r in records(db)] == [
        ("a", day("2024-03-31")), ("b", day("2024-03-31 12:00")),
        ("c", day("2024-03-30 23:00")), ("d", day("2024-03-31 10:00"))]  # Berlin is UTC+1, then UTC+2


def test_the_flag_dates_a_file_without_the_column(db, tmp_path):
    report = ingest_file(db, write(tmp_path, "m.csv", "id,spend\na,1\nb,2\n"), schema=PLAIN,
                         as_of=day("2024-03-31"))

    assert {r.as_of for r in records(db)} == {day("2024-03-31")}
    assert report.as_of_source == "flag" and report.warnings == []
    assert "As of 2024-03-31 (from --as-of)." in report.to_text()


def test_the_column_wins_over_the_flag_and_says_so(db, tmp_path):
    report = ingest_file(db, write(tmp_path, "m.csv", "id,month,spend\na,2024-03-31,1\n"), schema=DATED,
                         explicit=EXPLICIT, as_of=day("2024-02-29"))

    assert {r.as_of for r in records(db)} == {day("2024-03-31")}
    assert any("--as-of 2024-02-29 was not used" in w["message"] for w in report.warnings)


def test_without_column_or_flag_the_rows_are_dated_by_the_ingest_time(db, tmp_path):
    report = ingest_file(db, write(tmp_path, "m.csv", "id,spend\na,1\n"), schema=PLAIN)

    (record,) = records(db)
    assert record.as_of == record.observed_at == report.received_at
    assert report.as_of_source == "ingest_time" and "(the ingest time)" in report.to_text()


@pytest.mark.parametrize("flag", [None, "2024-03-31"])
def test_a_file_missing_the_named_column_falls_back_with_a_warning(db, tmp_path, flag):
    as_of = None if flag is None else day(flag)

    report = ingest_file(db, write(tmp_path, "m.csv", "id,spend\na,1\n"), schema=DATED, explicit=EXPLICIT,
                         as_of=as_of)

    (record,) = records(db)
    assert record.as_of == (record.observed_at if flag is None else as_of)
    (warning,) = [w for w in report.warnings if w["column"] == "month"]
    assert "no as-of column 'month'" in warning["message"]
    assert ("--as-of 2024-03-31" if flag else "the ingest time") in warning["message"]
    assert report.as_of_source == ("flag" if flag else "ingest_time")


# ------------------------------------------------------------------------------------------
# Refusals: nothing stored
# ------------------------------------------------------------------------------------------

TOMORROW = f"{utcnow() + timedelta(days=2):%Y-%m-%d}"
REFUSED = {
    "unreadable": ("id,month,spend\na,2024-03-31,1\nb,soon,2\nc,2024-13-45,3\n", "bad_as_of", [2, 3], "not dates"),
    "blank": ("id,month,spend\na,2024-03-31,1\nb,,2\n", "missing_as_of", [2], "is blank"),
    "future": (f"id,month,spend\na,2024-03-31,1\nb,{TOMORROW},2\n", "future_as_of", [2], "in the future"),
    "ambiguous": ("id,month,spend\na,01/02/2024,1\nb,03/04/2024,2\n", "ambiguous_as_of", [1, 2], "day/month"),
    "duplicate pair": ("id,month,spend\na,2024-03-31,1\nb,2024-02-29,2\na,2024-03-31,3\n", "duplicate_ids", [1, 3],
                       "same as-of date"),
    "same date twice": ("id,month,spend\na,2024-03-31,1\na,2024-03-31,3\n", "duplicate_ids", [1, 2],
                        "repeat in column 'id'"),
    "only id and date": ("id,month\na,2024-03-31\n", "not_a_table", None, "nothing to store"),
}


@pytest.mark.parametrize("case", list(REFUSED))
def test_bad_dates_are_refused_with_rows_and_nothing_is_stored(db, tmp_path, case):
    content, problem, rows, words = REFUSED[case]
    before = db.row_counts()

    with pytest.raises(IngestRejected) as caught:
        ingest_file(db, write(tmp_path, "m.csv", content), schema=DATED, explicit=EXPLICIT)

    assert caught.value.details["problem"] == problem and caught.value.exit_code == 2
    assert words in str(caught.value)
    if rows is not None:
        assert caught.value.details["rows"] == rows
        assert caught.value.details.get("column") in ("month", "id")
    assert db.row_counts() == before


def test_a_future_or_ancient_flag_is_refused(db, tmp_path):
    path = write(tmp_path, "m.csv", "id,spend\na,1\n")
    before = db.row_counts()
    for moment, problem in ((utcnow() + timedelta(days=2), "future_as_of"), (datetime(1850, 1, 1), "bad_as_of")):
        with pytest.raises(IngestRejected) as caught:
            ingest_file(db, path, schema=PLAIN, as_of=moment)
        assert caught.value.details["problem"] == problem and "--as-of" in str(caught.value)
    assert db.row_counts() == before


def test_the_as_of_column_must_differ_from_the_id_and_label_columns(db, tmp_path):
    path = write(tmp_path, "m.csv", "id,spend,Churn\na,1,Yes\nb,2,No\n")
    for column in ("id", "Churn"):
        with pytest.raises(IngestRejected) as caught:
            ingest_file(db, path, schema=Schema("id", "Churn", "Yes", as_of_column=column), explicit=EXPLICIT)
        assert caught.value.details["problem"] == "bad_schema"
    assert db.row_counts()["client_record"] == 0


def test_the_remembered_as_of_column_is_used_adopted_once_and_never_silently_changed(db, tmp_path):
    # An undated store takes the first as-of column a batch names ...
    ingest_file(db, write(tmp_path, "old.csv", "id,spend\na,1\n"), schema=PLAIN)
    ingest_file(db, write(tmp_path, "jan.csv", "id,month,spend\na,2024-01-31,2\n"), schema=DATED, explicit=EXPLICIT)
    # ... later commands need no setting ...
    ingest_file(db, write(tmp_path, "feb.csv", "id,month,spend\na,2024-02-29,3\n"), schema=PLAIN)
    assert sorted(r.as_of for r in records(db))[:2] == [day("2024-01-31"), day("2024-02-29")]
    with db.read_session() as session:
        assert remembered_schema(session).as_of_column == "month"  # type: ignore[union-attr]
    # ... and an explicit other column is a conflict that stores nothing.
    before = db.row_counts()
    with pytest.raises(SchemaConflict) as caught:
        ingest_file(db, write(tmp_path, "mar.csv", "id,snapshot,spend\na,2024-03-31,4\n"),
                    schema=Schema("id", "Churn", "Yes", as_of_column="snapshot"), explicit=EXPLICIT)
    assert "remembers as-of column 'month'" in str(caught.value) and "CHURNGUARD_AS_OF_COLUMN" in str(caught.value)
    assert db.row_counts() == before


# ------------------------------------------------------------------------------------------
# Outcomes that arrive later; the current record
# ------------------------------------------------------------------------------------------

JAN = "id,month,spend,plan\na,2024-01-31,10,basic\nb,2024-01-31,20,pro\n"
FEB = "id,month,spend,plan\na,2024-02-29,11,pro\nb,2024-02-29,21,pro\n"


def test_a_later_labels_file_for_an_older_date_labels_that_dates_features_and_keeps_the_latest(db, tmp_path):
    ingest_file(db, write(tmp_path, "jan.csv", JAN), schema=DATED, explicit=EXPLICIT)
    feb = ingest_file(db, write(tmp_path, "feb.csv", FEB), schema=DATED, explicit=EXPLICIT)

    outcomes = ingest_file(db, write(tmp_path, "jan-outcomes.csv", "id,month,Churn\na,2024-01-31,No\nb,2024-01-31,Yes\n"),
                           schema=DATED, explicit=EXPLICIT)

    assert outcomes.carried_columns == ["spend", "plan"] and outcomes.carried_clients == 2
    labelled = {r.client_id: (r.as_of, r.data, r.is_latest) for r in records(db) if r.label is not None}
    assert labelled == {"a": (day("2024-01-31"), {"spend": 10, "plan": "basic"}, False),
                        "b": (day("2024-01-31"), {"spend": 20, "plan": "pro"}, False)}
    # February stays the current record of both clients.
    assert {cid: (as_of, label) for cid, (as_of, label, _) in latest(db).items()} == {
        "a": (day("2024-02-29"), None), "b": (day("2024-02-29"), None)}
    assert {r.batch_id for r in records(db) if r.is_latest} == {feb.batch_id}
    assert "record at the same as-of date" in outcomes.warnings[0]["message"]


def test_the_flag_attaches_outcomes_to_the_records_of_that_date(db, tmp_path):
    ingest_file(db, write(tmp_path, "jan.csv", JAN), schema=DATED, explicit=EXPLICIT)
    ingest_file(db, write(tmp_path, "feb.csv", FEB), schema=DATED, explicit=EXPLICIT)

    ingest_file(db, write(tmp_path, "feb-out.csv", "id,Churn\na,Yes\nb,No\n"), schema=DATED, explicit=EXPLICIT,
                as_of=day("2024-02-29"))

    # A tie on the date goes to the newest record: the labelled February one is now current.
    assert latest(db) == {"a": (day("2024-02-29"), 1, {"spend": 11, "plan": "pro"}),
                          "b": (day("2024-02-29"), 0, {"spend": 21, "plan": "pro"})}


def test_outcomes_for_a_date_a_client_has_no_record_at_are_not_stored(db, tmp_path):
    ingest_file(db, write(tmp_path, "jan.csv", JAN), schema=DATED, explicit=EXPLICIT)
    before = db.row_counts()

    with pytest.raises(IngestRejected) as caught:
        ingest_file(db, write(tmp_path, "x.csv", "id,month,Churn\na,2023-12-31,Yes\nb,2023-12-31,No\n"),
                    schema=DATED, explicit=EXPLICIT)
    assert caught.value.details["problem"] == "unknown_clients"
    assert "has a record at its as-of date (2023-12-31)" in str(caught.value)
    assert db.row_counts() == before

    report = ingest_file(db, write(tmp_path, "y.csv", "id,month,Churn\na,2024-01-31,Yes\nb,2023-12-31,No\n"),
                         schema=DATED, explicit=EXPLICIT)
    assert report.rows == 1 and report.skipped_clients == 1 and report.skipped_examples == ["b"]
    assert "no record of them at their as-of date" in " ".join(w["message"] for w in report.warnings)


def test_undated_outcomes_complete_the_latest_record_at_its_date(db, tmp_path):
    ingest_file(db, write(tmp_path, "jan.csv", JAN), schema=DATED, explicit=EXPLICIT)
    ingest_file(db, write(tmp_path, "feb.csv", FEB), schema=DATED, explicit=EXPLICIT)

    report = ingest_file(db, write(tmp_path, "out.csv", "id,Churn\na,Yes\nb,No\n"), schema=PLAIN)

    assert report.as_of_source == "latest_record"
    assert report.as_of == {"first": "2024-02-29T00:00:00", "last": "2024-02-29T00:00:00", "count": 1}
    assert latest(db)["a"] == (day("2024-02-29"), 1, {"spend": 11, "plan": "pro"})


def test_a_late_full_export_of_an_older_month_does_not_become_current(db, tmp_path):
    ingest_file(db, write(tmp_path, "feb.csv", FEB), schema=DATED, explicit=EXPLICIT)

    ingest_file(db, write(tmp_path, "jan.csv", JAN.replace("a,2024-01-31,10", "c,2024-01-31,5")), schema=DATED,
                explicit=EXPLICIT)

    assert {cid: as_of for cid, (as_of, _, _) in latest(db).items()} == {
        "a": day("2024-02-29"), "b": day("2024-02-29"), "c": day("2024-01-31")}
    assert sum(r.is_latest for r in records(db)) == 3
