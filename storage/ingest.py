"""Store a CRM batch: read it, validate all of it, then write it in one transaction.

The order matters.  Everything that can refuse a batch runs before the first write, and
the write itself is one transaction (batch row, client records, history flags, remembered
schema), so a rejected or interrupted batch leaves the store exactly as it was.  Identical
bytes are recognised by their SHA-256 and not stored twice, which makes re-running the
inbox job or re-sending a file in the chat harmless.

A batch that lacks some of the columns a client's latest record has (typically outcomes
delivered a month later: just the id and the label) does not wipe those features: the new
record carries them forward from the client's previous record, so the latest record stays
complete and only what the batch brought changes.  A client such a batch cannot describe at
all (no feature columns, and never seen before) is not stored and is named in the report.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Connection, Text, func, type_coerce, update
from sqlalchemy import select as sa_select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from storage.clients import CLIENTS
from storage.db import Database
from storage.errors import Channel, IngestRejected, UserError
from storage.readers import (
    NUMERIC,
    Limits,
    Note,
    Table,
    parse_bytes,
    read_bytes,
    reject,
    sha256_of,
    table_from_frame,
)
from storage.schema import Schema, remember_schema, resolve_schema
from storage.tables import Batch, ClientRecord, Meta, utcnow
from storage.validation import History, ValidatedBatch, validate

NEGATIVE_LABEL_KEY = "negative_label"  # Meta key: the label value that means "stayed"
_INSERT_CHUNK = 5_000  # rows per executemany call
_LOOKUP_CHUNK = 5_000  # client ids per IN (...) list: SQLite caps bound parameters per statement
_SCAN_SHARE = 10  # a batch naming over 1/10 of the stored clients reads all latest records in one scan
_PG_LOCK_KEY = 0x43475F636C69  # pg_advisory_xact_lock key of client-batch writes ("CG_cli")
_EXAMPLES = 10  # client ids shown for the clients a batch could not store


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
    carried_columns: list[str] = field(default_factory=list)  # taken from the clients' previous records
    carried_clients: int = 0  # clients whose new record carries some of them
    skipped_clients: int = 0  # rows not stored: new clients in a batch without feature columns
    skipped_examples: list[str] = field(default_factory=list)

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
            "warnings": [{"column": w["column"], "message": w["message"]} for w in self.warnings],
            "duplicate_of": self.duplicate_of,
            "stored": self.stored,
        }
        if self.stored:
            payload.update(format=self.format, encoding=self.encoding, delimiter=self.delimiter,
                           carried_columns=self.carried_columns, carried_clients=self.carried_clients,
                           skipped_clients=self.skipped_clients, skipped_examples=self.skipped_examples)
        return payload

    def to_text(self, channel: Channel = "cli") -> str:
        """The report for people; ``channel`` "chat" words the warnings' advice for the bot."""
        if not self.stored:
            when = f", stored {self.received_at:%Y-%m-%d %H:%M} UTC" if self.received_at else ""
            return (f"Nothing changed: {self.source_name} is identical to batch #{self.duplicate_of} "
                    f"({self.rows} rows{when}).")
        if self.labelled and self.positives is not None:
            share = self.positives / self.rows if self.rows else 0.0
            label = f"labelled, {self.positives} churners ({share:.1%})"
        else:
            label = "unlabelled (for scoring and monitoring)"
        shape = f"{len(self.columns)} columns" if self.columns else "no feature columns"
        lines = [f"Stored batch #{self.batch_id} from {self.source_name}: {self.rows} rows, {shape}, {label}."]
        if self.warnings:
            lines.append(f"{len(self.warnings)} warning(s):")
            for warning in self.warnings:
                said = warning.get("chat", warning["message"]) if channel == "chat" else warning["message"]
                lines.append(f"  - {warning['column'] or '(batch)'}: {said}")
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
    with db.read_session() as session:
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
    with db.read_session() as session:
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
        batch_id, received_at, batch, carry = _store(db, table, batch, schema, explicit)
    except IntegrityError:
        # Another process stored the same bytes between our check and our write.
        with db.read_session() as session:
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
        carried_columns=carry.columns,
        carried_clients=len(carry.values),
        skipped_clients=len(carry.unknown),
        skipped_examples=carry.unknown[:_EXAMPLES],
    )


