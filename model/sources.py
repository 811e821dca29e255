"""Where a model's rows come from: one interface over flat CRM snapshots and event history.

Every row ChurnGuard learns from, scores or monitors is *a client as of a date*: the
features known at that date and, once it is known, whether the client left within the churn
horizon after it.  Two kinds of data give such rows:

* **snapshots** — flat CRM exports (one row per client, often one file per month); each stored
  record describes its client at its as-of date;
* **events** — the event tables (subscriptions, purchases, tickets, usage), from which the
  features of any date are computed point in time.

:class:`DataSource` is the one seam between them and everything else: training
(``training_data``), scoring (``lookup``, ``scoring_rows``) and monitoring (``arrivals`` for
drift and scoring on arrival, ``outcomes`` for realised recall).  The training service, the
scorer and the jobs call it and never ask which kind they hold; :func:`source_for_model`
gives the source a trained model reads from, :func:`source_for_training` the one a new model
learns from.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from sqlalchemy import and_, or_
from sqlmodel import col, select

from model.advice import INGEST_CLIENTS, INGEST_EVENT_CLIENTS, INGEST_LABELLED, INGEST_LATEST
from model.artifact import ChurnModel
from model.data_checks import LeakExclusion, exclude_leaks, flagged_leaks
from model.event_source import (
    EVENT_SCHEMA,
    FEATURES_KIND,
    GROUP_COLUMN,
    MIN_TENURE_DAYS,
    event_batch_ids,
    event_training,
    has_event_clients,
    history_problem,
    is_event_model,
    model_inputs,
    model_record,
    model_spec,
    parse_as_of,
    scoring_date,
)
from model.reasons import (
    departed_text,
    insufficient_history_text,
    no_event_history_text,
    no_record_yet_text,
    not_active_text,
    unknown_client_text,
)
from model.rules import HistoryRule, parse_history_rule
from model.validation import AS_OF
from storage.churns import CHURNS
from storage.clients import CLIENTS, column_types, current_frame, current_record
from storage.db import Database
from storage.errors import Advice, UserError
from storage.events.features import (
    DEFAULT_MAX_EVENT_TYPES,
    FeatureSpec,
    feature_description,
    features_as_of,
    features_for_client,
    is_active,
)
from storage.events.labels import data_end, labels_as_of, left_on, observation_dates
from storage.readers import NUMERIC
from storage.schema import Schema, remembered_schema
from storage.snapshots import Departure, as_of_dates, departure_of, departures, snapshot_frame
from storage.tables import Batch, ClientRecord

SNAPSHOTS, EVENTS = "snapshots", "events"
SOURCES = ("auto", "clients", "events")  # CHURNGUARD_TRAINING_SOURCE ("clients" = the snapshots)
Progress = Callable[[str], None]

SCORED, INSUFFICIENT_HISTORY, UNKNOWN_CLIENT, NOT_ACTIVE = "scored", "insufficient_history", "unknown_client", "not_active"
DEPARTED = "churned"  # known to have left: reported with when, never scored for contact


@dataclass(frozen=True)
class SourceConfig:
    """The settings a data source reads (``churnguard.Settings`` has them all)."""

    training_source: str = "auto"
    horizon_days: int = 30
    observation_every: str = "month"
    feature_windows: tuple[int, ...] = (7, 30, 90)
    history_rule: HistoryRule | None = None
    id_column: str = "customerID"
    label_column: str = "Churn"
    positive_label: str = "Yes"
    ignore_columns: tuple[str, ...] = ()
    explicit: frozenset[str] = frozenset()
    keep_leaking_columns: tuple[str, ...] = ()  # columns flagged as leaking the label, kept on purpose
    max_event_types: int = DEFAULT_MAX_EVENT_TYPES

    @classmethod
    def from_settings(cls, settings: object) -> SourceConfig:
        from storage.schema import schema_from_settings

        requested, explicit = schema_from_settings(settings)
        return cls(
            training_source=str(getattr(settings, "training_source", "auto")),
            horizon_days=int(getattr(settings, "churn_horizon_days", 30)),
            observation_every=str(getattr(settings, "observation_every", "month")),
            feature_windows=tuple(int(w) for w in getattr(settings, "feature_windows", (7, 30, 90))),
            history_rule=parse_history_rule(str(getattr(settings, "no_history_rule", "none"))),
            id_column=requested.id_column,
            label_column=requested.label_column,
            positive_label=requested.positive_label,
            ignore_columns=tuple(requested.ignore_columns),
            explicit=frozenset(explicit),
            keep_leaking_columns=tuple(getattr(settings, "keep_leaking_columns", ()) or ()),
            max_event_types=int(getattr(settings, "max_event_types", DEFAULT_MAX_EVENT_TYPES)),
        )

    @property
    def requested_schema(self) -> Schema:
        return Schema(self.id_column, self.label_column, self.positive_label, self.ignore_columns)


@dataclass(frozen=True)
class TrainingData:
    """The labelled rows (id, ``AS_OF``, features, label), the schema naming their columns, what
    a model must remember to rebuild its features, and the batches the rows came from."""

    frame: pd.DataFrame
    schema: Schema
    metadata: dict[str, Any]
    batch_ids: list[int]
    leaks: LeakExclusion | None = None  # columns flagged at ingest as leaking the label, left out


@dataclass(frozen=True)
class Lookup:
    """One client at a date: scorable (``inputs`` set) or why not (``status``, ``message``)."""

    client_id: str
    status: str
    message: str = ""
    inputs: dict[str, Any] | None = None  # what the model reads
    raw: dict[str, Any] | None = None  # what the data says, for the reasons
    as_of: datetime | None = None
    record_id: int | None = None
    advice: Advice | None = None  # what to do next, worded per channel (CLI or chat)

    @property
    def scorable(self) -> bool:
        return self.status == SCORED


@dataclass
class RowSet:
    """Clients at a date (or the rows one batch brought), ready for a model."""

    name: str  # for reports and alerts: "batch #3 (march.csv)", "clients active on 2020-06-01"
    ids: np.ndarray
    inputs: pd.DataFrame  # what the model reads
    labels: np.ndarray  # float: 0/1, NaN where the outcome is not known
    as_of: np.ndarray  # datetime64 per row
    raw: pd.DataFrame | None = None  # what the data says (reasons); None: the same as inputs
    when: datetime | None = None
    batch_id: int | None = None
    record_ids: np.ndarray | None = None
    skipped_no_history: int = 0
    departed: int = 0  # clients left out because they have already left

    def __len__(self) -> int:
        return len(self.ids)

    def subset(self, mask: np.ndarray) -> RowSet:
        mask = np.asarray(mask, dtype=bool)
        return RowSet(
            self.name, self.ids[mask], self.inputs.loc[mask].reset_index(drop=True), self.labels[mask],
            self.as_of[mask], None if self.raw is None else self.raw.loc[mask].reset_index(drop=True),
            self.when, self.batch_id, None if self.record_ids is None else self.record_ids[mask],
            self.skipped_no_history, self.departed)


class DataSource(ABC):
    """The rows of one kind of data (see the module docstring)."""

    kind: ClassVar[str]

    def __init__(self, db: Database, config: SourceConfig) -> None:
        self.db = db
        self.config = config

    @property
    @abstractmethod
    def schema(self) -> Schema:
        """Names the id and label columns of this source's frames."""

    # ------------------------------------------------------------------ training
    @abstractmethod
    def training_data(self, *, progress: Progress | None = None,
                      batch_window: Sequence[int] | None = None) -> TrainingData:
        """Every labelled row; ``batch_window`` keeps the rows of those batches only."""

    @abstractmethod
    def learnable_batches(self) -> list[int]:
        """The batches a model of this source learns from, oldest first: a new one makes a
        retrain due."""

    # ------------------------------------------------------------------ scoring
    @abstractmethod
    def scoring_date(self, as_of: object = None) -> datetime | None:
        """The date scores describe: ``as_of`` when given (never in the future), else the
        source's default (None: each client's newest record)."""

    @abstractmethod
    def lookup(self, client_id: str, *, as_of: object = None) -> Lookup:
        """One client's row at the scoring date, or why it cannot be scored."""

    @abstractmethod
    def scoring_rows(self, *, as_of: object = None, chunk_rows: int = 50_000) -> Iterator[RowSet]:
        """The active clients at the scoring date, in chunks; clients too new to judge are
        left out (counted in ``skipped_no_history``), as are those who left (``departed``)."""

    def describe(self, feature: str, value: Any) -> str | None:
        """A feature value in plain words, where the source has words for it."""
        return None

    # ------------------------------------------------------------------ monitoring
    @abstractmethod
    def arrivals(self, batch_ids: Sequence[int]) -> list[RowSet]:
        """What new batches brought that can be scored on arrival and checked for drift."""

    @abstractmethod
    def outcomes(self, batch_ids: Sequence[int], model: ChurnModel) -> list[RowSet]:
        """Rows to measure ``model`` on: realised recall where their outcome is known, an estimate
        where it is not yet; empty with nothing to measure.  The caller leaves out the rows the
        model trained on (``unseen``)."""

    def unseen(self, model: ChurnModel, rows: RowSet) -> np.ndarray:
        """Rows ``model`` never trained on: clients it never saw, or dates after its training."""
        return unseen_rows(model, rows.ids, rows.as_of)

    def same_rows(self, rows: RowSet, like: DataSource) -> RowSet:
        """``rows`` (made by the source ``like``) as this source's model reads them: the same
        clients, dates and outcomes, in the same order, so that two models can be compared on
        exactly the same clients (the shadow challenger, jobs/shadow.py).  A client record is
        the same whichever model reads it (each model picks its own columns)."""
        return rows


