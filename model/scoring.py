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
from sqlalchemy import insert

from model.artifact import ChurnModel, Contribution
from model.chart_labels import literal
from model.reasons import (
    malformed_id_text,
    reason_dict,
    reason_text,
)
from model.registry import NoChampion, Registry, Serving
from model.rules import HistoryRule, risk_band, risk_bands
from model.sources import (
    DEPARTED,
    INSUFFICIENT_HISTORY,
    NOT_ACTIVE,
    SCORED,
    UNKNOWN_CLIENT,
    DataSource,
    RowSet,
    SnapshotSource,
    SourceConfig,
    source_for_model,
)
from storage.db import Database
from storage.errors import Advice, Channel, UserError
from storage.ids import id_problem, visible
from storage.schema import Schema, remembered_schema, schema_of
from storage.tables import Prediction, utcnow

log = logging.getLogger(__name__)

MAX_ID_LENGTH = 200
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
    departed: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "model_version": self.model_version,
            "scored": self.scored,
            "flagged": self.flagged,
            "insufficient_history": self.insufficient_history,
            "departed": self.departed,
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
        if self.departed:
            lines.append(f"{self.departed} client(s) skipped: they have already left.")
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
    the data says about each client (event models: the raw facts as of ``as_of``), ``inputs``
    what the model read; ``rows`` of them are explained with ``Scorer.explain_active``."""

    ids: np.ndarray
    frame: pd.DataFrame
    inputs: pd.DataFrame
    probabilities: np.ndarray
    serving: Serving[ChurnModel]
    source: DataSource
    as_of: datetime | None = None  # the date the rows describe (the newest record's, for client tables)
    moment: datetime | None = None  # the scoring date asked for (None: each client's newest record)

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
        config: SourceConfig | None = None,
    ) -> None:
        self.db = db
        self.registry = registry
        self.rule = rule
        self.schema = schema
        self.config = replace(config or SourceConfig(), history_rule=rule)

    def source(self, serving: Serving[ChurnModel] | None) -> DataSource:
        """Where the serving model's rows come from (the client table before any model)."""
        if self.schema is None:  # a long-running bot may have started before the first ingest
            with self.db.read_session() as session:
                stored = remembered_schema(session)
            if stored is not None:
                self.schema = schema_of(stored)
        if serving is None:
            return SnapshotSource(self.db, self.config, self.schema)
        return source_for_model(self.db, self.config, serving.model, schema=self.schema)

    # ------------------------------------------------------------------ one client
    def score_client(self, client_id: object, *, top: int = 3, as_of: object = None) -> ScoreResult:
        """Score one stored client; ``top`` reasons (the bot asks for more to draw a chart).
        ``as_of`` (a date) is the date the features describe (by default the source's newest)."""
        cid = clean_client_id(client_id)
        try:
            serving: Serving[ChurnModel] | None = self.registry.serving()
        except NoChampion:
            serving = None  # "unknown client" and "too new" are answered before "no model yet"
        source = self.source(serving)
        found = source.lookup(cid, as_of=as_of)
        when = None if found.as_of is None else f"{found.as_of:%Y-%m-%d %H:%M}"
        if not found.scorable:
            return ScoreResult(cid, found.status, found.message, record_id=found.record_id, as_of=when,
                               advice=found.advice)
        if serving is None:
            serving = self.registry.serving()  # raises NoChampion with its message
        assert found.inputs is not None
        return self._scored(cid, found.inputs, serving, top=top, record_id=found.record_id, as_of=found.as_of,
                            raw=found.raw, source=source)

    def _scored(
        self, cid: str, data: dict[str, Any], serving: Serving[ChurnModel], *, top: int,
        record_id: int | None, probability: float | None = None, as_of: datetime | None = None,
        raw: dict[str, Any] | None = None, source: DataSource | None = None,
        explained: Sequence[Contribution] | None = None,
    ) -> ScoreResult:
        model = serving.model
        if probability is None:
            p, reasons = model.score_and_explain_record(data, top)
        elif explained is not None:  # a list's reasons, computed for a whole chunk at once
            p, reasons = probability, list(explained)
        else:
            p, reasons = probability, model.explain_record(data, top=top)
        if source is not None and raw is not None:
            described = []
            for item in reasons:
                shown = raw.get(item.feature, item.value)  # what the data says, not the model's fill-in
                words = source.describe(item.feature, shown)
                described.append(item if words is None else replace(item, value=shown, description=words))
            reasons = described
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
        source = self.source(serving)
        best: list[tuple[float, str, dict[str, Any], dict[str, Any], datetime | None]] = []
        for chunk in source.scoring_rows(as_of=as_of):
            if len(chunk) == 0:
                continue
            probabilities = _predict_chunks(serving.model, chunk.inputs)
            # Stable order: equal probabilities list by id, so the list does not shuffle between calls.
            order = np.lexsort((chunk.ids.astype(str), -probabilities))[:n]
            inputs = chunk.inputs.iloc[order].to_dict("records")
            raw = (chunk.raw if chunk.raw is not None else chunk.inputs).iloc[order].to_dict("records")
            for position, i in enumerate(order):
                when = None if pd.isna(chunk.as_of[i]) else pd.Timestamp(chunk.as_of[i]).to_pydatetime()
                best.append((float(probabilities[i]), str(chunk.ids[i]), _clean_record(inputs[position]),
                             _clean_record(raw[position]), when))
            best.sort(key=lambda item: (-item[0], item[1]))
            del best[n:]
        # Ids come from the store, which may predate the id rule: shown with escapes, never raw.
        return [self._scored(visible(cid), record, serving, top=reasons, record_id=None, probability=p, as_of=when,
                             raw=shown, source=source)
                for p, cid, record, shown, when in best]

    def flagged_ranking(self, *, as_of: object = None, reasons: int = 3,
                        chunk_rows: int = EXPORT_CHUNK_ROWS) -> FlaggedList:
        """Every flagged active client (the clients ``top`` ranks, at or above the threshold),
        riskiest first, with ``reasons`` reasons each: the whole contact list.

        Two passes, so that the list is written as it is made and never held whole: first
        every active client's probability (only the ids and probabilities are kept beside the
        rows); then, for each chunk of ``chunk_rows`` clients of the ranking, their reasons
        from one vectorised call, yielded for the caller to write before the next chunk is
        explained.  Equal probabilities list by id, as in ``top``."""
        serving = self.registry.serving()
        source = self.source(serving)
        sets = [rows for rows in source.scoring_rows(as_of=as_of) if len(rows)]
        moment = source.scoring_date(as_of) or _newest(sets)
        model, threshold = serving.model, serving.threshold
        inputs = pd.concat([rows.inputs for rows in sets], ignore_index=True) if sets else pd.DataFrame()
        raw = (pd.concat([rows.raw if rows.raw is not None else rows.inputs for rows in sets], ignore_index=True)
               if sets else pd.DataFrame())
        ids = np.concatenate([rows.ids for rows in sets]) if sets else np.empty(0, dtype=object)
        probabilities = _predict_chunks(model, inputs) if len(inputs) else np.empty(0)
        order = np.lexsort((ids.astype(str), -probabilities)) if len(ids) else np.empty(0, dtype=int)
        order = order[probabilities[order] >= threshold]
        size = max(int(chunk_rows), 1)

        def explained() -> Iterator[list[ScoreResult]]:
            for start in range(0, len(order), size):
                picked = order[start:start + size]
                records = [_clean_record(record) for record in inputs.iloc[picked].to_dict("records")]
                shown = [_clean_record(record) for record in raw.iloc[picked].to_dict("records")]
                why = model.explain_frame(inputs.iloc[picked], records, top=reasons)
                yield [
                    self._scored(visible(str(ids[i])), record, serving, top=reasons, record_id=None,
                                 probability=float(probabilities[i]), as_of=source.scoring_date(as_of),
                                 raw=values, source=source, explained=because)
                    for i, record, values, because in zip(picked, records, shown, why, strict=True)
                ]

        return FlaggedList(serving.version, serving.pointer, float(threshold), moment, len(ids), len(order),
                           serving.problems, explained())

    def active_scores(self, *, as_of: object = None) -> ActiveScores:
        """The probability of every active client (the population ``top`` ranks: scorable, not
        known to have left), unranked."""
        serving = self.registry.serving()
        source = self.source(serving)
        sets = [rows for rows in source.scoring_rows(as_of=as_of) if len(rows)]
        inputs = pd.concat([rows.inputs for rows in sets], ignore_index=True) if sets else pd.DataFrame()
        raw = (pd.concat([rows.raw if rows.raw is not None else rows.inputs for rows in sets], ignore_index=True)
               if sets else pd.DataFrame())
        ids = np.concatenate([rows.ids for rows in sets]) if sets else np.empty(0, dtype=object)
        probabilities = _predict_chunks(serving.model, inputs) if len(inputs) else np.empty(0)
        moment = source.scoring_date(as_of)
        return ActiveScores(ids, raw, inputs, probabilities, serving, source, moment or _newest(sets), moment)

    def explain_active(self, scores: ActiveScores, rows: Sequence[int], *, reasons: int = 3) -> list[ScoreResult]:
        """``ScoreResult``s (with ``reasons`` reasons each) of the given rows of ``scores``, in that order."""
        picked = list(rows)
        records = [_clean_record(record) for record in scores.inputs.iloc[picked].to_dict("records")]
        shown = [_clean_record(record) for record in scores.frame.iloc[picked].to_dict("records")]
        return [
            self._scored(visible(str(scores.ids[i])), record, scores.serving, top=reasons, record_id=None,
                         probability=float(scores.probabilities[i]), as_of=scores.moment, raw=values,
                         source=scores.source)
            for i, record, values in zip(picked, records, shown, strict=True)
        ]

    def score_all(self, *, run_id: str | None = None, chunk_rows: int = CHUNK_ROWS, as_of: object = None) -> BatchRun:
        """Score every active client (each client's row at the scoring date) and store the
        predictions in one transaction, so a run is either complete or absent."""
        serving = self.registry.serving()
        source = self.source(serving)
        run = run_id or f"{utcnow():%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"
        threshold = serving.threshold
        scored_at = utcnow()
        counts = {"high": 0, "medium": 0, "low": 0}
        flagged_total = scored_total = skipped = departed = 0
        with self.db.session() as session:
            for chunk in source.scoring_rows(as_of=as_of, chunk_rows=chunk_rows):
                skipped += chunk.skipped_no_history
                departed += chunk.departed
                if len(chunk) == 0:
                    continue
                probabilities = serving.model.predict_proba_frame(chunk.inputs)
                bands = risk_bands(probabilities, threshold)
                flagged = probabilities >= threshold
                flagged_total += int(flagged.sum())
                scored_total += len(chunk)
                for name in counts:
                    counts[name] += int((bands == name).sum())
                rows = [
                    {
                        "client_id": str(cid), "model_version": serving.version, "probability": float(p),
                        "flagged": bool(f), "risk_band": str(b), "scored_at": scored_at, "run_id": run,
                    }
                    for cid, p, f, b in zip(chunk.ids, probabilities, flagged, bands, strict=True)
                ]
                session.execute(insert(Prediction), rows)
        log.info("score-all run %s: %d clients with model %s", run, scored_total, serving.version)
        return BatchRun(run, serving.version, scored_total, flagged_total, skipped, counts, serving.problems, departed)



def _newest(sets: Sequence[RowSet]) -> datetime | None:
    """The newest as-of date of some rows: the date a list of each client's newest record describes."""
    dates = [rows.as_of[~np.isnat(rows.as_of)] for rows in sets]
    present = np.concatenate(dates) if dates else np.empty(0, dtype="datetime64[ns]")
    return pd.Timestamp(present.max()).to_pydatetime() if len(present) else None


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
    "DEPARTED",
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
