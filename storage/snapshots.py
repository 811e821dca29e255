"""Snapshot frames: one row per (client, as-of date), the features known at that date and
the label — what training, scoring and monitoring read from the flat client table.

Why rows per date rather than per client: a monthly export describes every client at each
month-end.  Training on each client's newest record would put churners in at the month they
left and loyal clients at the latest month, so anything that grows with time would separate
them.  A row per (client, date) keeps every month as it was.

**Which record.**  A client may have several records at one date (features first, their
outcome a month later, a corrected file): the row is the newest of them.  Its label is its
own, else that of the newest record at the same date that has one (a later file without the
label column does not make a known outcome unknown), else the one the churn lists imply
(``storage.churns``): a record's own label wins over a derived one.

**Bounded memory.**  Rows are read a date at a time, in pages of at most ``chunk_rows``
(keyset pagination on the client id within a date, each page its own short read), and
each page becomes one chunk; nothing reads the whole table into Python objects.  Every
chunk of a call has the same columns and dtypes: they are fixed before the first page, from
``storage.clients.column_types`` over the batches whose records are involved (plus the
columns those batches carried forward from earlier records).  A stored data column named
like the frame's own columns (``AS_OF``, the id or the label column) is left out.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pandas as pd
from sqlalchemy import Connection, Text, and_, bindparam, exists, func, or_, type_coerce
from sqlalchemy import select as sa_select
from sqlalchemy.sql.elements import ColumnElement

from storage.asof import naive_utc
from storage.churns import check_horizon, churn_dates, complete_until, derived_label
from storage.clients import CLIENTS, column_types, typed_columns
from storage.db import Database
from storage.schema import Schema
from storage.tables import Batch, ClientChurn, ClientRecord, utcnow

AS_OF = "as_of"  # the frame's date column
DEFAULT_CHUNK_ROWS = 50_000
_IN_CHUNK = 5_000  # ids (or dates) per IN (...) list: SQLite caps bound parameters per statement

_RECORDS = ClientRecord.__table__  # type: ignore[attr-defined]
_CHURNS = ClientChurn.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class DateSummary:
    as_of: datetime  # one observation date
    rows: int  # clients with a record at that date (one row per client)
    labelled: int  # of which with a known label (own or derived from churn lists)
    positives: int  # of which label 1
    batch_ids: tuple[int, ...]


@dataclass(frozen=True)
class Departure:
    client_id: str
    left_on: datetime | None  # the churn date when a churn list gives one
    after: datetime | None  # else: the as-of date of the record labelled 1
    horizon_days: int


def _newest_at_pair(records: Any) -> ColumnElement[bool]:
    """``records`` row is the newest record of its (client, as-of date) pair."""
    other = _RECORDS.alias("newer")
    return ~exists().where(other.c.as_of == records.c.as_of, other.c.client_id == records.c.client_id,
                           other.c.id > records.c.id)


def _newest_labelled_at_pair(records: Any) -> ColumnElement[bool]:
    other = _RECORDS.alias("newer_labelled")
    return and_(records.c.label.is_not(None),
                ~exists().where(other.c.as_of == records.c.as_of, other.c.client_id == records.c.client_id,
                                other.c.label.is_not(None), other.c.id > records.c.id))


def _labelled_pair(records: Any) -> ColumnElement[bool]:
    other = _RECORDS.alias("labelled")
    return exists().where(other.c.as_of == records.c.as_of, other.c.client_id == records.c.client_id,
                          other.c.label.is_not(None))


def _moment(value: Any) -> datetime:
    """A date the caller gave (datetime, pandas Timestamp, ISO text) as naive UTC."""
    moment = pd.Timestamp(value).to_pydatetime()
    return naive_utc(moment)


# ------------------------------------------------------------------------------------------
# Dates
# ------------------------------------------------------------------------------------------


def as_of_dates(db: Database, *, horizon_days: int) -> list[DateSummary]:
    """Every as-of date of the client table, oldest first, with its rows and known labels.

    Counted in the database (grouped by date; the churn-list part grouped by date and churn
    date), so the cost in memory is per date, not per row."""
    horizon = check_horizon(horizon_days)
    r = _RECORDS
    rows: dict[datetime, int] = {}
    own: dict[datetime, tuple[int, int]] = {}
    batches: dict[datetime, set[int]] = {}
    derived: dict[datetime, tuple[int, int, int]] = {}  # listed rows, of which 1, of which 0
    with db.read_session() as session:
        connection = session.connection()
        complete = complete_until(connection)
        newest = _newest_at_pair(r)
        # One row per (client, date) pair: distinct clients per date, read from the (as_of, client_id) index.
        counted = sa_select(r.c.as_of, func.count(func.distinct(r.c.client_id))).group_by(r.c.as_of)
        for as_of, count in connection.execute(counted):
            rows[as_of] = int(count)
        query = sa_select(r.c.as_of, func.count(), func.sum(r.c.label)).where(_newest_labelled_at_pair(r))
        for as_of, count, positives in connection.execute(query.group_by(r.c.as_of)):
            own[as_of] = (int(count), int(positives or 0))
        for as_of, batch_id in connection.execute(sa_select(r.c.as_of, r.c.batch_id).where(newest).distinct()):
            batches.setdefault(as_of, set()).add(int(batch_id))
        listed = (sa_select(r.c.as_of, _CHURNS.c.churn_at, func.count())
                  .join(_CHURNS, _CHURNS.c.client_id == r.c.client_id)
                  .where(newest, ~_labelled_pair(r))
                  .group_by(r.c.as_of, _CHURNS.c.churn_at))
        for as_of, churn_at, count in connection.execute(listed):
            label = derived_label(as_of, churn_at, complete=complete, horizon_days=horizon)
            n, ones, zeros = derived.get(as_of, (0, 0, 0))
            derived[as_of] = (n + int(count), ones + int(count) * (label == 1), zeros + int(count) * (label == 0))
    out = []
    for as_of in sorted(rows):
        own_n, own_pos = own.get(as_of, (0, 0))
        listed_n, ones, zeros = derived.get(as_of, (0, 0, 0))
        unlisted = rows[as_of] - own_n - listed_n
        if derived_label(as_of, None, complete=complete, horizon_days=horizon) == 0:
            zeros += unlisted
        out.append(DateSummary(as_of=as_of, rows=rows[as_of], labelled=own_n + ones + zeros,
                               positives=own_pos + ones, batch_ids=tuple(sorted(batches.get(as_of, ())))))
    return out


def date_overview(db: Database, *, horizon_days: int) -> tuple[list[datetime], list[datetime]]:
    """(every as-of date, the dates with at least one known label), oldest first: what
    ``as_of_dates`` says about them, without counting rows, so ``churnguard status`` stays
    fast on a large store (the dates come from the ``(as_of, client_id)`` index; no per-row
    subquery)."""
    horizon = check_horizon(horizon_days)
    r = _RECORDS
    with db.read_session() as session:
        connection = session.connection()
        dates = [d for (d,) in connection.execute(sa_select(r.c.as_of).distinct().order_by(r.c.as_of))]
        known = {d for (d,) in connection.execute(sa_select(r.c.as_of).where(r.c.label.is_not(None)).distinct())}
        complete = complete_until(connection)
        known.update(d for d in dates if derived_label(d, None, complete=complete, horizon_days=horizon) == 0)
        listed = (sa_select(r.c.as_of, _CHURNS.c.churn_at).join(_CHURNS, _CHURNS.c.client_id == r.c.client_id)
                  .distinct())
        known.update(as_of for as_of, churn_at in connection.execute(listed)
                     if derived_label(as_of, churn_at, complete=complete, horizon_days=horizon) is not None)
    return dates, sorted(known)


# ------------------------------------------------------------------------------------------
# Frames
# ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Plan:
    """What every chunk of one call shares: its dates, column types and churn-list state."""

    schema: Schema
    dates: list[datetime]
    types: dict[str, str]
    complete: datetime | None
    labelled_dates: frozenset[datetime]  # dates with at least one record of a known own label
    churn_lists: bool  # any churn date stored: derived labels need looking up
    horizon_days: int
    labelled_only: bool
    client_ids: list[str] | None
    chunk_rows: int


def _involved_batches(connection: Connection, dates: Sequence[datetime]) -> set[int]:
    r = _RECORDS
    found: set[int] = set()
    for start in range(0, len(dates), _IN_CHUNK):
        part = list(dates[start : start + _IN_CHUNK])
        query = sa_select(r.c.batch_id).where(r.c.as_of.in_(part), _newest_at_pair(r)).distinct()
        found.update(int(b) for (b,) in connection.execute(query))
    return found


def _types(db: Database, connection: Connection, involved: set[int], schema: Schema) -> dict[str, str]:
    """Column types over the involved batches, plus what those batches' records carried."""
    types = column_types(db, involved) if involved else column_types(db)
    if involved:
        batches = Batch.__table__  # type: ignore[attr-defined]
        carried: set[str] = set()
        ids = sorted(involved)
        for start in range(0, len(ids), _IN_CHUNK):
            query = sa_select(batches.c.carried_columns).where(batches.c.id.in_(ids[start : start + _IN_CHUNK]),
                                                               batches.c.kind == CLIENTS)
            for (names,) in connection.execute(query):
                carried.update(names or [])
        if carried - set(types):
            everywhere = column_types(db)
            types.update((name, kind) for name, kind in everywhere.items() if name in carried and name not in types)
    reserved = {AS_OF, schema.id_column, schema.label_column}
    return {name: kind for name, kind in types.items() if name not in reserved}


