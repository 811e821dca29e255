"""Store a CRM batch: read it, validate all of it, then write it in one transaction.

The order matters.  Everything that can refuse a batch runs before the first write, and
the write itself is one transaction (batch row, client records, history flags, remembered
schema), so a rejected or interrupted batch leaves the store exactly as it was.  Identical
bytes are recognised by their SHA-256 and not stored twice, which makes re-running the
inbox job or re-sending a file in the chat harmless.

Every record carries its as-of date: the date its features describe (``storage.asof``: the
file's as-of column, ``--as-of``, or the ingest time).  A client's current record
(``is_latest``) is the one with the newest as-of date; ties go to the newest record, so an
outcome file for an *older* date never changes which record is current.

A batch that lacks some of the columns a client's record has (typically outcomes delivered a
month later: just the id and the label) does not wipe those features: the new record carries
them forward.  A dated batch (as-of column or ``--as-of``) carries from the client's record
*at the same date*, so a label for March lands on the March features however many months
arrived since.  An undated batch carries from the client's latest record, and an undated
batch of outcomes only (no feature columns) takes that record's as-of date too: its labels
are the outcomes of the clients' current records, as before dates existed.  A client such a
batch cannot describe at all (no feature columns, and no record to attach to) is not stored
and is named in the report.
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
from sqlalchemy import Connection, Text, and_, exists, func, or_, type_coerce, update
from sqlalchemy import select as sa_select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from storage.asof import INGEST_TIME, LATEST_RECORD, resolve_as_of, summary
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
CLIENT_WRITE_LOCK = _PG_LOCK_KEY  # also taken by churn lists (storage.churns), which check the clients
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
    as_of: dict[str, Any] = field(default_factory=dict)  # {"first", "last", "count"} of the rows' as-of dates
    as_of_source: str | None = None  # column | flag | ingest_time | latest_record (storage.asof)
    as_of_column: str | None = None

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
                           skipped_clients=self.skipped_clients, skipped_examples=self.skipped_examples,
                           as_of=self.as_of, as_of_source=self.as_of_source)
        return payload

    def as_of_text(self) -> str:
        """One line saying which date(s) the rows describe and where that came from."""
        first, last, count = self.as_of.get("first"), self.as_of.get("last"), self.as_of.get("count", 0)
        if not count:
            return ""
        source = {
            "column": f"from the as-of column {self.as_of_column!r}",
            "flag": "from --as-of",
            "ingest_time": "the ingest time",
            "latest_record": "the dates of the clients' latest records, which these outcomes complete",
        }.get(self.as_of_source or "", self.as_of_source or "")
        if count == 1:
            return f"As of {_day(first)} ({source})."
        return f"As of {count} dates, {_day(first)} to {_day(last)} ({source})."

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
        if self.as_of_text():
            lines.append(self.as_of_text())
        if self.warnings:
            lines.append(f"{len(self.warnings)} warning(s):")
            for warning in self.warnings:
                said = warning.get("chat", warning["message"]) if channel == "chat" else warning["message"]
                lines.append(f"  - {warning['column'] or '(batch)'}: {said}")
        return "\n".join(lines)


def _day(iso: Any) -> str:
    """An ISO timestamp as a date, with the time only when it is not midnight."""
    moment = datetime.fromisoformat(str(iso))
    return f"{moment:%Y-%m-%d}" if moment.time() == datetime.min.time() else f"{moment:%Y-%m-%d %H:%M}"


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
    encoding: str | None = None,
    as_of: datetime | None = None,
) -> IngestReport:
    """Validate and store one CRM file (CSV, .csv.gz or Parquet); ``encoding`` is the text
    encoding the user named (found from the file when None, see ``storage.encodings``).

    ``schema``/``explicit`` come from ``storage.schema.schema_from_settings``; the schema the
    store remembers wins unless a field was set explicitly, and a conflict is refused.
    ``as_of`` (``ingest --as-of``) dates the rows when the file has no as-of column
    (``storage.asof``).  Raises ``IngestRejected`` (or ``SchemaConflict``) with nothing stored."""
    limits = limits or Limits()
    name = source_name or Path(path).name
    data = read_bytes(path, limits)
    digest = sha256_of(data)
    resolved, history, earlier = _prepare(db, schema, explicit, digest)
    if earlier is not None:
        return _duplicate(earlier, name)
    table = parse_bytes(data, source_name=name, limits=limits, sha256=digest, encoding=encoding,
                        keep_text=_text_columns(resolved))
    del data
    return _validate_and_store(db, table, resolved, explicit, history, as_of)


def ingest_frame(
    db: Database,
    frame: pd.DataFrame,
    *,
    schema: Schema,
    explicit: Collection[str] = (),
    limits: Limits | None = None,
    source_name: str = "sql",
    as_of: datetime | None = None,
) -> IngestReport:
    """Validate and store rows pulled from a SQL query (or built in code), like a file."""
    limits = limits or Limits()
    with db.read_session() as session:
        resolved = resolve_schema(session, schema, explicit)
    table = table_from_frame(frame, source_name=source_name, limits=limits, keep_text=_text_columns(resolved))
    resolved, history, earlier = _prepare(db, schema, explicit, table.sha256)
    if earlier is not None:
        return _duplicate(earlier, source_name)
    return _validate_and_store(db, table, resolved, explicit, history, as_of)


def _text_columns(schema: Schema) -> tuple[str, ...]:
    """Columns read as text, not typed: the id and label ("007" stays "007") and the as-of
    dates (20240331 is a date there, not a number)."""
    return tuple(name for name in (schema.id_column, schema.label_column, schema.as_of_column) if name)


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
    db: Database, table: Table, schema: Schema, explicit: Collection[str], history: History,
    flag: datetime | None = None,
) -> IngestReport:
    table, dates = resolve_as_of(table, schema, flag=flag, now=utcnow())
    if dates.column is not None and set(table.frame.columns) <= {schema.id_column}:
        raise reject(f"{table.source_name} holds only the id column {schema.id_column!r} and the as-of column "
                     f"{dates.column!r}: there is nothing to store (no features, no label)", "not_a_table")
    batch = validate(table, schema, history, dates.values)
    batch.warnings = [*dates.notes, *batch.warnings]
    try:
        batch_id, received_at, batch, carry = _store(db, table, batch, schema, explicit)
    except IntegrityError:
        # Another process stored the same bytes between our check and our write.
        with db.read_session() as session:
            earlier = batch_by_sha(session, table.sha256)
        if earlier is None:
            raise
        return _duplicate(earlier, table.source_name)
    source = dates.source if batch.as_of is not None or carry.attached is None else LATEST_RECORD
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
        skipped_examples=[key[0] for key in carry.unknown[:_EXAMPLES]],
        as_of=summary(carry.dates),
        as_of_source=source if carry.dates else INGEST_TIME,
        as_of_column=dates.column,
    )


def _store(
    db: Database, table: Table, batch: ValidatedBatch, schema: Schema, explicit: Collection[str]
) -> tuple[int, datetime, ValidatedBatch, CarryForward]:
    """One transaction: the batch row, its records, the history flags and the schema.

    Returns the batch as stored (without the clients it could not store, with its final
    warnings) and what was carried forward (with each stored row's as-of date).  The session
    is a write session, so on SQLite everything read here is read under the write lock."""
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
        keys = record_keys(batch)
        if batch.as_of is not None:
            carry.dates = list(batch.as_of)
        elif carry.attached is not None:
            carry.dates = [carry.attached[client_id] for client_id in batch.client_ids]
        else:
            carry.dates = [now] * batch.rows
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
            carried_columns=list(carry.columns),
        )
        session.add(row)
        session.flush()
        assert row.id is not None
        batch_id = row.id
        remember_schema(session, schema, batch_id)
        if batch.negative_label is not None and session.get(Meta, NEGATIVE_LABEL_KEY) is None:
            session.add(Meta(key=NEGATIVE_LABEL_KEY, value=batch.negative_label))
        connection = session.connection()
        _write_records(connection, db.dialect, batch, batch_id, now, carry.dates,
                       [carry.values.get(key, {}) for key in keys])
        refresh_latest(connection, batch_id)
    return batch_id, now, batch, carry


def refresh_latest(connection: Connection, batch_id: int) -> None:
    """Flag the current record of each client the batch named: the newest as-of date, ties
    to the newest record.  The batch's records were written unflagged; a client's previous
    current record is the newest of its older ones, so only the new records can take over."""
    records = ClientRecord.__table__  # type: ignore[attr-defined]
    other = records.alias("other")
    newer = exists().where(
        other.c.client_id == records.c.client_id,
        or_(other.c.as_of > records.c.as_of, and_(other.c.as_of == records.c.as_of, other.c.id > records.c.id)),
    )
    connection.execute(update(records).where(records.c.batch_id == batch_id, ~newer).values(is_latest=True))
    winners = sa_select(other.c.client_id).where(other.c.batch_id == batch_id, other.c.is_latest.is_(True))
    connection.execute(
        update(records)
        .where(records.c.is_latest.is_(True), records.c.batch_id != batch_id, records.c.client_id.in_(winners))
        .values(is_latest=False)
    )


Key = tuple[str, datetime | None]  # (client id, as-of date of a dated batch; None when undated)


@dataclass
class CarryForward:
    """What a batch takes over from earlier records: the columns it lacks, keyed like its rows
    (``record_keys``); for an undated batch of outcomes only, the as-of date each client's
    outcome attaches to; and, once stored, each stored row's as-of date."""

    values: dict[Key, dict[str, Any]] = field(default_factory=dict)  # row key -> {column: value}
    columns: list[str] = field(default_factory=list)  # every carried column, in first-seen order
    unknown: list[Key] = field(default_factory=list)  # rows with nothing to store (no features at all)
    attached: dict[str, datetime] | None = None  # undated outcomes only: client id -> its latest as-of date
    dates: list[datetime] = field(default_factory=list)  # as stored, one per row


def record_keys(batch: ValidatedBatch) -> list[Key]:
    """Each row's key: (client, as-of date) for a dated batch, (client, None) for an undated one."""
    if batch.as_of is None:
        return [(client_id, None) for client_id in batch.client_ids]
    return list(zip(batch.client_ids, batch.as_of, strict=True))


def stored_columns(connection: Connection) -> list[str]:
    """Every data column any client batch brought: no record holds a column outside this list."""
    batches = Batch.__table__  # type: ignore[attr-defined]
    seen: dict[str, None] = {}
    query = sa_select(batches.c.columns).where(batches.c.kind == CLIENTS).order_by(batches.c.id)
    for (columns,) in connection.execute(query):
        seen.update(dict.fromkeys(columns or {}))
    return list(seen)


def carry_forward(connection: Connection, batch: ValidatedBatch) -> CarryForward:
    """The values each row's earlier record has in columns this batch lacks.

    The earlier record is the newest one of the same client *at the row's as-of date* for a
    dated batch, and the client's latest record for an undated one.  A column the batch has is
    never carried, even where its cell is blank: the batch says the value is now unknown.
    With no feature columns at all (id and label only), a row without such a record has
    nothing to be scored or trained on, so it is listed as unknown instead; an undated one
    takes the as-of date of the record it completes.  Read inside the write transaction, so
    the records cannot change between this read and the write."""
    brought = set(batch.column_types)
    absent = [name for name in stored_columns(connection) if name not in brought]
    carry = CarryForward()
    found: set[Key] = set()
    if not brought and batch.as_of is None:
        carry.attached = {}
    if absent or not brought:
        if batch.as_of is None:
            earlier: Iterable[tuple[str, datetime, dict[str, Any]]] = _latest_data(connection, batch.client_ids)
        else:
            earlier = _data_at(connection, record_keys(batch))
        for client_id, as_of, data in earlier:
            key: Key = (client_id, None if batch.as_of is None else as_of)
            found.add(key)
            if carry.attached is not None:
                carry.attached[client_id] = as_of
            kept = {name: value for name, value in data.items() if name not in brought}
            if kept:
                carry.values[key] = kept
        carry.columns = list(dict.fromkeys(name for kept in carry.values.values() for name in kept))
    if not brought:
        carry.unknown = [key for key in record_keys(batch) if key not in found]
    return carry


_DATE_FILTER = 100  # a batch with at most this many dates looks its records up by date and id


def _data_at(connection: Connection, keys: Sequence[Key]) -> Iterator[tuple[str, datetime, dict[str, Any]]]:
    """(client id, as-of, data) of the newest record at each wanted (client, as-of) pair that
    has one.  Looked up by client id in chunks (and by date, the leading column of the
    ``(as_of, client_id)`` index, when the batch has few dates)."""
    records = ClientRecord.__table__  # type: ignore[attr-defined]
    wanted = set(keys)
    dates = sorted({as_of for _, as_of in keys if as_of is not None})
    ids = list(dict.fromkeys(client_id for client_id, _ in keys))
    query = sa_select(records.c.client_id, records.c.as_of, type_coerce(records.c.data, Text)).order_by(records.c.id)
    if len(dates) <= _DATE_FILTER:
        query = query.where(records.c.as_of.in_(dates))
    newest: dict[tuple[str, datetime], Any] = {}
    for start in range(0, len(ids), _LOOKUP_CHUNK):
        part = ids[start : start + _LOOKUP_CHUNK]
        for client_id, as_of, data in connection.execute(query.where(records.c.client_id.in_(part))):
            if (client_id, as_of) in wanted:
                newest[(client_id, as_of)] = data  # ordered by id: the newest record wins
    for (client_id, as_of), data in newest.items():
        yield client_id, as_of, (data if isinstance(data, dict) else json.loads(data)) or {}


def _latest_data(connection: Connection, client_ids: Sequence[str]) -> Iterator[tuple[str, datetime, dict[str, Any]]]:
    """(client id, as-of, data) of the latest record of each given client that has one, oldest first.

    A batch that names a large share of the store reads every latest record once (a scan
    beats thousands of index look-ups); a small one looks its clients up by id.  The JSON is
    decoded here rather than by SQLAlchemy, which costs several times more per row."""
    records = ClientRecord.__table__  # type: ignore[attr-defined]
    query = (
        sa_select(records.c.client_id, records.c.as_of, type_coerce(records.c.data, Text))
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
    for client_id, as_of, data in rows:
        yield client_id, as_of, (data if isinstance(data, dict) else json.loads(data)) or {}


def _apply_carry(batch: ValidatedBatch, carry: CarryForward, schema: Schema, source_name: str) -> ValidatedBatch:
    """The batch as it will be stored: rows with nothing to store left out (or the whole
    batch refused when that is every row), and warnings that say what was carried."""
    if carry.unknown and len(carry.unknown) == batch.rows:
        raise _no_known_clients(batch, schema, source_name)
    if carry.unknown:
        unknown = set(carry.unknown)
        keep = np.array([key not in unknown for key in record_keys(batch)], dtype=bool)
        labels = batch.labels
        batch = replace(
            batch,
            client_ids=[client_id for client_id, kept in zip(batch.client_ids, keep, strict=True) if kept],
            labels=None if labels is None else [y for y, kept in zip(labels, keep, strict=True) if kept],
            data=batch.data.iloc[keep],
            as_of=None if batch.as_of is None else [d for d, kept in zip(batch.as_of, keep, strict=True) if kept],
        )
    carried = set(carry.columns)
    # "missing since the previous batch" is answered by the carried values; say that once.
    warnings: list[Note] = [
        w for w in batch.warnings if not (w["column"] in carried and w["message"].startswith("missing:"))
    ]
    dated = batch.as_of is not None
    if carry.columns:
        source = "each client's record at the same as-of date" if dated else "each client's previous record"
        warnings.append({"column": None, "message": (
            f"not in this batch, carried forward from {source} "
            f"({len(carry.values)} of {batch.rows} {'rows' if dated else 'clients'}): "
            f"{_names(carry.columns)}")})
    if carry.unknown:
        examples = _shown([client_id for client_id, _ in carry.unknown[:_EXAMPLES]])
        record = "no record of them at their as-of date" if dated else "no record of them"
        warnings.append({"column": schema.id_column, "message": (
            f"{len(carry.unknown)} client(s) not stored: this batch has no feature columns and the store has "
            f"{record}, so there is nothing to score or train on (e.g. {examples}). "
            "Send their features first, then their outcomes in a new file")})
    return replace(batch, warnings=warnings)


def _shown(values: Sequence[str]) -> str:
    return ", ".join(repr(v) for v in values)


def _names(columns: Sequence[str], limit: int = 12) -> str:
    listed = ", ".join(columns[:limit])
    return listed + (f" and {len(columns) - limit} more" if len(columns) > limit else "")


def _no_known_clients(batch: ValidatedBatch, schema: Schema, source_name: str) -> IngestRejected:
    if batch.as_of is not None:
        dates = sorted(set(batch.as_of))
        when = f"{dates[0]:%Y-%m-%d}" if len(dates) == 1 else f"{dates[0]:%Y-%m-%d} to {dates[-1]:%Y-%m-%d}"
        where = f"has a record at its as-of date ({when}) in the store"
        hint = "Send the clients' features for that date first, or check the as-of date"
    else:
        where, hint = "is in the store", "Send the clients' features first (a CRM export), then their outcomes"
    return reject(
        f"{source_name}: none of the {batch.rows} client(s) {where} (e.g. "
        f"{_shown(batch.client_ids[:_EXAMPLES])}), and the batch has no feature columns, only "
        f"{schema.id_column!r}" + (f" and {schema.label_column!r}" if batch.labelled else "")
        + f": there is nothing to score or train on. {hint}; or check the id column",
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


_RECORD_COLUMNS = "client_id, batch_id, observed_at, as_of, is_latest, label, data"
_SQLITE_DATETIME = "%Y-%m-%d %H:%M:%S.%f"  # how SQLAlchemy stores DateTime in SQLite


def _write_records(
    connection: Connection, dialect: str, batch: ValidatedBatch, batch_id: int, now: datetime,
    dates: Sequence[datetime], carried: Sequence[dict[str, Any]],
) -> None:
    """Insert the records on the session's own connection, so inside its transaction; not yet
    flagged as current (``refresh_latest`` decides that).  ``dates`` and ``carried`` hold one
    entry per row: its as-of date and the values it takes over from an earlier record.

    The ORM and even SQLAlchemy's per-row parameter processing cost more than the database
    itself for a large batch: PostgreSQL gets COPY FROM STDIN, SQLite a plain executemany."""
    table = ClientRecord.__tablename__
    if dialect == "postgresql":
        raw: Any = connection.connection.dbapi_connection
        with raw.cursor() as cursor, cursor.copy(f"COPY {table} ({_RECORD_COLUMNS}) FROM STDIN") as copy:
            for chunk in _record_chunks(batch, dates, carried):
                for client_id, as_of, label, data in chunk:
                    copy.write_row((client_id, batch_id, now, as_of, False, label, data))
        return
    stamp = now.strftime(_SQLITE_DATETIME)
    sql = f"INSERT INTO {table} ({_RECORD_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)"
    for chunk in _record_chunks(batch, dates, carried):
        connection.exec_driver_sql(sql, [(client_id, batch_id, stamp, as_of.strftime(_SQLITE_DATETIME), 0, label,
                                          data) for client_id, as_of, label, data in chunk])


def _record_chunks(
    batch: ValidatedBatch, dates: Sequence[datetime], carried: Sequence[dict[str, Any]]
) -> Iterator[list[tuple[str, datetime, int | None, str]]]:
    """(client id, as-of, label, data as JSON text), a chunk at a time, so a large batch never
    exists twice as Python objects.  ``carried``: per row, the values of columns the batch
    lacks, stored after the batch's own."""
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
            (client_id, as_of, label, encode({**dict(zip(names, row, strict=True)), **extra}))
            for client_id, as_of, label, row, extra in zip(
                batch.client_ids[start:stop], dates[start:stop], labels[start:stop], cells, carried[start:stop],
                strict=True)
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
    "record_keys",
    "refresh_latest",
    "stored_columns",
    "whole_numbers",
]
