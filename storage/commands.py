"""Command-line handlers for the storage side: ``ingest``, ``schema`` and ``status``.

Handlers only translate between arguments and the storage API and print; refusals are
raised as ``UserError`` and printed by ``churnguard.main`` as one line (exit code 2).
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import func
from sqlalchemy.engine import make_url
from sqlmodel import col, select

from churnguard import emit
from storage.clients import CLIENTS, client_counts, column_types
from storage.db import Database
from storage.encodings import check_encoding
from storage.errors import IngestRejected, NotFound, UserError
from storage.events.labels import data_end
from storage.ingest import NEGATIVE_LABEL_KEY, ingest_file
from storage.readers import Limits
from storage.schema import remembered_schema, schema_from_settings
from storage.tables import Batch, ChampionEvent, Meta, ModelVersion

if TYPE_CHECKING:
    from churnguard import Settings


def _as_of_flag(args: argparse.Namespace) -> datetime | None:
    text = getattr(args, "as_of", None)
    if text is None:
        return None
    from storage.events.commands import parse_as_of

    return parse_as_of(text)


def ingest(args: argparse.Namespace, settings: Settings) -> int:
    """``churnguard ingest PATH [--as-of D]``: validate the file and store it in one transaction."""
    encoding = check_encoding(getattr(args, "encoding", None))
    if getattr(args, "kind", None) is not None:
        return ingest_event_table(args, settings, encoding)
    if getattr(args, "mapping", None) is not None or getattr(args, "map_flags", None) is not None:
        raise UserError("--mapping and --map describe an event table or a churn list: add --kind (clients, "
                        "subscriptions, purchases, tickets, usage, event_types or churns)")
    as_of = _as_of_flag(args)
    schema, explicit = schema_from_settings(settings)
    with Database(settings.database_url) as db, _encoding_hint(encoding):
        report = ingest_file(db, args.path, schema=schema, explicit=explicit, limits=Limits.from_settings(settings),
                             encoding=encoding, as_of=as_of)
    emit(args, report.to_dict(), report.to_text())
    return 0


def ingest_event_table(args: argparse.Namespace, settings: Settings, encoding: str | None = None) -> int:
    """``churnguard ingest PATH --kind KIND``: an event table or a churn list, mapped to
    canonical fields."""
    from storage.churns import CHURNS, ingest_churns
    from storage.events.ingest import EventIngestReport, ingest_events
    from storage.events.mapping import canonical_kind, resolve_mapping

    kind = canonical_kind(args.kind)
    as_of = _as_of_flag(args)
    if as_of is not None and kind != CHURNS:
        raise UserError(f"--as-of dates a client table or a churn list; {kind} rows carry their own times "
                        "(leave --as-of out)")
    mapping = resolve_mapping(kind, file=args.mapping, flags=args.map_flags)
    report: EventIngestReport
    with Database(settings.database_url) as db, _encoding_hint(encoding):
        if kind == CHURNS:
            report = ingest_churns(db, args.path, mapping=mapping, as_of=as_of, limits=Limits.from_settings(settings))
        else:
            report = ingest_events(db, args.path, kind=kind, mapping=mapping, limits=Limits.from_settings(settings),
                                   encoding=encoding)
    emit(args, report.as_dict(), report.summary())
    return 0


@contextmanager
def _encoding_hint(encoding: str | None) -> Iterator[None]:
    """A file refused for its encoding gets the command-line way out too (the storage message
    is shared with the bot, where there is no flag to give)."""
    try:
        yield
    except IngestRejected as error:
        if error.details.get("problem") != "bad_encoding" or encoding is not None:
            raise
        raise IngestRejected(f"{error}; or, if the whole file is in another encoding, name it with --encoding "
                             "(e.g. --encoding cp1251)", **error.details) from None


def schema_summary(db: Database) -> dict[str, Any]:
    """The remembered schema (None before the first batch), the "stayed" label value and the
    stored column types."""
    with db.session() as session:
        stored = remembered_schema(session)
        negative = session.get(Meta, NEGATIVE_LABEL_KEY)
        schema = None
        if stored is not None:
            schema = {
                "id_column": stored.id_column,
                "label_column": stored.label_column,
                "positive_label": stored.positive_label,
                "negative_label": negative.value if negative is not None else None,
                "ignore_columns": list(stored.ignore_columns),
                "as_of_column": stored.as_of_column or None,
                "first_batch_id": stored.first_batch_id,
                "created_at": stored.created_at,
            }
    return {"schema": schema, "columns": column_types(db)}


def show_schema(args: argparse.Namespace, settings: Settings) -> int:
    """``churnguard schema``: what the store remembers, or that nothing is remembered yet."""
    with Database(settings.database_url) as db:
        payload = schema_summary(db)
    schema = payload["schema"]
    if schema is None:
        text = (
            "No schema remembered yet: the first ingested batch sets it. Configured now: id column "
            f"{settings.id_column!r}, label column {settings.label_column!r} (churn = {settings.positive_label!r})."
        )
    else:
        stayed = f", stayed = {schema['negative_label']!r}" if schema["negative_label"] else ""
        ignored = ", ".join(schema["ignore_columns"]) or "none"
        columns = payload["columns"]
        numeric = sum(1 for kind in columns.values() if kind == "numeric")
        text = "\n".join([
            f"id column:       {schema['id_column']}",
            f"label column:    {schema['label_column']} (churn = {schema['positive_label']!r}{stayed})",
            f"as-of column:    {schema['as_of_column'] or 'none (rows dated by --as-of or the ingest time)'}",
            f"ignored columns: {ignored}",
            f"data columns:    {len(columns)} ({numeric} numeric, {len(columns) - numeric} categorical)",
            f"remembered since batch #{schema['first_batch_id']} ({schema['created_at']:%Y-%m-%d %H:%M} UTC)",
        ])
    emit(args, payload, text)
    return 0


EVENT_TABLES = {"clients": "event_client", "subscriptions": "event_subscription", "purchases": "event_purchase",
                "tickets": "event_ticket", "usage": "event_usage", "event_types": "event_type_name"}


def as_of_status(db: Database, horizon_days: int) -> dict[str, Any]:
    """The client table's as-of dates: first, last, how many, and how many have known outcomes."""
    from storage.churns import churn_summary
    from storage.snapshots import date_overview

    dates, labelled = date_overview(db, horizon_days=horizon_days)
    with db.read_session() as session:
        churns = churn_summary(session.connection())
    return {
        "first": dates[0] if dates else None,
        "last": dates[-1] if dates else None,
        "dates": len(dates),
        "labelled_dates": len(labelled),
        "last_labelled": labelled[-1] if labelled else None,
        "horizon_days": horizon_days,
        "churn_lists": churns,
    }


