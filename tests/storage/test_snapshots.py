"""The read API over dated client records (storage.snapshots): as-of dates, snapshot frames
read in bounded chunks, and departures.  Every test runs on SQLite and PostgreSQL.

The store: January (labelled), February (features; its outcomes arrive later in a labels-only
file), March (features), and a churn list complete up to the end of April."""

from __future__ import annotations

from datetime import datetime

import pandas as pd
import pytest
from pandas.testing import assert_frame_equal
from sqlalchemy import event

import storage.snapshots as snapshots
from storage.churns import ingest_churns
from storage.ingest import ingest_file
from storage.schema import Schema
from storage.snapshots import (
    AS_OF,
    DateSummary,
    Departure,
    as_of_dates,
    departure_of,
    departures,
    snapshot_frame,
    snapshot_frames,
)

SCHEMA = Schema("id", "Churn", "Yes", as_of_column="month")
EXPLICIT = {"as_of_column"}
D = datetime.fromisoformat
JAN, FEB, MAR = D("2024-01-31"), D("2024-02-29"), D("2024-03-31")


def add(db, tmp_path, name: str, content: str, **kwargs):
    path = tmp_path / name
    path.write_text(content)
    return ingest_file(db, path, schema=SCHEMA, explicit=EXPLICIT, **kwargs)


def churns(db, tmp_path, content: str, as_of: str):
    path = tmp_path / "churns.csv"
    path.write_text(content)
    return ingest_churns(db, path, as_of=D(as_of))


@pytest.fixture
def store(db, tmp_path):
    add(db, tmp_path, "jan.csv", "id,month,spend,plan,Churn\na,2024-01-31,10,basic,No\nb,2024-01-31,20,pro,Yes\n"
                                 "c,2024-01-31,,pro,No\n")
    add(db, tmp_path, "feb.csv", "id,month,spend,plan\na,2024-02-29,11,basic\nc,2024-02-29,6,pro\nd,2024-02-29,7,7\n")
    add(db, tmp_path, "mar.csv", "id,month,spend,plan\nd,2024-03-31,8,pro\ne,2024-03-31,1,basic\n")
    add(db, tmp_path, "feb-outcomes.csv", "id,month,Churn\na,2024-02-29,Yes\nc,2024-02-29,No\n")
    churns(db, tmp_path, "client_id,churn_date\nb,2024-02-15\na,2024-03-10\nc,2024-03-20\nd,2024-04-10\n",
           as_of="2024-04-30")
    return db


def rows(frame: pd.DataFrame) -> list[tuple]:
    return [(r.id, r.as_of.to_pydatetime(), None if pd.isna(r.Churn) else int(r.Churn))
            for r in frame.itertuples(index=False)]


# ------------------------------------------------------------------------------------------
# Dates
# ------------------------------------------------------------------------------------------


def test_as_of_dates_count_rows_and_known_labels_own_or_derived(store):
    summaries = as_of_dates(store, horizon_days=30)

    assert [(s.as_of, s.rows, s.labelled, s.positives) for s in summaries] == [
        (JAN, 3, 3, 1),  # own labels
        (FEB, 3, 3, 1),  # a, c from the later labels file (c's own 0 beats the list's 1); d derived 0
        (MAR, 2, 2, 1),  # derived: d left 2024-04-10 (1), e not listed and the list covers April (0)
    ]
    assert all(isinstance(s, DateSummary) for s in summaries)
    assert len(summaries[0].batch_ids) == 1 and len(summaries[1].batch_ids) == 2


def test_the_horizon_decides_which_derived_labels_are_known(store):
    # With 45 days, March's window ends 2024-05-15, after the list's end: e is unknown.
    march = as_of_dates(store, horizon_days=45)[-1]
    assert (march.rows, march.labelled, march.positives) == (2, 1, 1)


@pytest.mark.parametrize("horizon", [1, 30, 45, 90])
def test_the_quick_overview_agrees_with_the_counted_dates(store, tmp_path, horizon):
    add(store, tmp_path, "apr.csv", "id,month,spend,plan\ne,2024-04-30,2,basic\n")  # no outcome known at all

    dates, labelled = snapshots.date_overview(store, horizon_days=horizon)

    counted = as_of_dates(store, horizon_days=horizon)
    assert dates == [s.as_of for s in counted]
    assert labelled == [s.as_of for s in counted if s.labelled]


# ------------------------------------------------------------------------------------------
# Frames
# ------------------------------------------------------------------------------------------


