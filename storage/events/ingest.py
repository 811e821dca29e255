"""Validate one event file and store it in one transaction, or refuse it whole.

Every check collects *all* rows it dislikes before refusing, so one round trip shows the
user every problem of the file (``IngestRejected``, ``details["problems"]``), each with the
column, the 1-based data rows and example values.

What happens to rows that were stored before:

* ``clients`` are upserted by client id: new ids are added, known ids take the file's
  signup/churn dates (for the columns present in the file) and its attributes.
* ``subscriptions`` and ``tickets`` are upserted by a natural key ((client, start, plan)
  and (client, opened at, category)): a later export that adds an end date or closes a
  ticket replaces the stored row instead of doubling it.
* ``purchases`` and ``usage`` events are append-only.  A file whose events for a client
  overlap in time the events already stored for that client is refused, because an
  overlapping export would silently double every count.  These files can hold tens of
  millions of rows: they are read, checked and stored chunk by chunk, still in one
  transaction (``storage.events.append``).
* ``event_types`` is a lookup naming the codes of usage's event type column
  (``storage.events.types``); a later file renames the codes it lists.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from sqlalchemy import Connection, Table, bindparam, delete, insert, select, update
from sqlmodel import Session

from storage.errors import IngestRejected
from storage.events.bulk import bulk_insert
from storage.events.mapping import KINDS, canonical_kind, check_mapping
from storage.events.tables import EVENT_TABLES, EventClient
from storage.ids import MAX_ID_LENGTH, invisible_ids
from storage.readers import MISSING_TOKENS, Limits, parse_bytes, read_bytes, sha256_of
from storage.tables import Batch, utcnow

if TYPE_CHECKING:  # storage.db imports storage.events.tables; only types are needed here
    from storage.db import Database

# Naive timestamps are read as UTC.  A CRM east of Greenwich that exports local time makes
# its latest events look up to 14 hours "in the future" (UTC+14 is the largest offset); that
# is tolerated rather than refused.
DEFAULT_FUTURE_TOLERANCE = timedelta(hours=14)
MAX_TEXT = MAX_ID_LENGTH  # the width of the text columns, ids included
_MAX_ROWS_SHOWN = 10
_MAX_EXAMPLES = 5
_KEY_CHUNK = 1000
# Append-only kinds are the high-volume ones: read and stored chunk by chunk (``append``).
APPEND_ONLY = ("purchases", "usage")

# Times that record something that already happened; ends and churn dates may be scheduled.
_PAST_ONLY = {
    "clients": ("signup_date",),
    "subscriptions": ("start",),
    "purchases": ("timestamp",),
    "tickets": ("opened_at", "closed_at"),
    "usage": ("timestamp",),
    "churns": ("churn_date",),
}
_ORDERED = {"clients": ("signup_date", "churn_date"), "subscriptions": ("start", "end"),
            "tickets": ("opened_at", "closed_at")}
_MAIN_TIME = {"clients": "signup_date", "subscriptions": "start", "purchases": "timestamp",
              "tickets": "opened_at", "usage": "timestamp"}
_TEXT_FIELDS = {"subscriptions": ("plan",), "purchases": ("product",), "tickets": ("category",),
                "usage": ("event_type",)}
# Natural keys of the upserted kinds: a row of a later file with the same key replaces the stored one.
_NATURAL_KEYS = {"subscriptions": ("start_ts", "plan"), "tickets": ("opened_ts", "category")}
# Column names in the database per canonical time field.
_DB_TIME = {
    ("clients", "signup_date"): "signup",
    ("clients", "churn_date"): "churn",
    ("subscriptions", "start"): "start",
    ("subscriptions", "end"): "end",
    ("purchases", "timestamp"): "",
    ("tickets", "opened_at"): "opened",
    ("tickets", "closed_at"): "closed",
    ("usage", "timestamp"): "",
}
_EPOCH = pd.Timestamp("1970-01-01")


def batch_kind(kind: str) -> str:
    """The ``Batch.kind`` of an event file: prefixed, so that event clients are never taken
    for the flat client table (whose batches are ``clients``)."""
    return f"events.{canonical_kind(kind)}"


@dataclass
class EventIngestReport:
    """What one ``ingest_events`` call did (``status`` "stored" or "duplicate")."""

    kind: str
    source: str
    sha256: str
    status: str
    batch_id: int | None
    rows: int = 0
    inserted: int = 0
    replaced: int = 0
    clients: int = 0
    first_at: datetime | None = None
    last_at: datetime | None = None
    mapping: dict[str, str] = field(default_factory=dict)
    ignored_columns: list[str] = field(default_factory=list)
    attributes: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    duplicate_of_kind: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        if self.status == "duplicate":
            return (f"{self.source} was already ingested as batch {self.batch_id} "
                    f"({self.duplicate_of_kind}); nothing stored")
        if self.kind == "event_types":
            renamed = f", {self.replaced} renamed" if self.replaced else ""
            return (f"stored event type names batch {self.batch_id} from {self.source}: {self.rows} names "
                    f"({self.inserted} new{renamed})")
        span = ""
        if self.first_at is not None and self.last_at is not None:
            span = f", {self.first_at:%Y-%m-%d} to {self.last_at:%Y-%m-%d}"
        replaced = f", {self.replaced} replaced" if self.replaced else ""
        return (f"stored {self.kind} batch {self.batch_id} from {self.source}: {self.rows} rows for "
                f"{self.clients} clients ({self.inserted} new{replaced}{span})")


@dataclass
class _Problem:
    check: str
    column: str | None
    message: str
    rows: list[int] = field(default_factory=list)
    examples: list[str] = field(default_factory=list)
    count: int = 0
    # What the message is made of, so that the problems of several chunks of one file can
    # be merged into one (``merge_problems``) and worded as a whole-file read would.
    text: str = ""
    show_values: bool = True

    def merged(self, other: _Problem) -> _Problem:
        """This problem and the same problem found in a later chunk, as one."""
        rows = (self.rows + other.rows)[:_MAX_ROWS_SHOWN]
        examples = (self.examples + other.examples)[:_MAX_EXAMPLES]
        count = self.count + other.count
        message = _message(self.text, rows, examples, count, self.show_values)
        return _Problem(self.check, self.column, message, rows, examples, count, self.text, self.show_values)


def _located(mask: pd.Series, values: pd.Series | None = None) -> tuple[list[int], list[str], int]:
    """1-based data rows (the reader keeps each row's original position as its index)."""
    hit = mask[mask].index[:_MAX_ROWS_SHOWN]
    rows = [int(i) + 1 for i in hit]
    examples: list[str] = []
    if values is not None:
        for i in hit[:_MAX_EXAMPLES]:
            examples.append(str(values.loc[i]))
    return rows, examples, int(mask.sum())


def _message(text: str, rows: list[int], examples: list[str], count: int, show_values: bool) -> str:
    where = ", ".join(str(r) for r in rows) + (" ..." if count > len(rows) else "")
    shown = ""
    if examples and show_values:
        shown = " e.g. " + ", ".join(repr(e) for e in examples)
    counted = f"1 row: data row {where}" if count == 1 else f"{count} rows: data rows {where}"
    return f"{text} ({counted}){shown}"


def _problem(check: str, column: str | None, text: str, mask: pd.Series, values: pd.Series | None = None,
             show_values: bool = True) -> _Problem:
    rows, examples, count = _located(mask, values)
    return _Problem(check, column, _message(text, rows, examples, count, show_values), rows, examples, count,
                    text, show_values)


def merge_problems(found: dict[tuple[str, str | None, str], _Problem], problems: list[_Problem]) -> None:
    """Add one chunk's problems to those of the chunks before (same check, column and text: one problem)."""
    for problem in problems:
        key = (problem.check, problem.column, problem.text)
        found[key] = found[key].merged(problem) if key in found else problem


def _raise(source: str, problems: list[_Problem]) -> None:
    if not problems:
        return
    first = problems[0]
    if len(problems) == 1:
        message = f"{source}: {first.message}; nothing was stored"
    else:
        listed = "; ".join(f"({i}) {p.message}" for i, p in enumerate(problems, start=1))
        message = f"{source}: {len(problems)} problems, nothing was stored: {listed}"
    raise IngestRejected(
        message,
        problem=first.check,
        column=first.column,
        rows=first.rows,
        row_kind="data row",
        examples=first.examples,
        count=first.count,
        problems=[asdict(p) for p in problems],
    )


# ------------------------------------------------------------------------------------------
# Parsing
# ------------------------------------------------------------------------------------------

_ISO_LIKE = re.compile(r"^\d{4}-\d{2}-\d{2}")
_EPOCH_DIGITS = re.compile(r"^\d{9,13}$")
_DATE_ORDERS = ("%d.%m.%Y", "%d/%m/%Y", "%m/%d/%Y")
_TIME_TAILS = ("", " %H:%M", " %H:%M:%S")


def _missing(text: pd.Series) -> pd.Series:
    return text.isna() | text.astype("str").str.strip().str.lower().isin(MISSING_TOKENS)


def parse_times(text: pd.Series) -> tuple[pd.Series, pd.Series, str | None]:
    """Parse one column of timestamps into naive UTC at one-second resolution.

    Returns (times, unparseable mask, note).  ISO 8601 (with or without a time zone offset;
    naive values are UTC) is the rule.  Other spellings are accepted only when one format
    reads the whole column unambiguously: Unix seconds or milliseconds, ``31.12.2024``, or
    ``12/31/2024`` vs ``31/12/2024`` when the day > 12 somewhere tells which is which.
    """
    if pd.api.types.is_datetime64_any_dtype(text):
        times = text.dt.tz_convert("UTC").dt.tz_localize(None) if text.dt.tz is not None else text
        return times.dt.floor("s"), pd.Series(False, index=text.index), None
    text = text.astype("str").str.strip()
    missing = _missing(text)
    present = text[~missing]
    parsed = pd.Series(pd.NaT, index=text.index, dtype="datetime64[us, UTC]")
    note = None
    if len(present):
        iso = pd.to_datetime(present, utc=True, format="ISO8601", errors="coerce")
        parsed.loc[iso.index] = iso
        rest = present[iso.isna()]
        if len(rest):
            best, note = _parse_other(rest)
            parsed.loc[best.index] = best
    bad = ~missing & parsed.isna()
    times = parsed.dt.tz_localize(None).dt.floor("s")
    return times, bad, note


def _parse_other(rest: pd.Series) -> tuple[pd.Series, str | None]:
    if bool(rest.str.match(_EPOCH_DIGITS).all()):
        numbers = rest.astype("int64")
        if bool((rest.str.len() >= 12).all()):
            return pd.to_datetime(numbers, unit="ms", utc=True), "read as Unix time in milliseconds"
        return pd.to_datetime(numbers, unit="s", utc=True), "read as Unix time in seconds"
    families: dict[str, pd.Series] = {}
    for order in _DATE_ORDERS:
        parsed = pd.Series(pd.NaT, index=rest.index, dtype="datetime64[us, UTC]")
        for tail in _TIME_TAILS:
            todo = parsed.isna()
            if not todo.any():
                break
            parsed[todo] = pd.to_datetime(rest[todo], format=order + tail, utc=True, errors="coerce")
        families[order] = parsed
    day_first, month_first = families["%d/%m/%Y"], families["%m/%d/%Y"]
    if bool(day_first.notna().all()) and bool(month_first.notna().all()) and not bool((day_first == month_first).all()):
        # Every day is <= 12: 01/02/2024 could be either; refuse to guess.
        del families["%d/%m/%Y"], families["%m/%d/%Y"]
    if not families:
        return pd.Series(pd.NaT, index=rest.index, dtype="datetime64[us, UTC]"), None
    best_order, best = max(families.items(), key=lambda item: int(item[1].notna().sum()))
    if not best.notna().any():
        return best, None
    return best, f"non-ISO dates read as {best_order.replace('%', '').replace('d', 'DD').replace('m', 'MM').replace('Y', 'YYYY')}"


def _epoch_seconds(times: pd.Series) -> pd.Series:
    return ((times - _EPOCH) // pd.Timedelta(seconds=1)).astype("Int64")


def _number_column(frame: pd.DataFrame, column: str) -> tuple[pd.Series, pd.Series, pd.Series]:
    """(numbers, missing, not-a-number) for a column the reader may have left as text."""
    series = frame[column]
    if pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series):
        values = series.astype("float64")
        return values, values.isna(), pd.Series(False, index=series.index)
    text = series.astype("str").str.strip()
    missing = _missing(text)
    values = pd.to_numeric(text.where(~missing), errors="coerce").astype("float64")
    return values, missing, ~missing & values.isna()


def _text_column(frame: pd.DataFrame, column: str) -> pd.Series:
    text = frame[column].astype("str").str.strip()
    return text.where(frame[column].notna() & (text != ""), None).astype(object)


# ------------------------------------------------------------------------------------------
# The file -> canonical frame
# ------------------------------------------------------------------------------------------


@dataclass
class _Prepared:
    frame: pd.DataFrame
    used: dict[str, str]
    ignored: list[str]
    attributes: list[str]
    notes: list[str]


def _resolve_columns(kind: str, mapping: Mapping[str, str], columns: list[str], source: str) -> dict[str, str]:
    spec = KINDS[kind]
    used: dict[str, str] = {}
    problems: list[_Problem] = []
    for name in spec.fields:
        wanted = mapping.get(name, name)
        if wanted in columns:
            used[name] = wanted
            continue
        if name in spec.required or name in mapping:
            how = f"mapped to column {wanted!r}" if name in mapping else f"expected in a column named {name!r}"
            hint = (f"; map it with --map {name}=COLUMN or a [{kind}] entry in the mapping file"
                    if name not in mapping else "")
            problems.append(_Problem(
                "missing_column", wanted,
                f"{kind} field {name!r} ({how}) is not in the file, whose columns are "
                f"{', '.join(repr(c) for c in columns[:30])}{hint}"))
    _raise(source, problems)
    return used


def _prepare(kind: str, frame: pd.DataFrame, mapping: Mapping[str, str], *, now: datetime,
             tolerance: timedelta, source: str) -> tuple[_Prepared, list[_Problem]]:
    spec = KINDS[kind]
    used = _resolve_columns(kind, mapping, [str(c) for c in frame.columns], source)
    problems: list[_Problem] = []
    notes: list[str] = []
    out = pd.DataFrame(index=frame.index)

    ids = _text_column(frame, used["client_id"])
    out["client_id"] = ids
    if ids.isna().any():
        problems.append(_problem("missing_value", used["client_id"], f"column {used['client_id']!r} (client id) is empty",
                                 ids.isna()))
    too_long = ids.notna() & (ids.astype("str").str.len() > MAX_TEXT)
    if too_long.any():
        problems.append(_problem("too_long", used["client_id"],
                                 f"client ids in {used['client_id']!r} are longer than {MAX_TEXT} characters",
                                 too_long, ids.astype("str").str.slice(0, 40)))
    hidden = invisible_ids(ids)
    if hidden.any():
        problems.append(_problem("bad_client_id", used["client_id"],
                                 f"client ids in {used['client_id']!r} hold control or invisible characters (they "
                                 "would print as terminal commands or reversed text, and cannot be looked up)",
                                 hidden, ids))

    limit = now + tolerance
    for name in spec.times:
        if name not in used:
            continue
        column = used[name]
        times, bad, note = parse_times(frame[column])
        if note:
            notes.append(f"{column}: {note}")
        if bad.any():
            problems.append(_problem("bad_timestamp", column,
                                     f"column {column!r} ({name}) has values that are not dates "
                                     f"(write them as YYYY-MM-DD or YYYY-MM-DD HH:MM:SS)", bad, frame[column]))
        if name in spec.required:
            empty = times.isna() & ~bad
            if empty.any():
                problems.append(_problem("missing_value", column, f"column {column!r} ({name}) is empty", empty))
        if name in _PAST_ONLY[kind]:
            future = times.notna() & (times > pd.Timestamp(limit))
            if future.any():
                problems.append(_problem("future_timestamp", column,
                                         f"column {column!r} ({name}) has times in the future (after "
                                         f"{now:%Y-%m-%d %H:%M} UTC)", future, times.dt.strftime("%Y-%m-%d %H:%M:%S")))
        out[f"{name}_at"] = times
        out[f"{name}_ts"] = _epoch_seconds(times)

    for name in spec.amounts + spec.numbers:
        if name not in used:
            continue
        column = used[name]
        values, missing, not_number = _number_column(frame, column)
        if not_number.any():
            problems.append(_problem("not_a_number", column, f"column {column!r} ({name}) has values that are not numbers",
                                     not_number, frame[column]))
        if name in spec.required and (missing & ~not_number).any():
            problems.append(_problem("missing_value", column, f"column {column!r} ({name}) is empty", missing & ~not_number))
        if name in spec.amounts:
            negative = values < 0
            if negative.any():
                problems.append(_problem("negative_amount", column,
                                         f"column {column!r} ({name}) has negative amounts; amounts must be 0 or more "
                                         "(refunds are not purchases)", negative, values))
        out[name] = values

    for name in _TEXT_FIELDS.get(kind, ()):
        if name not in used:
            out[name] = None
            continue
        column = used[name]
        text = _text_column(frame, column)
        if name in spec.required and text.isna().any():
            problems.append(_problem("missing_value", column, f"column {column!r} ({name}) is empty", text.isna()))
        long = text.notna() & (text.astype("str").str.len() > MAX_TEXT)
        if long.any():
            problems.append(_problem("too_long", column, f"column {column!r} ({name}) has values longer than "
                                     f"{MAX_TEXT} characters", long, text.astype("str").str.slice(0, 40)))
        out[name] = text

    if kind in _ORDERED:
        first, second = _ORDERED[kind]
        if f"{first}_ts" in out and f"{second}_ts" in out:
            before = (out[f"{second}_ts"] < out[f"{first}_ts"]).fillna(False).astype(bool)
            if before.any():
                shown = (out[f"{first}_at"].dt.strftime("%Y-%m-%d %H:%M") + " -> "
                         + out[f"{second}_at"].dt.strftime("%Y-%m-%d %H:%M"))
                problems.append(_problem("end_before_start", used[second],
                                         f"{used[second]!r} ({second}) is before {used[first]!r} ({first})",
                                         before, shown))

    if kind == "clients":
        dup = ids.notna() & ids.duplicated(keep=False)
        if dup.any():
            problems.append(_problem("duplicate_client", used["client_id"],
                                     f"client ids repeat in {used['client_id']!r}; a clients table has one row per "
                                     "client", dup, ids))
    elif kind in _NATURAL_KEYS:
        key_fields = ["client_id", f"{_MAIN_TIME[kind]}_ts", _NATURAL_KEYS[kind][1]]
        keys = out[key_fields].astype("str")
        dup = keys.duplicated(keep=False) & out["client_id"].notna()
        if dup.any():
            names = ", ".join(used.get(f, f) for f in ("client_id", _MAIN_TIME[kind], _NATURAL_KEYS[kind][1]))
            problems.append(_problem("duplicate_row", used["client_id"],
                                     f"rows repeat the same ({names}); each {kind[:-1]} must appear once",
                                     dup, out["client_id"]))

    mapped = set(used.values())
    others = [str(c) for c in frame.columns if c not in mapped]
    attributes: list[str] = []
    ignored: list[str] = []
    if kind == "clients":
        attributes = others
        out["attributes"] = pd.Series(_attribute_dicts(frame, others), index=frame.index, dtype=object)
    else:
        ignored = others
    return _Prepared(out, used, ignored, attributes, notes), problems


def _attribute_dicts(frame: pd.DataFrame, columns: list[str]) -> list[dict[str, Any]]:
    """Static attributes as JSON-ready dicts: numbers (integers without ".0"), text, None."""
    converted: dict[str, list[Any]] = {}
    for column in columns:
        series = frame[column]
        if pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series):
            values = series.astype("float64").tolist()
            converted[column] = [None if v != v else (int(v) if float(v).is_integer() and abs(v) < 2**53 else float(v))
                                 for v in values]
        else:
            text = series.astype("str").str.strip()
            keep = series.notna() & (text != "")
            converted[column] = [t if k else None for t, k in zip(text.tolist(), keep.tolist(), strict=True)]
    return [dict(zip(columns, row, strict=True)) for row in zip(*(converted[c] for c in columns), strict=True)] \
        if columns else [{} for _ in range(len(frame))]


