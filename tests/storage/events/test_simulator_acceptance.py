"""Issue #6 acceptance: a churn simulator's raw tables, ingested through the command line,
give the 28-day event counts that the simulator's own SQL computes on those raw tables.

The raw tables are written in the simulator's shape (``simulator_tables``), loaded as they
are into PostgreSQL (the simulator's database) and SQLite, and counted there with the SQL of
*Fighting Churn with Data* (listing 3.2: events with ``event_time < metric_date and
event_time >= metric_date - interval '28 day'``, joined to ``event_type``, grouped by
account, date and type name).  ChurnGuard's counts come from ``churnguard ingest`` and
``churnguard features`` on each engine, for every client active at each date (a client
without events of a type counts 0).  Some raw events lie exactly on the windows' edges
(checked below), so an off-by-one in either edge fails the test.
"""

from __future__ import annotations

import csv
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

import churnguard
from tests.conftest import REPO, drop_pg_schema, pg_url_or_skip
from tests.storage.events.simulator_tables import EVENT_TYPES, SimulatorFiles, write_simulator_tables

MAPPING = REPO / "storage" / "sample_data" / "events" / "fightchurn.toml"
# Month starts (the simulator's metric dates), a month end and a time of day.
DATES = ["2020-02-01 00:00:00", "2020-03-01 00:00:00", "2020-04-01 00:00:00", "2020-05-01 00:00:00",
         "2020-06-01 00:00:00", "2020-03-31 00:00:00", "2020-04-15 12:30:00"]
Counts = dict[tuple[str, str, str], int]  # (account id, date, event type name) -> events
Active = set[tuple[str, str]]  # (account id, date) with a subscription covering the date

PG_TABLES = """
create table account (id integer primary key, channel text, date_of_birth date not null, country text);
create table subscription (id integer primary key, account_id integer not null, product text not null,
    start_date date not null, end_date date, mrr double precision not null, quantity double precision,
    units text, bill_period_months integer not null, discount double precision);
create table event (account_id integer not null, event_time timestamp(6) not null, event_type_id integer not null,
    user_id integer, event_value real);
create table event_type (event_type_id integer primary key, event_type_name text not null);
"""
PG_COUNTS = """
with date_vals as (select unnest(%(dates)s::timestamp[]) as metric_date)
select account_id, metric_date, event_type_name, count(*) as n
from event e inner join date_vals d
  on e.event_time < metric_date and e.event_time >= metric_date - interval '28 day'
inner join event_type t on t.event_type_id = e.event_type_id
group by account_id, metric_date, event_type_name
"""
PG_ACTIVE = """
with date_vals as (select unnest(%(dates)s::timestamp[]) as metric_date)
select distinct account_id, metric_date from subscription s inner join date_vals d
  on s.start_date <= metric_date and (s.end_date > metric_date or s.end_date is null)
"""
SQLITE_COUNTS = """
select account_id, metric_date, event_type_name, count(*) as n
from event e inner join date_vals d
  on e.event_time < metric_date and e.event_time >= datetime(metric_date, '-28 days')
inner join event_type t on t.event_type_id = e.event_type_id
group by account_id, metric_date, event_type_name
"""
SQLITE_ACTIVE = """
select distinct account_id, metric_date from subscription s inner join date_vals d
  on s.start_date <= metric_date and (s.end_date > metric_date or s.end_date is null)
"""


@pytest.fixture(scope="module")
def raw(tmp_path_factory: pytest.TempPathFactory) -> SimulatorFiles:
    return write_simulator_tables(tmp_path_factory.mktemp("simulator"), initial=250)


def _key(account: object, moment: object) -> tuple[str, str]:
    return str(account), pd.Timestamp(str(moment)).strftime("%Y-%m-%d %H:%M:%S")


@pytest.fixture(scope="module")
def reference_pg(raw: SimulatorFiles) -> Iterator[tuple[Counts, Active]]:
    """The simulator's SQL on the raw tables, loaded into PostgreSQL with COPY ... CSV HEADER."""
    import psycopg

    url = pg_url_or_skip()
    try:
        dsn = url.replace("postgresql+psycopg://", "postgresql://")
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(PG_TABLES)
            for table, path in (("account", raw.account), ("subscription", raw.subscription),
                                ("event", raw.event), ("event_type", raw.event_type)):
                with conn.cursor() as cursor, cursor.copy(f"COPY {table} FROM STDIN WITH (FORMAT csv, HEADER true)") \
                        as copy:
                    copy.write(path.read_bytes())
            counts = {(*_key(a, d), str(t)): int(n)
                      for a, d, t, n in conn.execute(PG_COUNTS, {"dates": DATES}).fetchall()}
            active = {_key(a, d) for a, d in conn.execute(PG_ACTIVE, {"dates": DATES}).fetchall()}
        yield counts, active
    finally:
        drop_pg_schema(url)


