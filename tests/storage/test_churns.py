"""Churn lists (``ingest --kind churns``): stored whole or refused whole, and the label any
(client, as-of date) gets from them.  Storage tests run on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlmodel import select

from storage.churns import churn_dates, complete_until, derived_label, ingest_churns
from storage.errors import IngestRejected
from storage.events.ingest import ingest_events
from storage.events.mapping import MappingError, canonical_kind
from storage.ingest import ingest_file
from storage.schema import Schema
from storage.tables import Batch, ChurnList, utcnow

SCHEMA = Schema("customerID", "Churn", "Yes", as_of_column="month")
CLIENTS = "customerID,month,tenure\nA,2024-01-31,1\nB,2024-01-31,5\nC,2024-01-31,9\n"
D = datetime.fromisoformat


@pytest.fixture
def store(db, tmp_path):
    path = tmp_path / "jan.csv"
    path.write_text(CLIENTS)
    ingest_file(db, path, schema=SCHEMA, explicit={"as_of_column"})
    return db


def write(tmp_path, name: str, content: str):
    path = tmp_path / name
    path.write_text(content)
    return path


def dates(db) -> dict[str, datetime]:
    with db.read_session() as session:
        return churn_dates(session.connection())


# ------------------------------------------------------------------------------------------
# The label rule
# ------------------------------------------------------------------------------------------

MARCH = D("2024-03-31")


@pytest.mark.parametrize(("churn_at", "complete", "label"), [
    ("2024-04-15", None, 1),  # inside (as_of, as_of + 30 days]
    ("2024-04-30", None, 1),  # the window's last day counts
    ("2024-03-31", "2024-06-30", 0),  # on the as-of date itself: not after it
    ("2024-05-01", None, 0),  # after the window: still a client throughout it
    (None, "2024-04-30", 0),  # not listed, and the lists cover the whole window
    (None, "2024-04-29", None),  # not listed, but the window is not covered yet
    (None, None, None),  # no list at all
    ("2024-02-10", None, None),  # left before the date, lists incomplete: unknown
])
def test_the_label_of_a_date_follows_from_the_churn_date_and_the_lists_completeness(churn_at, complete, label):
    assert derived_label(MARCH, None if churn_at is None else D(churn_at),
                         complete=None if complete is None else D(complete), horizon_days=30) == label


# ------------------------------------------------------------------------------------------
# Ingest
# ------------------------------------------------------------------------------------------


def test_a_churn_list_is_stored_with_its_completeness_date(store, tmp_path):
    report = ingest_churns(store, write(tmp_path, "churns.csv", "client_id,churn_date\nA,2024-02-10\nB,2024-03-05\n"),
                           as_of=D("2024-03-31"))

    assert (report.status, report.clients, report.inserted, report.replaced) == ("stored", 2, 2, 0)
    assert report.complete_until == D("2024-03-31")
    assert "2 departures" in report.summary() and "complete up to 2024-03-31" in report.summary()
    assert report.as_dict()["complete_until"] == D("2024-03-31")
    assert dates(store) == {"A": D("2024-02-10"), "B": D("2024-03-05")}
    with store.read_session() as session:
        assert complete_until(session.connection()) == D("2024-03-31")
        batch = session.exec(select(Batch).where(Batch.kind == "churns")).one()
        assert session.get(ChurnList, batch.id) is not None


def test_without_as_of_a_list_is_complete_up_to_its_ingest_time(store, tmp_path):
    before = utcnow()
    report = ingest_churns(store, write(tmp_path, "c.csv", "client_id,churn_date\nA,2024-02-10\n"))

    assert report.complete_until is not None and before <= report.complete_until <= utcnow()


def test_the_id_column_may_be_named_like_the_client_tables_and_dates_may_be_day_first(store, tmp_path):
    report = ingest_churns(store, write(tmp_path, "c.csv", "customerID,churn_date\nA,15.02.2024\nC,01.03.2024\n"))

    assert report.mapping == {"client_id": "customerID", "churn_date": "churn_date"}
    assert dates(store) == {"A": D("2024-02-15"), "C": D("2024-03-01")}
    assert any("DD.MM.YYYY" in note for note in report.notes)


def test_columns_are_mapped_like_event_tables(store, tmp_path):
    path = write(tmp_path, "c.csv", "cust;left;reason\nA;2024-02-10;price\n")

    report = ingest_churns(store, path, mapping={"client_id": "cust", "churn_date": "left"})

    assert dates(store) == {"A": D("2024-02-10")} and report.ignored_columns == ["reason"]
    assert canonical_kind("churn_list") == "churns"


def test_the_event_ingest_entry_point_hands_churn_lists_over(store, tmp_path):
    report = ingest_events(store, write(tmp_path, "c.csv", "client_id,churn_date\nB,2024-02-10\n"), kind="churns")

    assert report.kind == "churns" and dates(store) == {"B": D("2024-02-10")}


def test_a_later_list_corrects_a_date_and_keeps_clients_it_does_not_name(store, tmp_path):
    ingest_churns(store, write(tmp_path, "1.csv", "client_id,churn_date\nA,2024-02-10\nB,2024-03-05\n"))

    report = ingest_churns(store, write(tmp_path, "2.csv", "client_id,churn_date\nA,2024-02-12\nC,2024-03-20\n"))

    assert (report.inserted, report.replaced, report.unchanged) == (1, 1, 0)
    assert dates(store) == {"A": D("2024-02-12"), "B": D("2024-03-05"), "C": D("2024-03-20")}


def test_the_same_client_twice_with_the_same_date_counts_once(store, tmp_path):
    report = ingest_churns(store, write(tmp_path, "c.csv", "client_id,churn_date\nA,2024-02-10\nA,2024-02-10\n"))

    assert report.clients == 1 and dates(store) == {"A": D("2024-02-10")}
    assert any("counted once" in note for note in report.notes)


FUTURE = f"{utcnow() + timedelta(days=3):%Y-%m-%d}"
BAD = {
    "unknown client": ("client_id,churn_date\nA,2024-02-10\nZ,2024-02-11\n", "unknown_client", [2]),
    "unreadable date": ("client_id,churn_date\nA,soon\nB,2024-02-11\n", "bad_timestamp", [1]),
    "blank date": ("client_id,churn_date\nA,\nB,2024-02-11\n", "missing_value", [1]),
    "future date": (f"client_id,churn_date\nA,{FUTURE}\nB,2024-02-11\n", "future_timestamp", [1]),
    "two dates": ("client_id,churn_date\nA,2024-02-10\nB,2024-02-11\nA,2024-02-12\n", "duplicate_client", [1, 3]),
    "missing column": ("client_id,left\nA,2024-02-10\n", "missing_column", []),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_lists_are_refused_whole_and_store_nothing(store, tmp_path, case):
    content, problem, rows = BAD[case]
    before = store.row_counts()

    with pytest.raises(IngestRejected) as caught:
        ingest_churns(store, write(tmp_path, "c.csv", content))

    assert caught.value.details["problem"] == problem and caught.value.exit_code == 2
    assert caught.value.details["rows"] == rows and "nothing was stored" in str(caught.value)
    assert store.row_counts() == before


def test_every_problem_of_a_list_is_named_at_once(store, tmp_path):
    with pytest.raises(IngestRejected) as caught:
        ingest_churns(store, write(tmp_path, "c.csv", "client_id,churn_date\nZ,2024-02-10\nA,never\n"))

    assert {p["check"] for p in caught.value.details["problems"]} == {"unknown_client", "bad_timestamp"}


def test_a_future_completeness_date_is_refused(store, tmp_path):
    before = store.row_counts()
    with pytest.raises(IngestRejected) as caught:
        ingest_churns(store, write(tmp_path, "c.csv", "client_id,churn_date\nA,2024-02-10\n"),
                      as_of=utcnow() + timedelta(days=3))
    assert caught.value.details["problem"] == "future_as_of"
    assert store.row_counts() == before


def test_a_list_before_any_client_table_says_what_to_send_first(db, tmp_path):
    with pytest.raises(IngestRejected) as caught:
        ingest_churns(db, write(tmp_path, "c.csv", "client_id,churn_date\nA,2024-02-10\n"))
    assert "no client table is stored yet" in str(caught.value)


def test_the_same_bytes_twice_change_nothing(store, tmp_path):
    path = write(tmp_path, "c.csv", "client_id,churn_date\nA,2024-02-10\n")
    first = ingest_churns(store, path)
    counts = store.row_counts()

    again = ingest_churns(store, path)

    assert again.status == "duplicate" and again.batch_id == first.batch_id and store.row_counts() == counts


def test_an_unknown_kind_still_lists_churns_among_the_kinds():
    with pytest.raises(MappingError, match="churns"):
        canonical_kind("orders")
