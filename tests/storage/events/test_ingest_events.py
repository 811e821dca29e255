"""Ingesting event files: every kind stored in one transaction, every bad file refused whole."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from sqlalchemy import select

from storage.db import Database
from storage.errors import UserError
from storage.events import append as append_module
from storage.events import ingest as ingest_module
from storage.events.ingest import ingest_events, parse_times
from storage.events.tables import EventClient, EventPurchase, EventSubscription, EventTicket, EventUsage
from storage.tables import Batch
from tests.storage.events.conftest import FAR_FUTURE_NOW, Ingest, rejected, write_csv

CLIENTS = [
    {"client_id": "c1", "signup_date": "2024-01-01", "region": "north", "seats": 3},
    {"client_id": "c2", "signup_date": "2024-02-10", "region": "south", "seats": ""},
    {"client_id": "007", "signup_date": "2024-03-01", "region": "", "seats": 12},
]


def _rows(db: Database, model: Any) -> list[Any]:
    with db.session() as session:
        return list(session.execute(select(model).order_by(model.id)).scalars())




def test_every_kind_is_stored_with_its_batch(db: Database, ingest: Ingest) -> None:
    # Given a clients table and one file of each event kind, in the canonical column names
    report = ingest("clients", CLIENTS)
    ingest("subscriptions", [{"client_id": "c1", "start": "2024-01-01", "end": "2024-02-01", "plan": "basic",
                              "monthly_amount": 10}, {"client_id": "c2", "start": "2024-02-10", "end": "",
                                                      "plan": "pro", "monthly_amount": 20.5}])
    ingest("purchases", [{"client_id": "c1", "timestamp": "2024-03-01 10:00:00", "amount": 12.5,
                          "product": "book"}])
    ingest("tickets", [{"client_id": "007", "opened_at": "2024-03-02 09:00", "closed_at": "",
                        "category": "bug", "satisfaction": ""}])
    usage = ingest("usage", [{"client_id": "c2", "timestamp": "2024-03-03T10:00:00+02:00", "event_type": "login",
                              "value": ""}])
    # Then each is stored, under a batch of kind events.<kind>
    assert report.status == "stored" and report.inserted == 3 and report.clients == 3
    counts = db.row_counts()
    assert [counts[t] for t in ("event_client", "event_subscription", "event_purchase", "event_ticket",
                                "event_usage")] == [3, 2, 1, 1, 1]
    assert [b.kind for b in _rows(db, Batch)] == ["events.clients", "events.subscriptions", "events.purchases",
                                                  "events.tickets", "events.usage"]
    clients = {c.client_id: c for c in _rows(db, EventClient)}
    assert set(clients) == {"c1", "c2", "007"}  # the leading zeros stay
    assert clients["c1"].attributes == {"region": "north", "seats": 3}
    assert clients["c2"].attributes == {"region": "south", "seats": None}
    assert clients["c1"].signup_at == datetime(2024, 1, 1) and clients["c1"].signup_ts == 1704067200
    (event,) = _rows(db, EventUsage)
    assert event.at == datetime(2024, 3, 3, 8, 0)  # +02:00 stored as naive UTC
    assert event.ts == int(pd.Timestamp("2024-03-03 08:00").timestamp()) and event.value is None
    (ticket,) = _rows(db, EventTicket)
    assert ticket.closed_at is None and ticket.closed_ts is None
    subs = _rows(db, EventSubscription)
    assert subs[1].end_ts is None and subs[1].monthly_amount == 20.5
    assert usage.batch_id is not None and usage.first_at == datetime(2024, 3, 3, 8, 0)


def test_mapped_columns_and_ignored_columns(db: Database, ingest: Ingest) -> None:
    ingest("clients", [{"cust": "a", "joined": "2024-01-05", "gone": "2024-03-01", "tier": "gold"}],
           mapping={"client_id": "cust", "signup_date": "joined", "churn_date": "gone"})
    report = ingest("purchases", [{"cust": "a", "ts": "2024-02-01", "amt": "3.5", "note": "x"}],
                    mapping={"client_id": "cust", "timestamp": "ts", "amount": "amt"})
    assert report.ignored_columns == ["note"]
    assert report.mapping == {"client_id": "cust", "timestamp": "ts", "amount": "amt"}
    (client,) = _rows(db, EventClient)
    assert client.churn_at == datetime(2024, 3, 1) and client.attributes == {"tier": "gold"}
    (purchase,) = _rows(db, EventPurchase)
    assert purchase.amount == 3.5 and purchase.product is None


def test_reingesting_the_same_file_says_duplicate(db: Database, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "clients.csv", CLIENTS)
    first = ingest_events(db, path, kind="clients")
    counts = db.row_counts()
    again = ingest_events(db, path, kind="clients")
    assert again.status == "duplicate" and again.batch_id == first.batch_id
    assert again.duplicate_of_kind == "events.clients" and "already ingested" in again.summary()
    assert db.row_counts() == counts


def test_parquet_files_are_read_too(db: Database, tmp_path: Path) -> None:
    path = tmp_path / "clients.parquet"
    pd.DataFrame({"client_id": [1, 2], "signup_date": pd.to_datetime(["2024-01-01", "2024-01-02"])}).to_parquet(path)
    report = ingest_events(db, path, kind="clients")
    assert report.inserted == 2
    assert sorted(c.client_id for c in _rows(db, EventClient)) == ["1", "2"]


# ------------------------------------------------------------------------------------------
# Refusals: each leaves every table as it was
# ------------------------------------------------------------------------------------------


def test_missing_required_column_is_named_with_the_columns_present(db: Database, ingest: Ingest) -> None:
    ingest("clients", CLIENTS)
    error = rejected(db, lambda: ingest("purchases", [{"client_id": "c1", "when": "2024-01-01", "amount": 1}]))
    assert error.details["problem"] == "missing_column" and error.details["column"] == "timestamp"
    assert "field 'timestamp'" in str(error) and "'when'" in str(error) and "--map timestamp=COLUMN" in str(error)


def test_explicitly_mapped_optional_column_must_exist(db: Database, ingest: Ingest) -> None:
    error = rejected(db, lambda: ingest("clients", CLIENTS, mapping={"churn_date": "cancelled"}))
    assert error.details["column"] == "cancelled" and "mapped to column 'cancelled'" in str(error)


def test_events_for_unknown_clients_name_some_ids_and_the_count(db: Database, ingest: Ingest) -> None:
    ingest("clients", CLIENTS)
    rows = [{"client_id": cid, "timestamp": "2024-04-01", "amount": 1} for cid in
            ["c1", "x1", "x2", "x1", "x3", "x4", "x5", "x6"]]
    error = rejected(db, lambda: ingest("purchases", rows))
    assert error.details["problem"] == "unknown_client"
    assert error.details["examples"] == ["x1", "x2", "x3", "x4", "x5"]
    assert error.details["count"] == 7 and error.details["rows"] == [2, 3, 4, 5, 6, 7, 8]
    assert "6 client ids in 'client_id' are not in the stored clients table" in str(error)


def test_events_before_any_clients_say_to_ingest_clients_first(db: Database, ingest: Ingest) -> None:
    error = rejected(db, lambda: ingest("usage", [{"client_id": "c1", "timestamp": "2024-01-01",
                                                    "event_type": "login"}]))
    assert "ingest the clients table first (--kind clients)" in str(error)


def test_unparseable_timestamps_give_rows_and_examples(db: Database, ingest: Ingest) -> None:
    ingest("clients", CLIENTS)
    rows = [{"client_id": "c1", "timestamp": t, "event_type": "login"}
            for t in ["2024-01-01", "yesterday", "2024-13-45", "", "2024-02-01 10:00"]]
    error = rejected(db, lambda: ingest("usage", rows))
    problems = {p["check"]: p for p in error.details["problems"]}
    assert problems["bad_timestamp"]["rows"] == [2, 3]
    assert problems["bad_timestamp"]["examples"] == ["yesterday", "2024-13-45"]
    assert problems["missing_value"]["rows"] == [4]  # a required time left empty
    assert "not dates (write them as YYYY-MM-DD" in str(error)


def test_future_timestamps_are_refused_relative_to_now(db: Database, ingest: Ingest) -> None:
    ingest("clients", CLIENTS, now=datetime(2024, 6, 1))
    rows = [{"client_id": "c1", "timestamp": "2024-06-01 13:00", "amount": 1},  # within the 14 h tolerance
            {"client_id": "c1", "timestamp": "2024-06-02 03:00", "amount": 1}]
    error = rejected(db, lambda: ingest("purchases", rows, now=datetime(2024, 6, 1, 12, 0)))
    assert error.details["problem"] == "future_timestamp" and error.details["rows"] == [2]
    assert error.details["examples"] == ["2024-06-02 03:00:00"]
    assert ingest("purchases", rows, now=datetime(2024, 6, 1, 14, 0)).inserted == 2


def test_scheduled_ends_may_lie_in_the_future(db: Database, ingest: Ingest) -> None:
    ingest("clients", CLIENTS, now=datetime(2024, 6, 1))
    report = ingest("subscriptions", [{"client_id": "c1", "start": "2024-05-01", "end": "2025-05-01",
                                       "monthly_amount": 9}], now=datetime(2024, 6, 1))
    assert report.inserted == 1


@pytest.mark.parametrize(
    ("kind", "row", "column"),
    [
        ("purchases", {"client_id": "c1", "timestamp": "2024-04-01", "amount": -5}, "amount"),
        ("subscriptions", {"client_id": "c1", "start": "2024-04-01", "monthly_amount": -0.01}, "monthly_amount"),
    ],
)
def test_negative_amounts_are_refused(db: Database, ingest: Ingest, kind: str, row: dict[str, Any],
                                      column: str) -> None:
    ingest("clients", CLIENTS)
    error = rejected(db, lambda: ingest(kind, [row]))
    assert error.details["problem"] == "negative_amount" and error.details["column"] == column
    assert error.details["rows"] == [1]


def test_amounts_that_are_not_numbers_are_refused(db: Database, ingest: Ingest) -> None:
    ingest("clients", CLIENTS)
    rows = [{"client_id": "c1", "timestamp": "2024-04-01", "amount": a} for a in ["1.5", "$3", "12"]]
    error = rejected(db, lambda: ingest("purchases", rows))
    assert error.details["problem"] == "not_a_number" and error.details["examples"] == ["$3"]


def test_duplicate_client_ids_are_refused(db: Database, ingest: Ingest) -> None:
    error = rejected(db, lambda: ingest("clients", [*CLIENTS, {"client_id": "c1", "signup_date": "2024-05-01"}]))
    assert error.details["problem"] == "duplicate_client" and error.details["rows"] == [1, 4]
    assert error.details["examples"] == ["c1", "c1"]


@pytest.mark.parametrize(
    ("kind", "row", "column"),
    [
        ("subscriptions", {"client_id": "c1", "start": "2024-04-01", "end": "2024-03-01", "monthly_amount": 1}, "end"),
        ("tickets", {"client_id": "c1", "opened_at": "2024-04-01 10:00", "closed_at": "2024-04-01 09:00"}, "closed_at"),
        ("clients", {"client_id": "z", "signup_date": "2024-04-01", "churn_date": "2024-01-01"}, "churn_date"),
    ],
)
def test_end_before_start_is_refused(db: Database, ingest: Ingest, kind: str, row: dict[str, Any],
                                     column: str) -> None:
    if kind != "clients":
        ingest("clients", CLIENTS)
    error = rejected(db, lambda: ingest(kind, [row]))
    assert error.details["problem"] == "end_before_start" and error.details["column"] == column


def test_all_problems_of_a_file_are_listed_at_once(db: Database, ingest: Ingest) -> None:
    ingest("clients", CLIENTS)
    rows = [{"client_id": "c1", "timestamp": "soon", "amount": 1},
            {"client_id": "ghost", "timestamp": "2024-01-01", "amount": -1}]
    error = rejected(db, lambda: ingest("purchases", rows))
    assert [p["check"] for p in error.details["problems"]] == ["bad_timestamp", "negative_amount", "unknown_client"]
    assert str(error).startswith("purchases0.csv: 3 problems, nothing was stored: (1)")


def test_a_failure_while_writing_rolls_back_the_batch(db: Database, ingest: Ingest,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    ingest("clients", CLIENTS)
    before = db.row_counts()

    def broken(*args: Any, **kwargs: Any) -> int:
        raise RuntimeError("disk full")

    monkeypatch.setattr(ingest_module, "bulk_insert", broken)  # whole-file kinds
    monkeypatch.setattr(append_module, "bulk_insert", broken)  # append-only kinds, stored chunk by chunk
    with pytest.raises(RuntimeError, match="disk full"):
        ingest("usage", [{"client_id": "c1", "timestamp": "2024-01-01", "event_type": "login"}])
    with pytest.raises(RuntimeError, match="disk full"):
        ingest("subscriptions", [{"client_id": "c1", "start": "2024-01-01", "monthly_amount": 5}])
    assert db.row_counts() == before


# ------------------------------------------------------------------------------------------
# Later files
# ------------------------------------------------------------------------------------------


def test_clients_are_upserted_by_id(db: Database, ingest: Ingest) -> None:
    ingest("clients", CLIENTS)
    report = ingest("clients", [{"client_id": "c1", "churn_date": "2024-05-01", "region": "west", "vip": "yes"},
                                {"client_id": "c9"}])
    assert (report.inserted, report.replaced) == (1, 1)
    clients = {c.client_id: c for c in _rows(db, EventClient)}
    assert clients["c1"].churn_at == datetime(2024, 5, 1)
    assert clients["c1"].signup_at == datetime(2024, 1, 1)  # the file had no signup column: kept
    assert clients["c1"].attributes == {"region": "west", "seats": 3, "vip": "yes"}
    assert len(clients) == 4


def test_a_later_subscription_export_replaces_rows_with_the_same_key(db: Database, ingest: Ingest) -> None:
    ingest("clients", CLIENTS)
    ingest("subscriptions", [{"client_id": "c1", "start": "2024-01-01", "end": "", "plan": "pro",
                              "monthly_amount": 10}])
    report = ingest("subscriptions", [{"client_id": "c1", "start": "2024-01-01", "end": "2024-04-01", "plan": "pro",
                                       "monthly_amount": 10},
                                      {"client_id": "c1", "start": "2024-04-01", "end": "", "plan": "max",
                                       "monthly_amount": 30}])
    assert (report.inserted, report.replaced) == (1, 1)
    subs = _rows(db, EventSubscription)
    assert [(s.plan, s.end_at) for s in subs] == [("pro", datetime(2024, 4, 1)), ("max", None)]


def test_duplicate_natural_keys_within_a_file_are_refused(db: Database, ingest: Ingest) -> None:
    ingest("clients", CLIENTS)
    row = {"client_id": "c1", "opened_at": "2024-01-01 10:00", "category": "bug"}
    error = rejected(db, lambda: ingest("tickets", [row, row]))
    assert error.details["problem"] == "duplicate_row" and error.details["rows"] == [1, 2]


def test_overlapping_event_exports_are_refused_but_later_and_earlier_ones_accepted(
        db: Database, ingest: Ingest) -> None:
    ingest("clients", CLIENTS)
    march = [{"client_id": "c1", "timestamp": f"2024-03-{d:02d}", "event_type": "login"} for d in (1, 15, 31)]
    ingest("usage", march)
    overlap = [{"client_id": "c1", "timestamp": "2024-03-20", "event_type": "login"},
               {"client_id": "c2", "timestamp": "2024-03-20", "event_type": "login"}]
    error = rejected(db, lambda: ingest("usage", overlap))
    assert error.details["problem"] == "overlapping_events" and error.details["rows"] == [1]
    assert "c1: file 2024-03-20 00:00..2024-03-20 00:00, stored 2024-03-01 00:00..2024-03-31 00:00" in str(error)
    assert ingest("usage", [{"client_id": "c1", "timestamp": "2024-03-31", "event_type": "x"},
                            {"client_id": "c1", "timestamp": "2024-04-02", "event_type": "x"}]).inserted == 2
    assert ingest("usage", [{"client_id": "c1", "timestamp": "2024-02-02", "event_type": "x"}]).inserted == 1


# ------------------------------------------------------------------------------------------
# Timestamp spellings
# ------------------------------------------------------------------------------------------


def _parsed(values: list[str]) -> list[str | None]:
    times, bad, _ = parse_times(pd.Series(values, dtype="str"))
    assert not bad.any(), values
    return [None if pd.isna(t) else f"{t:%Y-%m-%d %H:%M:%S}" for t in times]


def test_iso_timestamps_with_offsets_become_naive_utc() -> None:
    assert _parsed(["2024-03-01", "2024-03-01T23:30:00-02:00", "2024-03-01 10:00:00.9", "NULL"]) == [
        "2024-03-01 00:00:00", "2024-03-02 01:30:00", "2024-03-01 10:00:00", None]


def test_unambiguous_regional_dates_and_unix_time_are_read() -> None:
    assert _parsed(["31.12.2024", "01.02.2024 10:30"]) == ["2024-12-31 00:00:00", "2024-02-01 10:30:00"]
    assert _parsed(["13/01/2024", "02/01/2024"]) == ["2024-01-13 00:00:00", "2024-01-02 00:00:00"]
    assert _parsed(["01/13/2024", "01/02/2024"]) == ["2024-01-13 00:00:00", "2024-01-02 00:00:00"]
    assert _parsed(["1704067200", "1704153600"]) == ["2024-01-01 00:00:00", "2024-01-02 00:00:00"]


def test_ambiguous_day_month_dates_are_not_guessed() -> None:
    _, bad, _ = parse_times(pd.Series(["01/02/2024", "03/04/2024"], dtype="str"))
    assert bad.all()


def test_unknown_kind_is_a_user_error(db: Database, tmp_path: Path) -> None:
    with pytest.raises(UserError, match="unknown event kind 'orders'"):
        ingest_events(db, write_csv(tmp_path / "x.csv", CLIENTS), kind="orders", now=FAR_FUTURE_NOW)