def store_status(db: Database, horizon_days: int = 30) -> dict[str, Any]:
    """What the store holds: batches, clients and their as-of dates, labelled share, model
    versions, champion.  Reads only (``read_session``): it answers while an ingest holds the
    write lock."""
    with db.read_session() as session:
        batches = session.exec(select(func.count()).select_from(Batch).where(Batch.kind == CLIENTS)).one()
        last = session.exec(select(Batch).where(Batch.kind == CLIENTS).order_by(col(Batch.id).desc())).first()
        versions = session.exec(select(func.count()).select_from(ModelVersion)).one()
        event = session.exec(select(ChampionEvent).order_by(col(ChampionEvent.id).desc())).first()
    counts = client_counts(db)
    clients, labelled = counts["clients"], counts["labelled_clients"]
    rows = db.row_counts()
    events = {kind: rows.get(table, 0) for kind, table in EVENT_TABLES.items()}
    end = data_end(db) if events["clients"] else None
    events["data_end"] = None if end is None else end.isoformat()  # type: ignore[assignment]
    return {
        "database": db.safe_url,
        "exists": True,
        "batches": int(batches),
        "last_batch": None if last is None else {
            "batch_id": last.id, "source_name": last.source_name, "received_at": last.received_at,
            "rows": last.row_count, "labelled": last.labelled,
        },
        "clients": clients,
        "labelled_clients": labelled,
        "labelled_share": round(labelled / clients, 4) if clients else 0.0,
        "as_of": as_of_status(db, horizon_days),
        "model_versions": int(versions),
        "champion": event.version if event is not None else None,
        "events": events,
    }


def empty_status(database: str) -> dict[str, Any]:
    """The status of a store that does not exist yet: nothing in it (and nothing created)."""
    return {"database": database, "exists": False, "batches": 0, "last_batch": None, "clients": 0,
            "labelled_clients": 0, "labelled_share": 0.0, "model_versions": 0, "champion": None,
            "events": {**dict.fromkeys(EVENT_TABLES, 0), "data_end": None}}


def status(args: argparse.Namespace, settings: Settings) -> int:
    """``churnguard status``: a one-screen summary of the store.  Read-only: it neither creates
    nor migrates a store, and never waits for a writer (see ``Database.open_read_only``)."""
    from storage.migrate import require_current

    try:
        db = Database.open_read_only(settings.database_url)
    except NotFound as missing:
        payload = empty_status(make_url(settings.database_url).render_as_string(hide_password=True))
        emit(args, payload, f"store:    {payload['database']}\n{missing}")
        return 0
    with db:
        with db.engine.connect() as connection:
            require_current(connection, safe_url=db.safe_url)
        payload = store_status(db, settings.churn_horizon_days)
    last = payload["last_batch"]
    last_text = (f" (last: #{last['batch_id']} {last['source_name']}, {last['received_at']:%Y-%m-%d %H:%M} UTC)"
                 if last else "")
    text = "\n".join([
        f"store:    {payload['database']}",
        f"batches:  {payload['batches']}{last_text}",
        f"clients:  {payload['clients']} ({payload['labelled_clients']} with a known outcome, "
        f"{payload['labelled_share']:.1%})",
        *_as_of_lines(payload["as_of"]),
        f"models:   {payload['model_versions']} version(s), champion: {payload['champion'] or 'none'}",
    ])
    events = payload["events"]
    if events["clients"]:
        end = f", complete to {events['data_end'][:16].replace('T', ' ')}" if events["data_end"] else ""
        text += (f"\nevents:   {events['clients']} clients, {events['subscriptions']} subscriptions, "
                 f"{events['purchases']} purchases, {events['tickets']} tickets, {events['usage']} usage events, "
                 f"{events['event_types']} event type names{end}")
    emit(args, payload, text)
    return 0


def _as_of_lines(dates: dict[str, Any]) -> list[str]:
    if not dates["dates"]:
        return []
    span = (f"{dates['first']:%Y-%m-%d}" if dates["dates"] == 1
            else f"{dates['dates']} dates, {dates['first']:%Y-%m-%d} to {dates['last']:%Y-%m-%d}")
    known = (f"{dates['labelled_dates']} with known outcomes, the last {dates['last_labelled']:%Y-%m-%d}"
             if dates["labelled_dates"] else "no known outcomes yet")
    lines = [f"as of:    {span} ({known}; horizon {dates['horizon_days']} days)"]
    churns = dates["churn_lists"]
    if churns["lists"]:
        lines.append(f"churns:   {churns['departures']} departures from {churns['lists']} churn list(s), complete to "
                     f"{churns['complete_until']:%Y-%m-%d %H:%M}")
    return lines


__all__ = ["as_of_status", "ingest", "schema_summary", "show_schema", "status", "store_status"]
