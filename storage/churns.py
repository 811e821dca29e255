"""Churn lists: when the client table's clients left, and the labels that follow from it.

Why: a CRM often reports departures as a list (``client_id, churn_date``) rather than as a
label on each monthly export.  From one list, the label of *any* (client, as-of date) follows,
for whatever churn horizon:

* **1** when a churn date falls in ``(as_of, as_of + horizon]``;
* **0** when none does and the lists are complete up to ``as_of + horizon`` — a list is
  complete up to its own as-of date (``ingest --as-of D``, else the time it was ingested),
  and the stored lists together up to the newest of those dates; also 0 when the client's
  churn date lies after the window (it was still a client throughout);
* **unknown** otherwise.

A record's own label (from a labelled file) wins over a derived one (``storage.snapshots``).

A list is validated whole and stored in one transaction, or refused with nothing stored: its
clients must be known to the client table, its dates readable and not in the future, and a
client listed twice must have one date.  A client has one churn date: a later list's date
replaces an earlier one (a correction), and clients a later list does not name keep theirs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
from sqlalchemy import Connection, delete, func, insert
from sqlalchemy import select as sa_select

from storage.asof import check_date, naive_utc
from storage.errors import UserError
from storage.events.ingest import (
    DEFAULT_FUTURE_TOLERANCE,
    EventIngestReport,
    _prepare,
    _Problem,
    _problem,
    _raise,
    duplicate_report,
)
from storage.events.mapping import KINDS, check_mapping
from storage.ingest import CLIENT_WRITE_LOCK
from storage.readers import Limits, parse_bytes, read_bytes, sha256_of
from storage.schema import remembered_schema
from storage.tables import Batch, ChurnList, ClientChurn, ClientRecord, utcnow

if TYPE_CHECKING:  # storage.db imports the tables; only types are needed here
    from storage.db import Database

CHURNS = "churns"  # Batch.kind of churn lists (and the ``--kind`` that ingests them)
_IN_CHUNK = 5_000  # ids per IN (...) list: SQLite caps bound parameters per statement
_EXAMPLES = 5


@dataclass
class ChurnIngestReport(EventIngestReport):
    """What one churn list did: ``inserted`` clients new to the lists, ``replaced`` whose
    date changed, ``unchanged`` listed again with the same date; ``complete_until`` the date
    the list is complete up to."""

    unchanged: int = 0
    complete_until: datetime | None = None

    def summary(self) -> str:
        if self.status == "duplicate":
            return super().summary()
        span = ""
        if self.first_at is not None and self.last_at is not None:
            span = f", left {self.first_at:%Y-%m-%d} to {self.last_at:%Y-%m-%d}"
        complete = f"; complete up to {self.complete_until:%Y-%m-%d %H:%M}" if self.complete_until else ""
        return (f"stored churn list batch {self.batch_id} from {self.source}: {self.clients} departures "
                f"({self.inserted} new, {self.replaced} with a changed date, {self.unchanged} unchanged{span})"
                f"{complete}")


def _ids_known(connection: Connection, ids: Sequence[str]) -> set[str]:
    records = ClientRecord.__table__  # type: ignore[attr-defined]
    known: set[str] = set()
    for start in range(0, len(ids), _IN_CHUNK):
        part = list(ids[start : start + _IN_CHUNK])
        query = sa_select(records.c.client_id).where(records.c.client_id.in_(part)).distinct()
        known.update(str(client_id) for (client_id,) in connection.execute(query))
    return known


def churn_summary(connection: Connection) -> dict[str, Any]:
    """How many lists and departures are stored, and up to when they are complete."""
    lists = ChurnList.__table__  # type: ignore[attr-defined]
    table = ClientChurn.__table__  # type: ignore[attr-defined]
    return {
        "lists": int(connection.execute(sa_select(func.count()).select_from(lists)).scalar_one()),
        "departures": int(connection.execute(sa_select(func.count()).select_from(table)).scalar_one()),
        "complete_until": complete_until(connection),
    }


def churn_dates(connection: Connection, client_ids: Sequence[str] | None = None) -> dict[str, datetime]:
    """Each listed client's churn date (of the given clients only, when named)."""
    table = ClientChurn.__table__  # type: ignore[attr-defined]
    query = sa_select(table.c.client_id, table.c.churn_at)
    if client_ids is None:
        return {str(c): at for c, at in connection.execute(query)}
    wanted = list(dict.fromkeys(str(i) for i in client_ids))
    found: dict[str, datetime] = {}
    for start in range(0, len(wanted), _IN_CHUNK):
        part = wanted[start : start + _IN_CHUNK]
        found.update({str(c): at for c, at in connection.execute(query.where(table.c.client_id.in_(part)))})
    return found


