"""Store a CRM batch: read it, validate all of it, then write it in one transaction.

The order matters.  Everything that can refuse a batch runs before the first write, and
the write itself is one transaction (batch row, client records, history flags, remembered
schema), so a rejected or interrupted batch leaves the store exactly as it was.  Identical
bytes are recognised by their SHA-256 and not stored twice, which makes re-running the
inbox job or re-sending a file in the chat harmless.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Connection, func, update
from sqlalchemy import select as sa_select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from storage.clients import CLIENTS
from storage.db import Database
from storage.errors import IngestRejected, UserError
from storage.readers import (
    NUMERIC,
    Limits,
    Note,
    Table,
    parse_bytes,
    read_bytes,
    sha256_of,
    table_from_frame,
)
from storage.schema import Schema, remember_schema, resolve_schema
from storage.tables import Batch, ClientRecord, Meta, utcnow
from storage.validation import History, ValidatedBatch, validate

NEGATIVE_LABEL_KEY = "negative_label"  # Meta key: the label value that means "stayed"
_INSERT_CHUNK = 5_000  # rows per executemany call


@dataclass
class IngestReport:
    """What happened to one batch, for the command line, the bot and the inbox job."""

    batch_id: int
    source_name: str
    sha256: str
    rows: int
    columns: dict[str, str]
    labelled: bool
    positives: int | None
    warnings: list[Note] = field(default_factory=list)
    duplicate_of: int | None = None
    format: str | None = None
    encoding: str | None = None
    delimiter: str | None = None
    received_at: datetime | None = None

    @property
    def stored(self) -> bool:
        return self.duplicate_of is None

    def to_dict(self) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "batch_id": self.batch_id,
            "source_name": self.source_name,
            "sha256": self.sha256,
            "rows": self.rows,
            "columns": self.columns,
            "labelled": self.labelled,
            "positives": self.positives,
            "warnings": [dict(w) for w in self.warnings],
            "duplicate_of": self.duplicate_of,
            "stored": self.stored,
        }
        if self.stored:
            payload.update(format=self.format, encoding=self.encoding, delimiter=self.delimiter)
        return payload

    def to_text(self) -> str:
        if not self.stored:
            when = f", stored {self.received_at:%Y-%m-%d %H:%M} UTC" if self.received_at else ""
            return (f"Nothing changed: {self.source_name} is identical to batch #{self.duplicate_of} "
                    f"({self.rows} rows{when}).")
        if self.labelled and self.positives is not None:
            share = self.positives / self.rows if self.rows else 0.0
            label = f"labelled, {self.positives} churners ({share:.1%})"
        else:
            label = "unlabelled (for scoring and monitoring)"
        lines = [f"Stored batch #{self.batch_id} from {self.source_name}: {self.rows} rows, "
                 f"{len(self.columns)} columns, {label}."]
        if self.warnings:
            lines.append(f"{len(self.warnings)} warning(s):")
            lines.extend(f"  - {w['column'] or '(batch)'}: {w['message']}" for w in self.warnings)
        return "\n".join(lines)


# ------------------------------------------------------------------------------------------
# Entry points
# ------------------------------------------------------------------------------------------


def ingest_file(
    db: Database,
    path: Path | str,
    *,
    schema: Schema,
    explicit: Collection[str] = (),
    limits: Limits | None = None,
    source_name: str | None = None,
) -> IngestReport:
    """Validate and store one CRM file (CSV, .csv.gz or Parquet).

    ``schema``/``explicit`` come from ``storage.schema.schema_from_settings``; the schema the
    store remembers wins unless a field was set explicitly, and a conflict is refused.
    Raises ``IngestRejected`` (or ``SchemaConflict``) with nothing stored."""
    limits = limits or Limits()
    name = source_name or Path(path).name
    data = read_bytes(path, limits)
    digest = sha256_of(data)
    resolved, history, earlier = _prepare(db, schema, explicit, digest)
    if earlier is not None:
        return _duplicate(earlier, name)
    table = parse_bytes(data, source_name=name, limits=limits, sha256=digest,
                        keep_text=(resolved.id_column, resolved.label_column))
    del data
    return _validate_and_store(db, table, resolved, explicit, history)


def ingest_frame(
    db: Database,
    frame: pd.DataFrame,
    *,
    schema: Schema,
    explicit: Collection[str] = (),
    limits: Limits | None = None,
    source_name: str = "sql",
) -> IngestReport:
    """Validate and store rows pulled from a SQL query (or built in code), like a file."""
    limits = limits or Limits()
    with db.session() as session:
        resolved = resolve_schema(session, schema, explicit)
    table = table_from_frame(frame, source_name=source_name, limits=limits,
                             keep_text=(resolved.id_column, resolved.label_column))
    resolved, history, earlier = _prepare(db, schema, explicit, table.sha256)
    if earlier is not None:
        return _duplicate(earlier, source_name)
    return _validate_and_store(db, table, resolved, explicit, history)


# ------------------------------------------------------------------------------------------
# Steps
# ------------------------------------------------------------------------------------------


def _prepare(
    db: Database, schema: Schema, explicit: Collection[str], digest: str
) -> tuple[Schema, History, Batch | None]:
    """Read what validation needs in a short read transaction, before the long parse."""
    with db.session() as session:
        resolved = resolve_schema(session, schema, explicit)
        earlier = batch_by_sha(session, digest)
        history = load_history(session) if earlier is None else History()
    return resolved, history, earlier


def batch_by_sha(session: Session, digest: str) -> Batch | None:
    return session.exec(select(Batch).where(Batch.sha256 == digest)).first()


def load_history(session: Session) -> History:
    previous = session.exec(select(Batch).where(Batch.kind == CLIENTS).order_by(col(Batch.id).desc())).first()
    labelled = session.exec(
        select(func.count()).select_from(Batch).where(Batch.kind == CLIENTS, col(Batch.labelled).is_(True))
    ).one()
    negative = session.get(Meta, NEGATIVE_LABEL_KEY)
    return History(
        previous_batch_id=previous.id if previous is not None else None,
        previous_columns=dict(previous.columns) if previous is not None else {},
        has_labelled=bool(labelled),
        negative_label=negative.value if negative is not None else None,
    )


def _duplicate(earlier: Batch, source_name: str) -> IngestReport:
    assert earlier.id is not None
    return IngestReport(
        batch_id=earlier.id,
        source_name=source_name,
        sha256=earlier.sha256,
        rows=earlier.row_count,
        columns=dict(earlier.columns),
        labelled=earlier.labelled,
        positives=earlier.positives,
        warnings=[],
        duplicate_of=earlier.id,
        received_at=earlier.received_at,
    )


def _validate_and_store(
    db: Database, table: Table, schema: Schema, explicit: Collection[str], history: History
) -> IngestReport:
    batch = validate(table, schema, history)
    try:
        batch_id, received_at = _store(db, table, batch, schema, explicit)
    except IntegrityError:
        # Another process stored the same bytes between our check and our write.
        with db.session() as session:
            earlier = batch_by_sha(session, table.sha256)
        if earlier is None:
            raise
        return _duplicate(earlier, table.source_name)
    return IngestReport(
        batch_id=batch_id,
        source_name=table.source_name,
        sha256=table.sha256,
        rows=batch.rows,
        columns=batch.column_types,
        labelled=batch.labelled,
        positives=batch.positives,
        warnings=batch.warnings,
        format=table.format,
        encoding=table.encoding,
        delimiter=table.delimiter,
        received_at=received_at,
    )


def _store(
    db: Database, table: Table, batch: ValidatedBatch, schema: Schema, explicit: Collection[str]
) -> tuple[int, datetime]:
    """One transaction: the batch row, its records, the history flags and the schema."""
    now = utcnow()
    with db.session() as session:
        if resolve_schema(session, schema, explicit) != schema:
            raise UserError("the stored schema changed while this batch was being read; send the batch again")
        row = Batch(
            source_name=table.source_name[:255],
            kind=CLIENTS,
            received_at=now,
            row_count=batch.rows,
            sha256=table.sha256,
            columns=batch.column_types,
            labelled=batch.labelled,
            positives=batch.positives,
            status="stored",
            warnings=[dict(w) for w in batch.warnings],
        )
        session.add(row)
        session.flush()
        assert row.id is not None
        batch_id = row.id
        remember_schema(session, schema, batch_id)
        if batch.negative_label is not None and session.get(Meta, NEGATIVE_LABEL_KEY) is None:
            session.add(Meta(key=NEGATIVE_LABEL_KEY, value=batch.negative_label))
        records = ClientRecord.__table__  # type: ignore[attr-defined]
        connection = session.connection()
        _write_records(connection, db.dialect, batch, batch_id, now)
        # Earlier records of these clients become history; the new ones are the latest.
        newer = sa_select(records.c.client_id).where(records.c.batch_id == batch_id)
        connection.execute(
            update(records)
            .where(records.c.is_latest.is_(True), records.c.batch_id != batch_id, records.c.client_id.in_(newer))
            .values(is_latest=False)
        )
    return batch_id, now


def whole_numbers(series: pd.Series) -> bool:
    """True when every present value of a numeric column is a whole number JSON can hold exactly."""
    values = series.to_numpy(dtype="float64")
    present = values[~np.isnan(values)]
    return bool(present.size) and bool(np.all(present == np.round(present))) and bool(np.all(np.abs(present) < 2**53))


def json_values(series: pd.Series, kind: str, *, whole: bool | None = None) -> list[Any]:
    """Plain Python values for JSON: numbers as int when whole, else float; text as str;
    missing as None (NaN is not valid JSON, and PostgreSQL refuses it)."""
    missing = series.isna().to_numpy()
    if kind == NUMERIC:
        values = series.to_numpy(dtype="float64")
        if whole if whole is not None else whole_numbers(series):
            out: list[Any] = np.where(missing, 0, values).astype(np.int64).tolist()
        else:
            out = values.tolist()
    else:
        out = series.astype(object).tolist()
    for position in np.flatnonzero(missing):
        out[position] = None
    return out


_RECORD_COLUMNS = "client_id, batch_id, observed_at, is_latest, label, data"
_SQLITE_DATETIME = "%Y-%m-%d %H:%M:%S.%f"  # how SQLAlchemy stores DateTime in SQLite


def _write_records(connection: Connection, dialect: str, batch: ValidatedBatch, batch_id: int, now: datetime) -> None:
    """Insert the records on the session's own connection, so inside its transaction.

    The ORM and even SQLAlchemy's per-row parameter processing cost more than the database
    itself for a large batch: PostgreSQL gets COPY FROM STDIN, SQLite a plain executemany."""
    table = ClientRecord.__tablename__
    if dialect == "postgresql":
        raw: Any = connection.connection.dbapi_connection
        with raw.cursor() as cursor, cursor.copy(f"COPY {table} ({_RECORD_COLUMNS}) FROM STDIN") as copy:
            for chunk in _record_chunks(batch):
                for client_id, label, data in chunk:
                    copy.write_row((client_id, batch_id, now, True, label, data))
        return
    stamp = now.strftime(_SQLITE_DATETIME)
    sql = f"INSERT INTO {table} ({_RECORD_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)"
    for chunk in _record_chunks(batch):
        connection.exec_driver_sql(sql, [(client_id, batch_id, stamp, 1, label, data)
                                         for client_id, label, data in chunk])


def _record_chunks(batch: ValidatedBatch) -> Iterator[list[tuple[str, int | None, str]]]:
    """(client id, label, data as JSON text), a chunk at a time, so a large batch never
    exists twice as Python objects."""
    names = list(batch.data.columns)
    kinds = [batch.column_types[name] for name in names]
    # Decided per column over the whole batch, so one column is never int in one chunk and float in the next.
    whole = [kind == NUMERIC and whole_numbers(batch.data[name]) for name, kind in zip(names, kinds, strict=True)]
    labels = batch.labels if batch.labels is not None else [None] * batch.rows
    encode = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode
    for start in range(0, batch.rows, _INSERT_CHUNK):
        stop = min(start + _INSERT_CHUNK, batch.rows)
        part = batch.data.iloc[start:stop]
        columns = [json_values(part[name], kind, whole=w) for name, kind, w in zip(names, kinds, whole, strict=True)]
        cells = zip(*columns, strict=True) if columns else iter([()] * (stop - start))
        yield [
            (client_id, label, encode(dict(zip(names, row, strict=True))))
            for client_id, label, row in zip(batch.client_ids[start:stop], labels[start:stop], cells, strict=True)
        ]


__all__ = [
    "CLIENTS",
    "IngestRejected",
    "IngestReport",
    "Limits",
    "batch_by_sha",
    "ingest_file",
    "ingest_frame",
    "json_values",
    "load_history",
    "whole_numbers",
]
