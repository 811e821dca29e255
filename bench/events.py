"""Benchmark: point-in-time event features in the database vs a pandas groupby.

Builds the features of ``--clients`` clients with ``--events`` events (usage, purchases,
tickets) at one date, on SQLite and on PostgreSQL, and the same features with pandas from
the same data.  Every measurement runs in its own subprocess so that its peak RSS is its
own.  By default it measures a second, ten times smaller event count too, to show how
memory grows (or not) with the number of events.

    python bench/events.py                                  # 100k clients, 10M events
    python bench/events.py --clients 2000 --events 200000   # smoke run

What is measured:

* ``sql``: ``storage.events.features.features_as_of`` on the store (the event types are
  chosen from the same scan).  Peak RSS is the Python client's; the database server's
  memory is its own, bounded by its configuration.
* ``pandas``: read the event tables from Parquet files (the fastest a pandas pipeline can
  get the data) and compute the same aggregates with boolean masks and ``groupby``.
* ``pandas-db`` (``--pandas-from-db``): the same pandas code reading the tables from the
  store with ``pandas.read_sql``, i.e. the design that does the work in Python memory.

Each measurement is repeated (``--repeat``, default 3) and the fastest run is reported,
with every run's seconds in the JSON: on a shared machine the minimum is the least
disturbed figure.  The bulk load (SQLite ``executemany`` in chunks, PostgreSQL ``COPY``) is
timed but is not the subject.  Results: a table on stdout and ``bench/results/events.json``.

``--ingest`` measures the other end instead: ingesting one raw event CSV of ``--events``
rows in the churn simulator's format (``account_id,event_time,event_type_id,user_id,
event_value``) through ``storage.events.ingest.ingest_events`` with the shipped
``fightchurn.toml`` mapping, on each engine, at ``--events`` and a tenth of it: seconds and
peak RSS of the ingesting process (memory must not grow with the file).  Results go to
``bench/results/events_ingest.json``.

    python bench/events.py --ingest --events 15000000 --clients 100000
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from storage.db import Database  # noqa: E402
from storage.events.bulk import bulk_insert  # noqa: E402
from storage.events.features import DAY, FeatureSpec, features_as_of, to_epoch  # noqa: E402
from storage.events.tables import EventClient, EventPurchase, EventSubscription, EventTicket, EventUsage  # noqa: E402
from storage.tables import Batch  # noqa: E402

AS_OF = pd.Timestamp("2025-01-01")
WINDOWS = (7, 30, 90)
TYPES = ("login", "view", "search", "export", "share", "comment", "upload", "invite")
TYPE_SHARE = (0.34, 0.2, 0.14, 0.1, 0.08, 0.07, 0.04, 0.03)
VALUED = ("export", "upload")
PG_DEFAULT = os.environ.get("CHURNGUARD_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
CHUNK = 1_000_000


def peak_rss_mb() -> float:
    """This process's peak resident memory.  VmHWM, not getrusage: ru_maxrss survives exec,
    so a child started by a parent holding the generated data would report the parent's peak."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# ------------------------------------------------------------------------------------------
# Data
# ------------------------------------------------------------------------------------------