def complete_until(connection: Connection) -> datetime | None:
    """The date up to which the stored churn lists are complete; None without a list."""
    table = ChurnList.__table__  # type: ignore[attr-defined]
    value: datetime | None = connection.execute(sa_select(func.max(table.c.complete_until))).scalar()
    return value


def derived_label(as_of: datetime, churn_at: datetime | None, *, complete: datetime | None,
                  horizon_days: int) -> int | None:
    """The label one (as-of date, churn date or None) pair implies: 1, 0 or None (unknown)."""
    end = as_of + timedelta(days=int(horizon_days))
    if churn_at is not None and as_of < churn_at <= end:
        return 1
    if (churn_at is not None and churn_at > end) or (complete is not None and end <= complete):
        return 0
    return None


def check_horizon(horizon_days: int) -> int:
    if int(horizon_days) <= 0:
        raise UserError(f"the churn horizon must be a positive number of days, got {horizon_days}",
                        horizon_days=horizon_days)
    return int(horizon_days)


def _with_id_column(mapping: dict[str, str], columns: list[str], id_column: str | None) -> dict[str, str]:
    """The file may name its id column like the client table does (e.g. customerID)."""
    if "client_id" in mapping or "client_id" in columns or not id_column or id_column not in columns:
        return mapping
    return {**mapping, "client_id": id_column}


def ingest_churns(
    db: Database,
    path: Path | str,
    *,
    mapping: Mapping[str, str] | None = None,
    as_of: datetime | None = None,
    now: datetime | None = None,
    limits: Limits | None = None,
    future_tolerance: timedelta = DEFAULT_FUTURE_TOLERANCE,
) -> ChurnIngestReport:
    """Validate a churn list (``client_id, churn_date``; mapped like an event table) and store
    it in one transaction.  ``as_of``: the date the list is complete up to (default: now).

    Raises ``IngestRejected`` (every problem of the file at once) with nothing stored; a file
    already ingested (same SHA-256) is reported as ``status="duplicate"``."""
    mapping = check_mapping(CHURNS, dict(mapping or {}))
    limits = limits or Limits()
    now = utcnow() if now is None else naive_utc(now)
    path = Path(path)
    source = path.name
    complete = check_date(as_of, what="--as-of", now=now, tolerance=future_tolerance) if as_of is not None else now
    data = read_bytes(path, limits)
    digest = sha256_of(data)
    earlier = duplicate_report(db, CHURNS, source, digest)
    if earlier is not None:
        return ChurnIngestReport(**earlier.as_dict())
    with db.read_session() as session:
        stored_schema = remembered_schema(session)
    id_column = stored_schema.id_column if stored_schema is not None else None
    keep = {mapping.get(name, name) for name in KINDS[CHURNS].fields} | ({id_column} if id_column else set())
    table = parse_bytes(data, source_name=source, limits=limits, keep_text=keep, sha256=digest)
    mapping = _with_id_column(mapping, [str(c) for c in table.frame.columns], id_column)
    with db.session() as session:
        connection = session.connection()
        if db.dialect == "postgresql":
            # Client batches take this lock too: the clients checked below cannot change meanwhile,
            # and two lists naming the same client are stored one after the other.
            connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({CLIENT_WRITE_LOCK})")
        prepared, problems = _prepare(CHURNS, table.frame, mapping, now=now, tolerance=future_tolerance,
                                      source=source)
        frame = prepared.frame
        id_name, date_name = prepared.used["client_id"], prepared.used["churn_date"]
        problems.extend(_conflicting_dates(frame, id_name, date_name))
        unknown = _unknown_clients(connection, frame, id_name, stored_schema is None)
        if unknown is not None:
            problems.append(unknown)
        _raise(source, problems)
        listed = frame.dropna(subset=["client_id"]).drop_duplicates(subset=["client_id"])
        notes = [n["message"] if n["column"] is None else f"{n['column']}: {n['message']}" for n in table.notes]
        notes.extend(prepared.notes)
        if prepared.ignored:
            notes.append(f"ignored columns: {', '.join(prepared.ignored)}")
        if len(listed) < len(frame):
            notes.append(f"{len(frame) - len(listed)} repeated row(s) (same client, same date) counted once")
        batch = Batch(source_name=source[:255], kind=CHURNS, row_count=len(frame), sha256=digest,
                      columns={"mapping": prepared.used, "ignored": prepared.ignored,
                               "complete_until": complete.isoformat()},
                      labelled=False, warnings=[{"column": None, "message": n} for n in notes])
        session.add(batch)
        session.flush()
        assert batch.id is not None
        session.add(ChurnList(batch_id=batch.id, complete_until=complete))
        inserted, replaced, unchanged = _store(connection, listed, batch.id)
    times = listed["churn_date_at"]
    return ChurnIngestReport(
        kind=CHURNS, source=source, sha256=digest, status="stored", batch_id=batch.id, rows=len(frame),
        inserted=inserted, replaced=replaced, unchanged=unchanged, clients=len(listed),
        first_at=times.min().to_pydatetime(), last_at=times.max().to_pydatetime(),
        mapping=prepared.used, ignored_columns=prepared.ignored, notes=notes, complete_until=complete,
    )


