"""The data the jobs work on: one batch as a frame, its scores, and the registry they share.

Scoring at arrival.  Realised recall is only honest when the prediction was made *before*
the outcome was known.  So whenever a batch arrives (through the inbox, the SQL source, or
``churnguard ingest`` — the performance job catches up on batches nobody scored), its
records are scored with the champion of that moment, and the predictions are stored with
the record id and the model version.  A model never scores a batch it was trained on for
monitoring: :func:`score_batch` refuses when the batch is in the model's training data.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import insert
from sqlalchemy import select as sa_select
from sqlmodel import col, select

from model.artifact import ChurnModel
from model.event_source import is_event_model
from model.registry import NoChampion, Registry, Serving
from model.rules import parse_history_rule, risk_bands
from model.service import open_registry, store_schema
from storage.clients import column_types
from storage.db import Database
from storage.readers import NUMERIC
from storage.schema import Schema
from storage.tables import Batch, ClientRecord, ModelVersion, Prediction, utcnow

log = logging.getLogger("churnguard.jobs")
CLIENTS = "clients"


def registry_of(services: dict[str, Any], db: Database, settings: Any) -> Registry[ChurnModel]:
    """The process's shared registry (its model cache is shared with the bot's scorer)."""
    registry = services.get("registry")
    if registry is None:
        registry = open_registry(db, settings)
        services["registry"] = registry
    return registry  # type: ignore[no-any-return]


def serving_or_none(registry: Registry[ChurnModel]) -> Serving[ChurnModel] | None:
    try:
        return registry.serving()
    except NoChampion:
        return None


def schema_or_none(db: Database, settings: Any) -> Schema | None:
    return store_schema(db, settings)


def trained_batches(db: Database, version: str) -> set[int]:
    """The batches a model version was trained on."""
    with db.read_session() as session:
        row = session.exec(select(ModelVersion).where(ModelVersion.version == version)).first()
    return set() if row is None else {int(b) for b in row.batch_ids}


def version_threshold(db: Database, version: str) -> float | None:
    with db.read_session() as session:
        row = session.exec(select(ModelVersion).where(ModelVersion.version == version)).first()
    return None if row is None else float(row.threshold)


OUTCOME_ONLY_SHARE = 0.5


def outcomes_only(batch: Batch, model: ChurnModel) -> bool:
    """True for a batch that brings outcomes (labels) but fewer than half of the model's features."""
    wanted = set(model.raw_columns_)
    return bool(wanted) and len(wanted & set(batch.columns)) < OUTCOME_ONLY_SHARE * len(wanted)


def get_batch(db: Database, batch_id: int) -> Batch | None:
    with db.read_session() as session:
        return session.get(Batch, batch_id)


def client_batches(db: Database, *, labelled: bool | None = None) -> list[Batch]:
    """Client batches, oldest first."""
    with db.read_session() as session:
        query = select(Batch).where(Batch.kind == CLIENTS)
        if labelled is not None:
            query = query.where(col(Batch.labelled).is_(labelled))
        return list(session.exec(query.order_by(col(Batch.id))).all())


def event_champion(ctx: Any) -> Serving[ChurnModel] | None:
    """The serving champion when it learnt from event history: the monitoring jobs then check
    event features as of a date instead of client-table batches."""
    serving = serving_or_none(registry_of(ctx.services, ctx.db, ctx.settings))
    return serving if serving is not None and is_event_model(serving.model) else None


def monitoring_inputs(ctx: Any, *, nothing: str) -> tuple[Serving[ChurnModel], Schema, list[int]] | str:
    """What the drift and performance jobs check: the serving champion, the schema and the
    batches named in the run's params (default: the newest batch) — or why there is nothing
    to check yet, as the text of a skipped run."""
    serving = serving_or_none(registry_of(ctx.services, ctx.db, ctx.settings))
    schema = schema_or_none(ctx.db, ctx.settings)
    if serving is None or schema is None:
        return f"no champion model yet: {nothing}"
    batch_ids = [int(b) for b in ctx.params.get("batch_ids") or []]
    if not batch_ids:
        latest = latest_batch(ctx.db)
        if latest is None or latest.id is None:
            return "no client batch stored yet"
        batch_ids = [latest.id]
    return serving, schema, batch_ids


