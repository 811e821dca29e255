"""A monthly CRM export stream made from the simulator-shaped raw tables (issue 10).

Most retention teams export their CRM once a month: one file per month-end, one row per client
active at that date, holding that month's features and whether the client left during the
following month.  This module writes such a stream from the raw tables of
``simulator_tables.write_simulator_tables`` so that ChurnGuard can be judged the way such a
team uses it: train on months 1..k, then feed month k+1, k+2, ... through the inbox.

It is deliberately *a third party's export*: every column is computed here with pandas from
the raw tables, independently of ChurnGuard's own feature code (storage/events/features.py),
so that a bug there cannot hide in the measuring stick.

Point in time.  A snapshot at month-end ``D`` describes the close of day ``D``: only events
before ``D + 1 day`` 00:00 and subscriptions that started on or before ``D`` enter it.  The
end date of the running term is the paid-through date a CRM knows at ``D``; it is only used
to tell that the term still covers ``D``.  A client is *active* at ``D`` when a subscription
covers it (``start <= D < end``); clients that left on or before ``D``, or have not joined
yet, are not in the file.

The label (``churned_next_month``, ``Yes``/``No``) is the only thing taken from after ``D``:
``Yes`` when the client's subscription ends without renewal in ``(D, next month-end]``, i.e.
its churn date (the end of its last plan term, when that lies within the simulation) falls on a
day after ``D`` and no later than the next month-end.  The simulator decides churn at each
renewal, so the simulation is run one month past the last snapshot: every label is settled.

Columns (one value of ``snapshot_date`` per file)::

    account_id, snapshot_date, plan, mrr, channel, country, age, tenure_days,
    <type>_last_month (8 event types), <type>_prev_month (8), days_since_last_event,
    churned_next_month (absent from the months asked to be unlabelled)

``<type>_last_month`` counts the events of the calendar month that ends at ``D``;
``<type>_prev_month`` those of the month before.  ``days_since_last_event`` is the number of
days from the day of the client's last event to ``D`` (0 = an event on ``D``; empty when the
client never had one).  ``mrr`` sums the plan and add-ons that cover ``D``.

``write_event_months`` cuts the same raw tables into one folder per month (the rows that
became known in that month), so the same months can be fed through the event-history path
(``churnguard ingest --kind K --mapping fightchurn.toml``); ``ingest_event_month`` does that.
Everything comes from one seed: the same arguments write the same bytes.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from itertools import pairwise
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
from dateutil.relativedelta import relativedelta

from tests.storage.events.simulator_tables import EVENT_TYPES, SimulatorFiles, write_simulator_tables

if TYPE_CHECKING:
    from storage.db import Database
    from storage.events.ingest import EventIngestReport

ID_COLUMN = "account_id"
DATE_COLUMN = "snapshot_date"
LABEL_COLUMN = "churned_next_month"
POSITIVE, NEGATIVE = "Yes", "No"
DEFAULT_NAME = "crm_export_{number:02d}_{as_of:%Y-%m-%d}.csv"
FEATURE_COLUMNS = (
    ["plan", "mrr", "channel", "country", "age", "tenure_days"]
    + [f"{name}_last_month" for name in EVENT_TYPES]
    + [f"{name}_prev_month" for name in EVENT_TYPES]
    + ["days_since_last_event"]
)
COLUMNS = [ID_COLUMN, DATE_COLUMN, *FEATURE_COLUMNS, LABEL_COLUMN]
EVENT_MAPPING_KINDS = (("account", "clients"), ("subscription", "subscriptions"), ("event_type", "event_types"),
                       ("event", "usage"))


@dataclass(frozen=True)
class MonthFile:
    """One month-end export: where it is, its date, and the truth of the simulation."""

    number: int  # 1-based position in the stream
    as_of: date
    path: Path
    labelled: bool
    clients: int  # rows: clients active at as_of
    churners: int  # clients whose subscription ends without renewal in (as_of, next month-end]

    @property
    def churn_rate(self) -> float:
        return self.churners / self.clients if self.clients else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {"number": self.number, "as_of": self.as_of.isoformat(), "file": self.path.name,
                "labelled": self.labelled, "clients": self.clients, "churners": self.churners}


@dataclass(frozen=True)
class MonthlyStream:
    """The files of a stream in month order, the raw tables they came from, and their schema."""

    tables: SimulatorFiles
    months: list[MonthFile]
    seed: int
    id_column: str = ID_COLUMN
    date_column: str = DATE_COLUMN
    label_column: str = LABEL_COLUMN
    positive_label: str = POSITIVE
    columns: list[str] = field(default_factory=lambda: list(COLUMNS))

    def truth(self) -> list[dict[str, Any]]:
        """Per month: date, clients, churners (known from the simulation even when unlabelled)."""
        return [month.as_dict() for month in self.months]


# ------------------------------------------------------------------------------ raw tables
@dataclass(frozen=True)
class RawTables:
    """The raw tables as typed frames (dates as Timestamps; ``end`` NaT means open-ended)."""

    accounts: pd.DataFrame  # id, channel, date_of_birth, country
    subscriptions: pd.DataFrame  # account_id, product, start, end, mrr, plan (bool: not an add-on)
    events: pd.DataFrame  # account_id, time, type (name)

    @classmethod
    def read(cls, tables: SimulatorFiles) -> RawTables:
        accounts = pd.read_csv(tables.account, dtype=str, keep_default_na=False)
        accounts = accounts.assign(id=accounts["id"].astype("int64"),
                                   date_of_birth=pd.to_datetime(accounts["date_of_birth"]))
        subscriptions = pd.read_csv(tables.subscription, parse_dates=["start_date", "end_date"])
        subscriptions = pd.DataFrame({
            "account_id": subscriptions["account_id"].astype("int64"),
            "product": subscriptions["product"].astype(str),
            "start": subscriptions["start_date"], "end": subscriptions["end_date"],
            "mrr": subscriptions["mrr"].astype(float),
            # add-ons come with a quantity and units; the plan itself has none
            "plan": subscriptions["quantity"].isna(),
        })
        events = pd.read_csv(tables.event, usecols=["account_id", "event_time", "event_type_id"])
        names = pd.read_csv(tables.event_type).set_index("event_type_id")["event_type_name"]
        events = pd.DataFrame({
            "account_id": events["account_id"].astype("int64"),
            "time": pd.to_datetime(events["event_time"], format="ISO8601"),
            "type": events["event_type_id"].map(names).astype(str),
        })
        return cls(accounts, subscriptions, events)

    def truncated(self, as_of: date) -> RawTables:
        """What a CRM held at the close of ``as_of``: subscriptions started by then (running
        terms made open-ended, so no end date after ``as_of`` is known), events before the
        next midnight, and the accounts that had joined."""
        day = pd.Timestamp(as_of)
        subscriptions = self.subscriptions.loc[self.subscriptions["start"] <= day].copy()
        subscriptions.loc[subscriptions["end"] > day, "end"] = pd.NaT
        events = self.events.loc[self.events["time"] < day + pd.Timedelta(days=1)]
        accounts = self.accounts.loc[self.accounts["id"].isin(subscriptions["account_id"])]
        return RawTables(accounts.reset_index(drop=True), subscriptions.reset_index(drop=True),
                         events.reset_index(drop=True))


def month_ends(first: date, count: int) -> list[date]:
    """The last day of ``count`` calendar months, the first being ``first``'s month."""
    start = first.replace(day=1)
    return [start + relativedelta(months=n + 1) - timedelta(days=1) for n in range(count)]


