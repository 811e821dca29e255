"""What the jobs work on: the serving champion, the rows its data source gives, and their scores.

The jobs never ask whether the champion learnt from flat snapshots or from event history:
``model.sources.source_for_model`` gives the source it reads, and the source gives the rows
to score on arrival, to check for drift and to measure realised recall on (see
model/sources.py).

Scoring at arrival.  New rows are scored with the champion of that moment and the
predictions stored with the record id and the model version, so the team can always see
what the model said before the outcome was known.  Realised recall is measured on rows the
model never trained on (clients it never saw, or dates after its training period), which
keeps it honest whichever model measures.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import insert
from sqlmodel import col, select

from model.artifact import ChurnModel
from model.registry import NoChampion, Registry, Serving
from model.rules import risk_bands
from model.service import open_registry, store_schema
from model.sources import DataSource, RowSet, SourceConfig, source_for_model
from storage.clients import CLIENTS
from storage.db import Database
from storage.schema import Schema
from storage.tables import Batch, ModelVersion, Prediction, ShadowPrediction, utcnow

log = logging.getLogger("churnguard.jobs")


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


def latest_batch(db: Database) -> Batch | None:
    batches = client_batches(db)
    return batches[-1] if batches else None


@dataclass(frozen=True)
class Monitored:
    """What a monitoring job checks: the champion, its data source, the batches named."""

    serving: Serving[ChurnModel]
    source: DataSource
    batch_ids: list[int]


def monitored(ctx: Any, *, nothing: str, batch_ids: list[int] | None = None) -> Monitored | str:
    """The champion, the source it reads and the batches named in the run's params (default:
    the newest client batch) — or why there is nothing to check yet, as a skipped run's text."""
    serving = serving_or_none(registry_of(ctx.services, ctx.db, ctx.settings))
    if serving is None:
        return f"no champion model yet: {nothing}"
    source = source_for_model(ctx.db, SourceConfig.from_settings(ctx.settings), serving.model,
                              schema=schema_or_none(ctx.db, ctx.settings))
    if batch_ids is None:
        batch_ids = [int(b) for b in ctx.params.get("batch_ids") or []]
    if not batch_ids:
        latest = latest_batch(ctx.db)
        if latest is not None and latest.id is not None:
            batch_ids = [latest.id]
    return Monitored(serving, source, batch_ids)


@dataclass(frozen=True)
class Scores:
    """One model's scores of a row set."""

    model_version: str
    threshold: float
    probabilities: np.ndarray
    flagged: np.ndarray

    def __len__(self) -> int:
        return len(self.probabilities)


def score_rows(serving: Serving[ChurnModel], rows: RowSet) -> Scores:
    probabilities = serving.model.predict_proba_frame(rows.inputs) if len(rows) else np.empty(0)
    threshold = float(serving.threshold)
    return Scores(serving.version, threshold, probabilities, probabilities >= threshold)


def _prediction_rows(rows: RowSet, scores: Scores, run_id: str) -> list[dict[str, Any]]:
    bands = risk_bands(scores.probabilities, scores.threshold) if len(scores) else np.empty(0, dtype=object)
    now = utcnow()
    record_ids = rows.record_ids if rows.record_ids is not None else np.full(len(rows), -1)
    return [
        {"client_id": str(cid), "model_version": scores.model_version, "probability": float(p),
         "flagged": bool(f), "risk_band": str(b), "scored_at": now,
         "record_id": None if int(rid) < 0 else int(rid), "run_id": run_id}
        for cid, p, f, b, rid in zip(rows.ids, scores.probabilities, scores.flagged, bands, record_ids, strict=True)
    ]


def _insert(db: Database, table: Any, stored: list[dict[str, Any]]) -> None:
    with db.session() as session:
        for start in range(0, len(stored), 5000):
            session.execute(insert(table), stored[start:start + 5000])


def store_scores(db: Database, rows: RowSet, scores: Scores, *, run_id: str) -> None:
    """Keep the predictions made for these rows (one transaction)."""
    stored = _prediction_rows(rows, scores, run_id)
    _insert(db, Prediction, stored)
    log.info("scored %s: %d rows with %s", rows.name, len(stored), scores.model_version)


def store_shadow_scores(db: Database, rows: RowSet, scores: Scores, *, champion_version: str, run_id: str) -> None:
    """Keep the shadow challenger's predictions for these rows (one transaction), apart from the
    champion's: ``shadow_prediction`` is read by nothing that shows scores."""
    stored = [{**row, "champion_version": champion_version} for row in _prediction_rows(rows, scores, run_id)]
    _insert(db, ShadowPrediction, stored)
    log.info("scored %s in shadow: %d rows with %s beside %s", rows.name, len(stored), scores.model_version,
             champion_version)


def scorable(rows: RowSet, settings: Any) -> RowSet:
    """The rows a score is given to: without those the no-history rule withholds."""
    rule = SourceConfig.from_settings(settings).history_rule
    if rule is None or len(rows) == 0:
        return rows
    skip = rule.mask(rows.raw if rows.raw is not None else rows.inputs)
    kept = rows.subset(~skip)
    kept.skipped_no_history = rows.skipped_no_history + int(skip.sum())
    return kept


__all__ = [
    "Monitored",
    "Scores",
    "client_batches",
    "get_batch",
    "latest_batch",
    "monitored",
    "outcomes_only",
    "registry_of",
    "schema_or_none",
    "scorable",
    "score_rows",
    "serving_or_none",
    "store_scores",
    "store_shadow_scores",
    "trained_batches",
]
