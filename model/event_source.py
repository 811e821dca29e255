"""Models trained on CRM event history: where their training rows and their scoring rows come from.

A flat client table gives one row per client and its label.  An event store (clients,
subscriptions, purchases, tickets, usage: storage/events) gives features *as of a date*;
training then uses one row per (active client, observation date) with the label "churned
within the horizon after that date" (storage/events/labels.py).  Two things follow:

* the split and the cross-validation must keep a client's rows together (``GROUP_COLUMN``),
  or the test recall would be measured on clients the model has already seen at another date;
* a model must be scored on the very columns it was trained on, so the ``FeatureSpec``
  (windows, usage event types) is stored in the model's metadata and reused at scoring time,
  together with the horizon its probabilities refer to.

"As of now" for an export that ended in the past would score nobody (no subscription covers
today), so the default scoring date is the earlier of now and the end of the event data.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pandas as pd
from sqlalchemy import func
from sqlmodel import col, select

from storage.db import Database
from storage.errors import UserError
from storage.events.features import (
    CLIENTS,
    DEFAULT_MAX_EVENT_TYPES,
    FeatureSpec,
    feature_description,
    from_epoch,
    to_epoch,
)
from storage.events.labels import GROUP_COLUMN, data_end, training_frame
from storage.schema import Schema
from storage.tables import Batch

FEATURES_KIND = "events"
LABEL_COLUMN = "label"
AS_OF_COLUMN = "as_of"
EVENT_SCHEMA = Schema(GROUP_COLUMN, LABEL_COLUMN, "1", (AS_OF_COLUMN,))
SOURCES = ("auto", "clients", "events")
EVENT_BATCH_PREFIX = "events."  # storage.events.ingest.batch_kind
# A client who joined less than this before the scoring date has no behaviour to judge yet.
MIN_TENURE_DAYS = 1.0


def event_batch_ids(db: Database) -> list[int]:
    """The stored event batches (every event table file), oldest first: what an event model
    learns from, and what tells the retrain job that something new arrived."""
    with db.session() as session:
        rows = session.exec(select(Batch.id).where(col(Batch.kind).startswith(EVENT_BATCH_PREFIX))
                            .order_by(col(Batch.id))).all()
    return [int(r) for r in rows if r is not None]


def has_event_clients(db: Database) -> bool:
    with db.engine.connect() as connection:
        return connection.execute(select(func.count()).select_from(CLIENTS)).scalar_one() > 0


@dataclass(frozen=True)
class EventTraining:
    """The training frame of an event store and what a model trained on it must remember."""

    frame: pd.DataFrame
    metadata: dict[str, Any]


def event_training(db: Database, *, horizon_days: int, every: str, windows: Sequence[int],
                   max_event_types: int = DEFAULT_MAX_EVENT_TYPES) -> EventTraining:
    """Rows (client, observation date) with their features and labels, plus the metadata
    (``features: events``, spec, horizon) that scoring needs.  The spec keeps the
    ``max_event_types`` most frequent usage types and lists the others (``dropped_types``)."""
    raw = training_frame(db, horizon_days=horizon_days, every=every, windows=windows,
                         max_event_types=max_event_types)
    frame = model_inputs(raw)
    attrs = dict(raw.attrs)
    frame.attrs.update(attrs)
    frame.attrs["batch_ids"] = event_batch_ids(db)
    metadata = {
        "features": FEATURES_KIND,
        "feature_spec": attrs["spec"],
        "horizon_days": int(attrs["horizon_days"]),
        "observation_every": every,
        "observation_dates": [str(d) for d in attrs.get("dates", [])],
        "data_end": attrs.get("data_end"),
        "clients": int(frame[GROUP_COLUMN].nunique()),
    }
    return EventTraining(frame, metadata)


def is_event_model(model: Any) -> bool:
    """Whether a model was trained on event features (its metadata says so)."""
    metadata = getattr(model, "metadata_", None) or {}
    return metadata.get("features") == FEATURES_KIND


def model_spec(model: Any) -> FeatureSpec:
    """The feature columns an event model was trained on."""
    metadata = getattr(model, "metadata_", None) or {}
    spec = metadata.get("feature_spec")
    if not isinstance(spec, dict):
        raise UserError("the serving model says it uses event features but records no feature spec; retrain it")
    return FeatureSpec.from_dict(spec)


def scoring_date(db: Database, as_of: object = None) -> datetime:
    """The date features are computed at: ``as_of`` when given (not in the future), else the
    earlier of now and the end of the event data."""
    now = datetime.now(UTC).replace(tzinfo=None)
    if as_of is None or (isinstance(as_of, str) and not as_of.strip()):
        end = stored_data_end(db)
        return now if end is None else min(now, end)
    return parse_as_of(as_of, now=now)


def parse_as_of(as_of: object, *, now: datetime | None = None) -> datetime:
    """A user's ``--as-of`` date, refused when it cannot be read or lies in the future."""
    now = now or datetime.now(UTC).replace(tzinfo=None)
    try:
        moment = from_epoch(to_epoch(as_of.strip() if isinstance(as_of, str) else as_of))  # type: ignore[arg-type]
    except (ValueError, TypeError, OverflowError):
        raise UserError(f"--as-of must be a date such as 2024-03-31 or 2024-03-31T12:00, got {as_of!r}",
                        as_of=str(as_of)) from None
    if moment > now:
        raise UserError(f"--as-of {moment:%Y-%m-%d %H:%M} is in the future: features can only be computed from "
                        "events that have happened", as_of=moment.isoformat())
    return moment