def _store(
    db: Database, table: Table, batch: ValidatedBatch, schema: Schema, explicit: Collection[str]
) -> tuple[int, datetime, ValidatedBatch, CarryForward]:
    """One transaction: the batch row, its records, the history flags and the schema.

    Returns the batch as stored (without the clients it could not store, with its final
    warnings) and what was carried forward.  The session is a write session, so on SQLite
    everything read here is read under the write lock."""
    now = utcnow()
    with db.session() as session:
        if db.dialect == "postgresql":
            # PostgreSQL's own counterpart of SQLite's BEGIN IMMEDIATE: client batches are
            # stored one at a time, so each reads the latest records the previous one wrote.
            session.connection().exec_driver_sql(f"SELECT pg_advisory_xact_lock({_PG_LOCK_KEY})")
        if resolve_schema(session, schema, explicit) != schema:
            raise UserError("the stored schema changed while this batch was being read; send the batch again")
        carry = carry_forward(session.connection(), batch)
        batch = _apply_carry(batch, carry, schema, table.source_name)
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
        _write_records(connection, db.dialect, batch, batch_id, now, carry.values)
        # Earlier records of these clients become history; the new ones are the latest.
        newer = sa_select(records.c.client_id).where(records.c.batch_id == batch_id)
        connection.execute(
            update(records)
            .where(records.c.is_latest.is_(True), records.c.batch_id != batch_id, records.c.client_id.in_(newer))
            .values(is_latest=False)
        )
    return batch_id, now, batch, carry


@dataclass
class CarryForward:
    """What a batch takes over from its clients' latest records: the columns it lacks."""

    values: dict[str, dict[str, Any]] = field(default_factory=dict)  # client id -> {column: value}
    columns: list[str] = field(default_factory=list)  # every carried column, in first-seen order
    unknown: list[str] = field(default_factory=list)  # clients with nothing to store (no features at all)


def stored_columns(connection: Connection) -> list[str]:
    """Every data column any client batch brought: no record holds a column outside this list."""
    batches = Batch.__table__  # type: ignore[attr-defined]
    seen: dict[str, None] = {}
    query = sa_select(batches.c.columns).where(batches.c.kind == CLIENTS).order_by(batches.c.id)
    for (columns,) in connection.execute(query):
        seen.update(dict.fromkeys(columns or {}))
    return list(seen)


def carry_forward(connection: Connection, batch: ValidatedBatch) -> CarryForward:
    """The values each client's latest record has in columns this batch lacks.

    A column the batch has is never carried, even where its cell is blank: the batch says the
    value is now unknown.  With no feature columns at all (id and label only), a client
    without a latest record has nothing to be scored or trained on, so it is listed as
    unknown instead.  Read inside the write transaction, so the latest records cannot
    change between this read and the write."""
    brought = set(batch.column_types)
    absent = [name for name in stored_columns(connection) if name not in brought]
    carry = CarryForward()
    if absent:
        for client_id, data in _latest_data(connection, batch.client_ids):
            kept = {name: value for name, value in data.items() if name not in brought}
            if kept:
                carry.values[client_id] = kept
        carry.columns = list(dict.fromkeys(name for kept in carry.values.values() for name in kept))
    if not brought:
        carry.unknown = [client_id for client_id in batch.client_ids if client_id not in carry.values]
    return carry


