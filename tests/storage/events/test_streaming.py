"""Append-only event files are read, checked and stored chunk by chunk, still as one
transaction: problems from every chunk are reported together, one bad row in the last
chunk stores nothing, and the row limits that guard whole-file reads do not apply."""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from sqlalchemy import func, select

from storage.db import Database
from storage.errors import IngestRejected
from storage.events import stream as stream_module
from storage.events.ingest import ingest_events
from storage.events.tables import EventUsage
from storage.readers import Limits
from tests.storage.events.conftest import FAR_FUTURE_NOW, Ingest, rejected, write_csv

CHUNK = 4  # rows per chunk in these tests: every file below spans several chunks


@pytest.fixture(autouse=True)
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stream_module, "CHUNK_ROWS", CHUNK)


@pytest.fixture
def sqlite_db(sqlite_url: str) -> Any:
    """For checks of the file reader alone, which does not depend on the engine."""
    database = Database(sqlite_url).create_schema()
    yield database
    database.dispose()


@pytest.fixture
def clients(ingest: Ingest) -> None:
    ingest("clients", [{"client_id": f"c{i}", "region": "north"} for i in range(1, 4)])


def _usage(n: int, **overrides: dict[int, dict[str, Any]]) -> list[dict[str, Any]]:
    rows = [{"client_id": f"c{i % 3 + 1}", "timestamp": f"2024-01-{i % 28 + 1:02d} 10:00:00", "event_type": "login",
             "value": ""} for i in range(n)]
    for position, change in overrides.get("at", {}).items():
        rows[position] = {**rows[position], **change}
    return rows




def _usage_rows(db: Database) -> int:
    with db.session() as session:
        return int(session.execute(select(func.count()).select_from(EventUsage)).scalar_one())


def test_a_file_of_many_chunks_is_stored_whole(db: Database, ingest: Ingest, clients: None) -> None:
    report = ingest("usage", _usage(23))
    assert (report.rows, report.inserted, report.clients) == (23, 23, 3)
    assert _usage_rows(db) == 23
    assert f"{report.first_at:%Y-%m-%d}" == "2024-01-01" and f"{report.last_at:%Y-%m-%d}" == "2024-01-23"


def test_problems_of_several_chunks_are_one_problem_with_rows_from_each(db: Database, ingest: Ingest,
                                                                        clients: None) -> None:
    # Given bad timestamps in the first, third and sixth chunk, and an unknown client in the fifth
    rows = _usage(23, at={1: {"timestamp": "soon"}, 9: {"timestamp": "later"}, 17: {"client_id": "ghost"},
                          21: {"timestamp": "never"}})
    error = rejected(db, lambda: ingest("usage", rows))
    problems = {p["check"]: p for p in error.details["problems"]}
    # Then each check is reported once, with its rows across the chunks, as a whole-file read would
    assert problems["bad_timestamp"]["rows"] == [2, 10, 22] and problems["bad_timestamp"]["count"] == 3
    assert problems["bad_timestamp"]["examples"] == ["soon", "later", "never"]
    assert "(3 rows: data rows 2, 10, 22) e.g. 'soon', 'later', 'never'" in str(error)
    assert problems["unknown_client"]["rows"] == [18] and problems["unknown_client"]["examples"] == ["ghost"]
    assert [p["check"] for p in error.details["problems"]] == ["bad_timestamp", "unknown_client"]


def test_a_bad_row_in_the_last_chunk_stores_none_of_the_earlier_chunks(db: Database, ingest: Ingest,
                                                                       clients: None) -> None:
    rows = _usage(22, at={21: {"value": "lots"}})
    error = rejected(db, lambda: ingest("usage", rows))
    assert error.details["problem"] == "not_a_number" and error.details["rows"] == [22]
    assert _usage_rows(db) == 0