def generate(clients: int, events: int, folder: Path, seed: int = 7) -> dict[str, int]:
    """Write the five tables as Parquet in database form (client_key, epoch seconds)."""
    rng = np.random.default_rng(seed)
    d = to_epoch(AS_OF)
    folder.mkdir(parents=True, exist_ok=True)
    keys = np.arange(1, clients + 1)
    signup = d - rng.integers(30, 730, clients) * DAY
    pd.DataFrame({"id": keys, "client_id": [f"C{k:07d}" for k in keys], "signup_ts": signup,
                  "region": rng.choice(["north", "south", "east", "west"], clients)}).to_parquet(folder / "clients.parquet")
    ended = rng.random(clients) < 0.15
    end = np.where(ended, d - rng.integers(1, 30, clients) * DAY, -1)
    addon = rng.random(clients) < 0.2
    subs = pd.DataFrame({
        "client_key": np.concatenate([keys, keys[addon]]),
        "start_ts": np.concatenate([signup, signup[addon] + 30 * DAY]),
        "end_ts": pd.array(np.concatenate([end, np.full(int(addon.sum()), -1)]), dtype="Int64"),
        "plan": np.concatenate([rng.choice(["basic", "pro", "max"], clients), np.full(int(addon.sum()), "seats")]),
        "monthly_amount": np.concatenate([rng.choice([19.0, 49.0, 99.0], clients), np.full(int(addon.sum()), 10.0)]),
    })
    subs.loc[subs["end_ts"] == -1, "end_ts"] = pd.NA
    subs.to_parquet(folder / "subscriptions.parquet")
    activity = rng.lognormal(0, 1, clients)
    activity /= activity.sum()
    n_usage, n_purchases = int(events * 0.9), int(events * 0.07)
    n_tickets = events - n_usage - n_purchases

    def times(n: int) -> np.ndarray:
        # A year before D, and 3% after it (which must not count).
        return np.where(rng.random(n) < 0.97, d - rng.integers(1, 365 * DAY, n), d + rng.integers(0, 30 * DAY, n))

    def owners(n: int) -> np.ndarray:
        return rng.choice(keys, n, p=activity)

    usage_type = rng.choice(len(TYPES), n_usage, p=TYPE_SHARE)
    types = np.array(TYPES)[usage_type]
    value = np.where(np.isin(types, VALUED), np.round(rng.lognormal(1, 1, n_usage), 2), np.nan)
    usage = pd.DataFrame({"client_key": owners(n_usage), "ts": times(n_usage), "event_type": types, "value": value})
    usage.sort_values("ts", kind="stable").to_parquet(folder / "usage.parquet", row_group_size=CHUNK)
    del usage, types, value
    purchases = pd.DataFrame({"client_key": owners(n_purchases), "ts": times(n_purchases),
                              "amount": np.round(rng.lognormal(3, 1, n_purchases), 2)})
    purchases.sort_values("ts", kind="stable").to_parquet(folder / "purchases.parquet", row_group_size=CHUNK)
    opened = times(n_tickets)
    closed = opened + rng.exponential(2 * DAY, n_tickets).astype("int64")
    tickets = pd.DataFrame({"client_key": owners(n_tickets), "opened_ts": opened,
                            "closed_ts": pd.array(np.where(rng.random(n_tickets) < 0.1, -1, closed), dtype="Int64")})
    tickets.loc[tickets["closed_ts"] == -1, "closed_ts"] = pd.NA
    tickets.sort_values("opened_ts", kind="stable").to_parquet(folder / "tickets.parquet", row_group_size=CHUNK)
    return {"usage": n_usage, "purchases": n_purchases, "tickets": n_tickets, "subscriptions": len(subs)}


def _with_datetimes(frame: pd.DataFrame) -> pd.DataFrame:
    for column in [c for c in frame.columns if c == "ts" or c.endswith("_ts")]:
        name = "at" if column == "ts" else column[:-3] + "_at"
        frame[name] = pd.to_datetime(frame[column], unit="s")
    return frame


