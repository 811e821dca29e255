"""Point-in-time client features as of a date D, aggregated inside the database.

The rule that makes a reported recall honest: a feature at D uses only what was known
before D.  Concretely, with ``d`` = D in epoch seconds (whole seconds, UTC):

* an event counts when ``ts < d``; a trailing window of ``w`` days is ``[D - w days, D)``,
  i.e. ``d - w*86400 <= ts < d`` (the convention of the usual churn SQL, e.g. 28-day
  counts as ``event_time >= D - interval '28 day' and event_time < D``);
* the previous window, used for trends, is ``[D - 2w days, D - w days)``;
* a ticket is open at D when ``opened_ts < d`` and it has no ``closed_ts`` or
  ``closed_ts >= d``;
* a subscription is active at D when ``start_ts <= d`` and it has no ``end_ts`` or
  ``end_ts > d``; the clients active at D are the scoring candidates (``active_clients``),
  less those whose churn date from the clients table is on or before D.

Each event table is scanned once by one GROUP BY query (filtered aggregates per window),
so time and memory grow with the database's work, not with Python: what reaches pandas is
one row per client (per usage-event type), never the events.  Pandas then only joins
those rows, fills "no events" with 0 and derives the per-client ratios (trends) and
day counts from the aggregates.

Feature names (``w`` each window, ``<t>`` each usage event type, see ``FeatureSpec``):

``purchases_<w>d``, ``purchase_amount_<w>d``, ``tickets_<w>d``, ``events_<w>d`` (all usage
events), ``usage_<t>_<w>d`` (events of type t), ``usage_<t>_value_<w>d`` (sum of the value,
for types that carry values); ``<X>_trend_<w>d`` for purchases, purchase_amount,
tickets, events and each usage type = (last window - previous window) / previous window:
0 when both are 0, NaN when only the previous one is 0 (growth from nothing has no ratio);
``days_since_last_purchase``, ``days_since_last_ticket``, ``days_since_last_event``,
``days_since_last_usage_<t>`` (fractional days; NaN when there is none before D);
``open_tickets``, ``monthly_amount`` (sum over active subscriptions), ``active_subscriptions``,
``plan`` (of the active subscription with the highest monthly amount, then the latest
start, then the first stored), ``tenure_days`` (since the signup date, or the first
subscription start when the clients table has none), then the clients' static attributes
(a date attribute X becomes ``X_days``: days from it to D).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from sqlalchemy import Connection, Select, Text, and_, cast, func, literal, or_, select
from sqlalchemy.orm import aliased

from storage.errors import NotFound, UserError
from storage.events.tables import EventClient, EventPurchase, EventSubscription, EventTicket, EventUsage
from storage.events.types import named_types

if TYPE_CHECKING:  # storage.db imports storage.events.tables; only types are needed here
    from storage.db import Database

DAY = 86_400
DEFAULT_WINDOWS: tuple[int, ...] = (7, 30, 90)
# Usage event types that get their own columns (CHURNGUARD_MAX_EVENT_TYPES): 7 to 10 columns
# each with three windows, so 100 types make 700-1000 columns, the budget CHURNGUARD_MAX_COLUMNS
# gives a flat export.  Real exports have far fewer types; a cap that binds is reported
# (``FeatureSpec.dropped_types``), never silent.
DEFAULT_MAX_EVENT_TYPES = 100
_DATE_VALUE = re.compile(r"^\d{4}-\d{2}-\d{2}([ T]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?$")

CLIENTS = EventClient.__table__  # type: ignore[attr-defined]
SUBSCRIPTIONS = EventSubscription.__table__  # type: ignore[attr-defined]
PURCHASES = EventPurchase.__table__  # type: ignore[attr-defined]
TICKETS = EventTicket.__table__  # type: ignore[attr-defined]
USAGE = EventUsage.__table__  # type: ignore[attr-defined]


def to_epoch(moment: datetime | date | str) -> int:
    """Whole seconds since 1970-01-01 UTC; naive datetimes and dates are UTC."""
    stamp = pd.Timestamp(moment)
    if stamp.tzinfo is not None:
        stamp = stamp.tz_convert("UTC").tz_localize(None)
    return int((stamp - pd.Timestamp("1970-01-01")) // pd.Timedelta(seconds=1))


def from_epoch(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC).replace(tzinfo=None)


def _slug(name: str) -> str:
    text = re.sub(r"[^0-9a-z]+", "_", name.strip().lower()).strip("_")
    return text or "type"


@dataclass(frozen=True)
class FeatureSpec:
    """Which feature columns exist: the windows and the usage event types.

    The event types are part of the spec, not read afresh at every date, so that a model
    trained on some columns is scored on the same ones.  Save ``as_dict()`` with the
    model and pass ``FeatureSpec.from_dict(...)`` back when scoring.  ``dropped_types``
    are the rarer types the cap left without columns (they still count in ``events_<w>d``),
    kept so that training can say which."""

    windows: tuple[int, ...] = DEFAULT_WINDOWS
    event_types: tuple[str, ...] = ()
    valued_types: tuple[str, ...] = ()
    dropped_types: tuple[str, ...] = field(default=(), compare=False)
    _slugs: dict[str, str] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        windows = tuple(int(w) for w in self.windows)
        if not windows or any(w <= 0 for w in windows) or len(set(windows)) != len(windows):
            raise UserError(f"feature windows must be distinct positive numbers of days, got {list(self.windows)}",
                            windows=list(self.windows))
        object.__setattr__(self, "windows", windows)
        slugs: dict[str, str] = {}
        taken: set[str] = set()
        for name in self.event_types:
            base = slug = _slug(name)
            n = 2
            while slug in taken:
                slug, n = f"{base}_{n}", n + 1
            taken.add(slug)
            slugs[name] = slug
        object.__setattr__(self, "_slugs", slugs)

    def slug(self, event_type: str) -> str:
        return self._slugs[event_type]

    @property
    def type_labels(self) -> dict[str, str]:
        """Column slug -> the event type as the data spells it (for descriptions)."""
        return {slug: name for name, slug in self._slugs.items()}

    def as_dict(self) -> dict[str, Any]:
        spec: dict[str, Any] = {"windows": list(self.windows), "event_types": list(self.event_types),
                                "valued_types": list(self.valued_types)}
        if self.dropped_types:
            spec["dropped_types"] = list(self.dropped_types)
        return spec

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FeatureSpec:
        return cls(tuple(data.get("windows", DEFAULT_WINDOWS)), tuple(data.get("event_types", ())),
                   tuple(data.get("valued_types", ())), tuple(data.get("dropped_types", ())))

    def event_columns(self) -> list[str]:
        """Every feature column derived from events and subscriptions, in output order."""
        names: list[str] = []
        slugs = [self.slug(t) for t in self.event_types]
        valued = [self.slug(t) for t in self.event_types if t in self.valued_types]
        for w in self.windows:
            names += [f"purchases_{w}d", f"purchase_amount_{w}d", f"tickets_{w}d", f"events_{w}d"]
            names += [f"usage_{s}_{w}d" for s in slugs]
            names += [f"usage_{s}_value_{w}d" for s in valued]
        for w in self.windows:
            names += [f"{base}_trend_{w}d" for base in ("purchases", "purchase_amount", "tickets", "events")]
            names += [f"usage_{s}_trend_{w}d" for s in slugs]
        names += ["days_since_last_purchase", "days_since_last_ticket", "days_since_last_event"]
        names += [f"days_since_last_usage_{s}" for s in slugs]
        names += ["open_tickets", "monthly_amount", "active_subscriptions", "plan", "tenure_days"]
        return names


def feature_spec(db: Database, *, before: datetime | None = None, windows: Sequence[int] = DEFAULT_WINDOWS,
                 max_event_types: int = DEFAULT_MAX_EVENT_TYPES) -> FeatureSpec:
    """The spec with the ``max_event_types`` most frequent usage event types among events
    before ``before`` (all events when None); types with any value get value sums.  Ties in
    frequency go to the alphabetically first type, so the choice is reproducible."""
    with db.engine.connect() as connection:
        return _spec_query(connection, None if before is None else to_epoch(before), windows, max_event_types)


def _spec_query(connection: Connection, d: int | None, windows: Sequence[int], max_event_types: int) -> FeatureSpec:
    condition = USAGE.c.ts < d if d is not None else literal(True)
    # SQLite has no hash aggregate: GROUP BY event_type alone sorts every event (65 s for
    # 9M), while (client_key, event_type) streams along the covering index; the per-type
    # sums are then taken over those (at most clients x types) rows.
    group = (USAGE.c.client_key, USAGE.c.event_type) if connection.dialect.name == "sqlite" else (USAGE.c.event_type,)
    query = (select(USAGE.c.event_type.label("etype"), func.count().label("n_all"),
                    func.count(USAGE.c.value).label("v_all"))
             .where(condition).group_by(*group))
    return _spec_from_counts(named_types(connection, _frame(connection, query)), windows, max_event_types)


def _spec_from_counts(counts: pd.DataFrame, windows: Sequence[int], max_event_types: int) -> FeatureSpec:
    """The spec from per-type event counts (``etype``, ``n_all``, ``v_all``; several rows
    per type are summed)."""
    if counts.empty:
        return FeatureSpec(tuple(windows))
    totals = counts.groupby("etype")[["n_all", "v_all"]].sum()
    events = {str(k): int(v) for k, v in totals["n_all"].items()}
    values = {str(k): int(v) for k, v in totals["v_all"].items()}
    ranked = sorted(events, key=lambda name: (-events[name], name))
    cap = max(0, int(max_event_types))
    types = tuple(ranked[:cap])
    valued = tuple(name for name in types if values[name] > 0)
    return FeatureSpec(tuple(windows), types, valued, tuple(ranked[cap:]))


# ------------------------------------------------------------------------------------------
# Population
# ------------------------------------------------------------------------------------------


def _has_subscriptions(connection: Connection) -> bool:
    return connection.execute(select(SUBSCRIPTIONS.c.id).limit(1)).first() is not None


def _active_query(connection: Connection, d: int, key: int | None = None) -> Select[Any]:
    not_churned = or_(CLIENTS.c.churn_ts.is_(None), CLIENTS.c.churn_ts > d)
    if not _has_subscriptions(connection):
        # No subscription data at all: a client is a candidate from signup until churn.
        signed = or_(CLIENTS.c.signup_ts.is_(None), CLIENTS.c.signup_ts <= d)
        query = select(CLIENTS.c.id.label("client_key")).where(signed, not_churned)
        return query if key is None else query.where(CLIENTS.c.id == key)
    covers = and_(SUBSCRIPTIONS.c.start_ts <= d,
                  or_(SUBSCRIPTIONS.c.end_ts.is_(None), SUBSCRIPTIONS.c.end_ts > d))
    query = (select(SUBSCRIPTIONS.c.client_key).distinct()
             .join(CLIENTS, CLIENTS.c.id == SUBSCRIPTIONS.c.client_key)
             .where(covers, not_churned))
    return query if key is None else query.where(SUBSCRIPTIONS.c.client_key == key)


def _active_keys(connection: Connection, d: int) -> list[int]:
    return sorted(int(k) for (k,) in connection.execute(_active_query(connection, d)))


def active_clients(db: Database, as_of: datetime | date | str) -> list[str]:
    """Client ids active at ``as_of``: a subscription covers it (start <= D < end, or no
    end) and the clients table gives no churn date on or before it.  Without any stored
    subscriptions, every client signed up by D (or without a signup date) and not churned."""
    d = to_epoch(as_of)
    with db.engine.connect() as connection:
        active = _active_query(connection, d).subquery()
        query = select(CLIENTS.c.client_id).where(CLIENTS.c.id.in_(select(active.c.client_key)))
        return sorted(str(c) for (c,) in connection.execute(query))


def is_active(db: Database, client_id: str, as_of: datetime | date | str) -> bool:
    """Whether one client is a scoring candidate at ``as_of`` (see ``active_clients``)."""
    d = to_epoch(as_of)
    with db.engine.connect() as connection:
        key = connection.execute(select(CLIENTS.c.id).where(CLIENTS.c.client_id == str(client_id))).scalar()
        if key is None:
            return False
        return connection.execute(_active_query(connection, d, int(key))).first() is not None


# ------------------------------------------------------------------------------------------
# Aggregates (one GROUP BY per table)
# ------------------------------------------------------------------------------------------


def _restrict(query: Select[Any], column: Any, keys: list[int] | None) -> Select[Any]:
    """One client by equality (an index seek), or every client (``keys`` None).

    No ``IN (...)`` lists: with ANALYZE statistics, SQLite 3.40 returned rows outside the
    time range for ``client_key IN (<2000 keys>) AND opened_ts < ?`` on the covering ticket
    index (found by bench/events.py; tests/storage/events/test_features.py keeps it honest).
    Several clients are aggregated with everyone and picked afterwards."""
    if keys is None:
        return query
    if len(keys) != 1:
        raise ValueError("restrict to exactly one client or to none")
    return query.where(column == keys[0])


def _window_sums(ts: Any, d: int, windows: Iterable[int], value: Any, prefix: str, *,
                 previous: bool = True) -> list[Any]:
    """Filtered aggregates for each window and (for trends) the window before it.

    ``agg(...) FILTER (WHERE ...)`` is standard SQL that SQLite (3.30+) and PostgreSQL both
    run; SQLite skips the aggregate step for rows the filter rejects, which measured about
    twice as fast as the portable ``SUM(CASE WHEN ...)``."""
    out = []
    for w in windows:
        last = ts >= d - w * DAY
        prev = and_(ts >= d - 2 * w * DAY, ts < d - w * DAY)
        if value is None:
            out.append(func.count().filter(last).label(f"{prefix}_{w}"))
            if previous:
                out.append(func.count().filter(prev).label(f"{prefix}_prev_{w}"))
        else:
            out.append(func.sum(value).filter(last).label(f"{prefix}_{w}"))
            if previous:
                out.append(func.sum(value).filter(prev).label(f"{prefix}_prev_{w}"))
    return out


_TEXT_COLUMNS = frozenset({"etype", "client_id", "plan", "attributes"})
_FETCH_ROWS = 50_000


def _frame(connection: Connection, query: Select[Any]) -> pd.DataFrame:
    """The result as columns of known types (keys int64, text object, the rest float64),
    converted chunk by chunk: building typed arrays directly costs a fraction of letting
    pandas infer types row by row, and only one chunk of row objects is alive at a time."""
    result = connection.execute(query)
    names = list(result.keys())
    kinds = [object if n in _TEXT_COLUMNS else ("int64" if n == "client_key" else "float64") for n in names]
    parts: list[list[np.ndarray]] = [[] for _ in names]
    for rows in result.partitions(_FETCH_ROWS):
        for i, values in enumerate(zip(*rows, strict=True)):
            parts[i].append(np.array(values, dtype=kinds[i]))
    if not parts or not parts[0]:
        return pd.DataFrame(columns=names)
    return pd.DataFrame({n: np.concatenate(p) for n, p in zip(names, parts, strict=True)}, copy=False)


def _purchases(connection: Connection, d: int, spec: FeatureSpec, keys: list[int] | None) -> pd.DataFrame:
    t = PURCHASES
    query = select(t.c.client_key, func.max(t.c.ts).label("last_ts"),
                   *_window_sums(t.c.ts, d, spec.windows, None, "n"),
                   *_window_sums(t.c.ts, d, spec.windows, t.c.amount, "amount"))
    query = _restrict(query.where(t.c.ts < d), t.c.client_key, keys).group_by(t.c.client_key)
    return _frame(connection, query)


def _tickets(connection: Connection, d: int, spec: FeatureSpec, keys: list[int] | None) -> pd.DataFrame:
    t = TICKETS
    still_open = or_(t.c.closed_ts.is_(None), t.c.closed_ts >= d)
    query = select(t.c.client_key, func.max(t.c.opened_ts).label("last_ts"),
                   func.count().filter(still_open).label("open"),
                   *_window_sums(t.c.opened_ts, d, spec.windows, None, "n"))
    query = _restrict(query.where(t.c.opened_ts < d), t.c.client_key, keys).group_by(t.c.client_key)
    return _frame(connection, query)


def _usage(connection: Connection, d: int, spec: FeatureSpec | None, windows: Sequence[int],
           keys: list[int] | None) -> pd.DataFrame:
    """One row per (client, event type) that occurs.  Grouping by the raw type follows the
    (client_key, event_type, ts, value) index, so the database streams instead of sorting;
    types outside the spec only feed the totals.  ``n_all``/``v_all`` (events and values
    before D) let the caller choose the spec's types from this same scan."""
    t = USAGE
    with_values = spec is None or bool(spec.valued_types)
    sums = _window_sums(t.c.ts, d, windows, t.c.value, "value", previous=False) if with_values else []
    query = select(t.c.event_type.label("etype"), t.c.client_key, func.max(t.c.ts).label("last_ts"),
                   func.count().label("n_all"), func.count(t.c.value).label("v_all"),
                   *_window_sums(t.c.ts, d, windows, None, "n"), *sums)
    query = _restrict(query.where(t.c.ts < d), t.c.client_key, keys).group_by(t.c.client_key, t.c.event_type)
    return named_types(connection, _frame(connection, query))  # codes -> names of an event_types table


