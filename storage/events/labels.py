"""Churn labels after a date D and the monthly training frame built from them.

When a client churns:

* at the churn date of the clients table, when it gives one (it overrides subscriptions);
* otherwise at the end of a subscription that no other subscription of the client covers
  (no ``start <= end < other end``): the last subscription's end, and also a lapse
  between two subscriptions.  Back-to-back renewals (next start == previous end) are no churn.

The label at D of a client active at D is 1 when it churns in ``(D, D + horizon]``:
active at D and not active at D + horizon, in the terms of the usual churn-rate SQL.

An outcome is only known once the data covers ``D + horizon``.  ``data_end`` is the time up
to which the data is complete: the earlier of the latest subscription start and the latest
usage event (purchases and tickets are too sparse to tell, and decide only without those),
so that subscriptions scheduled to end after the export are not taken for churn.
Observation dates whose horizon runs past it are left out.

The frame for training has one row per (client, observation date); the same client
appears at several dates, so a split must keep each client's rows on one side: group by
``GROUP_COLUMN`` ("client_id").
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING

import pandas as pd
from sqlalchemy import Connection, exists, func, or_, select, union
from sqlalchemy.orm import aliased

from storage.errors import UserError
from storage.events.features import (
    CLIENTS,
    DAY,
    DEFAULT_MAX_EVENT_TYPES,
    DEFAULT_WINDOWS,
    PURCHASES,
    SUBSCRIPTIONS,
    TICKETS,
    USAGE,
    FeatureSpec,
    feature_spec,
    features_as_of,
    from_epoch,
    to_epoch,
)

if TYPE_CHECKING:  # storage.db imports storage.events.tables; only types are needed here
    from storage.db import Database

GROUP_COLUMN = "client_id"
DEFAULT_HORIZON_DAYS = 30
# Subscriptions and usage events arrive continuously, so their latest times mark the end of
# an export; purchases and tickets can be sparse (a last ticket weeks before the export) and
# only decide when neither of the others is stored.
_DENSE = ((SUBSCRIPTIONS, "start_ts"), (USAGE, "ts"))
_SPARSE = ((PURCHASES, "ts"), (TICKETS, "opened_ts"))


def _span(connection: Connection) -> tuple[int | None, int | None]:
    """(earliest time in any event table, the time up to which the data is complete)."""
    starts: list[int] = []
    dense: list[int] = []
    sparse: list[int] = []
    for group, ends in ((_DENSE, dense), (_SPARSE, sparse)):
        for table, column in group:
            low, high = connection.execute(select(func.min(table.c[column]), func.max(table.c[column]))).one()
            if low is not None:
                starts.append(int(low))
                ends.append(int(high))
    end = min(dense) if dense else (max(sparse) if sparse else None)
    return (min(starts) if starts else None), end


def data_end(db: Database) -> datetime | None:
    """Up to when the event data is complete (see the module docstring); None without events."""
    with db.engine.connect() as connection:
        end = _span(connection)[1]
    return None if end is None else from_epoch(end)


def churned_keys(connection: Connection, start: int, stop: int) -> set[int]:
    """Client keys with a churn in ``(start, stop]`` (epoch seconds)."""
    explicit = select(CLIENTS.c.id).where(CLIENTS.c.churn_ts > start, CLIENTS.c.churn_ts <= stop)
    other = aliased(SUBSCRIPTIONS)
    covered = exists().where(
        other.c.client_key == SUBSCRIPTIONS.c.client_key,
        other.c.start_ts <= SUBSCRIPTIONS.c.end_ts,
        or_(other.c.end_ts.is_(None), other.c.end_ts > SUBSCRIPTIONS.c.end_ts),
    )
    derived = (select(SUBSCRIPTIONS.c.client_key)
               .join(CLIENTS, CLIENTS.c.id == SUBSCRIPTIONS.c.client_key)
               .where(CLIENTS.c.churn_ts.is_(None), SUBSCRIPTIONS.c.end_ts > start,
                      SUBSCRIPTIONS.c.end_ts <= stop, ~covered))
    return {int(k) for (k,) in connection.execute(union(explicit, derived))}


def left_on(db: Database, client_id: str, before: datetime | date | str) -> datetime | None:
    """When a client who is not active at ``before`` left: its churn date, else the end of its
    last subscription before that date; None for a client who never started."""
    d = to_epoch(before)
    with db.engine.connect() as connection:
        row = connection.execute(select(CLIENTS.c.id, CLIENTS.c.churn_ts)
                                 .where(CLIENTS.c.client_id == str(client_id))).first()
        if row is None:
            return None
        if row.churn_ts is not None and int(row.churn_ts) <= d:
            return from_epoch(int(row.churn_ts))
        end = connection.execute(select(func.max(SUBSCRIPTIONS.c.end_ts)).where(
            SUBSCRIPTIONS.c.client_key == row.id, SUBSCRIPTIONS.c.end_ts <= d)).scalar()
    return None if end is None else from_epoch(int(end))


def _check_known(connection: Connection, d: int, horizon_days: int, known_until: int | None) -> None:
    end = _span(connection)[1] if known_until is None else known_until
    if end is not None and d + horizon_days * DAY > end:
        raise UserError(
            f"the outcome {horizon_days} days after {from_epoch(d):%Y-%m-%d %H:%M} is not known yet: the event "
            f"data runs to {from_epoch(end):%Y-%m-%d %H:%M}",
            as_of=from_epoch(d).isoformat(), data_end=from_epoch(end).isoformat(), horizon_days=horizon_days)


def labels_as_of(db: Database, as_of: datetime | date | str, *, horizon_days: int = DEFAULT_HORIZON_DAYS,
                 client_ids: Sequence[str] | None = None,
                 known_until: datetime | date | str | None = None) -> pd.Series:
    """0/1 per client id (index) for the clients active at ``as_of`` (or the given ones):
    1 when the client churns within ``horizon_days`` after it.  Refuses a date whose
    outcome lies beyond the data (``data_end``, or ``known_until`` when given)."""
    from storage.events.features import active_clients

    horizon_days = _horizon(horizon_days)
    d = to_epoch(as_of)
    ids = list(client_ids) if client_ids is not None else active_clients(db, from_epoch(d))
    with db.engine.connect() as connection:
        _check_known(connection, d, horizon_days, None if known_until is None else to_epoch(known_until))
        return _labels(connection, d, horizon_days, ids)


def _labels(connection: Connection, d: int, horizon_days: int, ids: Sequence[str]) -> pd.Series:
    churned = churned_keys(connection, d, d + horizon_days * DAY)
    wanted = [str(i) for i in ids]
    keys: dict[str, int] = {}
    for start in range(0, len(wanted), 1000):
        chunk = wanted[start : start + 1000]
        query = select(CLIENTS.c.client_id, CLIENTS.c.id).where(CLIENTS.c.client_id.in_(chunk))
        keys.update({str(c): int(k) for c, k in connection.execute(query)})
    values = [int(keys.get(i, -1) in churned) for i in wanted]
    return pd.Series(values, index=pd.Index(wanted, name="client_id"), name="label", dtype="int64")


def _horizon(horizon_days: int) -> int:
    if int(horizon_days) <= 0:
        raise UserError(f"the churn horizon must be a positive number of days, got {horizon_days}",
                        horizon_days=horizon_days)
    return int(horizon_days)


def observation_dates(start: datetime | date | str, end: datetime | date | str, every: str = "month") -> list[datetime]:
    """Observation dates from ``start`` to ``end`` inclusive.

    ``every="month"``: midnight of the first day of each month (the instant a month
    ends, so "as of the end of March" is 1 April 00:00 and the whole of March counts);
    ``"week"``/``"day"``/``"<N>d"``: every 7, 1 or N days from ``start`` at midnight."""
    first = pd.Timestamp(from_epoch(to_epoch(start))).normalize()
    last = pd.Timestamp(from_epoch(to_epoch(end)))
    if last < first:
        raise UserError(f"the observation period ends ({last:%Y-%m-%d}) before it starts ({first:%Y-%m-%d})")
    text = every.strip().lower()
    if text in ("month", "monthly", "m"):
        dates = pd.date_range(first, last, freq="MS")
    else:
        step = {"week": 7, "weekly": 7, "w": 7, "day": 1, "daily": 1}.get(text)
        if step is None and text.endswith("d") and text[:-1].isdigit() and int(text[:-1]) > 0:
            step = int(text[:-1])
        if step is None:
            raise UserError(f"unknown observation frequency {every!r}; use month, week, day or <N>d (e.g. 14d)",
                            every=every)
        dates = pd.date_range(first, last, freq=f"{step}D")
    return [d.to_pydatetime() for d in dates]


def training_frame(
    db: Database,
    *,
    start: datetime | date | str | None = None,
    end: datetime | date | str | None = None,
    every: str = "month",
    horizon_days: int = DEFAULT_HORIZON_DAYS,
    windows: Sequence[int] = DEFAULT_WINDOWS,
    spec: FeatureSpec | None = None,
    known_until: datetime | date | str | None = None,
    max_event_types: int = DEFAULT_MAX_EVENT_TYPES,
) -> pd.DataFrame:
    """Rows (client_id, as_of, features..., label) for the clients active at each
    observation date; group a split by ``GROUP_COLUMN`` so a client's rows stay together.

    Defaults: ``start`` = the first data time plus the longest window (so windows are
    full), ``end`` = ``data_end`` minus the horizon.  Dates whose outcome is not known yet
    are dropped and listed in ``frame.attrs["dropped_dates"]`` (ISO strings, like every
    attr, so the frame can be saved as Parquet); ``known_until`` overrides
    ``data_end`` when you know up to when the export is complete.  The usage event types are
    chosen once, before the last date, so every date has the same columns
    (``frame.attrs["spec"]``, for ``FeatureSpec.from_dict`` at scoring time): the
    ``max_event_types`` most frequent, the rest listed as its ``dropped_types``."""
    horizon_days = _horizon(horizon_days)
    with db.engine.connect() as connection:
        first, last = _span(connection)
        clients = connection.execute(select(func.count()).select_from(CLIENTS)).scalar_one()
    if not clients:
        raise UserError("no event clients are stored: ingest a clients table first (--kind clients)")
    if first is None or last is None:
        raise UserError("no subscriptions or events are stored, so there is nothing to learn churn from")
    if known_until is not None:
        last = to_epoch(known_until)
    known_until = from_epoch(last) - timedelta(days=horizon_days)
    window = max(spec.windows if spec is not None else tuple(windows))
    begin = start if start is not None else from_epoch(first) + timedelta(days=window)
    finish = end if end is not None else known_until
    dates = observation_dates(begin, finish, every) if to_epoch(finish) >= to_epoch(begin) else []
    usable = [d for d in dates if d <= known_until]
    dropped = [d for d in dates if d > known_until]
    if not usable:
        raise UserError(
            f"no observation date between {pd.Timestamp(begin):%Y-%m-%d} and {pd.Timestamp(finish):%Y-%m-%d} has "
            f"a known {horizon_days}-day outcome: the event data runs to {from_epoch(last):%Y-%m-%d}",
            data_end=from_epoch(last).isoformat(), horizon_days=horizon_days)
    spec = spec or feature_spec(db, before=usable[-1], windows=windows, max_event_types=max_event_types)
    parts = []
    for moment in usable:
        features = features_as_of(db, moment, spec=spec)
        if features.empty:
            continue
        with db.engine.connect() as connection:
            labels = _labels(connection, to_epoch(moment), horizon_days, features["client_id"].tolist())
        features.insert(1, "as_of", pd.Timestamp(moment))
        features["label"] = labels.to_numpy()
        parts.append(features)
    if not parts:
        raise UserError("no client is active at any observation date; check the subscriptions' dates")
    frame = pd.concat(parts, ignore_index=True)
    frame.attrs.update({"spec": spec.as_dict(), "horizon_days": horizon_days, "group_column": GROUP_COLUMN,
                        "dates": [d.isoformat() for d in usable], "dropped_dates": [d.isoformat() for d in dropped],
                        "data_end": from_epoch(last).isoformat()})
    return frame


__all__ = [
    "DEFAULT_HORIZON_DAYS",
    "GROUP_COLUMN",
    "churned_keys",
    "data_end",
    "labels_as_of",
    "left_on",
    "observation_dates",
    "training_frame",
]