def churn_dates(raw: RawTables, simulation_end: date) -> pd.Series:
    """Per account: the day its plan ends without renewal, for accounts that left within the
    simulation (a running account's last term ends after ``simulation_end``)."""
    plans = raw.subscriptions.loc[raw.subscriptions["plan"]]
    last_end = plans.groupby("account_id")["end"].max()
    return last_end.loc[last_end <= pd.Timestamp(simulation_end)]


def snapshot(raw: RawTables, as_of: date) -> pd.DataFrame:
    """The export at the close of ``as_of`` (features only, no label), one row per active
    client, sorted by id.  Uses nothing dated after ``as_of`` (see the module docstring)."""
    day = pd.Timestamp(as_of)
    subs = raw.subscriptions
    started = subs.loc[subs["start"] <= day]
    covering = started.loc[started["end"].isna() | (started["end"] > day)]
    plan_rows = covering.loc[covering["plan"]].sort_values(["account_id", "start"])
    plan = plan_rows.groupby("account_id")["product"].last()
    frame = pd.DataFrame({ID_COLUMN: plan.index.astype("int64")})
    frame[DATE_COLUMN] = as_of.isoformat()
    frame["plan"] = plan.to_numpy()
    frame["mrr"] = frame[ID_COLUMN].map(covering.groupby("account_id")["mrr"].sum()).round(2)
    accounts = raw.accounts.set_index("id")
    frame["channel"] = frame[ID_COLUMN].map(accounts["channel"])
    frame["country"] = frame[ID_COLUMN].map(accounts["country"])
    births = frame[ID_COLUMN].map(accounts["date_of_birth"])
    frame["age"] = [_whole_years(born, day) for born in births]
    first_start = frame[ID_COLUMN].map(started.groupby("account_id")["start"].min())
    frame["tenure_days"] = (day - first_start).dt.days.astype("int64")

    this_month = day.to_period("M")
    events = raw.events.loc[raw.events["time"] < day + pd.Timedelta(days=1)]
    months = events["time"].dt.to_period("M")
    for column_suffix, period in (("last_month", this_month), ("prev_month", this_month - 1)):
        chosen = events.loc[months == period]
        counts = chosen.groupby(["account_id", "type"]).size().unstack(fill_value=0)
        for name in EVENT_TYPES:
            per_account = counts[name] if name in counts.columns else pd.Series(dtype="int64")
            frame[f"{name}_{column_suffix}"] = frame[ID_COLUMN].map(per_account).fillna(0).astype("int64")
    last_event = frame[ID_COLUMN].map(events.groupby("account_id")["time"].max())
    frame["days_since_last_event"] = (day - last_event.dt.normalize()).dt.days.astype("Int64")
    return frame.reset_index(drop=True)