def test_rows_with_a_wrong_number_of_fields_are_refused_quoting_them(sqlite_db: Database, tmp_path: Path) -> None:
    db = sqlite_db
    ingest_events(db, write_csv(tmp_path / "c.csv", [{"client_id": "c1", "region": "x"}]), kind="clients",
                  now=FAR_FUTURE_NOW)
    lines = ["client_id,timestamp,event_type"] + [f"c1,2024-01-{d:02d},login" for d in range(1, 12)]
    lines[6] = "c1,2024-01-06"  # one field short
    lines[9] = "c1,2024-01-09,login,extra"  # one too many
    path = tmp_path / "ragged.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    error = rejected(db, lambda: ingest_events(db, path, kind="usage", now=FAR_FUTURE_NOW))
    assert error.details["problem"] == "bad_delimiter" and error.details["bad_rows"] == 2
    assert "'c1,2024-01-06'" in str(error) and "'c1,2024-01-09,login,extra'" in str(error)


def test_gzip_and_parquet_files_stream_too(sqlite_db: Database, tmp_path: Path) -> None:
    db = sqlite_db
    ingest_events(db, write_csv(tmp_path / "c.csv", [{"client_id": f"c{i}", "region": "x"} for i in (1, 2, 3)]),
                  kind="clients", now=FAR_FUTURE_NOW)
    frame = pd.DataFrame(_usage(10))
    packed = tmp_path / "usage.csv.gz"
    with gzip.open(packed, "wt", encoding="utf-8") as handle:
        frame.to_csv(handle, index=False)
    assert ingest_events(db, packed, kind="usage", now=FAR_FUTURE_NOW).inserted == 10
    later = frame.assign(timestamp=frame["timestamp"].str.replace("2024-01", "2024-03"))
    later.to_parquet(tmp_path / "usage.parquet")
    report = ingest_events(db, tmp_path / "usage.parquet", kind="usage", now=FAR_FUTURE_NOW)
    assert report.inserted == 10 and _usage_rows(db) == 20


def test_the_row_limit_guards_whole_file_reads_not_streamed_event_files(sqlite_db: Database, tmp_path: Path) -> None:
    db = sqlite_db
    # Given a row limit of 5: a clients table of 6 rows is refused (read whole) ...
    limits = Limits(max_rows=5)
    clients = write_csv(tmp_path / "clients.csv", [{"client_id": f"c{i}", "region": "x"} for i in range(6)])
    with pytest.raises(IngestRejected, match="CHURNGUARD_MAX_ROWS"):
        ingest_events(db, clients, kind="clients", limits=limits, now=FAR_FUTURE_NOW)
    ingest_events(db, clients, kind="clients", now=FAR_FUTURE_NOW)
    # ... while a usage file of 23 rows streams through: its memory does not grow with its rows
    usage = write_csv(tmp_path / "usage.csv", [{**r, "client_id": "c1"} for r in _usage(23)])
    assert ingest_events(db, usage, kind="usage", limits=limits, now=FAR_FUTURE_NOW).inserted == 23


def test_text_that_is_not_utf8_deep_in_the_file_is_refused(sqlite_db: Database, tmp_path: Path) -> None:
    db = sqlite_db
    ingest_events(db, write_csv(tmp_path / "c.csv", [{"client_id": "c1", "region": "x"}]), kind="clients", now=FAR_FUTURE_NOW)
    head = "client_id,timestamp,event_type\n" + "c1,2024-01-01,login\n" * 70_000  # past the sniffed first MB
    path = tmp_path / "usage.csv"
    path.write_bytes(head.encode("utf-8") + b"c1,2024-01-02,caf\xe9\n")
    error = rejected(db, lambda: ingest_events(db, path, kind="usage", now=FAR_FUTURE_NOW))
    assert error.details["problem"] == "not_a_table" and "UTF8" in str(error)


def test_overlap_with_stored_events_is_found_across_chunks(db: Database, ingest: Ingest, clients: None) -> None:
    ingest("usage", [{"client_id": "c2", "timestamp": f"2024-02-{d:02d}", "event_type": "x"} for d in (1, 20)])
    rows = [*_usage(10), {"client_id": "c2", "timestamp": "2024-02-10", "event_type": "x", "value": ""}]
    error = rejected(db, lambda: ingest("usage", rows))
    assert error.details["problem"] == "overlapping_events"
    assert error.details["rows"] == [2]  # c2's first row in the file
    assert "c2: file 2024-01-02 10:00..2024-02-10 00:00, stored 2024-02-01 00:00..2024-02-20 00:00" in str(error)