def latest_batch(db: Database) -> Batch | None:
    batches = client_batches(db)
    return batches[-1] if batches else None


@dataclass
class BatchFrame:
    """A batch's records: features (id and label dropped), ids, labels (NaN when unknown), record ids."""

    batch_id: int
    features: pd.DataFrame
    client_ids: np.ndarray
    labels: np.ndarray
    record_ids: np.ndarray

    def __len__(self) -> int:
        return len(self.features)


def batch_frame(db: Database, schema: Schema, batch_id: int) -> BatchFrame:
    """The records a batch brought, typed like training frames (numbers float64, text object)."""
    table = ClientRecord.__table__  # type: ignore[attr-defined]
    query = sa_select(table.c.id, table.c.client_id, table.c.label, table.c.data).where(
        table.c.batch_id == batch_id
    )
    with db.read_session() as session:
        rows = session.connection().execute(query.order_by(table.c.id)).all()
    types = column_types(db, [batch_id])
    data = pd.DataFrame.from_records([row.data for row in rows], columns=list(types))
    columns: dict[str, Any] = {}
    for name, kind in types.items():
        if name in (schema.id_column, schema.label_column):
            continue
        values = data[name]
        if kind == NUMERIC:
            columns[name] = pd.to_numeric(values, errors="coerce").astype("float64")
        else:
            columns[name] = pd.Series(
                [np.nan if v is None else (str(int(v)) if isinstance(v, float) and v.is_integer() else str(v))
                 for v in values.tolist()],
                dtype=object,
            )
    features = pd.DataFrame(columns, index=range(len(rows)))
    labels = np.array([np.nan if row.label is None else float(row.label) for row in rows], dtype=float)
    return BatchFrame(
        batch_id=batch_id,
        features=features,
        client_ids=np.array([str(row.client_id) for row in rows], dtype=object),
        labels=labels,
        record_ids=np.array([int(row.id) for row in rows], dtype=np.int64),
    )


@dataclass(frozen=True)
class BatchScores:
    """Predictions of one batch by one model: record id -> (probability, flagged)."""

    batch_id: int
    model_version: str
    threshold: float | None
    record_ids: np.ndarray
    probabilities: np.ndarray
    flagged: np.ndarray
    skipped_no_history: int = 0
    scored_now: bool = False

    def __len__(self) -> int:
        return len(self.record_ids)


def stored_batch_scores(db: Database, batch_id: int) -> BatchScores | None:
    """The predictions made for a batch's records (by one model: the one that scored most)."""
    prediction = Prediction.__table__  # type: ignore[attr-defined]
    record = ClientRecord.__table__  # type: ignore[attr-defined]
    query = (
        sa_select(prediction.c.record_id, prediction.c.model_version, prediction.c.probability,
                  prediction.c.flagged, prediction.c.id)
        .join(record, record.c.id == prediction.c.record_id)
        .where(record.c.batch_id == batch_id)
        .order_by(prediction.c.id)
    )
    with db.read_session() as session:
        rows = session.connection().execute(query).all()
    if not rows:
        return None
    versions: dict[str, int] = {}
    for row in rows:
        versions[row.model_version] = versions.get(row.model_version, 0) + 1
    version = max(versions, key=lambda v: versions[v])
    latest: dict[int, Any] = {}
    for row in rows:  # one prediction per record: the latest by that model
        if row.model_version == version:
            latest[int(row.record_id)] = row
    chosen = list(latest.values())
    return BatchScores(
        batch_id=batch_id,
        model_version=version,
        threshold=version_threshold(db, version),
        record_ids=np.array([int(r.record_id) for r in chosen], dtype=np.int64),
        probabilities=np.array([float(r.probability) for r in chosen], dtype=float),
        flagged=np.array([bool(r.flagged) for r in chosen], dtype=bool),
    )


class TrainedOnBatch(Exception):
    """The model learnt from this batch; its scores on it would flatter it."""