def _conflicting_dates(frame: pd.DataFrame, id_name: str, date_name: str) -> list[_Problem]:
    present = frame["client_id"].notna() & frame["churn_date_ts"].notna()
    dates = frame.loc[present].groupby("client_id")["churn_date_ts"].nunique()
    twice = set(dates[dates > 1].index)
    if not twice:
        return []
    mask = frame["client_id"].isin(twice)
    shown = frame["client_id"].astype(str) + " " + frame["churn_date_at"].dt.strftime("%Y-%m-%d %H:%M")
    return [_problem("duplicate_client", id_name, f"clients are listed twice in {id_name!r} with different dates "
                     f"in {date_name!r}; a churn list gives each client one date", mask, shown)]


def _unknown_clients(connection: Connection, frame: pd.DataFrame, id_name: str, empty_store: bool) -> _Problem | None:
    ids = [str(i) for i in dict.fromkeys(frame["client_id"].dropna().tolist())]
    known = _ids_known(connection, ids)
    unknown = frame["client_id"].notna() & ~frame["client_id"].isin(known)
    if not unknown.any():
        return None
    distinct = list(dict.fromkeys(frame.loc[unknown, "client_id"].tolist()))
    hint = ("no client table is stored yet: ingest the clients' records first" if empty_store
            else "a churn list names clients of the client table; ingest their records first, or drop their rows")
    problem = _problem("unknown_client", id_name,
                       f"{len(distinct)} client ids in {id_name!r} are not in the client table "
                       f"({', '.join(repr(i) for i in distinct[:_EXAMPLES])}{' ...' if len(distinct) > _EXAMPLES else ''})"
                       f"; {hint}", unknown, show_values=False)
    problem.examples = [str(i) for i in distinct[:_EXAMPLES]]
    return problem


def _store(connection: Connection, listed: pd.DataFrame, batch_id: int) -> tuple[int, int, int]:
    """Upsert one churn date per client; returns (new clients, changed dates, unchanged)."""
    table = ClientChurn.__table__  # type: ignore[attr-defined]
    ids = listed["client_id"].astype(str).tolist()
    dates: list[datetime] = [moment.to_pydatetime() for moment in listed["churn_date_at"]]
    before = churn_dates(connection, ids)
    changed = [client_id for client_id, at in zip(ids, dates, strict=True)
               if client_id in before and before[client_id] != at]
    rewrite = set(changed)
    for start in range(0, len(changed), _IN_CHUNK):
        connection.execute(delete(table).where(table.c.client_id.in_(changed[start : start + _IN_CHUNK])))
    rows: list[dict[str, Any]] = [
        {"client_id": client_id, "churn_at": at, "batch_id": batch_id}
        for client_id, at in zip(ids, dates, strict=True) if client_id not in before or client_id in rewrite
    ]
    if rows:
        connection.execute(insert(table), rows)
    return len(ids) - len(before), len(changed), len(before) - len(changed)


__all__ = ["CHURNS", "ChurnIngestReport", "check_horizon", "churn_dates", "churn_summary", "complete_until", "derived_label",
           "ingest_churns"]
