"""Ingest an append-only event file (purchases, usage) chunk by chunk, in one transaction.

Memory stays flat whatever the file's length: each chunk of rows (``stream.CHUNK_ROWS``)
is read, checked with the same rules as a whole file (``ingest._prepare``) and written,
and what must be known about the whole file is kept per client, never per event: the
first and last time, the number of rows and the first row of each client (for the
overlap check), plus the problems found so far (at most ten rows and five examples each).

Nothing is half-stored: every chunk goes into the same transaction, and any problem,
found in the first chunk or the last, rolls all of it back.  Once a problem is found the
remaining chunks are still checked (so one round trip lists every problem of the file)
but no longer written.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
from sqlalchemy import Connection, Table, func, select

from storage.events import ingest as core
from storage.events import stream as stream_module
from storage.events.bulk import bulk_insert
from storage.events.mapping import KINDS
from storage.events.stream import open_event_stream, sha256_file
from storage.events.tables import EVENT_TABLES, EventTypeName
from storage.readers import Limits
from storage.tables import Batch

if TYPE_CHECKING:
    from storage.db import Database

_MAX_TYPES_KEPT = 10_000


def _stored_spans(connection: Connection, table: Table) -> pd.DataFrame:
    """First and last stored time per client, before this file (one row per client)."""
    if connection.execute(select(table.c.id).limit(1)).first() is None:
        return pd.DataFrame(columns=["smin", "smax"], index=pd.Index([], name="client_key"))
    query = select(table.c.client_key, func.min(table.c.ts), func.max(table.c.ts)).group_by(table.c.client_key)
    rows = connection.execute(query).all()
    return pd.DataFrame(rows, columns=["client_key", "smin", "smax"]).set_index("client_key")


def _client_stats(frame: pd.DataFrame) -> pd.DataFrame:
    """Per client of one chunk: first/last time, rows and first data row (0-based)."""
    return (frame.assign(row=frame.index.to_numpy()).groupby("client_key")
            .agg(tmin=("ts", "min"), tmax=("ts", "max"), n=("ts", "size"), first=("row", "min")))


def _combine(stats: pd.DataFrame | None, more: pd.DataFrame) -> pd.DataFrame:
    if stats is None:
        return more
    both = pd.concat([stats, more])
    return both.groupby(level=0).agg({"tmin": "min", "tmax": "max", "n": "sum", "first": "min"})


def _overlap_problem(stats: pd.DataFrame, stored: pd.DataFrame, names: dict[int, str], kind: str,
                     column: str) -> core._Problem | None:
    both = stats.join(stored, how="inner")
    clash = both[(both["tmin"] < both["smax"]) & (both["tmax"] > both["smin"])].sort_values("first")
    if clash.empty:
        return None

    def day(ts: int) -> str:
        return f"{datetime.fromtimestamp(int(ts), UTC):%Y-%m-%d %H:%M}"

    examples = [f"{names[int(str(k))]}: file {day(r['tmin'])}..{day(r['tmax'])}, stored {day(r['smin'])}..{day(r['smax'])}"
                for k, r in clash.head(core._MAX_EXAMPLES).iterrows()]
    text = (f"for {len(clash)} clients this file's {kind} overlap in time the {kind} already stored "
            f"({'; '.join(examples)}); stored events are never replaced, so an overlapping export would count "
            f"them twice — ingest only the events after (or before) what is stored")
    rows = [int(r) + 1 for r in clash["first"].head(core._MAX_ROWS_SHOWN)]
    count = int(clash["n"].sum())
    return core._Problem("overlapping_events", column, core._message(text, rows, [], count, False), rows, examples,
                         count, text, False)


def _unknown_problem(unknown: dict[str, None], rows: list[int], count: int, column: str,
                     any_known: bool) -> core._Problem:
    distinct = list(unknown)
    hint = ("no clients are stored yet: ingest the clients table first (--kind clients)" if not any_known
            else "ingest those clients first (--kind clients), or drop their rows")
    shown = core._MAX_EXAMPLES
    text = (f"{len(distinct)} client ids in {column!r} are not in the stored clients table "
            f"({', '.join(repr(i) for i in distinct[:shown])}{' ...' if len(distinct) > shown else ''}); {hint}")
    return core._Problem("unknown_client", column, core._message(text, rows, [], count, False), rows,
                         [str(i) for i in distinct[:shown]], count, text, False)


def _numeric_codes_note(types: set[str], named: set[str]) -> str | None:
    """Numeric event types without names read badly in features and reasons ("usage_3_28d")."""
    codes = sorted(t for t in types if t.lstrip("-").isdigit() and t not in named)
    if not codes or len(codes) != len(types - named):
        return None
    shown = ", ".join(codes[:5]) + (" ..." if len(codes) > 5 else "")
    return (f"event types {shown} are numeric codes without names: ingest the table naming them "
            f"(--kind event_types) before or after the events, and features and reasons use the names")


def ingest_append_only(db: Database, path: Path, *, kind: str, mapping: dict[str, str], now: datetime,
                       limits: Limits, future_tolerance: timedelta,
                       chunk_rows: int | None = None, encoding: str | None = None) -> core.EventIngestReport:
    """``ingest.ingest_events`` for purchases and usage (arguments already checked there)."""
    stream = open_event_stream(path, limits=limits, chunk_rows=chunk_rows or stream_module.CHUNK_ROWS,
                               encoding=encoding)
    source = stream.source_name
    digest = sha256_file(path)
    earlier = core.duplicate_report(db, kind, source, digest)
    if earlier is not None:
        return earlier
    spec = KINDS[kind]
    used = core._resolve_columns(kind, mapping, stream.columns, source)
    keep_text = {used[name] for name in spec.fields if name in used and name not in spec.amounts + spec.numbers}
    ignored = [c for c in stream.columns if c not in set(used.values())]
    table: Table = EVENT_TABLES[kind].__table__  # type: ignore[attr-defined]
    main = core._MAIN_TIME[kind]
    problems: dict[tuple[str, str | None, str], core._Problem] = {}
    unknown: dict[str, None] = {}
    unknown_rows: list[int] = []
    unknown_count = 0
    notes: dict[str, None] = {}
    types: set[str] = set()
    stats: pd.DataFrame | None = None
    first_at: Any = None
    last_at: Any = None
    rows = 0
    with db.session() as session:
        connection = session.connection()
        known = core._client_keys(connection)
        stored = _stored_spans(connection, table)
        batch = Batch(source_name=source, kind=core.batch_kind(kind), row_count=0, sha256=digest,
                      columns={"mapping": used, "ignored": ignored, "attributes": []}, labelled=False, warnings=[])
        session.add(batch)
        session.flush()
        assert batch.id is not None
        columns = [c.name for c in table.columns if c.name != "id"]
        for chunk in stream.chunks(list(used.values()), keep_text):
            prepared, found = core._prepare(kind, chunk, used, now=now, tolerance=future_tolerance, source=source)
            core.merge_problems(problems, found)
            notes.update(dict.fromkeys(prepared.notes))
            frame = prepared.frame
            keys = frame["client_id"].map(known)
            missing = keys.isna() & frame["client_id"].notna()
            if missing.any():
                unknown.update(dict.fromkeys(frame.loc[missing, "client_id"].tolist()))
                unknown_count += int(missing.sum())
                space = core._MAX_ROWS_SHOWN - len(unknown_rows)
                unknown_rows += [int(i) + 1 for i in missing[missing].index[:max(space, 0)]]
            if problems or unknown_count:
                continue  # keep checking, stop writing: the transaction will be rolled back
            frame = core._db_columns(kind, frame.assign(client_key=keys.astype("int64")))
            stats = _combine(stats, _client_stats(frame))
            low, high = frame["at"].min(), frame["at"].max()
            first_at = low if first_at is None or low < first_at else first_at
            last_at = high if last_at is None or high > last_at else last_at
            if kind == "usage" and len(types) < _MAX_TYPES_KEPT:
                types.update(str(t) for t in frame["event_type"].unique())
            frame = frame.assign(batch_id=batch.id)
            bulk_insert(connection, table, frame[[c for c in columns if c in frame.columns]])
            rows += len(frame)
        found_all = list(problems.values())
        if unknown_count:
            found_all.append(_unknown_problem(unknown, unknown_rows, unknown_count, used["client_id"], bool(known)))
        core._raise(source, found_all)
        assert stats is not None  # the stream refuses a file without data rows
        names = {key: cid for cid, key in known.items()}
        overlap = _overlap_problem(stats, stored, names, kind, used[main])
        if overlap is not None:
            core._raise(source, [overlap])
        all_notes = [n["message"] for n in stream.notes] + list(notes)
        if kind == "usage":
            named = {str(c) for (c,) in connection.execute(select(EventTypeName.code))}  # type: ignore[call-overload]
            note = _numeric_codes_note(types, named)
            if note:
                all_notes.append(note)
        if ignored:
            all_notes.append(f"ignored columns: {', '.join(ignored)}")
        batch.row_count = rows
        batch.warnings = [{"column": None, "message": n} for n in all_notes]
        session.add(batch)
        return core.EventIngestReport(
            kind=kind, source=source, sha256=digest, status="stored", batch_id=batch.id, rows=rows, inserted=rows,
            clients=len(stats), first_at=core._plain(first_at), last_at=core._plain(last_at), mapping=used,
            ignored_columns=ignored, attributes=[], notes=all_notes,
        )


__all__ = ["ingest_append_only"]