def _plan(db: Database, schema: Schema, *, horizon_days: int, dates: Sequence[Any] | None, labelled_only: bool,
          client_ids: Sequence[str] | None, chunk_rows: int) -> _Plan:
    horizon = check_horizon(horizon_days)
    if int(chunk_rows) < 1:
        raise ValueError(f"chunk_rows must be at least 1, got {chunk_rows}")
    r = _RECORDS
    with db.read_session() as session:
        connection = session.connection()
        if dates is None:
            wanted = [d for (d,) in connection.execute(sa_select(r.c.as_of).distinct().order_by(r.c.as_of))]
        else:
            wanted = sorted({_moment(d) for d in dates})
        involved = _involved_batches(connection, wanted)
        types = _types(db, connection, involved, schema)
        complete = complete_until(connection)
        labelled = frozenset(d for (d,) in connection.execute(
            sa_select(r.c.as_of).where(r.c.label.is_not(None)).distinct()))
        listed = connection.execute(sa_select(_CHURNS.c.id).limit(1)).first() is not None
    ids = None if client_ids is None else sorted({str(i) for i in client_ids})
    return _Plan(schema, wanted, types, complete, labelled, listed, horizon, labelled_only, ids, int(chunk_rows))


def _page_query(as_of: datetime) -> Any:
    r = _RECORDS
    return (sa_select(r.c.client_id, r.c.batch_id, r.c.label, type_coerce(r.c.data, Text).label("data"))
            .where(r.c.as_of == as_of, _newest_at_pair(r))
            .order_by(r.c.client_id))