def score_batch(
    db: Database, settings: Any, serving: Serving[ChurnModel], frame: BatchFrame, *, run_id: str
) -> BatchScores:
    """Score a batch's records with the serving model and store the predictions (one transaction)."""
    if frame.batch_id in trained_batches(db, serving.version):
        raise TrainedOnBatch(f"model {serving.version} was trained on batch #{frame.batch_id}")
    rule = parse_history_rule(settings.no_history_rule)
    skip = rule.mask(frame.features) if rule is not None else np.zeros(len(frame), dtype=bool)
    keep = ~skip
    features = frame.features.loc[keep].reset_index(drop=True)
    record_ids = frame.record_ids[keep]
    client_ids = frame.client_ids[keep]
    model = serving.model
    probabilities = model.predict_proba_frame(features) if len(features) else np.empty(0)
    threshold = float(serving.threshold)
    flagged = probabilities >= threshold
    bands = risk_bands(probabilities, threshold) if len(features) else np.empty(0, dtype=object)
    now = utcnow()
    rows = [
        {"client_id": str(cid), "model_version": serving.version, "probability": float(p), "flagged": bool(f),
         "risk_band": str(b), "scored_at": now, "record_id": int(rid), "run_id": run_id}
        for cid, p, f, b, rid in zip(client_ids, probabilities, flagged, bands, record_ids, strict=True)
    ]
    with db.session() as session:
        for start in range(0, len(rows), 5000):
            session.execute(insert(Prediction), rows[start:start + 5000])
    log.info("scored batch #%s: %d records with %s (%d skipped: no history)", frame.batch_id, len(rows),
             serving.version, int(skip.sum()))
    return BatchScores(frame.batch_id, serving.version, threshold, record_ids, probabilities, flagged,
                       int(skip.sum()), True)


def align(frame: BatchFrame, scores: BatchScores) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Labels (NaN unknown), probabilities and flags of the batch's scored records, in one order."""
    position = {int(rid): i for i, rid in enumerate(frame.record_ids)}
    index = np.array([position[int(rid)] for rid in scores.record_ids if int(rid) in position], dtype=np.int64)
    known = np.array([int(rid) in position for rid in scores.record_ids], dtype=bool)
    return frame.labels[index], scores.probabilities[known], scores.flagged[known]


__all__ = [
    "BatchFrame",
    "BatchScores",
    "TrainedOnBatch",
    "align",
    "batch_frame",
    "client_batches",
    "earlier_predictions",
    "get_batch",
    "latest_batch",
    "outcomes_only",
    "registry_of",
    "schema_or_none",
    "score_batch",
    "serving_or_none",
    "stored_batch_scores",
    "trained_batches",
    "version_threshold",
]


def earlier_predictions(db: Database, client_ids: list[str], before: Any) -> pd.DataFrame:
    """Each client's newest prediction made before ``before``: client_id, probability, flagged,
    model_version (for batches that bring outcomes only, no features to score)."""
    prediction = Prediction.__table__  # type: ignore[attr-defined]
    found: dict[str, Any] = {}
    wanted = list(dict.fromkeys(client_ids))
    with db.read_session() as session:
        connection = session.connection()
        for start in range(0, len(wanted), 5000):
            part = wanted[start:start + 5000]
            query = (
                sa_select(prediction.c.client_id, prediction.c.probability, prediction.c.flagged,
                          prediction.c.model_version, prediction.c.id)
                .where(prediction.c.client_id.in_(part), prediction.c.scored_at < before)
                .order_by(prediction.c.id)
            )
            for row in connection.execute(query):
                found[str(row.client_id)] = row  # later ids overwrite: newest wins
    rows = list(found.values())
    return pd.DataFrame({
        "client_id": pd.Series([r.client_id for r in rows], dtype=object),
        "probability": pd.Series([float(r.probability) for r in rows], dtype=float),
        "flagged": pd.Series([bool(r.flagged) for r in rows], dtype=bool),
        "model_version": pd.Series([r.model_version for r in rows], dtype=object),
    })
