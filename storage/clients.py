"""Queries over stored client records: the latest view of each client, training frames,
and the label history that realised-recall monitoring compares predictions with.

Records are never updated in place: a new batch adds a record per client and marks the
previous one as history (``is_latest`` False).  "Latest" is therefore a flag for the
current view, and the record id orders a client's records in time.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import and_, bindparam, exists, func, or_
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from storage.db import Database
from storage.readers import CATEGORICAL, NUMERIC
from storage.schema import Schema
from storage.tables import Batch, ClientRecord

CLIENTS = "clients"  # Batch.kind of CRM client batches (see storage.ingest)
AS_OF_COLUMN = "as_of"  # the date column of frames that carry each row's as-of date (storage.snapshots.AS_OF)
_IN_CHUNK = 5_000  # ids per IN (...) list: SQLite caps bound parameters per statement


def _chunks(values: Sequence[str], size: int = _IN_CHUNK) -> Iterable[Sequence[str]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def latest_records(session: Session, client_ids: Iterable[str] | None = None) -> list[ClientRecord]:
    """The current record of every client, or of the given clients (unknown ids are skipped)."""
    base = select(ClientRecord).where(col(ClientRecord.is_latest).is_(True))
    if client_ids is None:
        return list(session.exec(base.order_by(col(ClientRecord.id))).all())
    wanted = list(dict.fromkeys(str(i) for i in client_ids))
    found: list[ClientRecord] = []
    for part in _chunks(wanted):
        found.extend(session.exec(base.where(col(ClientRecord.client_id).in_(part))).all())
    order = {client_id: position for position, client_id in enumerate(wanted)}
    return sorted(found, key=lambda record: order[record.client_id])


# Built once: every /score runs this lookup, and building and hashing the statement each time
# cost as much as running it.  The id is a bound parameter, so SQLAlchemy's compiled cache
# serves every call.
_LATEST_OF_ONE = (
    select(ClientRecord)
    .where(col(ClientRecord.client_id) == bindparam("client_id"), col(ClientRecord.is_latest).is_(True))
    .order_by(col(ClientRecord.id).desc())
    .limit(1)
)


def get_latest(session: Session, client_id: str) -> ClientRecord | None:
    """The current record of one client, or None when the store never saw this id."""
    return session.exec(_LATEST_OF_ONE, params={"client_id": str(client_id)}).first()


def column_types(db: Database, batch_ids: Iterable[int] | None = None) -> dict[str, str]:
    """Each data column's type over the client batches (or the given ones), in first-seen order.

    A column is numeric only if every batch that had it saw numbers: once a batch brought
    text in it, the column has to be treated as text everywhere or the batches disagree."""
    query = select(Batch).where(Batch.kind == CLIENTS).order_by(col(Batch.id))
    if batch_ids is not None:
        query = query.where(col(Batch.id).in_(list(batch_ids)))
    with db.read_session() as session:
        batches = session.exec(query).all()
    types: dict[str, str] = {}
    for batch in batches:
        for name, kind in batch.columns.items():
            if types.get(name) in (None, NUMERIC):
                types[name] = kind
    return types


def _as_text(value: object) -> object:
    """A stored cell of a text column; numbers stored by an older batch print without ".0"."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return np.nan
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def typed_columns(datas: Sequence[dict[str, Any]], types: dict[str, str]) -> dict[str, pd.Series]:
    """The data columns of stored records, typed as every frame types them: numeric as
    float64, text as object with NaN for missing (numbers an older batch stored in a text
    column print without ".0")."""
    data = pd.DataFrame.from_records(list(datas), columns=list(types))
    columns: dict[str, pd.Series] = {}
    for name, kind in types.items():
        values = data[name]
        if kind == NUMERIC:
            columns[name] = pd.to_numeric(values, errors="coerce").astype("float64")
        else:
            columns[name] = pd.Series([_as_text(v) for v in values.tolist()], dtype=object)
    return columns


def _frame_from_rows(
    rows: Sequence[Any], schema: Schema, types: dict[str, str], label_dtype: str
) -> pd.DataFrame:
    ids = [row.client_id for row in rows]
    columns: dict[str, Any] = {schema.id_column: pd.Series(ids, dtype=object)}
    columns.update(typed_columns([row.data for row in rows], types))
    labels = [row.label for row in rows]
    columns[schema.label_column] = pd.Series(labels, dtype=label_dtype)
    frame = pd.DataFrame(columns)
    frame.attrs["batch_ids"] = sorted({int(row.batch_id) for row in rows})
    return frame


def load_frame(db: Database, schema: Schema, *, labelled_only: bool, latest_only: bool = True) -> pd.DataFrame:
    """Client records as a frame: the id column, every stored data column (numeric as float64,
    text as object with NaN for missing) and the label column.

    ``labelled_only``: only records with a label, the label as int 0/1 — the training set.
    With ``latest_only`` that is each client's newest *labelled* record (newest as-of date,
    ties to the newest record), so a later unlabelled scoring batch does not remove clients
    from training.  Frames of (client, as-of date) rows come from ``storage.snapshots``.  Without
    ``labelled_only`` the label is a nullable Int64.  ``latest_only=False`` returns every
    record (a client's history, oldest first).  ``ignore_columns`` are not dropped here:
    which columns are features is the model's decision.  ``frame.attrs["batch_ids"]`` lists
    the batches the rows came from."""
    table = ClientRecord.__table__  # type: ignore[attr-defined]
    query = sa_select(table.c.id, table.c.client_id, table.c.batch_id, table.c.label, table.c.data)
    if labelled_only:
        query = query.where(table.c.label.is_not(None))
        if latest_only:
            other = table.alias("other")
            newer = exists().where(
                other.c.client_id == table.c.client_id,
                other.c.label.is_not(None),
                or_(other.c.as_of > table.c.as_of, and_(other.c.as_of == table.c.as_of, other.c.id > table.c.id)),
            )
            query = query.where(~newer)
    elif latest_only:
        query = query.where(table.c.is_latest.is_(True))
    with db.read_session() as session:
        rows = session.connection().execute(query.order_by(table.c.id)).all()
    return _frame_from_rows(rows, schema, _row_types(db, rows), "int64" if labelled_only else "Int64")