# ====================================================================================== helpers
def unseen_rows(model: ChurnModel, ids: np.ndarray, as_of: np.ndarray | None) -> np.ndarray:
    """Per row: True when ``model`` did not train on it.  A model that does not know its
    training clients counts every row of its training period as seen."""
    seen = model.trained_on(ids)
    newest = model.newest_training_date()
    if seen is None:
        seen = np.ones(len(ids), dtype=bool)
        if newest is None:
            return np.zeros(len(ids), dtype=bool)
    if newest is not None and as_of is not None:
        seen = seen & (pd.to_datetime(pd.Series(as_of)).to_numpy() <= np.datetime64(newest))
    return ~np.asarray(seen, dtype=bool)


# ==================================================================================== snapshots
class SnapshotSource(DataSource):
    """Flat client records: each describes its client at its as-of date."""

    kind = SNAPSHOTS

    def __init__(self, db: Database, config: SourceConfig, schema: Schema | None = None) -> None:
        super().__init__(db, config)
        self._schema = schema

    @property
    def schema(self) -> Schema:
        if self._schema is None:
            from storage.schema import resolve_schema

            with self.db.read_session() as session:
                if remembered_schema(session) is None:
                    raise UserError("no clients stored yet", advice=INGEST_CLIENTS)
                self._schema = resolve_schema(session, self.config.requested_schema, self.config.explicit)
        return self._schema

    # ---------------------------------------------------------------- training
    def training_data(self, *, progress: Progress | None = None,
                      batch_window: Sequence[int] | None = None) -> TrainingData:
        """Every (client, as-of date) row whose outcome is known.  A date whose known outcomes
        are all departures (a churn list that does not yet cover its whole horizon) is left
        out: its stayers are not known yet, and learning from its churners alone would teach
        the model that date means churn."""
        try:
            schema = self.schema
        except UserError:
            raise UserError("no data stored yet", advice=INGEST_LABELLED) from None
        if progress is not None:
            progress("loading the labelled clients at each as-of date")
        dates = [d for d in as_of_dates(self.db, horizon_days=self.config.horizon_days) if d.labelled > d.positives]
        if batch_window is not None:
            window = {int(b) for b in batch_window}
            dates = [d for d in dates if window & set(d.batch_ids)]
        frame = (snapshot_frame(self.db, schema, horizon_days=self.config.horizon_days, labelled_only=True,
                                dates=[d.as_of for d in dates]) if dates else pd.DataFrame())
        if frame.empty:
            raise UserError("no labelled clients stored: ingest a CRM export that has the label column "
                            f"{schema.label_column!r}", label_column=schema.label_column)
        batch_ids = [int(b) for b in frame.attrs.get("batch_ids", [])]
        frame, leaks = exclude_leaks(frame, flagged_leaks(self.db), ignored=schema.ignore_columns,
                                     keep=self.config.keep_leaking_columns)
        frame.attrs["batch_ids"] = batch_ids
        if leaks.excluded and progress is not None:
            progress(f"left out {len(leaks.excluded)} column(s) flagged as leaking the label")
        return TrainingData(frame, schema, {"source": SNAPSHOTS}, batch_ids, leaks)

    def learnable_batches(self) -> list[int]:
        """Labelled client batches and churn lists: either can settle outcomes."""
        with self.db.read_session() as session:
            rows = session.exec(select(Batch.id).where(
                or_(and_(col(Batch.kind) == CLIENTS, col(Batch.labelled).is_(True)), col(Batch.kind) == CHURNS))
                .order_by(col(Batch.id))).all()
        return [int(r) for r in rows if r is not None]

    # ---------------------------------------------------------------- scoring
    def scoring_date(self, as_of: object = None) -> datetime | None:
        """``as_of`` when given (each client's record of that date or the newest before it);
        None: each client's newest record."""
        if as_of is None or (isinstance(as_of, str) and not as_of.strip()):
            return None
        return parse_as_of(as_of)

    def lookup(self, client_id: str, *, as_of: object = None) -> Lookup:
        until = self.scoring_date(as_of)
        with self.db.read_session() as session:  # never waits behind an ingest (SQLite WAL)
            record = current_record(session, client_id, until)
            later = record is None and until is not None and current_record(session, client_id) is not None
            gone = None if record is None else departure_of(
                session.connection(), client_id, horizon_days=self.config.horizon_days, until=until)
        if record is None:
            if later and until is not None:
                return Lookup(client_id, UNKNOWN_CLIENT, no_record_yet_text(client_id, f"{until:%Y-%m-%d %H:%M}"),
                              as_of=until)
            return Lookup(client_id, UNKNOWN_CLIENT, unknown_client_text(client_id), as_of=until, advice=INGEST_LATEST)
        if gone is not None:
            return Lookup(client_id, DEPARTED, departed_text(client_id, self._when(gone)), record_id=record.id,
                          as_of=record.as_of)
        data = dict(record.data or {})
        rule = self.config.history_rule
        if rule is not None and rule.matches(data):
            return Lookup(client_id, INSUFFICIENT_HISTORY, insufficient_history_text(client_id, str(rule)),
                          record_id=record.id, as_of=record.as_of)
        return Lookup(client_id, SCORED, inputs=data, raw=data, record_id=record.id, as_of=record.as_of)

    def _departed(self, client_ids: Sequence[str] | None, until: datetime | None) -> dict[str, Departure]:
        return departures(self.db, client_ids, horizon_days=self.config.horizon_days, until=until)

    @staticmethod
    def _when(gone: Departure) -> str:
        if gone.left_on is not None:
            return f"on {gone.left_on:%Y-%m-%d}"
        assert gone.after is not None
        if gone.after + timedelta(days=gone.horizon_days) > datetime.now(UTC).replace(tzinfo=None):
            return f"its record of {gone.after:%Y-%m-%d} says it leaves"  # the horizon has not passed yet
        return f"within {gone.horizon_days} days after {gone.after:%Y-%m-%d}"

    def scoring_rows(self, *, as_of: object = None, chunk_rows: int = 50_000) -> Iterator[RowSet]:
        until = self.scoring_date(as_of)
        schema = self.schema
        frame = current_frame(self.db, schema, until=until)
        ids, labels, features = _split_frame(frame, schema)
        dates = frame[AS_OF].to_numpy(dtype="datetime64[ns]") if AS_OF in frame.columns else np.full(
            len(frame), np.datetime64("NaT"), dtype="datetime64[ns]")
        too_new = self._no_history(features)
        gone = np.isin(ids, list(self._departed(None, until))) if len(ids) else np.zeros(0, dtype=bool)
        keep = ~too_new & ~gone
        name = "each client's newest record" + (f" up to {until:%Y-%m-%d %H:%M}" if until is not None else "")
        rows = RowSet(name, ids[keep], features.loc[keep].reset_index(drop=True), labels[keep], dates[keep],
                      when=until, skipped_no_history=int((too_new & ~gone).sum()),
                      departed=int(gone.sum()))
        yield from _chunked(rows, chunk_rows)

    def _no_history(self, features: pd.DataFrame) -> np.ndarray:
        rule = self.config.history_rule
        return np.zeros(len(features), dtype=bool) if rule is None else rule.mask(features)

    # ---------------------------------------------------------------- monitoring
    def batch_rows(self, batch_id: int) -> RowSet | None:
        """The records one batch brought, typed like training frames."""
        with self.db.read_session() as session:
            batch = session.get(Batch, batch_id)
        if batch is None or batch.kind != CLIENTS:
            return None
        table = ClientRecord.__table__  # type: ignore[attr-defined]
        from sqlalchemy import select as sa_select

        query = sa_select(table.c.id, table.c.client_id, table.c.label, table.c.data, table.c.as_of).where(
            table.c.batch_id == batch_id)
        with self.db.read_session() as session:
            rows = session.connection().execute(query.order_by(table.c.id)).all()
        schema = self.schema
        types = column_types(self.db, [batch_id])
        present = {name for row in rows for name in (row.data or {})}
        if present - set(types):  # columns carried forward from the clients' earlier records
            types.update((n, k) for n, k in column_types(self.db).items() if n in present and n not in types)
        data = pd.DataFrame.from_records([row.data for row in rows], columns=list(types))
        columns: dict[str, Any] = {}
        for name, kind in types.items():
            if name in (schema.id_column, schema.label_column):
                continue
            values = data[name]
            if kind == NUMERIC:
                columns[name] = pd.to_numeric(values, errors="coerce").astype("float64")
            else:
                columns[name] = pd.Series([_text_cell(v) for v in values.tolist()], dtype=object)
        features = pd.DataFrame(columns, index=range(len(rows)))
        return RowSet(
            f"batch #{batch_id} ({batch.source_name})",
            np.array([str(row.client_id) for row in rows], dtype=object), features,
            np.array([np.nan if row.label is None else float(row.label) for row in rows], dtype=float),
            pd.to_datetime(pd.Series([row.as_of for row in rows], dtype=object)).to_numpy(
                dtype="datetime64[ns]"),
            when=batch.received_at, batch_id=batch_id,
            record_ids=np.array([int(row.id) for row in rows], dtype=np.int64),
        )

    def arrivals(self, batch_ids: Sequence[int]) -> list[RowSet]:
        found = []
        for batch_id in batch_ids:
            rows = self.batch_rows(batch_id)
            if rows is not None:
                found.append(rows)
        return found

    def outcomes(self, batch_ids: Sequence[int], model: ChurnModel) -> list[RowSet]:
        """The rows of each batch: their outcomes when the batch brought them (or a later one
        did), else an estimate from the calibrated probabilities."""
        return self.arrivals(batch_ids)