def load(url: str, folder: Path) -> float:
    """Bulk-load the Parquet tables into a fresh store; returns seconds."""
    import pyarrow.parquet as pq

    started = time.perf_counter()
    db = Database(url).create_schema()
    with db.session() as session:
        batch = Batch(source_name="bench", kind="events.bench", row_count=0, sha256=uuid.uuid4().hex)
        session.add(batch)
        session.flush()
        connection = session.connection()
        clients = pd.read_parquet(folder / "clients.parquet")
        clients = clients.assign(batch_id=batch.id, attributes=[json.dumps({"region": r}) for r in clients["region"]])
        clients = _with_datetimes(clients.drop(columns=["region"]))
        bulk_insert(connection, EventClient.__table__, clients)  # type: ignore[attr-defined]
        for name, model in (("subscriptions", EventSubscription), ("purchases", EventPurchase),
                            ("tickets", EventTicket), ("usage", EventUsage)):
            for part in pq.ParquetFile(folder / f"{name}.parquet").iter_batches(batch_size=CHUNK):
                frame = _with_datetimes(part.to_pandas().assign(batch_id=batch.id))
                bulk_insert(connection, model.__table__, frame)  # type: ignore[attr-defined]
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.exec_driver_sql("VACUUM ANALYZE" if db.dialect == "postgresql" else "ANALYZE")
    db.dispose()
    return time.perf_counter() - started


# ------------------------------------------------------------------------------------------
# The pandas baseline: the same aggregates, written with masks and groupby
# ------------------------------------------------------------------------------------------


def pandas_features(tables: dict[str, pd.DataFrame], d: int, windows: tuple[int, ...]) -> pd.DataFrame:
    clients = tables["clients"].set_index("id")
    out = pd.DataFrame(index=clients.index)

    def window_counts(frame: pd.DataFrame, ts: str, prefix: str, value: str | None = None,
                      by: list[str] | None = None) -> pd.DataFrame:
        keys = by or ["client_key"]
        parts = {}
        for w in windows:
            last = frame[ts] >= d - w * DAY
            prev = (frame[ts] >= d - 2 * w * DAY) & ~last
            parts[f"{prefix}_{w}"] = last.astype("int64")
            parts[f"{prefix}_prev_{w}"] = prev.astype("int64")
            if value is not None:
                parts[f"{value}_{w}"] = frame[value].where(last, 0.0)
                parts[f"{value}_prev_{w}"] = frame[value].where(prev, 0.0)
        agg = pd.DataFrame(parts).join(frame[keys]).groupby(keys).sum()
        agg["last_ts"] = frame.groupby(keys)[ts].max()
        return agg

    def trend(last: pd.Series, prev: pd.Series) -> pd.Series:
        ratio = (last - prev) / prev.where(prev != 0)
        return ratio.where(prev != 0, np.where(last == 0, 0.0, np.nan))

    p = tables["purchases"]
    p = window_counts(p[p["ts"] < d], "ts", "n", "amount").reindex(out.index)
    t = tables["tickets"]
    t = t[t["opened_ts"] < d]
    open_now = (t["closed_ts"].isna() | (t["closed_ts"] >= d)).groupby(t["client_key"]).sum()
    t = window_counts(t, "opened_ts", "n").reindex(out.index)
    u = tables["usage"]
    u = u[u["ts"] < d]
    counts = u["event_type"].value_counts()
    types = sorted(counts.index, key=lambda name: (-counts[name], name))[:20]
    valued = [name for name in types if u.loc[u["event_type"] == name, "value"].notna().any()]
    per_type = window_counts(u, "ts", "n", "value", by=["client_key", "event_type"])
    totals = window_counts(u, "ts", "n").reindex(out.index)
    spec = FeatureSpec(windows, tuple(types), tuple(valued))
    wide = {name: per_type.xs(name, level="event_type").reindex(out.index) for name in types}
    for w in windows:
        out[f"purchases_{w}d"] = p[f"n_{w}"].fillna(0)
        out[f"purchase_amount_{w}d"] = p[f"amount_{w}"].fillna(0)
        out[f"tickets_{w}d"] = t[f"n_{w}"].fillna(0)
        out[f"events_{w}d"] = totals[f"n_{w}"].fillna(0)
        for name in types:
            out[f"usage_{spec.slug(name)}_{w}d"] = wide[name][f"n_{w}"].fillna(0)
        for name in valued:
            out[f"usage_{spec.slug(name)}_value_{w}d"] = wide[name][f"value_{w}"].fillna(0)
    for w in windows:
        out[f"purchases_trend_{w}d"] = trend(p[f"n_{w}"].fillna(0), p[f"n_prev_{w}"].fillna(0))
        out[f"purchase_amount_trend_{w}d"] = trend(p[f"amount_{w}"].fillna(0), p[f"amount_prev_{w}"].fillna(0))
        out[f"tickets_trend_{w}d"] = trend(t[f"n_{w}"].fillna(0), t[f"n_prev_{w}"].fillna(0))
        out[f"events_trend_{w}d"] = trend(totals[f"n_{w}"].fillna(0), totals[f"n_prev_{w}"].fillna(0))
        for name in types:
            out[f"usage_{spec.slug(name)}_trend_{w}d"] = trend(wide[name][f"n_{w}"].fillna(0),
                                                               wide[name][f"n_prev_{w}"].fillna(0))
    out["days_since_last_purchase"] = (d - p["last_ts"]) / DAY
    out["days_since_last_ticket"] = (d - t["last_ts"]) / DAY
    out["days_since_last_event"] = (d - totals["last_ts"]) / DAY
    for name in types:
        out[f"days_since_last_usage_{spec.slug(name)}"] = (d - wide[name]["last_ts"]) / DAY
    out["open_tickets"] = open_now.reindex(out.index).fillna(0)
    s = tables["subscriptions"]
    active = s[(s["start_ts"] <= d) & (s["end_ts"].isna() | (s["end_ts"] > d))]
    out["monthly_amount"] = active.groupby("client_key")["monthly_amount"].sum().reindex(out.index).fillna(0)
    out["active_subscriptions"] = active.groupby("client_key").size().reindex(out.index).fillna(0)
    top = active.sort_values(["monthly_amount", "start_ts"], ascending=False, kind="stable")
    out["plan"] = top.drop_duplicates("client_key").set_index("client_key")["plan"].reindex(out.index)
    out["tenure_days"] = (d - clients["signup_ts"]) / DAY
    out.insert(0, "client_id", clients["client_id"])
    keep = active["client_key"].unique()
    return out.loc[out.index.isin(keep)].sort_values("client_id").reset_index(drop=True)