@pytest.fixture(scope="module")
def raw_sqlite(raw: SimulatorFiles) -> Iterator[sqlite3.Connection]:
    """The raw tables in SQLite, times kept as the text the export printed."""
    conn = sqlite3.connect(":memory:")
    conn.execute("create table account (id integer, channel text, date_of_birth text, country text)")
    conn.execute("create table subscription (id integer, account_id integer, product text, start_date text, "
                 "end_date text, mrr real, quantity real, units text, bill_period_months integer, discount real)")
    conn.execute("create table event (account_id integer, event_time text, event_type_id integer, user_id integer, "
                 "event_value real)")
    conn.execute("create table event_type (event_type_id integer, event_type_name text)")
    conn.execute("create table date_vals (metric_date text)")
    for table, path in (("account", raw.account), ("subscription", raw.subscription), ("event", raw.event),
                        ("event_type", raw.event_type)):
        with open(path, newline="", encoding="utf-8") as handle:
            rows = list(csv.reader(handle))
        marks = ", ".join("?" for _ in rows[0])
        conn.executemany(f"insert into {table} values ({marks})", [[v if v != "" else None for v in r] for r in rows[1:]])
    conn.executemany("insert into date_vals values (?)", [(d,) for d in DATES])
    yield conn
    conn.close()


@pytest.fixture(scope="module")
def reference_sqlite(raw_sqlite: sqlite3.Connection) -> tuple[Counts, Active]:
    counts = {(*_key(a, d), str(t)): int(n) for a, d, t, n in raw_sqlite.execute(SQLITE_COUNTS)}
    active = {_key(a, d) for a, d in raw_sqlite.execute(SQLITE_ACTIVE)}
    return counts, active


def test_raw_events_lie_on_both_edges_of_the_windows(raw_sqlite: sqlite3.Connection) -> None:
    # Without events exactly at D and at D - 28 days the comparison could not catch an off-by-one.
    at_d = raw_sqlite.execute("select count(*) from event where event_time in (select metric_date from date_vals)")
    at_start = raw_sqlite.execute("select count(*) from event where event_time in "
                                  "(select datetime(metric_date, '-28 days') from date_vals)")
    assert at_d.fetchone()[0] > 0
    assert at_start.fetchone()[0] > 0


def test_the_simulators_sql_counts_the_same_on_postgresql_and_sqlite(
        reference_pg: tuple[Counts, Active], reference_sqlite: tuple[Counts, Active]) -> None:
    assert reference_pg == reference_sqlite
    assert sum(reference_pg[0].values()) > 10_000


def _ingest_raw_tables(raw: SimulatorFiles, *, names_first: bool) -> None:
    order = [(raw.account, "clients"), (raw.subscription, "subscriptions")]
    events = [(raw.event_type, "event_types"), (raw.event, "usage")]
    order += events if names_first else events[::-1]
    for path, kind in order:
        assert churnguard.main(["ingest", str(path), "--kind", kind, "--mapping", str(MAPPING)]) == 0


def _features(folder: Path, moment: str) -> pd.DataFrame:
    out = folder / f"features_{moment[:10]}_{moment[11:13]}.csv"
    assert churnguard.main(["features", "--as-of", moment, "--windows", "28", "--output", str(out)]) == 0
    return pd.read_csv(out, dtype={"client_id": str})


@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
def test_28_day_counts_equal_the_simulators_sql(engine: str, raw: SimulatorFiles, home: Path,
                                                monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    # Given the raw tables ingested through the command line: on SQLite with the event type
    # names before the events, on PostgreSQL after them (both orders must give the names)
    url = None
    if engine == "postgresql":
        url = pg_url_or_skip()
        monkeypatch.setenv("CHURNGUARD_DATABASE_URL", url)
    try:
        counts, active = request.getfixturevalue("reference_pg" if engine == "postgresql" else "reference_sqlite")
        _ingest_raw_tables(raw, names_first=engine == "sqlite")
        capsys.readouterr()
        compared = 0
        for moment in DATES:
            # When the features are computed as of each date
            frame = _features(home.parent, moment)
            # Then the clients are exactly the accounts the simulator's SQL finds active
            assert {_key(c, moment) for c in frame["client_id"]} == {k for k in active if k[1] == _key(0, moment)[1]}
            # And every 28-day count per event type name equals the simulator's count (0 without events)
            for name in EVENT_TYPES:
                column = f"usage_{name}_28d"
                ours = frame[column].astype(int).tolist() if column in frame else [0] * len(frame)
                theirs = [counts.get((*_key(c, moment), name), 0) for c in frame["client_id"]]
                assert ours == theirs, (moment, name)
                compared += sum(theirs)
            totals = [sum(counts.get((*_key(c, moment), n), 0) for n in EVENT_TYPES) for c in frame["client_id"]]
            assert frame["events_28d"].astype(int).tolist() == totals
        assert compared > 10_000
    finally:
        if url is not None:
            drop_pg_schema(url)
