"""The as-of date of each row of a client file: the date its features describe.

Why it matters: a monthly CRM export describes every client *at the month's end*, and its
label says whether the client left within the churn horizon after that date.  Without the
date, training would take each client's newest record and learn the calendar instead of
churn.

Where the date comes from, in this order:

1. the column named by ``CHURNGUARD_AS_OF_COLUMN`` (remembered in the dataset schema), one
   value for the whole file or one per row;
2. ``churnguard ingest --as-of D``;
3. the ingest time.

A file without the named column falls back to 2 or 3 with a warning.  Dates are read like
the event tables' timestamps (``storage.events.ingest.parse_times``): ISO 8601 (naive = UTC;
``2024-03-31``, ``2024-03-31 12:00``), ``31.03.2024``, and ``31/03/2024`` or ``03/31/2024``
only when a day above 12 somewhere in the column tells which is meant; a column where every
such date could be either is refused rather than guessed.  The choice made is stated in a
warning.  Blank, unreadable and future dates are refused with the rows and examples, before
anything is stored; the column itself is never stored as a feature.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd

from storage.errors import IngestRejected
from storage.events.ingest import DEFAULT_FUTURE_TOLERANCE, parse_times
from storage.readers import Note, Table, reject
from storage.schema import Schema

COLUMN, FLAG, INGEST_TIME, LATEST_RECORD = "column", "flag", "ingest_time", "latest_record"
EARLIEST = datetime(1900, 1, 1)
_EXAMPLES = 5
_AMBIGUOUS = ("%d/%m/%Y", "%m/%d/%Y")


@dataclass
class AsOfDates:
    """How a batch is dated.  ``values`` holds one naive-UTC date per row when the file's
    column or ``--as-of`` gave them; None means the batch is dated when it is stored (the
    ingest time, or for outcomes without features, the date of each client's latest record)."""

    source: str  # column | flag | ingest_time (latest_record is decided when storing)
    values: list[datetime] | None = None
    column: str | None = None
    notes: list[Note] = field(default_factory=list)


def naive_utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo is not None else moment


def check_date(moment: datetime, *, what: str, now: datetime,
               tolerance: timedelta = DEFAULT_FUTURE_TOLERANCE) -> datetime:
    """A user-given date (``--as-of``) as naive UTC, refused when in the future or before 1900."""
    moment = naive_utc(moment)
    if moment > now + tolerance:
        raise reject(f"{what} {moment:%Y-%m-%d %H:%M} is in the future (now {now:%Y-%m-%d %H:%M} UTC): an as-of "
                     "date is the date the data describes, so it cannot be later than today",
                     "future_as_of", as_of=moment.isoformat())
    if moment < EARLIEST:
        raise reject(f"{what} {moment:%Y-%m-%d} is before 1900; check the date", "bad_as_of",
                     as_of=moment.isoformat())
    return moment


def resolve_as_of(table: Table, schema: Schema, *, flag: datetime | None, now: datetime,
                  tolerance: timedelta = DEFAULT_FUTURE_TOLERANCE) -> tuple[Table, AsOfDates]:
    """The table without its as-of column, and the dates of its rows (see the module docstring).

    Raises ``IngestRejected`` for a bad schema (the as-of column is also the id or the label
    column), blank, unreadable or future dates."""
    column = schema.as_of_column
    if flag is not None:
        flag = check_date(flag, what="--as-of", now=now, tolerance=tolerance)
    if column and column in (schema.id_column, schema.label_column):
        which = "id" if column == schema.id_column else "label"
        raise reject(f"the as-of column and the {which} column are both {column!r}; they must differ "
                     "(CHURNGUARD_AS_OF_COLUMN)", "bad_schema", column=column)
    if not column or column not in table.frame.columns:
        source = FLAG if flag is not None else INGEST_TIME
        dates = AsOfDates(source=source, values=None if flag is None else [flag] * table.rows)
        if column:
            fallback = f"--as-of {flag:%Y-%m-%d %H:%M}" if flag is not None else "the ingest time"
            dates.notes.append({"column": column, "message": (
                f"no as-of column {column!r} (CHURNGUARD_AS_OF_COLUMN) in this file: its rows are dated by "
                f"{fallback}")})
        return table, dates
    values, note = parse_column(table.frame[column], column, table.source_name, now=now, tolerance=tolerance)
    dates = AsOfDates(source=COLUMN, values=values, column=column)
    if note:
        dates.notes.append({"column": column, "message": note})
    if flag is not None:
        dates.notes.append({"column": column, "message": (
            f"--as-of {flag:%Y-%m-%d} was not used: the file's own as-of column {column!r} dates its rows")})
    remaining = table.frame.drop(columns=[column])
    types = {name: kind for name, kind in table.column_types.items() if name != column}
    return replace(table, frame=remaining, column_types=types), dates


def _rows(mask: np.ndarray, limit: int = _EXAMPLES) -> list[int]:
    """1-based data rows (row 1 is the first row after the header), as validation counts them."""
    return [int(p) + 1 for p in np.flatnonzero(mask)[:limit]]


def _refusal(source: str, column: str, mask: np.ndarray, text: pd.Series, why: str, problem: str) -> IngestRejected:
    rows = _rows(mask)
    examples = [str(v) for v in text.to_numpy()[mask][:_EXAMPLES]]
    shown = f"; e.g. {', '.join(repr(e) for e in examples)}" if examples and problem != "missing_as_of" else ""
    return reject(
        f"{source}: as-of column {column!r} {why} in {int(mask.sum())} row(s), at data rows "
        f"{', '.join(map(str, rows))} (row 1 = first row after the header){shown}",
        problem, column=column, rows=rows, row_kind="data row", examples=examples,
    )


def _ambiguous(text: pd.Series) -> np.ndarray:
    """Cells that read as a date both day-first and month-first, differently (01/02/2024)."""
    readings = [pd.to_datetime(text, format=fmt, errors="coerce") for fmt in _AMBIGUOUS]
    return (readings[0].notna() & readings[1].notna() & (readings[0] != readings[1])).to_numpy()


def parse_column(series: pd.Series, column: str, source: str, *, now: datetime,
                 tolerance: timedelta = DEFAULT_FUTURE_TOLERANCE) -> tuple[list[datetime], str | None]:
    """Each row's date as naive UTC, and a note saying how non-ISO dates were read; refuses
    blank, unreadable (or ambiguous) and future dates, and dates before 1900."""
    text = series.astype(object).where(series.notna(), None)
    blank = np.array([v is None or not str(v).strip() for v in text.tolist()], dtype=bool)
    if blank.any():
        raise _refusal(source, column, blank, text, "is blank", "missing_as_of")
    times, bad, note = parse_times(series)
    unreadable = bad.to_numpy(dtype=bool)
    if unreadable.any():
        cells = series.astype(str).str.strip()
        ambiguous = unreadable & _ambiguous(cells)
        if ambiguous.any() and not (unreadable & ~ambiguous).any():
            raise _refusal(source, column, ambiguous, cells, "has dates that read both as day/month and as "
                           "month/day (e.g. 01/02/2024: 1 February or 2 January?); write them as YYYY-MM-DD",
                           "ambiguous_as_of")
        raise _refusal(source, column, unreadable, cells, "has values that are not dates (write them as "
                       "YYYY-MM-DD, YYYY-MM-DD HH:MM or DD.MM.YYYY)", "bad_as_of")
    values = pd.Series(times)
    early = (values < pd.Timestamp(EARLIEST)).to_numpy()
    if early.any():
        raise _refusal(source, column, early, values.astype(str), "has dates before 1900", "bad_as_of")
    future = (values > pd.Timestamp(now + tolerance)).to_numpy()
    if future.any():
        raise _refusal(source, column, future, values.dt.strftime("%Y-%m-%d %H:%M"),
                       f"has dates in the future (after {now:%Y-%m-%d %H:%M} UTC)", "future_as_of")
    return [moment.to_pydatetime() for moment in values], note


def summary(values: list[datetime]) -> dict[str, object]:
    """``{"first", "last", "count"}`` of a batch's as-of dates (ISO strings), for reports."""
    if not values:
        return {"first": None, "last": None, "count": 0}
    distinct = set(values)
    return {"first": min(distinct).isoformat(), "last": max(distinct).isoformat(), "count": len(distinct)}


__all__ = ["COLUMN", "FLAG", "INGEST_TIME", "LATEST_RECORD", "AsOfDates", "check_date", "naive_utc",
           "parse_column", "resolve_as_of", "summary"]