_DATA_END: dict[str, tuple[int, datetime | None]] = {}


def stored_data_end(db: Database) -> datetime | None:
    """``data_end`` of the store, recomputed only when an event file arrived since the last
    call: it takes the maximum time of the usage table, a full scan that must not run on
    every /score."""
    with db.read_session() as session:
        newest = session.exec(select(func.max(Batch.id)).where(col(Batch.kind).startswith(EVENT_BATCH_PREFIX))).one()
    marker = int(newest or 0)
    cached = _DATA_END.get(db.url)
    if cached is not None and cached[0] == marker:
        return cached[1]
    end = data_end(db)
    _DATA_END[db.url] = (marker, end)
    return end


def history_problem(row: Mapping[str, Any]) -> str | None:
    """Why an active client's event row cannot be judged yet, or None when it can."""
    tenure = row.get("tenure_days")
    if tenure is None or (isinstance(tenure, float) and math.isnan(tenure)):
        return "no signup date and no subscription before that date"
    if float(tenure) < MIN_TENURE_DAYS:
        return "joined less than a day before that date"
    return None


_WINDOWED_TREND = re.compile(r"^(?P<base>.+)_trend_(?P<w>\d+)d$")


def model_inputs(frame: pd.DataFrame) -> pd.DataFrame:
    """Event features as the model reads them, so that "never" is not mistaken for "typical".

    The model's encoder fills a missing number with the training median, which is right for
    a value nobody recorded but wrong for these two kinds of event feature, where missing
    means something: ``days_since_last_X`` is missing when X never happened (it becomes the
    client's tenure: at least that long), and ``X_trend_wd`` is missing when the previous
    window had none (it becomes the last window's count, i.e. the change measured against
    one).  The frame keeps its raw values for the plain-words reasons; this copy goes to the
    model."""
    out = frame.copy()
    tenure = pd.to_numeric(out["tenure_days"], errors="coerce") if "tenure_days" in out.columns else None
    for column in out.columns:
        name = str(column)
        if name.startswith("days_since_last_") and tenure is not None:
            out[column] = pd.to_numeric(out[column], errors="coerce").fillna(tenure)
            continue
        match = _WINDOWED_TREND.match(name)
        last = f"{match['base']}_{match['w']}d" if match else None
        if last is not None and last in out.columns:
            out[column] = pd.to_numeric(out[column], errors="coerce").fillna(
                pd.to_numeric(out[last], errors="coerce"))
    return out


def model_record(row: Mapping[str, Any]) -> dict[str, Any]:
    """``model_inputs`` for one client's row (the same rules, no DataFrame)."""
    out = dict(row)
    tenure = _number(out.get("tenure_days"))
    for name, value in row.items():
        if _number(value) is not None or not isinstance(name, str):
            continue
        if name.startswith("days_since_last_") and tenure is not None:
            out[name] = tenure
            continue
        match = _WINDOWED_TREND.match(name)
        last = _number(row.get(f"{match['base']}_{match['w']}d")) if match else None
        if last is not None:
            out[name] = last
    return out


def _number(value: Any) -> float | None:
    if value is None or isinstance(value, bool | str):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) else number


def describe(feature: str, value: Any, spec: FeatureSpec) -> str:
    """A feature value in plain words ("2 support tickets in the last 30 days")."""
    return feature_description(feature, value, spec=spec)


__all__ = [
    "AS_OF_COLUMN",
    "EVENT_SCHEMA",
    "FEATURES_KIND",
    "GROUP_COLUMN",
    "LABEL_COLUMN",
    "MIN_TENURE_DAYS",
    "SOURCES",
    "EventTraining",
    "describe",
    "event_batch_ids",
    "event_training",
    "has_event_clients",
    "history_problem",
    "is_event_model",
    "model_inputs",
    "model_record",
    "model_spec",
    "parse_as_of",
    "scoring_date",
    "stored_data_end",
]
