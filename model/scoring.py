"""Scores for people: one client with reasons, the riskiest active clients, and batch runs.

The same ``Scorer`` serves the command line and the bot, so a client gets the same answer
and the same words in both.  One client is scored from its stored record through the
model's numpy path (no DataFrame), because the bot answers one question at a time and must
stay fast; lists and batch runs go through the vectorised frame path in chunks.

Statuses: ``scored``; ``insufficient_history`` when the configurable rule
(``CHURNGUARD_NO_HISTORY_RULE``) says the record is too new to judge; ``unknown_client``
when no record has the id; ``not_active`` (event models only) when no subscription covers
the scoring date, i.e. the client has already left or not yet started.  A malformed id (empty, over 200 characters, control
characters) is an input error, not a status: it raises ``MalformedId``.

A model trained on event history (model/event_source.py) is scored on features computed
from the event store as of a date (``as_of``; by default the earlier of now and the end of
the event data), on the columns recorded in the model, and its reasons are described in plain
words ("2 support tickets in the last 30 days raise risk").

"Active" clients (for ``top``) are the latest records that are not known to have left:
a latest record labelled as churned (label 1) is a client who is already gone, so the
retention team cannot act on it.  Unlabelled and label-0 records are active.
"""

from __future__ import annotations

import io
import logging
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import func, insert
from sqlmodel import select

from model.advice import INGEST_CLIENTS, INGEST_LATEST
from model.artifact import ChurnModel, Contribution
from model.chart_labels import literal
from model.event_source import (
    GROUP_COLUMN,
    MIN_TENURE_DAYS,
    describe,
    history_problem,
    is_event_model,
    model_inputs,
    model_record,
    model_spec,
    scoring_date,
)
from model.reasons import (
    insufficient_history_text,
    malformed_id_text,
    no_event_history_text,
    not_active_text,
    reason_dict,
    reason_text,
    unknown_client_text,
)
from model.registry import NoChampion, Registry, Serving
from model.rules import HistoryRule, risk_band, risk_bands
from storage.clients import CLIENTS, get_latest, load_frame
from storage.db import Database
from storage.errors import Advice, Channel, UserError
from storage.events.features import FeatureSpec, features_as_of, features_for_client, is_active
from storage.ids import id_problem, visible
from storage.schema import Schema, remembered_schema
from storage.tables import Batch, Prediction, utcnow

log = logging.getLogger(__name__)

SCORED, INSUFFICIENT_HISTORY, UNKNOWN_CLIENT = "scored", "insufficient_history", "unknown_client"
NOT_ACTIVE = "not_active"
MAX_TOP = 10_000
CHUNK_ROWS = 50_000
EXPORT_CHUNK_ROWS = 5_000  # rows explained and handed to the writer at a time (see Scorer.flagged_ranking)


class MalformedId(UserError):
    """A client id that cannot be one: empty, too long, or with control characters."""


def clean_client_id(client_id: object) -> str:
    """The id with surrounding blanks removed; ``MalformedId`` when it cannot be a client id
    (the rule every ingest applies too: ``storage.ids.id_problem``)."""
    text = str(client_id if client_id is not None else "").strip()
    problem = id_problem(text)
    if problem is not None:
        shown = visible(text[:40]) + ("…" if len(text) > 40 else "")
        raise MalformedId(malformed_id_text(problem), status="malformed_id", client_id=shown)
    return text


@dataclass(frozen=True)
class ScoreResult:
    """One client's answer; ``reasons`` are strongest first (pred_contrib, log-odds)."""

    client_id: str
    status: str
    message: str
    probability: float | None = None
    risk_band: str | None = None
    flagged: bool | None = None
    threshold: float | None = None
    model_version: str | None = None
    reasons: tuple[Contribution, ...] = ()
    warnings: tuple[str, ...] = ()
    record_id: int | None = None
    as_of: str | None = None
    # What to do next when the client was not scored (the command line and a chat word it
    # differently); ``message`` is channel-neutral and ends where the advice starts.
    advice: Advice | None = None

    @property
    def scored(self) -> bool:
        return self.status == SCORED

    def to_dict(self) -> dict[str, Any]:
        return {
            "client_id": self.client_id,
            "status": self.status,
            "probability": self.probability,
            "risk_band": self.risk_band,
            "flagged": self.flagged,
            "threshold": self.threshold,
            "model_version": self.model_version,
            "reasons": [reason_dict(item) for item in self.reasons],
            "message": self.message_for("cli"),
            "warnings": list(self.warnings),
            "as_of": self.as_of,
        }

    def message_for(self, channel: Channel) -> str:
        return self.message + (self.advice.text(channel) if self.advice is not None else "")

    def to_text(self, channel: Channel = "cli") -> str:
        if not self.scored:
            return self.message_for(channel)
        assert self.probability is not None and self.threshold is not None
        lines = [
            f"Client {self.client_id}: churn risk {self.probability:.1%}, {self.risk_band} "
            f"({'flagged for contact' if self.flagged else 'not flagged'}; threshold {self.threshold:.1%}, "
            f"model {self.model_version})",
        ]
        if self.as_of:
            lines.append(f"Features as of {self.as_of}.")
        if self.reasons:
            lines.append("Main reasons:")
            lines += [f"  - {reason_text(item)}" for item in self.reasons]
        lines += [f"Warning: {warning}" for warning in self.warnings]
        return "\n".join(lines)