def _pages(db: Database, plan: _Plan, as_of: datetime) -> Iterator[pd.DataFrame]:
    """The chunks of one date: pages of at most ``chunk_rows`` rows, each read in its own
    short transaction (so a slow consumer holds no lock and no snapshot)."""
    r = _RECORDS
    query = _page_query(as_of)
    if plan.client_ids is not None:
        size = min(plan.chunk_rows, _IN_CHUNK)
        for start in range(0, len(plan.client_ids), size):
            part = plan.client_ids[start : start + size]
            with db.read_session() as session:
                connection = session.connection()
                rows = connection.execute(query.where(r.c.client_id.in_(part))).all()
                chunk = _chunk(connection, plan, as_of, rows) if rows else None
            if chunk is not None:
                yield chunk
        return
    last: str | None = None
    while True:
        page = query if last is None else query.where(r.c.client_id > last)
        with db.read_session() as session:
            connection = session.connection()
            rows = connection.execute(page.limit(plan.chunk_rows)).all()
            chunk = _chunk(connection, plan, as_of, rows) if rows else None
        if chunk is None:
            return
        yield chunk
        if len(rows) < plan.chunk_rows:
            return
        last = rows[-1].client_id


def _chunk(connection: Connection, plan: _Plan, as_of: datetime, rows: Sequence[Any]) -> pd.DataFrame:
    ids = [str(row.client_id) for row in rows]
    labels: list[int | None] = [None if row.label is None else int(row.label) for row in rows]
    unknown = [client_id for client_id, label in zip(ids, labels, strict=True) if label is None]
    if unknown:
        own = _own_labels(connection, as_of, unknown) if as_of in plan.labelled_dates else {}
        rest = [client_id for client_id in unknown if client_id not in own]
        churned = churn_dates(connection, rest) if plan.churn_lists and rest else {}
        for position, client_id in enumerate(ids):
            if labels[position] is None:
                labels[position] = own.get(client_id)
                if labels[position] is None:
                    labels[position] = derived_label(as_of, churned.get(client_id), complete=plan.complete,
                                                     horizon_days=plan.horizon_days)
    batch_ids = [int(row.batch_id) for row in rows]
    datas = [(json.loads(row.data) if isinstance(row.data, str) else row.data) or {} for row in rows]
    if plan.labelled_only:
        keep = [label is not None for label in labels]
        ids = [v for v, k in zip(ids, keep, strict=True) if k]
        labels = [v for v, k in zip(labels, keep, strict=True) if k]
        batch_ids = [v for v, k in zip(batch_ids, keep, strict=True) if k]
        datas = [v for v, k in zip(datas, keep, strict=True) if k]
    return _frame(plan, [as_of] * len(ids), ids, datas, labels, batch_ids)


