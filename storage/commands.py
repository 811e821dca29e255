"""Command-line handlers for the storage side: ``ingest``, ``schema`` and ``status``.

Handlers only translate between arguments and the storage API and print; refusals are
raised as ``UserError`` and printed by ``churnguard.main`` as one line (exit code 2).
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from sqlalchemy import func
from sqlalchemy.engine import make_url
from sqlmodel import col, select

from churnguard import emit
from storage.clients import CLIENTS, client_counts, column_types
from storage.db import Database
from storage.errors import NotFound, UserError
from storage.events.labels import data_end
from storage.ingest import NEGATIVE_LABEL_KEY, ingest_file
from storage.readers import Limits
from storage.schema import remembered_schema, schema_from_settings
from storage.tables import Batch, ChampionEvent, Meta, ModelVersion

if TYPE_CHECKING:
    from churnguard import Settings


def ingest(args: argparse.Namespace, settings: Settings) -> int:
    """``churnguard ingest PATH``: validate the file and store it in one transaction."""
    if getattr(args, "kind", None) is not None:
        return ingest_event_table(args, settings)
    if getattr(args, "mapping", None) is not None or getattr(args, "map_flags", None) is not None:
        raise UserError("--mapping and --map describe an event table: add --kind (clients, subscriptions, "
                        "purchases, tickets, usage or event_types)")
    schema, explicit = schema_from_settings(settings)
    with Database(settings.database_url) as db:
        report = ingest_file(db, args.path, schema=schema, explicit=explicit, limits=Limits.from_settings(settings))
    emit(args, report.to_dict(), report.to_text())
    return 0


def ingest_event_table(args: argparse.Namespace, settings: Settings) -> int:
    """``churnguard ingest PATH --kind KIND``: an event table, mapped to canonical fields."""
    from storage.events.ingest import ingest_events
    from storage.events.mapping import canonical_kind, resolve_mapping

    kind = canonical_kind(args.kind)
    mapping = resolve_mapping(kind, file=args.mapping, flags=args.map_flags)
    with Database(settings.database_url) as db:
        report = ingest_events(db, args.path, kind=kind, mapping=mapping, limits=Limits.from_settings(settings))
    emit(args, report.as_dict(), report.summary())
    return 0


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
            f"ignored columns: {ignored}",
            f"data columns:    {len(columns)} ({numeric} numeric, {len(columns) - numeric} categorical)",
            f"remembered since batch #{schema['first_batch_id']} ({schema['created_at']:%Y-%m-%d %H:%M} UTC)",
        ])
    emit(args, payload, text)
    return 0


EVENT_TABLES = {"clients": "event_client", "subscriptions": "event_subscription", "purchases": "event_purchase",
                "tickets": "event_ticket", "usage": "event_usage", "event_types": "event_type_name"}


def store_status(db: Database) -> dict[str, Any]:
    """What the store holds: batches, clients, labelled share, model versions, champion.
    Reads only (``read_session``): it answers while an ingest holds the write lock."""
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
        payload = store_status(db)
    last = payload["last_batch"]
    last_text = (f" (last: #{last['batch_id']} {last['source_name']}, {last['received_at']:%Y-%m-%d %H:%M} UTC)"
                 if last else "")
    text = "\n".join([
        f"store:    {payload['database']}",
        f"batches:  {payload['batches']}{last_text}",
        f"clients:  {payload['clients']} ({payload['labelled_clients']} with a known outcome, "
        f"{payload['labelled_share']:.1%})",
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


__all__ = ["ingest", "schema_summary", "show_schema", "status", "store_status"]