def _whole_years(born: pd.Timestamp, day: pd.Timestamp) -> int:
    return int(day.year - born.year - ((day.month, day.day) < (born.month, born.day)))


def labels(raw: RawTables, as_of: date, next_month_end: date, simulation_end: date,
           client_ids: Iterable[int]) -> pd.Series:
    """``Yes`` for the clients whose churn date lies in ``(as_of, next_month_end]``, else ``No``."""
    dates = churn_dates(raw, simulation_end)
    ids = pd.Series(list(client_ids), dtype="int64")
    when = ids.map(dates)
    left = (when > pd.Timestamp(as_of)) & (when <= pd.Timestamp(next_month_end))
    return pd.Series(left.map({True: POSITIVE, False: NEGATIVE}).to_numpy(), index=ids.to_numpy())


# ------------------------------------------------------------------------------ the stream
def write_monthly_stream(
    folder: Path, *, seed: int = 7, accounts: int = 1000, months: int = 12, warmup_months: int = 2,
    growth: float = 0.1, unlabelled: Sequence[int] = (), name: str = DEFAULT_NAME,
) -> MonthlyStream:
    """Simulate and write ``months`` month-end exports into ``folder``; returns them in order.

    ``accounts`` is the simulator's initial accounts (``growth`` joins later every month);
    ``warmup_months`` are simulated before the first export, so the first file already has
    clients of several ages.  ``unlabelled`` lists 1-based month numbers written without the
    label column (``-1`` = the last month).  ``name`` is a ``str.format`` pattern with
    ``number`` (1-based) and ``as_of`` (a date).  Raw tables go to ``folder / "tables"``.
    """
    if months < 1 or accounts < 1 or warmup_months < 0:
        raise ValueError("months and accounts must be positive, warmup_months not negative")
    unlabelled_set = {months + n + 1 if n < 0 else n for n in unlabelled}
    if not unlabelled_set <= set(range(1, months + 1)):
        raise ValueError(f"unlabelled months must be between 1 and {months} (or -1 for the last)")
    folder.mkdir(parents=True, exist_ok=True)
    # One month past the last export: the renewals that decide its label are simulated.
    tables = write_simulator_tables(folder / "tables", initial=accounts, growth=growth, months=warmup_months + months + 1,
                                    seed=seed)
    raw = RawTables.read(tables)
    ends = month_ends(tables.start + relativedelta(months=warmup_months), months + 1)
    written = []
    for number, (as_of, next_end) in enumerate(pairwise(ends), start=1):
        frame = snapshot(raw, as_of)
        label = labels(raw, as_of, next_end, tables.end, frame[ID_COLUMN])
        frame[LABEL_COLUMN] = label.to_numpy()
        churners = int((frame[LABEL_COLUMN] == POSITIVE).sum())
        keep = number not in unlabelled_set
        path = folder / name.format(number=number, as_of=as_of)
        (frame if keep else frame.drop(columns=[LABEL_COLUMN])).to_csv(path, index=False, lineterminator="\n")
        written.append(MonthFile(number, as_of, path, keep, len(frame), churners))
    if len({month.path for month in written}) != len(written):
        raise ValueError(f"the file name pattern {name!r} gives two months the same name")
    return MonthlyStream(tables, written, seed)


def read_month(month: MonthFile) -> pd.DataFrame:
    """A written export as the strings a CRM file holds (no type guessing)."""
    return pd.read_csv(month.path, dtype=str, keep_default_na=False)