def _read_tables_parquet(folder: Path) -> dict[str, pd.DataFrame]:
    return {name: pd.read_parquet(folder / f"{name}.parquet")
            for name in ("clients", "subscriptions", "purchases", "tickets", "usage")}


def _read_tables_db(url: str) -> dict[str, pd.DataFrame]:
    db = Database(url)
    with db.engine.connect() as connection:
        tables = {
            "clients": pd.read_sql("SELECT id, client_id, signup_ts FROM event_client", connection),
            "subscriptions": pd.read_sql("SELECT client_key, start_ts, end_ts, plan, monthly_amount "
                                         "FROM event_subscription ORDER BY id", connection),
            "purchases": pd.read_sql("SELECT client_key, ts, amount FROM event_purchase", connection),
            "tickets": pd.read_sql("SELECT client_key, opened_ts, closed_ts FROM event_ticket", connection),
            "usage": pd.read_sql("SELECT client_key, ts, event_type, value FROM event_usage", connection),
        }
    db.dispose()
    return tables


# ------------------------------------------------------------------------------------------
# One measurement per subprocess
# ------------------------------------------------------------------------------------------


def measure(method: str, *, url: str | None, folder: Path, out: Path) -> dict[str, Any]:
    d = to_epoch(AS_OF)
    baseline = peak_rss_mb()
    started = time.perf_counter()
    if method == "sql":
        assert url is not None
        db = Database(url)
        frame = features_as_of(db, AS_OF, windows=WINDOWS)
        db.dispose()
    elif method == "pandas":
        frame = pandas_features(_read_tables_parquet(folder), d, WINDOWS)
    elif method == "pandas-db":
        assert url is not None
        frame = pandas_features(_read_tables_db(url), d, WINDOWS)
    else:  # pragma: no cover
        raise SystemExit(f"unknown method {method}")
    seconds = time.perf_counter() - started
    peak = peak_rss_mb()
    frame.to_parquet(out)
    return {"seconds": round(seconds, 3), "peak_rss_mb": round(peak, 1), "rss_before_mb": round(baseline, 1),
            "rows": len(frame), "columns": frame.shape[1]}