# ------------------------------------------------------------------------------------------
# Storage
# ------------------------------------------------------------------------------------------


def _client_keys(connection: Connection) -> dict[str, int]:
    table = EventClient.__table__  # type: ignore[attr-defined]
    return {str(cid): int(key) for cid, key in connection.execute(select(table.c.client_id, table.c.id))}


def _chunks(values: list[int], size: int = _KEY_CHUNK) -> Iterable[list[int]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def _db_columns(kind: str, prepared: pd.DataFrame) -> pd.DataFrame:
    """Rename canonical fields to the table's column names."""
    renames: dict[str, str] = {}
    for (k, name), prefix in _DB_TIME.items():
        if k != kind:
            continue
        renames[f"{name}_at"] = f"{prefix}_at" if prefix else "at"
        renames[f"{name}_ts"] = f"{prefix}_ts" if prefix else "ts"
    return prepared.rename(columns=renames)


def _store_clients(session: Session, prepared: _Prepared, batch_id: int) -> tuple[int, int]:
    connection = session.connection()
    table: Table = EventClient.__table__  # type: ignore[attr-defined]
    known = _client_keys(connection)
    frame = _db_columns("clients", prepared.frame)
    present = [c for c in ("signup_at", "signup_ts", "churn_at", "churn_ts") if c in frame]
    is_new = ~frame["client_id"].isin(known)
    new_rows = []
    for record in frame.loc[is_new].to_dict("records"):
        row = {"client_id": record["client_id"], "batch_id": batch_id, "attributes": record["attributes"]}
        for column in present:
            row[column] = _plain(record[column])
        new_rows.append(row)
    if new_rows:
        connection.execute(insert(table), new_rows)
    old = frame.loc[~is_new]
    if len(old):
        stored: dict[int, dict[str, Any]] = {}
        for chunk in _chunks([known[c] for c in old["client_id"]]):
            query = select(table.c.id, table.c.attributes).where(table.c.id.in_(chunk))
            stored.update({int(key): attrs for key, attrs in connection.execute(query)})
        updates = []
        for record in old.to_dict("records"):
            key = known[record["client_id"]]
            merged = {**(stored.get(key) or {}), **record["attributes"]}
            row = {"_key": key, "batch_id": batch_id, "attributes": merged}
            for column in present:
                row[column] = _plain(record[column])
            updates.append(row)
        values: dict[str, Any] = {c: bindparam(c) for c in ["batch_id", "attributes", *present]}
        connection.execute(update(table).where(table.c.id == bindparam("_key")).values(values), updates)
    return len(new_rows), len(old)


def _plain(value: Any) -> Any:
    if value is None or value is pd.NaT or (isinstance(value, float) and value != value):
        return None
    if value is pd.NA:
        return None
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    if isinstance(value, np.generic):
        return value.item()
    return value


def _client_key_column(prepared: _Prepared, known: dict[str, int]) -> tuple[pd.Series, _Problem | None]:
    """Each row's client key, and the problem naming ids that are not stored clients."""
    keys = prepared.frame["client_id"].map(known)
    unknown = keys.isna() & prepared.frame["client_id"].notna()
    if not unknown.any():
        return keys, None
    distinct = list(dict.fromkeys(prepared.frame.loc[unknown, "client_id"].tolist()))
    column = prepared.used["client_id"]
    hint = ("no clients are stored yet: ingest the clients table first (--kind clients)" if not known
            else "ingest those clients first (--kind clients), or drop their rows")
    problem = _problem("unknown_client", column,
                       f"{len(distinct)} client ids in {column!r} are not in the stored clients table "
                       f"({', '.join(repr(i) for i in distinct[:_MAX_EXAMPLES])}"
                       f"{' ...' if len(distinct) > _MAX_EXAMPLES else ''}); {hint}", unknown, show_values=False)
    problem.examples = [str(i) for i in distinct[:_MAX_EXAMPLES]]
    return keys, problem


def _replace_by_key(connection: Connection, table: Table, frame: pd.DataFrame, kind: str) -> int:
    """Delete stored rows that share a natural key with the file's rows; returns how many."""
    db_time, text_column = _NATURAL_KEYS[kind]
    stored_parts: list[Any] = []
    for chunk in _chunks(sorted(set(frame["client_key"].tolist()))):
        query = select(table.c.id, table.c.client_key, table.c[db_time], table.c[text_column]).where(
            table.c.client_key.in_(chunk))
        stored_parts.extend(connection.execute(query).all())
    if not stored_parts:
        return 0
    stored = pd.DataFrame(stored_parts, columns=["id", "client_key", "t", "x"])
    stored["x"] = stored["x"].fillna("\x00")
    mine = pd.DataFrame({"client_key": frame["client_key"], "t": frame[db_time].astype("int64"),
                         "x": frame[text_column].fillna("\x00")})
    clash = stored.merge(mine, on=["client_key", "t", "x"], how="inner")["id"].tolist()
    for chunk in _chunks(clash):
        connection.execute(delete(table).where(table.c.id.in_(chunk)))
    return len(clash)


def duplicate_report(db: Database, kind: str, source: str, digest: str) -> EventIngestReport | None:
    """The "already ingested" report when a batch with this SHA-256 is stored, else None."""
    with db.session() as session:
        earlier = session.execute(select(Batch).where(Batch.sha256 == digest)).scalars().first()  # type: ignore[arg-type]
    if earlier is None:
        return None
    return EventIngestReport(kind, source, digest, "duplicate", earlier.id, rows=earlier.row_count,
                             duplicate_of_kind=earlier.kind)


def ingest_events(
    db: Database,
    path: Path | str,
    *,
    kind: str,
    mapping: Mapping[str, str] | None = None,
    now: datetime | None = None,
    limits: Limits | None = None,
    future_tolerance: timedelta = DEFAULT_FUTURE_TOLERANCE,
    encoding: str | None = None,
) -> EventIngestReport:
    """Validate the event file at ``path`` as ``kind`` and store it in one transaction.

    ``db`` is a ``storage.db.Database``; ``mapping`` maps canonical field -> column of the
    file (see ``storage.events.mapping``); ``now`` (naive UTC, default the clock) is what
    "in the future" is measured against; ``encoding`` is the text encoding the user named
    (found from the file when None, see ``storage.encodings``).  Raises ``IngestRejected`` (a ``UserError``)
    with ``details`` problem/column/rows/examples/problems; then nothing is stored.
    A file already ingested (same SHA-256) is reported as ``status="duplicate"``.
    """
    kind = canonical_kind(kind)
    mapping = check_mapping(kind, dict(mapping or {}))
    limits = limits or Limits()
    now = utcnow() if now is None else (now.astimezone(UTC).replace(tzinfo=None) if now.tzinfo else now)
    path = Path(path)
    if kind == "churns":  # departures of the client table's clients, not an event table
        from storage.churns import ingest_churns

        return ingest_churns(db, path, mapping=mapping, now=now, limits=limits,
                             future_tolerance=future_tolerance)
    if kind in APPEND_ONLY:
        from storage.events.append import ingest_append_only

        return ingest_append_only(db, path, kind=kind, mapping=mapping, now=now, limits=limits,
                                  future_tolerance=future_tolerance, encoding=encoding)
    source = path.name
    data = read_bytes(path, limits)
    digest = sha256_of(data)
    earlier = duplicate_report(db, kind, source, digest)
    if earlier is not None:
        return earlier
    if kind == "event_types":
        from storage.events.types import ingest_event_types

        return ingest_event_types(db, data, source=source, digest=digest, mapping=mapping, limits=limits,
                                  encoding=encoding)
    spec = KINDS[kind]
    keep_text = {mapping.get(name, name) for name in spec.fields if name not in spec.amounts + spec.numbers}
    table_read = parse_bytes(data, source_name=source, limits=limits, keep_text=keep_text, sha256=digest,
                             encoding=encoding)
    with db.session() as session:
        connection = session.connection()
        prepared, problems = _prepare(kind, table_read.frame, mapping, now=now, tolerance=future_tolerance,
                                      source=source)
        frame = prepared.frame
        if kind != "clients":
            keys, unknown = _client_key_column(prepared, _client_keys(connection))
            if unknown is not None:
                problems.append(unknown)
        _raise(source, problems)
        notes = [n["message"] if n["column"] is None else f"{n['column']}: {n['message']}" for n in table_read.notes]
        notes.extend(prepared.notes)
        if prepared.ignored:
            notes.append(f"ignored columns: {', '.join(prepared.ignored)}")
        main = f"{_MAIN_TIME[kind]}_at"
        report = EventIngestReport(
            kind=kind, source=source, sha256=digest, status="stored", batch_id=None, rows=len(frame),
            clients=int(frame["client_id"].nunique()),
            first_at=_plain(frame[main].min()) if main in frame else None,
            last_at=_plain(frame[main].max()) if main in frame else None,
            mapping=prepared.used, ignored_columns=prepared.ignored, attributes=prepared.attributes, notes=notes,
        )
        if kind != "clients":
            frame = _db_columns(kind, frame.assign(client_key=keys.astype("int64")))
            table: Table = EVENT_TABLES[kind].__table__  # type: ignore[attr-defined]
        batch = Batch(
            source_name=source, kind=batch_kind(kind), row_count=len(frame), sha256=digest,
            columns={"mapping": prepared.used, "ignored": prepared.ignored, "attributes": prepared.attributes},
            labelled=False, warnings=[{"column": None, "message": n} for n in notes],
        )
        session.add(batch)
        session.flush()
        assert batch.id is not None
        report.batch_id = batch.id
        if kind == "clients":
            report.inserted, report.replaced = _store_clients(session, prepared, batch.id)
        else:
            if kind in _NATURAL_KEYS:
                report.replaced = _replace_by_key(connection, table, frame, kind)
            columns = [c.name for c in table.columns if c.name != "id" and (c.name in frame or c.name == "batch_id")]
            rows = frame.assign(batch_id=batch.id)[columns]
            report.inserted = bulk_insert(connection, table, rows) - report.replaced
    return report


__all__ = ["APPEND_ONLY", "DEFAULT_FUTURE_TOLERANCE", "EventIngestReport", "batch_kind", "duplicate_report",
           "ingest_events", "merge_problems", "parse_times"]