def _latest_data(connection: Connection, client_ids: Sequence[str]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(client id, data) of the latest record of each given client that has one, oldest first.

    A batch that names a large share of the store reads every latest record once (a scan
    beats thousands of index look-ups); a small one looks its clients up by id.  The JSON is
    decoded here rather than by SQLAlchemy, which costs several times more per row."""
    records = ClientRecord.__table__  # type: ignore[attr-defined]
    query = (
        sa_select(records.c.client_id, type_coerce(records.c.data, Text))
        .where(records.c.is_latest.is_(True))
        .order_by(records.c.id)
    )
    stored = connection.execute(
        sa_select(func.count()).select_from(records).where(records.c.is_latest.is_(True))
    ).scalar_one()
    rows: Iterable[Any]
    if len(client_ids) * _SCAN_SHARE >= stored:
        wanted = set(client_ids)
        rows = [row for row in connection.execute(query).all() if row[0] in wanted]
    else:
        rows = []
        for start in range(0, len(client_ids), _LOOKUP_CHUNK):
            part = client_ids[start : start + _LOOKUP_CHUNK]
            rows.extend(connection.execute(query.where(records.c.client_id.in_(part))))
    for client_id, data in rows:
        yield client_id, (data if isinstance(data, dict) else json.loads(data)) or {}


def _apply_carry(batch: ValidatedBatch, carry: CarryForward, schema: Schema, source_name: str) -> ValidatedBatch:
    """The batch as it will be stored: clients with nothing to store left out (or the whole
    batch refused when that is every client), and warnings that say what was carried."""
    if carry.unknown and len(carry.unknown) == batch.rows:
        raise _no_known_clients(batch, schema, source_name)
    if carry.unknown:
        unknown = set(carry.unknown)
        keep = np.array([client_id not in unknown for client_id in batch.client_ids], dtype=bool)
        labels = batch.labels
        batch = replace(
            batch,
            client_ids=[client_id for client_id, kept in zip(batch.client_ids, keep, strict=True) if kept],
            labels=None if labels is None else [y for y, kept in zip(labels, keep, strict=True) if kept],
            data=batch.data.iloc[keep],
        )
    carried = set(carry.columns)
    # "missing since the previous batch" is answered by the carried values; say that once.
    warnings: list[Note] = [
        w for w in batch.warnings if not (w["column"] in carried and w["message"].startswith("missing:"))
    ]
    if carry.columns:
        warnings.append({"column": None, "message": (
            f"not in this batch, carried forward from each client's previous record "
            f"({len(carry.values)} of {batch.rows} clients): "
            f"{_names(carry.columns)}")})
    if carry.unknown:
        warnings.append({"column": schema.id_column, "message": (
            f"{len(carry.unknown)} client(s) not stored: this batch has no feature columns and the store has "
            f"no record of them, so there is nothing to score or train on (e.g. {_shown(carry.unknown[:_EXAMPLES])}). "
            "Send their features first, then their outcomes in a new file")})
    return replace(batch, warnings=warnings)


def _shown(values: Sequence[str]) -> str:
    return ", ".join(repr(v) for v in values)


def _names(columns: Sequence[str], limit: int = 12) -> str:
    listed = ", ".join(columns[:limit])
    return listed + (f" and {len(columns) - limit} more" if len(columns) > limit else "")


def _no_known_clients(batch: ValidatedBatch, schema: Schema, source_name: str) -> IngestRejected:
    return reject(
        f"{source_name}: none of the {batch.rows} client(s) is in the store (e.g. "
        f"{_shown(batch.client_ids[:_EXAMPLES])}), and the batch has no feature columns, only "
        f"{schema.id_column!r}" + (f" and {schema.label_column!r}" if batch.labelled else "")
        + ": there is nothing to score or train on. Send the clients' features first (a CRM export), then "
        "their outcomes; or check the id column",
        "unknown_clients",
        column=schema.id_column,
        examples=batch.client_ids[:_EXAMPLES],
    )


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


def _write_records(
    connection: Connection, dialect: str, batch: ValidatedBatch, batch_id: int, now: datetime,
    carried: dict[str, dict[str, Any]] | None = None,
) -> None:
    """Insert the records on the session's own connection, so inside its transaction.

    The ORM and even SQLAlchemy's per-row parameter processing cost more than the database
    itself for a large batch: PostgreSQL gets COPY FROM STDIN, SQLite a plain executemany."""
    table = ClientRecord.__tablename__
    if dialect == "postgresql":
        raw: Any = connection.connection.dbapi_connection
        with raw.cursor() as cursor, cursor.copy(f"COPY {table} ({_RECORD_COLUMNS}) FROM STDIN") as copy:
            for chunk in _record_chunks(batch, carried or {}):
                for client_id, label, data in chunk:
                    copy.write_row((client_id, batch_id, now, True, label, data))
        return
    stamp = now.strftime(_SQLITE_DATETIME)
    sql = f"INSERT INTO {table} ({_RECORD_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)"
    for chunk in _record_chunks(batch, carried or {}):
        connection.exec_driver_sql(sql, [(client_id, batch_id, stamp, 1, label, data)
                                         for client_id, label, data in chunk])


def _record_chunks(
    batch: ValidatedBatch, carried: dict[str, dict[str, Any]]
) -> Iterator[list[tuple[str, int | None, str]]]:
    """(client id, label, data as JSON text), a chunk at a time, so a large batch never
    exists twice as Python objects.  ``carried``: per client, the values of columns the
    batch lacks, stored after the batch's own."""
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
            (client_id, label, encode({**dict(zip(names, row, strict=True)), **carried.get(client_id, {})}))
            for client_id, label, row in zip(batch.client_ids[start:stop], labels[start:stop], cells, strict=True)
        ]


__all__ = [
    "CLIENTS",
    "CarryForward",
    "IngestRejected",
    "IngestReport",
    "Limits",
    "batch_by_sha",
    "carry_forward",
    "ingest_file",
    "ingest_frame",
    "json_values",
    "load_history",
    "stored_columns",
    "whole_numbers",
]