def _own_labels(connection: Connection, as_of: datetime, client_ids: Sequence[str]) -> dict[str, int]:
    """The label of the newest labelled record at (client, as_of), for clients whose newest
    record at that date has none."""
    r = _RECORDS
    found: dict[str, int] = {}
    for start in range(0, len(client_ids), _IN_CHUNK):
        part = list(client_ids[start : start + _IN_CHUNK])
        query = (sa_select(r.c.client_id, r.c.label)
                 .where(r.c.as_of == as_of, r.c.client_id.in_(part), r.c.label.is_not(None))
                 .order_by(r.c.id))
        found.update({str(client_id): int(label) for client_id, label in connection.execute(query)})
    return found


def _frame(plan: _Plan, dates: list[datetime], ids: list[str], datas: list[dict[str, Any]],
           labels: Sequence[int | None], batch_ids: list[int]) -> pd.DataFrame:
    schema = plan.schema
    columns: dict[str, Any] = {
        schema.id_column: pd.Series(ids, dtype=object),
        AS_OF: pd.Series(pd.to_datetime(dates), dtype="datetime64[ns]"),
    }
    columns.update(typed_columns(datas, plan.types))
    columns[schema.label_column] = pd.Series(list(labels), dtype="int64" if plan.labelled_only else "Int64")
    frame = pd.DataFrame(columns, index=pd.RangeIndex(len(ids)))
    frame.attrs["batch_ids"] = sorted(set(batch_ids))
    return frame


def snapshot_frames(db: Database, schema: Schema, *, horizon_days: int,
                    dates: Sequence[datetime] | None = None,
                    labelled_only: bool = False,
                    client_ids: Sequence[str] | None = None,
                    chunk_rows: int = DEFAULT_CHUNK_ROWS) -> Iterator[pd.DataFrame]:
    """Rows (one per client and as-of date: the newest record for that pair), oldest date
    first, in chunks of at most chunk_rows, each chunk one date or part of one. Columns: the
    schema's id column (str), AS_OF (datetime64[ns]), every stored data column typed as
    load_frame types them today (float64 / object), and the label column (int64 0/1 when
    labelled_only, else nullable Int64), the label being the record's own or the derived one.
    chunk.attrs["batch_ids"] lists the batches its rows came from.

    Within a date, rows come in client-id order (the database's collation).  Empty chunks
    (a page whose rows all lack a label, with ``labelled_only``) are not yielded."""
    plan = _plan(db, schema, horizon_days=horizon_days, dates=dates, labelled_only=labelled_only,
                 client_ids=client_ids, chunk_rows=chunk_rows)
    return _iterate(db, plan)


def _iterate(db: Database, plan: _Plan) -> Iterator[pd.DataFrame]:
    for as_of in plan.dates:
        for chunk in _pages(db, plan, as_of):
            if len(chunk):
                yield chunk


def snapshot_frame(db: Database, schema: Schema, *, horizon_days: int,
                   dates: Sequence[datetime] | None = None,
                   labelled_only: bool = False,
                   client_ids: Sequence[str] | None = None,
                   chunk_rows: int = DEFAULT_CHUNK_ROWS) -> pd.DataFrame:
    """``snapshot_frames`` concatenated into one frame (typed alike, also when empty);
    ``attrs["batch_ids"]`` lists the batches of all its rows."""
    plan = _plan(db, schema, horizon_days=horizon_days, dates=dates, labelled_only=labelled_only,
                 client_ids=client_ids, chunk_rows=chunk_rows)
    chunks = list(_iterate(db, plan))
    if not chunks:
        return _frame(plan, [], [], [], [], [])
    frame = pd.concat(chunks, ignore_index=True) if len(chunks) > 1 else chunks[0]
    frame.attrs = {"batch_ids": sorted({b for chunk in chunks for b in chunk.attrs["batch_ids"]})}
    return frame