def run_measure(method: str, url: str | None, folder: Path, out: Path, repeat: int = 1) -> dict[str, Any]:
    """The best of ``repeat`` runs, each in a fresh subprocess (on a shared machine the
    minimum is the least disturbed measurement); every run's seconds are kept too."""
    command = [sys.executable, str(Path(__file__).resolve()), "--measure", method, "--data", str(folder),
               "--out", str(out)]
    if url:
        command += ["--url", url]
    runs: list[dict[str, Any]] = []
    for _ in range(max(1, repeat)):
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise SystemExit(f"measurement {method} failed:\n{done.stderr[-3000:]}")
        runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
    best = dict(min(runs, key=lambda r: r["seconds"]))
    best["peak_rss_mb"] = max(r["peak_rss_mb"] for r in runs)
    best["all_seconds"] = [r["seconds"] for r in runs]
    return best


def compare(sql: Path, reference: Path) -> str:
    """'equal' when the SQL features match the pandas ones on every shared column."""
    a, b = pd.read_parquet(sql), pd.read_parquet(reference)
    if a["client_id"].tolist() != b["client_id"].tolist():
        return f"different clients ({len(a)} vs {len(b)})"
    bad = []
    for column in b.columns:
        if column == "client_id" or column not in a:
            continue
        if column == "plan":
            if a[column].fillna("").tolist() != b[column].fillna("").tolist():
                bad.append(column)
            continue
        if not np.allclose(a[column].to_numpy(float), b[column].to_numpy(float), rtol=1e-9, atol=1e-6,
                           equal_nan=True):
            bad.append(column)
    return "equal" if not bad else f"differs in {', '.join(bad[:5])}"


def _store_url(engine: str, folder: Path, pg_url: str) -> tuple[str, str | None]:
    """A fresh store on ``engine``: a SQLite file in ``folder``, or a new PostgreSQL schema
    (returned too, so the caller can drop it)."""
    if engine == "sqlite":
        return f"sqlite:///{(folder / 'store.db').as_posix()}", None
    return _pg_schema_url(pg_url)


def _pg_schema_url(base: str) -> tuple[str, str]:
    import psycopg

    schema = f"bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(base.replace("postgresql+psycopg://", "postgresql://"), autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    sep = "&" if "?" in base else "?"
    return f"{base}{sep}options=-csearch_path%3D{schema}", schema