def _text_cell(value: Any) -> Any:
    """A stored cell of a text column: missing stays missing (a blank cell is no level "nan"),
    and numbers an older batch stored print without ".0"."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return np.nan
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _split_frame(frame: pd.DataFrame, schema: Schema) -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
    id_column, label_column = schema.id_column, schema.label_column
    ids = frame[id_column].astype(str).to_numpy() if id_column in frame.columns else np.array([], dtype=object)
    if label_column in frame.columns:
        labels = pd.to_numeric(frame[label_column], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    else:
        labels = np.full(len(frame), np.nan)
    features = frame.drop(columns=[c for c in (id_column, label_column, AS_OF) if c in frame.columns])
    return ids, labels, features.reset_index(drop=True)


def _chunked(rows: RowSet, chunk_rows: int) -> Iterator[RowSet]:
    size = max(int(chunk_rows), 1)
    if len(rows) == 0:
        yield rows
        return
    for start in range(0, len(rows), size):
        mask = np.zeros(len(rows), dtype=bool)
        mask[start:start + size] = True
        part = rows.subset(mask)
        part.skipped_no_history = rows.skipped_no_history if start == 0 else 0
        part.departed = rows.departed if start == 0 else 0
        yield part


# ======================================================================================= events
class EventSource(DataSource):
    """Event history: features computed as of any date from the event tables."""

    kind = EVENTS

    def __init__(self, db: Database, config: SourceConfig, spec: FeatureSpec | None = None,
                 horizon_days: int | None = None, every: str | None = None,
                 trained_dates: Sequence[str] = ()) -> None:
        super().__init__(db, config)
        self.spec = spec
        self.horizon_days = int(horizon_days if horizon_days is not None else config.horizon_days)
        self.every = every or config.observation_every
        self.trained_dates = [pd.Timestamp(d) for d in trained_dates]

    @property
    def schema(self) -> Schema:
        return EVENT_SCHEMA

    def _spec(self) -> FeatureSpec:
        if self.spec is None:
            raise UserError("event features need the feature spec of a model; train one first")
        return self.spec

    # ---------------------------------------------------------------- training
    def training_data(self, *, progress: Progress | None = None,
                      batch_window: Sequence[int] | None = None) -> TrainingData:
        if progress is not None:
            progress("building event features at each observation date")
        events = event_training(self.db, horizon_days=self.horizon_days, every=self.every,
                                windows=self.config.feature_windows, max_event_types=self.config.max_event_types)
        return TrainingData(events.frame, EVENT_SCHEMA, events.metadata,
                            [int(b) for b in events.frame.attrs.get("batch_ids", [])])

    def learnable_batches(self) -> list[int]:
        return event_batch_ids(self.db)

    # ---------------------------------------------------------------- scoring
    def scoring_date(self, as_of: object = None) -> datetime:
        return scoring_date(self.db, as_of)

    def lookup(self, client_id: str, *, as_of: object = None) -> Lookup:
        moment = self.scoring_date(as_of)
        when = f"{moment:%Y-%m-%d %H:%M}"
        row = features_for_client(self.db, client_id, moment, spec=self._spec())
        if row is None:
            return Lookup(client_id, UNKNOWN_CLIENT, unknown_client_text(client_id), as_of=moment, advice=INGEST_LATEST)
        if not is_active(self.db, client_id, moment):
            left = left_on(self.db, client_id, moment)
            if left is not None:
                return Lookup(client_id, DEPARTED, departed_text(client_id, f"on {left:%Y-%m-%d}"), as_of=moment)
            return Lookup(client_id, NOT_ACTIVE, not_active_text(client_id, when), as_of=moment)
        problem = history_problem(row)
        if problem is not None:
            return Lookup(client_id, INSUFFICIENT_HISTORY, no_event_history_text(client_id, problem, when),
                          as_of=moment)
        data = {key: value for key, value in row.items() if key != GROUP_COLUMN}
        return Lookup(client_id, SCORED, inputs=model_record(data), raw=data, as_of=moment)

    def scoring_rows(self, *, as_of: object = None, chunk_rows: int = 50_000) -> Iterator[RowSet]:
        moment = self.scoring_date(as_of)
        rows = self._rows_at(moment, f"clients active on {moment:%Y-%m-%d %H:%M}")
        yield from _chunked(rows, chunk_rows)

    def _rows_at(self, moment: datetime, name: str, *, labels: bool = False) -> RowSet:
        """The clients active at ``moment`` that have history to judge, with their outcomes
        when ``labels``."""
        frame = features_as_of(self.db, moment, spec=self._spec())
        too_new = no_event_history(frame)
        frame = frame.loc[~too_new].reset_index(drop=True)
        ids = frame[GROUP_COLUMN].astype(str).to_numpy()
        raw = frame.drop(columns=[GROUP_COLUMN]).reset_index(drop=True)
        outcome = (labels_as_of(self.db, moment, horizon_days=self.horizon_days, client_ids=list(ids))
                   .to_numpy(dtype=float) if labels and len(ids) else np.full(len(ids), np.nan))
        return RowSet(name, ids, model_inputs(raw), outcome, np.full(len(ids), np.datetime64(moment, "ns")), raw=raw,
                      when=moment, skipped_no_history=int(too_new.sum()))

    def describe(self, feature: str, value: Any) -> str | None:
        return feature_description(feature, value, spec=self._spec())

    def same_rows(self, rows: RowSet, like: DataSource) -> RowSet:
        """Event features depend on the model's feature spec (its windows and event types): the
        same clients at the same date are recomputed with this source's spec unless ``like``
        has the same one."""
        if (isinstance(like, EventSource) and like.spec == self.spec) or len(rows) == 0:
            return rows
        if rows.when is None:
            raise UserError("event rows without their date cannot be recomputed for another model")
        frame = features_as_of(self.db, rows.when, spec=self._spec(), client_ids=[str(i) for i in rows.ids])
        frame = frame.set_index(frame[GROUP_COLUMN].astype(str)).loc[[str(i) for i in rows.ids]].reset_index(drop=True)
        raw = frame.drop(columns=[GROUP_COLUMN])
        return RowSet(rows.name, rows.ids, model_inputs(raw), rows.labels, rows.as_of, raw=raw, when=rows.when,
                      batch_id=rows.batch_id, record_ids=rows.record_ids,
                      skipped_no_history=rows.skipped_no_history, departed=rows.departed)

    # ---------------------------------------------------------------- monitoring
    def arrivals(self, batch_ids: Sequence[int]) -> list[RowSet]:
        """The clients active at the scoring date (now, or the end of the event data)."""
        moment = self.scoring_date()
        return [self._rows_at(moment, f"event features as of {moment:%Y-%m-%d %H:%M}")]

    def outcomes(self, batch_ids: Sequence[int], model: ChurnModel) -> list[RowSet]:
        """The newest observation date whose outcome is known and that the model never trained on:
        features as of a date use only earlier events, so scoring it today gives the score the
        model would have given then."""
        end = data_end(self.db)
        if end is None:
            return []
        settled = end - timedelta(days=self.horizon_days)
        trained = self.trained_dates
        start = (max(trained) + timedelta(days=1)) if trained else settled
        dates = observation_dates(start, settled, self.every) if start <= settled else []
        if not dates:
            return []
        moment = dates[-1]
        return [self._rows_at(moment, f"the clients active on {moment:%Y-%m-%d}", labels=True)]


def no_event_history(frame: pd.DataFrame) -> np.ndarray:
    """Rows of an event feature frame too new to judge (no tenure, or under a day)."""
    if "tenure_days" not in frame.columns:
        return np.ones(len(frame), dtype=bool)
    tenure = pd.to_numeric(frame["tenure_days"], errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
    return np.asarray(np.isnan(tenure) | (tenure < MIN_TENURE_DAYS), dtype=bool)


# ==================================================================================== choosing
def source_kind(db: Database, config: SourceConfig) -> str:
    """What a new model learns from: the setting, or for "auto" the flat client table when
    labelled clients are stored, else the event history when event clients are stored."""
    source = config.training_source
    if source not in SOURCES:
        raise UserError(f"unknown training source {source!r}; use one of {', '.join(SOURCES)}", source=source)
    if source == "events":
        if not has_event_clients(db):
            raise UserError("CHURNGUARD_TRAINING_SOURCE is events but no event clients are stored: ingest a "
                            "clients table first", advice=INGEST_EVENT_CLIENTS)
        return EVENTS
    if source == "clients":
        return SNAPSHOTS
    with db.read_session() as session:
        flat = session.exec(select(ClientRecord.id).where(col(ClientRecord.label).is_not(None)).limit(1)).first()
    return EVENTS if flat is None and has_event_clients(db) else SNAPSHOTS


def source_for_training(db: Database, config: SourceConfig) -> DataSource:
    if source_kind(db, config) == EVENTS:
        return EventSource(db, config)
    return SnapshotSource(db, config)


def source_for_model(db: Database, config: SourceConfig, model: ChurnModel, *,
                     schema: Schema | None = None) -> DataSource:
    """The source ``model`` reads: the kind it learnt from, configured as it was trained."""
    if is_event_model(model):
        metadata = model.metadata_ or {}
        return EventSource(db, config, spec=model_spec(model),
                           horizon_days=int(metadata.get("horizon_days", config.horizon_days)),
                           every=str(metadata.get("observation_every", config.observation_every)),
                           trained_dates=metadata.get("training_dates") or metadata.get("observation_dates") or [])
    return SnapshotSource(db, config, schema)


def model_source_kind(model: ChurnModel) -> str:
    return EVENTS if is_event_model(model) else SNAPSHOTS


__all__ = [
    "DEPARTED",
    "EVENTS",
    "FEATURES_KIND",
    "INSUFFICIENT_HISTORY",
    "NOT_ACTIVE",
    "SCORED",
    "SNAPSHOTS",
    "SOURCES",
    "UNKNOWN_CLIENT",
    "DataSource",
    "EventSource",
    "Lookup",
    "RowSet",
    "SnapshotSource",
    "SourceConfig",
    "TrainingData",
    "no_event_history",
    "source_for_model",
    "source_for_training",
    "source_kind",
    "unseen_rows",
]