@dataclass(frozen=True)
class BatchRun:
    """The outcome of ``score_all``."""

    run_id: str
    model_version: str
    scored: int
    flagged: int
    insufficient_history: int
    bands: dict[str, int] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "model_version": self.model_version,
            "scored": self.scored,
            "flagged": self.flagged,
            "insufficient_history": self.insufficient_history,
            "risk_bands": self.bands,
            "warnings": list(self.warnings),
        }

    def to_text(self) -> str:
        bands = ", ".join(f"{name} {count}" for name, count in self.bands.items())
        lines = [
            f"Scored {self.scored} client(s) with model {self.model_version} (run {self.run_id}): "
            f"{self.flagged} flagged; {bands or 'no bands'}.",
        ]
        if self.insufficient_history:
            lines.append(f"{self.insufficient_history} client(s) skipped: too little history to score.")
        lines += [f"Warning: {warning}" for warning in self.warnings]
        return "\n".join(lines)


@dataclass(frozen=True)
class FlaggedList:
    """Every flagged active client, riskiest first, handed out a chunk at a time.

    ``chunks`` is a one-pass iterator of lists of ``ScoreResult`` (each with its reasons);
    ranks follow from the order.  ``as_of`` is the date the list describes: for a model on
    event history the date its features are computed at; for a model on the client table
    (whose records carry no date of their own) the arrival of the newest client batch.
    ``active`` counts the clients ranked, ``total`` those flagged (the rows to come)."""

    model_version: str
    champion: str  # the version the database names; differs when a previous champion stands in
    threshold: float
    as_of: datetime | None
    active: int
    total: int
    warnings: tuple[str, ...]
    chunks: Iterator[list[ScoreResult]]


@dataclass(frozen=True)
class ActiveScores:
    """Every active client's probability, unranked, with the rows it came from: for callers
    that select clients before ranking them (a campaign's segment).  ``frame`` holds what
    the client record says (event models: the raw facts as of ``as_of``); ``rows`` of it are
    explained with ``Scorer.explain_active``."""

    ids: np.ndarray
    frame: pd.DataFrame
    probabilities: np.ndarray
    serving: Serving[ChurnModel]
    spec: FeatureSpec | None = None
    as_of: datetime | None = None

    @property
    def threshold(self) -> float:
        return float(self.serving.threshold)