def test_snapshot_frame_has_one_typed_row_per_client_and_date(store):
    frame = snapshot_frame(store, SCHEMA, horizon_days=30)

    assert list(frame.columns) == ["id", AS_OF, "spend", "plan", "Churn"]
    assert frame.dtypes.astype(str).tolist() == ["object", "datetime64[ns]", "float64", "object", "Int64"]
    assert rows(frame) == [("a", JAN, 0), ("b", JAN, 1), ("c", JAN, 0),
                           ("a", FEB, 1), ("c", FEB, 0), ("d", FEB, 0),
                           ("d", MAR, 1), ("e", MAR, 0)]
    february = frame[frame[AS_OF] == FEB].set_index("id")
    # The labels file carried each client's February features, not January's or March's.
    assert february["spend"].tolist() == [11.0, 6.0, 7.0]
    assert february.loc["d", "plan"] == "7"  # text in a text column, though it looks like a number
    assert frame["spend"].isna().tolist()[2]  # c's blank January spend
    assert len(frame.attrs["batch_ids"]) == 4


def test_labelled_only_gives_int_labels_and_leaves_unknown_ones_out(store):
    frame = snapshot_frame(store, SCHEMA, horizon_days=45, labelled_only=True)

    assert frame["Churn"].dtype == "int64"
    assert ("e", MAR, 0) not in rows(frame) and ("d", MAR, 1) in rows(frame) and len(frame) == 7


def test_dates_and_clients_select_rows(store):
    frame = snapshot_frame(store, SCHEMA, horizon_days=30, dates=[pd.Timestamp("2024-03-31"), FEB],
                           client_ids=["d", "a", "zz"])

    assert rows(frame) == [("a", FEB, 1), ("d", FEB, 0), ("d", MAR, 1)]
    assert snapshot_frame(store, SCHEMA, horizon_days=30, dates=[D("2023-12-31")]).empty


def test_tiny_chunks_give_the_same_frame_in_bounded_typed_pieces(store):
    whole = snapshot_frame(store, SCHEMA, horizon_days=30)

    for size in (1, 2, 3):
        chunks = list(snapshot_frames(store, SCHEMA, horizon_days=30, chunk_rows=size))
        assert all(0 < len(chunk) <= size for chunk in chunks)
        assert all(chunk[AS_OF].nunique() == 1 for chunk in chunks)  # one date or part of one
        assert [chunk[AS_OF].iloc[0] for chunk in chunks] == sorted(chunk[AS_OF].iloc[0] for chunk in chunks)
        assert {tuple(chunk.dtypes.astype(str)) for chunk in chunks} == {tuple(whole.dtypes.astype(str))}
        assert_frame_equal(pd.concat(chunks, ignore_index=True), whole)
        assert sorted({b for chunk in chunks for b in chunk.attrs["batch_ids"]}) == whole.attrs["batch_ids"]
        by_client = list(snapshot_frames(store, SCHEMA, horizon_days=30, chunk_rows=size, client_ids=list("abcde")))
        assert all(len(chunk) <= size for chunk in by_client)
        assert_frame_equal(pd.concat(by_client, ignore_index=True), whole)


def test_rows_are_read_lazily_page_by_page_never_more_than_a_chunk(store, monkeypatch):
    fetched: list[int] = []
    real = snapshots._chunk

    def counting(connection, plan, as_of, page):
        fetched.append(len(page))
        return real(connection, plan, as_of, page)

    monkeypatch.setattr(snapshots, "_chunk", counting)
    statements: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement)

    event.listen(store.engine, "before_cursor_execute", record)
    try:
        chunks = snapshot_frames(store, SCHEMA, horizon_days=30, chunk_rows=2)
        first = next(chunks)
        assert fetched == [2] and len(first) == 2  # one page read so far, not the table
        rest = list(chunks)
    finally:
        event.remove(store.engine, "before_cursor_execute", record)

    assert max(fetched) <= 2 and sum(fetched) == 8 and len(rest) + 1 == len(fetched)
    reads = [s for s in statements if "client_record.data" in s]
    assert reads and all("LIMIT" in s.upper() for s in reads)  # every page read is bounded by the database