# ------------------------------------------------------------------------------------------
# Departures
# ------------------------------------------------------------------------------------------


def departures(db: Database, client_ids: Sequence[str] | None = None, *,
               horizon_days: int, until: datetime | None = None) -> dict[str, Departure]:
    """Clients known to have left by ``until`` (default now): a churn date <= until, or a newest
    record labelled 1 (its as_of + horizon <= until or not: the label says they leave).

    "Newest record labelled 1": the client's newest labelled record dated at or before
    ``until`` has label 1 (a later record labelled 0 says the client stayed after all).  A
    churn date wins: ``left_on`` is set and ``after`` is None; otherwise ``after`` is that
    record's as-of date."""
    horizon = check_horizon(horizon_days)
    moment = utcnow() if until is None else _moment(until)
    r = _RECORDS
    other = _RECORDS.alias("newer_outcome")
    newer = exists().where(
        other.c.client_id == r.c.client_id, other.c.label.is_not(None), other.c.as_of <= moment,
        or_(other.c.as_of > r.c.as_of, and_(other.c.as_of == r.c.as_of, other.c.id > r.c.id)),
    )
    labelled = sa_select(r.c.client_id, r.c.as_of).where(r.c.label == 1, r.c.as_of <= moment, ~newer)
    listed = sa_select(_CHURNS.c.client_id, _CHURNS.c.churn_at).where(_CHURNS.c.churn_at <= moment)
    wanted = None if client_ids is None else sorted({str(i) for i in client_ids})
    parts: list[list[str] | None] = [None] if wanted is None else [
        wanted[start : start + _IN_CHUNK] for start in range(0, len(wanted), _IN_CHUNK)]
    found: dict[str, Departure] = {}
    with db.read_session() as session:
        connection = session.connection()
        for part in parts:
            by_label = labelled if part is None else labelled.where(r.c.client_id.in_(part))
            for client_id, as_of in connection.execute(by_label):
                found[str(client_id)] = Departure(str(client_id), None, as_of, horizon)
            by_list = listed if part is None else listed.where(_CHURNS.c.client_id.in_(part))
            for client_id, churn_at in connection.execute(by_list):
                found[str(client_id)] = Departure(str(client_id), churn_at, None, horizon)
    return found


# Built once, with bound parameters, so SQLAlchemy's compiled cache serves every /score.
_NEWEST_OUTCOME_OF_ONE = (
    sa_select(_RECORDS.c.label, _RECORDS.c.as_of)
    .where(_RECORDS.c.client_id == bindparam("client_id"), _RECORDS.c.label.is_not(None),
           _RECORDS.c.as_of <= bindparam("until"))
    .order_by(_RECORDS.c.as_of.desc(), _RECORDS.c.id.desc())
    .limit(1)
)
_CHURN_OF_ONE = sa_select(_CHURNS.c.churn_at).where(_CHURNS.c.client_id == bindparam("client_id"),
                                                    _CHURNS.c.churn_at <= bindparam("until"))


def departure_of(connection: Connection, client_id: str, *, horizon_days: int,
                 until: datetime | None = None) -> Departure | None:
    """``departures`` for one client, in two indexed look-ups: the single-client path of /score,
    which must not scan the table."""
    moment = utcnow() if until is None else _moment(until)
    churn_at = connection.execute(_CHURN_OF_ONE, {"client_id": str(client_id), "until": moment}).scalar()
    if churn_at is not None:
        return Departure(str(client_id), churn_at, None, horizon_days)
    newest = connection.execute(_NEWEST_OUTCOME_OF_ONE, {"client_id": str(client_id), "until": moment}).first()
    if newest is not None and int(newest.label) == 1:
        return Departure(str(client_id), None, newest.as_of, horizon_days)
    return None


__all__ = ["AS_OF", "DEFAULT_CHUNK_ROWS", "DateSummary", "Departure", "as_of_dates", "date_overview", "departure_of",
           "departures",
           "snapshot_frame", "snapshot_frames"]