class Scorer:
    """Scores from the serving model of a registry; safe to share across threads."""

    def __init__(
        self,
        db: Database,
        registry: Registry[ChurnModel],
        *,
        rule: HistoryRule | None,
        schema: Schema | None = None,
    ) -> None:
        self.db = db
        self.registry = registry
        self.rule = rule
        self.schema = schema

    # ------------------------------------------------------------------ one client
    def score_client(self, client_id: object, *, top: int = 3, as_of: object = None) -> ScoreResult:
        """Score one stored client; ``top`` reasons (the bot asks for more to draw a chart).
        ``as_of`` (a date) applies to models trained on event history only."""
        cid = clean_client_id(client_id)
        serving = self._event_serving()
        if serving is not None:
            return self._score_event_client(cid, serving, as_of, top)
        if as_of is not None:
            raise UserError("--as-of needs a model trained on event history; the serving model uses the client "
                            "table, which has no dates: score without --as-of", as_of=str(as_of))
        with self.db.read_session() as session:  # never waits behind an ingest (SQLite WAL)
            record = get_latest(session, cid)
        if record is None:
            return ScoreResult(cid, UNKNOWN_CLIENT, unknown_client_text(cid), advice=INGEST_LATEST)
        data = dict(record.data or {})
        if self.rule is not None and self.rule.matches(data):
            return ScoreResult(cid, INSUFFICIENT_HISTORY, insufficient_history_text(cid, str(self.rule)),
                               record_id=record.id)
        serving = self.registry.serving()
        return self._scored(cid, data, serving, top=top, record_id=record.id)

    def _scored(
        self, cid: str, data: dict[str, Any], serving: Serving[ChurnModel], *, top: int,
        record_id: int | None, probability: float | None = None, spec: FeatureSpec | None = None,
        as_of: datetime | None = None, raw: dict[str, Any] | None = None,
        explained: Sequence[Contribution] | None = None,
    ) -> ScoreResult:
        model = serving.model
        if probability is None:
            p, reasons = model.score_and_explain_record(data, top)
        elif explained is not None:  # a list's reasons, computed for a whole chunk at once
            p, reasons = probability, list(explained)
        else:
            p, reasons = probability, model.explain_record(data, top=top)
        if spec is not None:
            shown = raw if raw is not None else data  # what the event data says, not the model's fill-in
            reasons = [replace(item, value=shown.get(item.feature, item.value),
                               description=describe(item.feature, shown.get(item.feature, item.value), spec))
                       for item in reasons]
        threshold = serving.threshold
        band = risk_band(p, threshold)
        flagged = p >= threshold
        message = (
            f"Client {cid}: churn risk {p:.1%} ({band}); "
            + ("flagged for contact." if flagged else "not flagged.")
            + (f" Features as of {as_of:%Y-%m-%d %H:%M}." if as_of is not None else "")
        )
        return ScoreResult(
            client_id=cid,
            status=SCORED,
            message=message,
            probability=float(p),
            risk_band=band,
            flagged=bool(flagged),
            threshold=float(threshold),
            model_version=serving.version,
            reasons=tuple(reasons),
            warnings=serving.problems,
            record_id=record_id,
            as_of=None if as_of is None else f"{as_of:%Y-%m-%d %H:%M}",
        )

    # ------------------------------------------------------------------ many clients
    def top(self, n: int = 20, *, reasons: int = 3, as_of: object = None) -> list[ScoreResult]:
        """The ``n`` active clients with the highest churn probability, riskiest first."""
        if not isinstance(n, int) or isinstance(n, bool) or n < 1 or n > MAX_TOP:
            raise UserError(f"the number of clients must be between 1 and {MAX_TOP}, got {n!r}", n=n)
        serving = self.registry.serving()
        spec, moment = None, None
        if is_event_model(serving.model):
            spec, moment = model_spec(serving.model), scoring_date(self.db, as_of)
            frame, ids = self._event_frame(spec, moment)
        else:
            self._refuse_as_of(as_of)
            frame, ids, labels = self._latest_frame()
            keep = ~self._no_history(frame) & (labels != 1)
            frame, ids = frame.loc[keep].reset_index(drop=True), ids[keep]
        if frame.empty:
            return []
        probabilities = _predict_chunks(serving.model, frame if spec is None else model_inputs(frame))
        # Stable order: equal probabilities list by id, so the list does not shuffle between calls.
        order = np.lexsort((ids.astype(str), -probabilities))[:n]
        records = [_clean_record(record) for record in frame.iloc[order].to_dict("records")]
        # Ids come from the store, which may predate the id rule: shown with escapes, never raw.
        return [
            self._scored(visible(str(ids[i])), record if spec is None else model_record(record), serving, top=reasons,
                         record_id=None, probability=float(probabilities[i]), spec=spec, as_of=moment,
                         raw=None if spec is None else record)
            for i, record in zip(order, records, strict=True)
        ]

    def flagged_ranking(self, *, as_of: object = None, reasons: int = 3,
                        chunk_rows: int = EXPORT_CHUNK_ROWS) -> FlaggedList:
        """Every flagged active client (the clients ``top`` ranks, at or above the threshold),
        riskiest first, with ``reasons`` reasons each: the whole contact list.

        Two passes, so that the list is written as it is made and never held whole: first
        every active client's probability, in chunks (only the ids and probabilities are
        kept); then, for each chunk of ``chunk_rows`` clients of the ranking, their reasons
        from one vectorised call, yielded for the caller to write before the next chunk is
        explained.  Equal probabilities list by id, as in ``top``."""
        serving = self.registry.serving()
        spec, moment = None, None
        if is_event_model(serving.model):
            spec, moment = model_spec(serving.model), scoring_date(self.db, as_of)
            frame, ids = self._event_frame(spec, moment)
            rows = np.arange(len(frame))
        else:
            self._refuse_as_of(as_of)
            frame, all_ids, labels = self._latest_frame()
            rows = np.flatnonzero(~self._no_history(frame) & (labels != 1))
            ids = all_ids[rows]
            moment = self._clients_as_of()
        size = max(int(chunk_rows), 1)
        model, threshold = serving.model, serving.threshold
        parts = []
        for start in range(0, len(rows), CHUNK_ROWS):
            chunk = frame.iloc[rows[start:start + CHUNK_ROWS]]
            parts.append(model.predict_proba_frame(chunk if spec is None else model_inputs(chunk)))
        probabilities = np.concatenate(parts) if parts else np.empty(0)
        order = np.lexsort((ids.astype(str), -probabilities)) if len(ids) else np.empty(0, dtype=int)
        order = order[probabilities[order] >= threshold]

        def explained() -> Iterator[list[ScoreResult]]:
            for start in range(0, len(order), size):
                picked = order[start:start + size]
                part = frame.iloc[rows[picked]]
                raw = [_clean_record(record) for record in part.to_dict("records")]
                inputs = part if spec is None else model_inputs(part)
                records = raw if spec is None else [model_record(record) for record in raw]
                why = model.explain_frame(inputs, records, top=reasons)
                yield [
                    self._scored(str(ids[i]), record, serving, top=reasons, record_id=None,
                                 probability=float(probabilities[i]), spec=spec,
                                 as_of=moment if spec is not None else None,
                                 raw=None if spec is None else shown, explained=because)
                    for i, record, shown, because in zip(picked, records, raw, why, strict=True)
                ]

        return FlaggedList(serving.version, serving.pointer, float(threshold), moment, len(ids), len(order),
                           serving.problems, explained())

    def active_scores(self, *, as_of: object = None) -> ActiveScores:
        """The probability of every active client (the population ``top`` ranks: scorable, not
        known to have left), unranked."""
        serving = self.registry.serving()
        if is_event_model(serving.model):
            spec, moment = model_spec(serving.model), scoring_date(self.db, as_of)
            frame, ids = self._event_frame(spec, moment)
            inputs = model_inputs(frame)
        else:
            self._refuse_as_of(as_of)
            spec, moment = None, None
            frame, ids, labels = self._latest_frame()
            keep = ~self._no_history(frame) & (labels != 1)
            frame, ids = frame.loc[keep].reset_index(drop=True), ids[keep]
            inputs = frame
        probabilities = _predict_chunks(serving.model, inputs) if len(frame) else np.empty(0)
        return ActiveScores(ids, frame, probabilities, serving, spec, moment)

    def explain_active(self, scores: ActiveScores, rows: Sequence[int], *, reasons: int = 3) -> list[ScoreResult]:
        """``ScoreResult``s (with ``reasons`` reasons each) of the given rows of ``scores``, in that order."""
        records = [_clean_record(record) for record in scores.frame.iloc[list(rows)].to_dict("records")]
        spec = scores.spec
        return [
            self._scored(str(scores.ids[i]), record if spec is None else model_record(record), scores.serving,
                         top=reasons, record_id=None, probability=float(scores.probabilities[i]), spec=spec,
                         as_of=scores.as_of, raw=None if spec is None else record)
            for i, record in zip(rows, records, strict=True)
        ]

    def score_all(self, *, run_id: str | None = None, chunk_rows: int = CHUNK_ROWS, as_of: object = None) -> BatchRun:
        """Score every stored client (latest records; for an event model, the clients active
        at the scoring date) and store the predictions in one transaction, so a run is either
        complete or absent."""
        serving = self.registry.serving()
        run = run_id or f"{utcnow():%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"
        if is_event_model(serving.model):
            everyone, all_ids = self._event_frame(model_spec(serving.model), scoring_date(self.db, as_of),
                                                  keep_new=True)
            skip = self.event_no_history(everyone)
            frame, ids = model_inputs(everyone.loc[~skip].reset_index(drop=True)), all_ids[~skip]
        else:
            self._refuse_as_of(as_of)
            frame, ids, _labels = self._latest_frame()
            skip = self._no_history(frame)
            frame, ids = frame.loc[~skip].reset_index(drop=True), ids[~skip]
        threshold = serving.threshold
        scored_at = utcnow()
        counts = {"high": 0, "medium": 0, "low": 0}
        flagged_total = 0
        with self.db.session() as session:
            for start, chunk in _chunks(frame, chunk_rows):
                probabilities = serving.model.predict_proba_frame(chunk)
                bands = risk_bands(probabilities, threshold)
                flagged = probabilities >= threshold
                flagged_total += int(flagged.sum())
                for name in counts:
                    counts[name] += int((bands == name).sum())
                rows = [
                    {
                        "client_id": str(cid), "model_version": serving.version, "probability": float(p),
                        "flagged": bool(f), "risk_band": str(b), "scored_at": scored_at, "run_id": run,
                    }
                    for cid, p, f, b in zip(ids[start:start + len(chunk)], probabilities, flagged, bands,
                                            strict=True)
                ]
                if rows:
                    session.execute(insert(Prediction), rows)
        log.info("score-all run %s: %d clients with model %s", run, len(frame), serving.version)
        return BatchRun(run, serving.version, len(frame), flagged_total, int(skip.sum()), counts, serving.problems)

    # ------------------------------------------------------------------ event models
    def _event_serving(self) -> Serving[ChurnModel] | None:
        """The serving model when it is an event model; None otherwise or without a champion
        (the client-table path then answers, including "unknown client" before any model)."""
        try:
            serving = self.registry.serving()
        except NoChampion:
            return None
        return serving if is_event_model(serving.model) else None

    def _score_event_client(self, cid: str, serving: Serving[ChurnModel], as_of: object, top: int) -> ScoreResult:
        spec, moment = model_spec(serving.model), scoring_date(self.db, as_of)
        when = f"{moment:%Y-%m-%d %H:%M}"
        row = features_for_client(self.db, cid, moment, spec=spec)
        if row is None:
            return ScoreResult(cid, UNKNOWN_CLIENT, unknown_client_text(cid), as_of=when, advice=INGEST_LATEST)
        if not is_active(self.db, cid, moment):
            return ScoreResult(cid, NOT_ACTIVE, not_active_text(cid, when), as_of=when)
        problem = history_problem(row)
        if problem is not None:
            return ScoreResult(cid, INSUFFICIENT_HISTORY, no_event_history_text(cid, problem, when), as_of=when)
        data = {key: value for key, value in row.items() if key != GROUP_COLUMN}
        return self._scored(cid, model_record(data), serving, top=top, record_id=None, spec=spec, as_of=moment,
                            raw=data)

    def _event_frame(self, spec: FeatureSpec, moment: datetime, *,
                     keep_new: bool = False) -> tuple[pd.DataFrame, np.ndarray]:
        """Features of the clients active at ``moment`` (without those too new to judge,
        unless ``keep_new``), with their ids apart."""
        frame = features_as_of(self.db, moment, spec=spec)
        if not keep_new:
            frame = frame.loc[~self.event_no_history(frame)]
        ids = frame[GROUP_COLUMN].astype(str).to_numpy()
        return frame.drop(columns=[GROUP_COLUMN]).reset_index(drop=True), ids

    @staticmethod
    def event_no_history(frame: pd.DataFrame) -> np.ndarray:
        """Rows of an event feature frame too new to judge (no tenure, or under a day)."""
        if "tenure_days" not in frame.columns:
            return np.ones(len(frame), dtype=bool)
        tenure = pd.to_numeric(frame["tenure_days"], errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
        return np.asarray(np.isnan(tenure) | (tenure < MIN_TENURE_DAYS), dtype=bool)

    @staticmethod
    def _refuse_as_of(as_of: object) -> None:
        if as_of is not None:
            raise UserError("--as-of needs a model trained on event history; the serving model uses the client "
                            "table, which has no dates", as_of=str(as_of))

    # ------------------------------------------------------------------ helpers
    def _latest_frame(self) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
        """Latest records as features, with their ids and labels (NaN when unlabelled) apart."""
        schema = self._schema()
        frame = load_frame(self.db, schema, labelled_only=False, latest_only=True)
        id_column, label_column = schema.id_column, schema.label_column
        ids = frame[id_column].astype(str).to_numpy() if id_column in frame.columns else np.array([], dtype=str)
        if label_column in frame.columns:
            labels = pd.to_numeric(frame[label_column], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        else:
            labels = np.full(len(frame), np.nan)
        features = frame.drop(columns=[c for c in (id_column, label_column) if c in frame.columns])
        return features.reset_index(drop=True), ids, labels

    def _clients_as_of(self) -> datetime | None:
        """When the newest client-table batch arrived: the date a list from that table describes."""
        with self.db.read_session() as session:
            newest = session.exec(select(func.max(Batch.received_at)).where(Batch.kind == CLIENTS)).one()
        return newest if isinstance(newest, datetime) else None

    def _schema(self) -> Schema:
        """The given schema, else the one the store remembers (a long-running bot may have been
        started before the first ingest)."""
        if self.schema is None:
            with self.db.read_session() as session:
                stored = remembered_schema(session)
            if stored is None:
                raise UserError("no clients stored yet", advice=INGEST_CLIENTS)
            self.schema = Schema(stored.id_column, stored.label_column, stored.positive_label,
                                 tuple(stored.ignore_columns))
        return self.schema

    def _no_history(self, frame: pd.DataFrame) -> np.ndarray:
        if self.rule is None:
            return np.zeros(len(frame), dtype=bool)
        return self.rule.mask(frame)


def _predict_chunks(model: ChurnModel, frame: pd.DataFrame, chunk_rows: int = CHUNK_ROWS) -> np.ndarray:
    parts = [model.predict_proba_frame(chunk) for _, chunk in _chunks(frame, chunk_rows)]
    return np.concatenate(parts) if parts else np.empty(0)


def _chunks(frame: pd.DataFrame, size: int) -> Iterator[tuple[int, pd.DataFrame]]:
    size = max(int(size), 1)
    for start in range(0, len(frame), size):
        yield start, frame.iloc[start:start + size]


def _clean_record(record: dict[Any, Any]) -> dict[str, Any]:
    """A frame row as a record: pandas' missing markers become None, numpy scalars plain values."""
    clean: dict[str, Any] = {}
    for key, value in record.items():
        if value is None or (not isinstance(value, str) and pd.isna(value)):
            clean[str(key)] = None
        elif hasattr(value, "item"):
            clean[str(key)] = value.item()
        else:
            clean[str(key)] = value
    return clean


# --------------------------------------------------------------------------------------------
# Chart
# --------------------------------------------------------------------------------------------

def contribution_chart(result: ScoreResult, *, title: str | None = None) -> bytes:
    """A PNG bar chart of the reasons behind one score (red raises risk, green lowers it).

    Built on a bare ``Figure`` rather than pyplot so that concurrent bot handlers do not share
    matplotlib's global state.
    """
    figure = contribution_figure(result, title=title)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def contribution_figure(result: ScoreResult, *, title: str | None = None) -> Any:
    """The ``matplotlib.figure.Figure`` of :func:`contribution_chart`, not yet drawn to PNG.

    The axis speaks the reader's language (which way each reason pushes the risk), not the
    model's (log-odds); labels come from the CRM, so they are drawn literally (``$`` included).
    """
    if not result.scored or not result.reasons:
        raise UserError(f"no reasons to draw for client {result.client_id}: {result.message}")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    items: Sequence[Contribution] = list(reversed(result.reasons))
    labels = [reason_text(item).rsplit(" ", 2)[0] for item in items]
    effects = [float(item.effect) for item in items]
    colours = ["#c0392b" if effect > 0 else "#27ae60" for effect in effects]
    figure = Figure(figsize=(7, 0.5 * len(items) + 1.6), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot(1, 1, 1)
    axes.barh(range(len(items)), effects, color=colours)
    axes.set_yticks(range(len(items)), labels=[literal(label[:48]) for label in labels])
    axes.axvline(0, color="#555555", linewidth=0.8)
    axes.set_xlabel("← pushes risk down   |   pushes risk up →")
    assert result.probability is not None
    axes.set_title(literal(title) if title is not None
                   else f"Client {literal(result.client_id)}: {result.probability:.1%} ({result.risk_band})")
    figure.tight_layout()
    return figure


__all__ = [
    "INSUFFICIENT_HISTORY",
    "NOT_ACTIVE",
    "SCORED",
    "UNKNOWN_CLIENT",
    "ActiveScores",
    "BatchRun",
    "FlaggedList",
    "MalformedId",
    "ScoreResult",
    "Scorer",
    "clean_client_id",
    "contribution_chart",
    "contribution_figure",
]