def _subscriptions(connection: Connection, d: int, keys: list[int] | None) -> pd.DataFrame:
    t = SUBSCRIPTIONS
    other = aliased(SUBSCRIPTIONS)

    def covers(table: Any) -> Any:
        return and_(table.c.start_ts <= d, or_(table.c.end_ts.is_(None), table.c.end_ts > d))

    # The plan of the active subscription with the highest amount: a correlated lookup per
    # client on the (client_key, start_ts) index; a ROW_NUMBER() window measured 6x slower on SQLite.
    plan = (select(other.c.plan).where(other.c.client_key == t.c.client_key, covers(other))
            .order_by(other.c.monthly_amount.desc(), other.c.start_ts.desc(), other.c.id.asc())
            .limit(1).scalar_subquery())
    query = _restrict(select(t.c.client_key, func.sum(t.c.monthly_amount).label("monthly_amount"),
                             func.count().label("active_subscriptions"), plan.label("plan")).where(covers(t)),
                      t.c.client_key, keys).group_by(t.c.client_key)
    active = _frame(connection, query)
    first = _restrict(select(t.c.client_key, func.min(t.c.start_ts).label("first_start")).where(t.c.start_ts <= d),
                      t.c.client_key, keys).group_by(t.c.client_key)
    return _frame(connection, first).merge(active, on="client_key", how="left")