def resample_of(months: Sequence[MonthFile], path: Path, *, rows: int, seed: int = 0,
                drop_label: bool = True) -> Path:
    """A random resample of ``months``' rows, one row per client (a CRM file has no duplicate
    ids), written as one more export: what arrives when nothing has changed."""
    frames = [read_month(month) for month in months]
    pool = pd.concat(frames, ignore_index=True)
    shuffled = pool.sample(frac=1.0, random_state=seed)
    picked = shuffled.drop_duplicates(ID_COLUMN).head(rows).sort_values(ID_COLUMN, key=lambda s: s.astype(int))
    if drop_label and LABEL_COLUMN in picked.columns:
        picked = picked.drop(columns=[LABEL_COLUMN])
    picked.to_csv(path, index=False, lineterminator="\n")
    return path


# ------------------------------------------------------------------------------ event-history path
@dataclass(frozen=True)
class EventMonth:
    """The raw-table rows that became known up to / during one month of the stream."""

    number: int
    as_of: date
    folder: Path
    files: dict[str, Path]  # account, subscription, event_type, event -> CSV in the simulator's shape


def write_event_months(stream: MonthlyStream, folder: Path) -> list[EventMonth]:
    """The stream's raw tables cut at its month-ends, for the event-history path.

    Folder ``n`` holds, in the simulator's own file shape (so ``fightchurn.toml`` maps them),
    what a CRM learnt in month ``n`` of the stream: the accounts whose first subscription
    started in it, the subscription terms that started in it, and its events (folder 1 also
    everything before it, the warm-up included).  Ingesting folders 1..n in order gives a store
    holding exactly what was known at the close of month-end ``n``; no event file overlaps an
    earlier one in time, which the append tables would refuse.  Subscription rows carry the
    paid-through end of their term, as a CRM knows it when a term is bought.
    """
    tables = stream.tables
    accounts = pd.read_csv(tables.account, dtype=str, keep_default_na=False)
    subscriptions = pd.read_csv(tables.subscription, dtype=str, keep_default_na=False)
    events = pd.read_csv(tables.event, dtype=str, keep_default_na=False)
    event_types = pd.read_csv(tables.event_type, dtype=str, keep_default_na=False)
    starts = pd.to_datetime(subscriptions["start_date"])
    times = pd.to_datetime(events["event_time"], format="ISO8601")
    first_start = starts.groupby(subscriptions["account_id"]).min()
    joined = accounts["id"].map(first_start)
    out: list[EventMonth] = []
    previous: pd.Timestamp | None = None
    for month in stream.months:
        cut = pd.Timestamp(month.as_of) + pd.Timedelta(days=1)  # the close of the month-end
        before, after = (starts < cut, times < cut)
        account_rows = joined < cut
        if previous is not None:
            before &= starts >= previous
            after &= times >= previous
            account_rows &= joined >= previous
        target = folder / f"month_{month.number:02d}"
        target.mkdir(parents=True, exist_ok=True)
        files = {"account": target / "account.csv", "subscription": target / "subscription.csv",
                 "event_type": target / "event_type.csv", "event": target / "event.csv"}
        accounts.loc[account_rows].to_csv(files["account"], index=False, lineterminator="\n")
        subscriptions.loc[before].to_csv(files["subscription"], index=False, lineterminator="\n")
        event_types.to_csv(files["event_type"], index=False, lineterminator="\n")
        events.loc[after].to_csv(files["event"], index=False, lineterminator="\n")
        out.append(EventMonth(month.number, month.as_of, target, files))
        previous = cut
    return out


def ingest_event_month(db: Database, month: EventMonth) -> list[EventIngestReport]:
    """Store one month's raw tables as ``churnguard ingest --kind K --mapping fightchurn.toml``
    does (accounts first; an empty table is skipped, as a CRM sends no empty file)."""
    from storage.events.ingest import ingest_events
    from storage.events.mapping import load_mapping_file
    from storage.events.sample import SAMPLE_DIR

    mapping = SAMPLE_DIR / "fightchurn.toml"
    reports = []
    for name, kind in EVENT_MAPPING_KINDS:
        path = month.files[name]
        with path.open(encoding="utf-8") as handle:
            if sum(1 for _ in handle) < 2:
                continue
        reports.append(ingest_events(db, path, kind=kind, mapping=load_mapping_file(mapping, kind)))
    return reports


__all__ = [
    "COLUMNS", "DATE_COLUMN", "ID_COLUMN", "LABEL_COLUMN", "NEGATIVE", "POSITIVE", "EventMonth", "MonthFile",
    "MonthlyStream", "RawTables", "churn_dates", "ingest_event_month", "labels", "month_ends", "read_month",
    "resample_of", "snapshot", "write_event_months", "write_monthly_stream",
]
