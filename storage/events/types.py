"""Names for usage event type codes: the ``event_types`` lookup kind.

Some exports code their event types as numbers and name them in a separate table (the
churn simulator of *Fighting Churn with Data* writes ``event(event_type_id, ...)`` and
``event_type(event_type_id, event_type_name)``).  Features named ``usage_3_28d`` and
reasons such as "12 '3' events in the last 28 days" would help nobody, so the lookup is
stored (``EventTypeName``: code -> name) and applied when features are computed
(``named_types``): usage rows keep their codes.

Why at query time rather than rewriting the codes at ingest: the lookup may then arrive
before or after the events with the same result, and a later lookup file renames types
without rewriting millions of usage rows.  A code the lookup does not name keeps its code
as its name.  Names must be unique (two codes with one name would be two different
behaviours merged into one feature); a file breaking that is refused.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd
from sqlalchemy import Connection, select

from storage.events.tables import EventTypeName
from storage.readers import Limits, parse_bytes
from storage.tables import Batch

if TYPE_CHECKING:
    from storage.db import Database
    from storage.events.ingest import EventIngestReport

TYPE_NAMES = EventTypeName.__table__  # type: ignore[attr-defined]


def type_names(connection: Connection) -> dict[str, str]:
    """Every stored code -> name (a small table: one row per event type)."""
    return {str(code): str(name) for code, name in connection.execute(select(TYPE_NAMES.c.code, TYPE_NAMES.c.name))}


def named_types(connection: Connection, frame: pd.DataFrame) -> pd.DataFrame:
    """Aggregates per event type (column ``etype``) with each code replaced by its name.

    When a name equals another, unnamed code, both end up under one name: their rows are
    added up (counts and sums; ``last_ts`` the latest), so each (client, type) stays one row."""
    if frame.empty or "etype" not in frame.columns:
        return frame
    names = type_names(connection)
    if not names:
        return frame
    codes = frame["etype"].astype(object)
    frame = frame.assign(etype=codes.map(names).fillna(codes))
    keys = ["client_key", "etype"] if "client_key" in frame.columns else ["etype"]
    if not frame.duplicated(keys).any():
        return frame
    measures = [c for c in frame.columns if c not in keys]
    how = {c: ("max" if c == "last_ts" else (lambda s: s.sum(min_count=1))) for c in measures}
    return frame.groupby(keys, sort=False).agg(how).reset_index()


def ingest_event_types(db: Database, data: bytes, *, source: str, digest: str, mapping: dict[str, str],
                       limits: Limits, encoding: str | None = None) -> EventIngestReport:
    """Validate and store an event type lookup file (upserted by code) in one transaction."""
    from storage.events import ingest as core  # features import this module; ingest stays out of their way

    used_keys = {mapping.get("event_type", "event_type"), mapping.get("name", "name")}
    table = parse_bytes(data, source_name=source, limits=limits, keep_text=used_keys, sha256=digest,
                        encoding=encoding)
    frame = table.frame
    used = core._resolve_columns("event_types", mapping, [str(c) for c in frame.columns], source)
    codes = core._text_column(frame, used["event_type"])
    names = core._text_column(frame, used["name"])
    problems: list[core._Problem] = []
    for field_name, values in (("event_type", codes), ("name", names)):
        column = used[field_name]
        if values.isna().any():
            problems.append(core._problem("missing_value", column, f"column {column!r} ({field_name}) is empty",
                                          values.isna()))
        long = values.notna() & (values.astype("str").str.len() > core.MAX_TEXT)
        if long.any():
            problems.append(core._problem("too_long", column, f"column {column!r} ({field_name}) has values longer "
                                          f"than {core.MAX_TEXT} characters", long, values.astype("str").str.slice(0, 40)))
    repeated = codes.notna() & codes.duplicated(keep=False)
    if repeated.any():
        problems.append(core._problem("duplicate_code", used["event_type"],
                                      f"event type codes repeat in {used['event_type']!r}; each code is named once",
                                      repeated, codes))
    ignored = [str(c) for c in frame.columns if c not in set(used.values())]
    with db.session() as session:
        connection = session.connection()
        stored = type_names(connection)
        merged = {**stored, **{c: n for c, n in zip(codes, names, strict=True) if c is not None and n is not None}}
        owners: dict[str, list[str]] = {}
        for code, name in merged.items():
            owners.setdefault(name, []).append(code)
        shared = {name: sorted(c) for name, c in owners.items() if len(c) > 1}
        if shared:
            clash = names.isin(list(shared))
            described = "; ".join(f"{name!r} for codes {', '.join(c)}" for name, c in list(shared.items())[:5])
            problems.append(core._problem(
                "duplicate_name", used["name"],
                f"one name for several event types ({described}, counting the names already stored); each type "
                "needs its own name, or its events would be merged into one feature", clash, names))
        core._raise(source, problems)
        notes = [n["message"] for n in table.notes]
        if ignored:
            notes.append(f"ignored columns: {', '.join(ignored)}")
        batch = Batch(source_name=source, kind=core.batch_kind("event_types"), row_count=len(frame), sha256=digest,
                      columns={"mapping": used, "ignored": ignored, "attributes": []}, labelled=False,
                      warnings=[{"column": None, "message": n} for n in notes])
        session.add(batch)
        session.flush()
        assert batch.id is not None
        inserted = replaced = 0
        for code, name in zip(codes.tolist(), names.tolist(), strict=True):
            row = session.get(EventTypeName, code)
            if row is None:
                session.add(EventTypeName(code=code, name=name, batch_id=batch.id))
                inserted += 1
            else:
                replaced += int(row.name != name)
                row.name, row.batch_id = name, batch.id
        return core.EventIngestReport(
            kind="event_types", source=source, sha256=digest, status="stored", batch_id=batch.id, rows=len(frame),
            inserted=inserted, replaced=replaced, clients=0, mapping=used, ignored_columns=ignored, notes=notes,
        )


__all__ = ["TYPE_NAMES", "ingest_event_types", "named_types", "type_names"]