def _clients(connection: Connection, keys: list[int] | None) -> pd.DataFrame:
    # The JSON arrives as text and is parsed here in one pass: the driver-level JSON
    # processing per row cost more than the rest of the clients query.
    query = _restrict(select(CLIENTS.c.id.label("client_key"), CLIENTS.c.client_id, CLIENTS.c.signup_ts,
                             cast(CLIENTS.c.attributes, Text).label("attributes")), CLIENTS.c.id, keys)
    frame = _frame(connection, query)
    frame["attributes"] = [json.loads(text) if text else {} for text in frame["attributes"]]
    return frame


# ------------------------------------------------------------------------------------------
# Assembly
# ------------------------------------------------------------------------------------------


def _trend(last: np.ndarray, prev: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = (last - prev) / prev
    return np.where(prev != 0, ratio, np.where(last == 0, 0.0, np.nan))


def _days(d: int, ts: np.ndarray) -> np.ndarray:
    return (d - ts) / DAY


class _Columns:
    """Aggregate rows aligned to the output clients, read as float arrays (pandas per-column
    overhead would dominate for small stores)."""

    def __init__(self, frame: pd.DataFrame, keys: pd.Index) -> None:
        self.n = len(keys)
        if frame.empty:
            self.values: dict[str, np.ndarray] = {}
            self.frame = pd.DataFrame(index=keys)
            return
        self.frame = frame.set_index("client_key").reindex(keys)
        self.values = {}

    def get(self, name: str, fill: float | None = 0.0) -> np.ndarray:
        if name not in self.frame.columns:
            return np.full(self.n, 0.0 if fill == 0.0 else np.nan)
        if name not in self.values:
            self.values[name] = pd.to_numeric(self.frame[name], errors="coerce").to_numpy(dtype="float64",
                                                                                       na_value=np.nan)
        values = self.values[name]
        return np.where(np.isnan(values), fill, values) if fill is not None else values


def _assemble(d: int, spec: FeatureSpec, keys: pd.Index, clients: pd.DataFrame, purchases: pd.DataFrame,
              tickets: pd.DataFrame, usage: pd.DataFrame, subs: pd.DataFrame) -> pd.DataFrame:
    # Order the clients by id first, so the output is built once, in its final order
    # (every sort, join or insert on a 100k x 150 frame is another full copy in memory).
    c = clients.set_index("client_key").reindex(keys)
    order = np.argsort(c["client_id"].astype(str).to_numpy(), kind="stable")
    keys = keys[order]
    c = c.iloc[order]
    cols: dict[str, Any] = {"client_id": c["client_id"].astype(str).to_numpy()}
    p = _Columns(purchases, keys)
    t = _Columns(tickets, keys)
    if usage.empty:
        usage = pd.DataFrame(columns=["client_key", "etype", "last_ts"])
    usage = usage.drop(columns=[c for c in ("n_all", "v_all") if c in usage.columns])
    measures = [c for c in usage.columns if c not in ("client_key", "etype")]
    pooled = usage.drop(columns=["etype"]).groupby("client_key").agg(
        {c: ("max" if c == "last_ts" else "sum") for c in measures}).reset_index()
    totals = _Columns(pooled, keys)
    wanted = set(spec.event_types)
    groups = {str(name): part for name, part in usage.groupby("etype", sort=False) if str(name) in wanted}
    empty = usage.iloc[0:0]
    per_type = {name: _Columns(groups.get(name, empty).drop(columns=["etype"]), keys) for name in spec.event_types}
    s = _Columns(subs, keys)

    for w in spec.windows:
        cols[f"purchases_{w}d"] = p.get(f"n_{w}")
        cols[f"purchase_amount_{w}d"] = p.get(f"amount_{w}")
        cols[f"tickets_{w}d"] = t.get(f"n_{w}")
        cols[f"events_{w}d"] = totals.get(f"n_{w}")
        for name in spec.event_types:
            cols[f"usage_{spec.slug(name)}_{w}d"] = per_type[name].get(f"n_{w}")
        for name in spec.event_types:
            if name in spec.valued_types:
                cols[f"usage_{spec.slug(name)}_value_{w}d"] = per_type[name].get(f"value_{w}")
    for w in spec.windows:
        cols[f"purchases_trend_{w}d"] = _trend(p.get(f"n_{w}"), p.get(f"n_prev_{w}"))
        cols[f"purchase_amount_trend_{w}d"] = _trend(p.get(f"amount_{w}"), p.get(f"amount_prev_{w}"))
        cols[f"tickets_trend_{w}d"] = _trend(t.get(f"n_{w}"), t.get(f"n_prev_{w}"))
        cols[f"events_trend_{w}d"] = _trend(totals.get(f"n_{w}"), totals.get(f"n_prev_{w}"))
        for name in spec.event_types:
            frame = per_type[name]
            cols[f"usage_{spec.slug(name)}_trend_{w}d"] = _trend(frame.get(f"n_{w}"), frame.get(f"n_prev_{w}"))
    cols["days_since_last_purchase"] = _days(d, p.get("last_ts", None))
    cols["days_since_last_ticket"] = _days(d, t.get("last_ts", None))
    cols["days_since_last_event"] = _days(d, totals.get("last_ts", None))
    for name in spec.event_types:
        cols[f"days_since_last_usage_{spec.slug(name)}"] = _days(d, per_type[name].get("last_ts", None))
    cols["open_tickets"] = t.get("open")
    cols["monthly_amount"] = s.get("monthly_amount")
    cols["active_subscriptions"] = s.get("active_subscriptions")
    plan = s.frame["plan"] if "plan" in s.frame.columns else pd.Series(None, index=keys, dtype=object)
    cols["plan"] = plan.astype(object).where(plan.notna(), None).to_numpy()
    start = pd.to_numeric(c["signup_ts"], errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
    start = np.where(np.isnan(start), s.get("first_start", None), start)
    cols["tenure_days"] = _days(d, start)
    for name, values in _attributes(c["attributes"], d, set(cols)).items():
        cols[name] = values
    return pd.DataFrame(cols)


def _attributes(values: pd.Series, d: int, taken: set[str]) -> dict[str, np.ndarray]:
    """Static attributes as columns; an attribute whose values are all dates becomes days to D."""
    records = [v if isinstance(v, dict) else {} for v in values.tolist()]
    frame = pd.DataFrame.from_records(records)
    out: dict[str, np.ndarray] = {}
    for column in frame.columns:
        series = frame[column]
        name = str(column)
        present = series.dropna()
        if pd.api.types.is_bool_dtype(series) or not len(present):
            array = series.astype(object).where(series.notna(), None).to_numpy()
        elif pd.api.types.is_numeric_dtype(series):
            array = series.to_numpy(dtype="float64", na_value=np.nan)
        elif pd.api.types.is_string_dtype(series) and bool(present.astype(str).str.match(_DATE_VALUE).all()):
            stamps = pd.to_datetime(series.astype(object).where(series.notna(), None), format="ISO8601",
                                    utc=True, errors="coerce").dt.tz_localize(None)
            seconds = (stamps - pd.Timestamp("1970-01-01")) // pd.Timedelta(seconds=1)
            array = _days(d, seconds.to_numpy(dtype="float64", na_value=np.nan))
            name = f"{name}_days"
        else:
            array = series.astype(object).where(series.notna(), None).to_numpy()
        if name in taken or name in out or name in ("as_of", "label"):
            name = f"attr_{name}"
        out[name] = array
    return out


def _keys_for(connection: Connection, client_ids: Sequence[str]) -> list[int]:
    wanted = [str(c) for c in dict.fromkeys(client_ids)]
    found: dict[str, int] = {}
    for start in range(0, len(wanted), 1000):
        chunk = wanted[start : start + 1000]
        query = select(CLIENTS.c.client_id, CLIENTS.c.id).where(CLIENTS.c.client_id.in_(chunk))
        found.update({str(c): int(k) for c, k in connection.execute(query)})
    missing = [c for c in wanted if c not in found]
    if missing:
        raise NotFound(
            f"{len(missing)} client(s) are not in the stored clients table: "
            f"{', '.join(repr(m) for m in missing[:5])}{' ...' if len(missing) > 5 else ''}",
            client_ids=missing[:20], count=len(missing))
    return sorted(found.values())


def _empty_frame(spec: FeatureSpec, d: int) -> pd.DataFrame:
    frame = pd.DataFrame(columns=["client_id", *spec.event_columns()])
    frame.attrs["as_of"] = from_epoch(d).isoformat()
    frame.attrs["spec"] = spec.as_dict()
    return frame


def features_as_of(
    db: Database,
    as_of: datetime | date | str,
    *,
    windows: Sequence[int] = DEFAULT_WINDOWS,
    client_ids: Sequence[str] | None = None,
    spec: FeatureSpec | None = None,
    max_event_types: int = DEFAULT_MAX_EVENT_TYPES,
) -> pd.DataFrame:
    """One row per client with ``client_id``, the event features at ``as_of`` (see the
    module docstring for every name and rule) and the static client attributes.

    ``client_ids`` None means the clients active at ``as_of`` (the scoring candidates);
    otherwise exactly those clients, active or not (unknown ids raise ``NotFound``).
    ``spec`` fixes the columns (pass the model's); by default the windows given and the
    ``max_event_types`` most frequent usage types before ``as_of`` (the others are listed in
    ``frame.attrs["spec"]["dropped_types"]``).  Missing numbers are NaN, no events are 0.
    """
    d = to_epoch(as_of)
    with db.engine.connect() as connection:
        keys = _active_keys(connection, d) if client_ids is None else _keys_for(connection, client_ids)
        if not keys:
            return _empty_frame(spec or _spec_query(connection, d, windows, max_event_types), d)
        restrict = keys if len(keys) == 1 else None
        if spec is None and restrict is not None:
            # The usage scan below covers only these clients; the types come from all of them.
            spec = _spec_query(connection, d, windows, max_event_types)
        usage = _usage(connection, d, spec, spec.windows if spec is not None else windows, restrict)
        if spec is None:
            spec = _spec_from_counts(usage, windows, max_event_types)
        index = pd.Index(keys, name="client_key")
        parts = (_clients(connection, restrict), _purchases(connection, d, spec, restrict),
                 _tickets(connection, d, spec, restrict), usage, _subscriptions(connection, d, restrict))
    frame = _assemble(d, spec, index, *parts)
    frame.attrs["as_of"] = from_epoch(d).isoformat()  # attrs stay JSON-friendly (Parquet stores them)
    frame.attrs["spec"] = spec.as_dict()
    return frame


def features_for_client(db: Database, client_id: str, as_of: datetime | date | str, *,
                        spec: FeatureSpec | None = None,
                        windows: Sequence[int] = DEFAULT_WINDOWS) -> dict[str, Any] | None:
    """The features of one client at ``as_of`` (same values as ``features_as_of``), or None
    when the client is not in the event store.  Index lookups only, when ``spec`` is given
    (without it the usage types are counted over the whole usage table first)."""
    try:
        frame = features_as_of(db, as_of, windows=windows, client_ids=[str(client_id)], spec=spec)
    except NotFound:
        return None
    row = frame.iloc[0].to_dict()
    out: dict[str, Any] = {}
    for key, value in row.items():
        if isinstance(value, np.generic):
            value = value.item()
        out[str(key)] = value
    return out


# ------------------------------------------------------------------------------------------
# Plain words
# ------------------------------------------------------------------------------------------


def _count(value: float) -> str:
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.1f}"


def _money(value: float) -> str:
    return f"{value:,.2f}".rstrip("0").rstrip(".") if not float(value).is_integer() else f"{value:,.0f}"


def _plural(value: float, word: str, plural: str | None = None) -> str:
    return f"{_count(value)} {word if value == 1 else (plural or word + 's')}"


_WINDOWED = re.compile(r"^(?P<base>.+?)_(?P<trend>trend_)?(?P<w>\d+)d$")


def _thing(base: str, labels: dict[str, str]) -> tuple[str, str, str]:
    """(singular, plural, kind) for a windowed feature base."""
    if base == "purchases":
        return "purchase", "purchases", "count"
    if base == "purchase_amount":
        return "purchase spending", "purchase spending", "money"
    if base == "tickets":
        return "support ticket", "support tickets", "count"
    if base == "events":
        return "product event", "product events", "count"
    if base.startswith("usage_") and base.endswith("_value"):
        slug = base[len("usage_"):-len("_value")]
        name = labels.get(slug, slug.replace("_", " "))
        return f"total '{name}' value", f"total '{name}' value", "value"
    if base.startswith("usage_"):
        slug = base[len("usage_"):]
        name = labels.get(slug, slug.replace("_", " "))
        return f"'{name}' event", f"'{name}' events", "count"
    words = base.replace("_", " ")
    return words, words, "value"


def feature_description(name: str, value: Any, *, spec: FeatureSpec | None = None) -> str:
    """A feature and its value in plain words, for the reasons shown to a retention team:
    ``("tickets_30d", 2)`` -> "2 support tickets in the last 30 days"."""
    labels = spec.type_labels if spec is not None else {}
    missing = value is None or (isinstance(value, float) and math.isnan(value))
    if name.startswith("days_since_last_"):
        what = name[len("days_since_last_"):]
        noun = {"purchase": "purchase", "ticket": "support ticket", "event": "product event"}.get(what)
        if noun is None and what.startswith("usage_"):
            slug = what[len("usage_"):]
            noun = f"'{labels.get(slug, slug.replace('_', ' '))}' event"
        noun = noun or what.replace("_", " ")
        if missing:
            return f"no {noun} yet"
        days = float(value)
        return f"{_plural(round(days), 'day')} since the last {noun}"
    if name == "open_tickets":
        return "no open support tickets" if missing or value == 0 else \
            f"{_plural(float(value), 'open support ticket')}"
    if name == "monthly_amount":
        return "no active subscription" if missing else f"monthly recurring amount of {_money(float(value))}"
    if name == "active_subscriptions":
        return "no active subscription" if missing or value == 0 else _plural(float(value), "active subscription")
    if name == "plan":
        return "no active plan" if missing else f"plan '{value}'"
    if name == "tenure_days":
        if missing:
            return "unknown client since date"
        days = float(value)
        months = days / 30.44
        return f"client for {_plural(round(days), 'day')}" if months < 2 else f"client for {months:.0f} months"
    match = _WINDOWED.match(name)
    if match:
        w = int(match["w"])
        singular, plural, kind = _thing(match["base"], labels)
        window = f"the last {w} days" if w != 1 else "the last day"
        if match["trend"]:
            if missing:
                return f"{plural} in {window} after none in the {w} days before"
            change = float(value)
            if change == 0:
                return f"{plural} unchanged in {window} against the {w} days before"
            direction = "up" if change > 0 else "down"
            return f"{plural} {direction} {abs(change) * 100:.0f}% in {window} against the {w} days before"
        amount = 0.0 if missing else float(value)
        if kind == "money":
            return f"spent {_money(amount)} on purchases in {window}"
        if kind == "value":
            return f"{singular} of {_money(amount)} in {window}"
        return f"{_count(amount)} {singular if amount == 1 else plural} in {window}"
    if name.endswith("_days") and not missing:
        return f"{name[:-5].replace('_', ' ')} {_plural(round(float(value)), 'day')} before"
    shown = "unknown" if missing else (_money(float(value)) if isinstance(value, (int, float)) else value)
    return f"{name.replace('_', ' ')}: {shown}"


__all__ = [
    "DAY",
    "DEFAULT_MAX_EVENT_TYPES",
    "DEFAULT_WINDOWS",
    "FeatureSpec",
    "active_clients",
    "feature_description",
    "feature_spec",
    "features_as_of",
    "features_for_client",
    "from_epoch",
    "is_active",
    "to_epoch",
]