def test_a_later_file_without_the_label_keeps_the_known_outcome_of_that_date(store, tmp_path):
    add(store, tmp_path, "feb-fix.csv", "id,month,spend,plan\na,2024-02-29,12,basic\n")

    frame = snapshot_frame(store, SCHEMA, horizon_days=30, dates=[FEB], client_ids=["a"])

    assert rows(frame) == [("a", FEB, 1)] and frame["spend"].tolist() == [12.0]


def test_carried_columns_are_typed_when_only_outcome_batches_are_involved(db, tmp_path):
    add(db, tmp_path, "jan.csv", "id,month,spend,plan\na,2024-01-31,10,basic\nb,2024-01-31,20,pro\n")
    add(db, tmp_path, "jan-out.csv", "id,month,Churn\na,2024-01-31,Yes\nb,2024-01-31,No\n")

    frame = snapshot_frame(db, SCHEMA, horizon_days=30, labelled_only=True)

    assert list(frame.columns) == ["id", AS_OF, "spend", "plan", "Churn"]
    assert frame["spend"].tolist() == [10.0, 20.0] and frame["Churn"].tolist() == [1, 0]


def test_a_stored_column_named_like_the_date_column_is_left_out(db, tmp_path):
    path = tmp_path / "m.csv"
    path.write_text("id,as_of,spend\na,2024-01-31,1\n")
    ingest_file(db, path, schema=Schema("id", "Churn", "Yes"), as_of=JAN)  # as_of is a plain column here

    frame = snapshot_frame(db, SCHEMA, horizon_days=30)

    assert list(frame.columns) == ["id", AS_OF, "spend", "Churn"] and frame[AS_OF].tolist() == [pd.Timestamp(JAN)]


def test_an_empty_store_gives_an_empty_typed_frame(db):
    frame = snapshot_frame(db, SCHEMA, horizon_days=30)

    assert frame.empty and list(frame.columns) == ["id", AS_OF, "Churn"]
    assert frame[AS_OF].dtype == "datetime64[ns]" and frame["Churn"].dtype == "Int64"
    assert as_of_dates(db, horizon_days=30) == [] and departures(db, horizon_days=30) == {}


def test_bad_arguments_are_refused(store):
    with pytest.raises(ValueError, match="chunk_rows"):
        snapshot_frame(store, SCHEMA, horizon_days=30, chunk_rows=0)
    with pytest.raises(Exception, match="horizon"):
        as_of_dates(store, horizon_days=0)


# ------------------------------------------------------------------------------------------
# Departures
# ------------------------------------------------------------------------------------------


def test_departures_come_from_churn_dates_up_to_until(store):
    assert departures(store, horizon_days=30) == {
        "a": Departure("a", D("2024-03-10"), None, 30), "b": Departure("b", D("2024-02-15"), None, 30),
        "c": Departure("c", D("2024-03-20"), None, 30), "d": Departure("d", D("2024-04-10"), None, 30)}
    assert set(departures(store, horizon_days=30, until=D("2024-03-12"))) == {"a", "b"}
    assert set(departures(store, ["b", "d", "e"], horizon_days=30)) == {"b", "d"}


def test_one_clients_departure_is_the_same_as_in_the_whole_list(store):
    # /score asks for one client through two indexed look-ups; it must agree with /top's list.
    for until in (None, D("2024-03-12"), D("2024-01-01")):
        every = departures(store, horizon_days=30, until=until)
        with store.read_session() as session:
            for client in "abcdefg":
                assert departure_of(session.connection(), client, horizon_days=30, until=until) == every.get(client)


def test_without_a_churn_list_a_newest_outcome_of_1_says_a_client_leaves(db, tmp_path):
    add(db, tmp_path, "jan.csv", "id,month,spend,Churn\na,2024-01-31,1,Yes\nb,2024-01-31,2,Yes\nc,2024-01-31,3,No\n")
    add(db, tmp_path, "feb.csv", "id,month,spend,Churn\nb,2024-02-29,2,No\nc,2024-02-29,3,Yes\n")

    assert departures(db, horizon_days=30) == {"a": Departure("a", None, JAN, 30), "c": Departure("c", None, FEB, 30)}
    # Before February's outcomes were dated, b's newest outcome was January's 1.
    assert set(departures(db, horizon_days=30, until=D("2024-02-01"))) == {"a", "b"}
    with db.read_session() as session:
        connection = session.connection()
        for until in (None, D("2024-02-01")):
            every = departures(db, horizon_days=30, until=until)
            assert {c: departure_of(connection, c, horizon_days=30, until=until) for c in "abc"} == {
                c: every.get(c) for c in "abc"}
