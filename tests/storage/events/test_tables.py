"""The event tables exist on both engines with naive timestamps and (client, time) indexes."""

from __future__ import annotations

from sqlalchemy import inspect

from storage.db import Database
from storage.events.tables import EVENT_TABLES

TIME_COLUMN = {"event_subscription": "start_ts", "event_purchase": "ts", "event_ticket": "opened_ts",
               "event_usage": "ts"}


def test_schema_creates_every_event_table(db: Database) -> None:
    counts = db.row_counts()
    for model in EVENT_TABLES.values():
        assert counts[model.__tablename__] == 0  # type: ignore[attr-defined]


def test_each_event_table_has_a_client_time_index(db: Database) -> None:
    inspector = inspect(db.engine)
    for table, column in TIME_COLUMN.items():
        leading = [tuple(ix["column_names"][:2]) for ix in inspector.get_indexes(table)]
        assert ("client_key", column) in leading, (table, leading)
    usage = [tuple(ix["column_names"]) for ix in inspector.get_indexes("event_usage")]
    assert ("client_key", "event_type", "ts", "value") in usage


def test_timestamps_are_naive_and_epoch_seconds_are_64_bit(db: Database) -> None:
    columns = {c["name"]: c for c in inspect(db.engine).get_columns("event_usage")}
    assert getattr(columns["at"]["type"], "timezone", False) is False
    assert "BIGINT" in str(columns["ts"]["type"]).upper()
    client = {c["name"]: c for c in inspect(db.engine).get_columns("event_client")}
    assert client["client_id"]["nullable"] is False