def _drop_pg_schema(base: str, schema: str) -> None:
    import psycopg

    with psycopg.connect(base.replace("postgresql+psycopg://", "postgresql://"), autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


# ------------------------------------------------------------------------------------------
# Ingest of one large raw event file (--ingest)
# ------------------------------------------------------------------------------------------

MAPPING = REPO / "storage" / "sample_data" / "events" / "fightchurn.toml"


def write_raw_events(folder: Path, clients: int, events: int, seed: int = 7) -> dict[str, Path]:
    """account.csv and event.csv as the churn simulator's tables export them (5 months)."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    accounts = folder / "account.csv"
    pd.DataFrame({"id": np.arange(clients), "channel": rng.choice(["appstore1", "web"], clients),
                  "date_of_birth": "1980-01-01", "country": rng.choice(["US", "DE", ""], clients)}
                 ).to_csv(accounts, index=False)
    path = folder / "event.csv"
    start = to_epoch("2020-01-01")
    span = to_epoch("2020-06-01") - start
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("account_id,event_time,event_type_id,user_id,event_value\n")
        for done in range(0, events, CHUNK):
            n = min(CHUNK, events - done)
            times = pd.Series(np.datetime_as_string((start + rng.integers(0, span, n)).astype("datetime64[s]"),
                                                    unit="s")).str.replace("T", " ")
            types = rng.integers(0, 8, n)
            users = pd.array(np.where(rng.random(n) < 0.1, -1, rng.integers(0, 5, n)), dtype="Int64")
            frame = pd.DataFrame({"account_id": np.sort(rng.integers(0, clients, n)), "event_time": times,
                                  "event_type_id": types, "user_id": users,
                                  "event_value": np.where(types == 3, np.round(rng.lognormal(3, 0.5, n), 2), np.nan)})
            frame.loc[frame["user_id"] < 0, "user_id"] = pd.NA
            frame.to_csv(handle, index=False, header=False, na_rep="", lineterminator="\n")
    return {"account": accounts, "event": path}


def measure_ingest(url: str, folder: Path) -> dict[str, Any]:
    """One ingest of account.csv then event.csv into a fresh store, in this process."""
    from storage.events.ingest import ingest_events
    from storage.events.mapping import load_mapping_file

    db = Database(url).create_schema()
    ingest_events(db, folder / "account.csv", kind="clients", mapping=load_mapping_file(MAPPING, "clients"))
    baseline = peak_rss_mb()
    started = time.perf_counter()
    report = ingest_events(db, folder / "event.csv", kind="usage", mapping=load_mapping_file(MAPPING, "usage"))
    seconds = time.perf_counter() - started
    db.dispose()
    return {"seconds": round(seconds, 1), "peak_rss_mb": round(peak_rss_mb(), 1), "rss_before_mb": round(baseline, 1),
            "rows": report.rows, "rows_per_second": round(report.rows / seconds)}


def ingest_benchmark(args: argparse.Namespace) -> int:
    import tempfile

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="churnguard-ingest-"))
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    sizes = [args.events] if args.no_growth else [max(args.events // 10, 1), args.events]
    results: list[dict[str, Any]] = []
    for events in sizes:
        folder = workdir / f"raw_{args.clients}_{events}"
        started = time.perf_counter()
        paths = write_raw_events(folder, args.clients, events)
        size_mb = paths["event"].stat().st_size / 1024 / 1024
        print(f"wrote {events:,} events ({size_mb:,.0f} MB) in {time.perf_counter() - started:.0f}s", flush=True)
        for engine in engines:
            url, schema = _store_url(engine, folder, args.pg_url)
            try:
                command = [sys.executable, str(Path(__file__).resolve()), "--measure", "ingest", "--data",
                           str(folder), "--url", url]
                done = subprocess.run(command, capture_output=True, text=True, check=False)
                if done.returncode != 0:
                    raise SystemExit(f"ingest on {engine} failed:\n{done.stderr[-3000:]}")
                entry = json.loads(done.stdout.strip().splitlines()[-1])
                results.append({"engine": engine, "events": events, "file_mb": round(size_mb), **entry})
                print(f"  {engine}: {entry['seconds']:.0f}s ({entry['rows_per_second']:,} rows/s), "
                      f"peak RSS {entry['peak_rss_mb']:.0f} MB", flush=True)
            finally:
                if schema is not None:
                    _drop_pg_schema(args.pg_url, schema)
                for path in folder.glob("store.db*"):
                    path.unlink()
        if not args.workdir:
            shutil.rmtree(folder, ignore_errors=True)
    if not args.workdir:
        shutil.rmtree(workdir, ignore_errors=True)
    report = {"benchmark": "ingest of one raw event CSV (churn simulator format)", "clients": args.clients,
              "sizes": sizes, "load_average_at_end": list(os.getloadavg()),
              "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform()},
              "results": results}
    out = args.json.with_name("events_ingest.json") if args.json.name == "events.json" else args.json
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"\nwrote {out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--clients", type=int, default=100_000)
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--engines", default="sqlite,postgresql", help="comma-separated: sqlite,postgresql")
    parser.add_argument("--pg-url", default=PG_DEFAULT)
    parser.add_argument("--no-growth", action="store_true", help="skip the 10x smaller event count")
    parser.add_argument("--pandas-from-db", action="store_true", help="also time pandas reading from the store")
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement; the fastest is reported")
    parser.add_argument("--workdir", type=Path, default=None, help="where data and stores go (default: a temp dir)")
    parser.add_argument("--json", type=Path, default=REPO / "bench" / "results" / "events.json")
    parser.add_argument("--ingest", action="store_true", help="measure ingesting one raw event CSV instead")
    parser.add_argument("--measure", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.measure == "ingest":
        print(json.dumps(measure_ingest(args.url, args.data)))
        return 0
    if args.measure:
        print(json.dumps(measure(args.measure, url=args.url, folder=args.data, out=args.out)))
        return 0
    if args.ingest:
        return ingest_benchmark(args)

    import tempfile

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="churnguard-bench-"))
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    sizes = [args.events] if args.no_growth else [max(args.events // 10, 1), args.events]
    results: list[dict[str, Any]] = []
    for events in sizes:
        folder = workdir / f"data_{args.clients}_{events}"
        started = time.perf_counter()
        rows = generate(args.clients, events, folder)
        print(f"generated {events:,} events for {args.clients:,} clients in {time.perf_counter() - started:.1f}s "
              f"({rows})", flush=True)
        reference = folder / "pandas.parquet"
        entry = run_measure("pandas", None, folder, reference, args.repeat)
        results.append({"engine": "parquet", "method": "pandas", "events": events, **entry})
        print(f"  pandas (parquet): {entry['seconds']:.2f}s, peak RSS {entry['peak_rss_mb']:.0f} MB", flush=True)
        for engine in engines:
            url, schema = _store_url(engine, folder, args.pg_url)
            try:
                seconds = load(url, folder)
                print(f"  {engine}: loaded in {seconds:.1f}s", flush=True)
                out = folder / f"sql_{engine}.parquet"
                entry = run_measure("sql", url, folder, out, args.repeat)
                entry["matches_pandas"] = compare(out, reference)
                results.append({"engine": engine, "method": "sql", "events": events, "load_seconds": round(seconds, 1),
                                **entry})
                print(f"  {engine} sql: {entry['seconds']:.2f}s, peak RSS {entry['peak_rss_mb']:.0f} MB, "
                      f"{entry['matches_pandas']}", flush=True)
                if args.pandas_from_db:
                    entry = run_measure("pandas-db", url, folder, folder / f"pandas_db_{engine}.parquet",
                                        args.repeat)
                    results.append({"engine": engine, "method": "pandas-db", "events": events, **entry})
                    print(f"  {engine} pandas-db: {entry['seconds']:.2f}s, peak RSS {entry['peak_rss_mb']:.0f} MB",
                          flush=True)
            finally:
                if schema is not None:
                    _drop_pg_schema(args.pg_url, schema)
                elif not args.workdir:
                    for path in folder.glob("store.db*"):
                        path.unlink()
    if not args.workdir:
        shutil.rmtree(workdir, ignore_errors=True)

    print()
    print(f"{'engine':<11} {'method':<10} {'events':>12} {'seconds':>9} {'peak RSS MB':>12}  check")
    for r in results:
        print(f"{r['engine']:<11} {r['method']:<10} {r['events']:>12,} {r['seconds']:>9.2f} {r['peak_rss_mb']:>12.0f}  "
              f"{r.get('matches_pandas', '')}")
    report = {
        "benchmark": "point-in-time event features at one date",
        "as_of": AS_OF.isoformat(), "windows": list(WINDOWS), "clients": args.clients, "sizes": sizes,
        "repeat": args.repeat, "load_average_at_end": list(os.getloadavg()),
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform()},
        "results": results,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