def _row_types(db: Database, rows: Sequence[Any]) -> dict[str, str]:
    """The data columns of these records and their types, as their batches saw them.  A record
    can carry columns its own batch lacked (storage.ingest.carry_forward): those are typed as
    the store does overall."""
    types = column_types(db, {int(row.batch_id) for row in rows}) if rows else column_types(db)
    present: set[str] = set()
    for row in rows:
        present.update(row.data or {})
    if present - set(types):
        types.update((name, kind) for name, kind in column_types(db).items() if name in present and name not in types)
    return types


def _current_query(until: datetime | None) -> Any:
    """Each client's current record: the flagged latest one, or the newest dated at or before
    ``until`` (ties to the newest record)."""
    table = ClientRecord.__table__  # type: ignore[attr-defined]
    query = sa_select(table.c.id, table.c.client_id, table.c.batch_id, table.c.label, table.c.data, table.c.as_of)
    if until is None:
        return table, query.where(table.c.is_latest.is_(True))
    other = table.alias("newer")
    newer = exists().where(
        other.c.client_id == table.c.client_id, other.c.as_of <= until,
        or_(other.c.as_of > table.c.as_of, and_(other.c.as_of == table.c.as_of, other.c.id > table.c.id)),
    )
    return table, query.where(table.c.as_of <= until, ~newer)


def current_record(session: Session, client_id: str, until: datetime | None = None) -> ClientRecord | None:
    """One client's record as of ``until`` (default: its latest), or None."""
    if until is None:
        return get_latest(session, client_id)
    query = (select(ClientRecord).where(col(ClientRecord.client_id) == str(client_id),
                                        col(ClientRecord.as_of) <= until)
             .order_by(col(ClientRecord.as_of).desc(), col(ClientRecord.id).desc()).limit(1))
    return session.exec(query).first()


def current_frame(db: Database, schema: Schema, *, until: datetime | None = None) -> pd.DataFrame:
    """Every client's current record (see ``_current_query``) as a frame typed like
    ``load_frame``'s, with the record's as-of date in ``AS_OF_COLUMN`` and a nullable label."""
    table, query = _current_query(until)
    with db.read_session() as session:
        rows = session.connection().execute(query.order_by(table.c.id)).all()
    types = _row_types(db, rows)
    types.pop(AS_OF_COLUMN, None)
    frame = _frame_from_rows(rows, schema, types, "Int64")
    frame.insert(1, AS_OF_COLUMN, pd.to_datetime(pd.Series([row.as_of for row in rows], dtype=object)))
    return frame


def labelled_history(
    db: Database, *, since: datetime | None = None, client_ids: Iterable[str] | None = None
) -> pd.DataFrame:
    """Every labelled record (not only the latest): client_id, batch_id, observed_at, label,
    and as_of (the date the outcome refers to).

    Monitoring compares a prediction made at time t with the outcome observed in a later
    batch, so it needs each outcome with the time it was observed."""
    table = ClientRecord.__table__  # type: ignore[attr-defined]
    query = sa_select(table.c.client_id, table.c.batch_id, table.c.observed_at, table.c.label,
                      table.c.as_of).where(table.c.label.is_not(None))
    if since is not None:
        query = query.where(table.c.observed_at >= since)
    with db.session() as session:
        connection = session.connection()
        if client_ids is None:
            rows = list(connection.execute(query.order_by(table.c.id)).all())
        else:
            wanted = list(dict.fromkeys(str(i) for i in client_ids))
            rows = []
            for part in _chunks(wanted):
                rows.extend(connection.execute(query.where(table.c.client_id.in_(part))).all())
            rows.sort(key=lambda row: (row.observed_at, row.batch_id))
    frame = pd.DataFrame(
        {
            "client_id": pd.Series([r.client_id for r in rows], dtype=object),
            "batch_id": pd.Series([r.batch_id for r in rows], dtype="int64"),
            "observed_at": pd.to_datetime(pd.Series([r.observed_at for r in rows], dtype=object)),
            "label": pd.Series([r.label for r in rows], dtype="int64"),
            "as_of": pd.to_datetime(pd.Series([r.as_of for r in rows], dtype=object)),
        }
    )
    return frame


def client_counts(db: Database) -> dict[str, int]:
    """Clients in the store, and how many of them have at least one known outcome."""
    table = ClientRecord.__table__  # type: ignore[attr-defined]
    with db.read_session() as session:  # reads only: never waits behind an ingest's write lock
        connection = session.connection()
        clients = connection.execute(
            sa_select(func.count()).select_from(table).where(table.c.is_latest.is_(True))
        ).scalar_one()
        labelled = connection.execute(
            sa_select(func.count(func.distinct(table.c.client_id))).where(table.c.label.is_not(None))
        ).scalar_one()
    return {"clients": int(clients), "labelled_clients": int(labelled)}


__all__ = [
    "AS_OF_COLUMN",
    "CATEGORICAL",
    "NUMERIC",
    "client_counts",
    "column_types",
    "current_frame",
    "current_record",
    "get_latest",
    "labelled_history",
    "latest_records",
    "load_frame",
    "typed_columns",
]
