"""Performance job: is the champion still catching the churners it promised to catch?

For each checked batch (by default the latest; after an ingest, each new batch):

* **Outcomes known** (labelled records): realised recall, precision and PR-AUC of the
  predictions made *before* the labels were used — the scores stored when the batch arrived
  (``jobs/data.py``), or, for a batch that brings outcomes only (no features), each
  client's newest prediction from before the batch.  Recall below the target raises a
  ``recall`` alert with the confidence interval and the number of churners; below
  ``CHURNGUARD_MIN_CHURNERS`` there is no alert and the report says so.  The alert compares
  the point estimate with the target, so it agrees with anyone recomputing recall from the
  same predictions and labels.
* **Outcomes not known yet** (unlabelled records): the recall expected from the calibrated
  probabilities (CBPE); below the target it raises an ``early_warning``.

A batch nobody scored on arrival (e.g. stored with ``churnguard ingest``) is scored now by
the champion, provided the champion did not learn from it.  Every check is stored as a
"performance" report.

A champion trained on event history is measured on the newest observation date whose
outcome is known and that it never trained on (``run_on_events``).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from jobs.alerts import AlertDraft
from jobs.data import (
    BatchFrame,
    align,
    batch_frame,
    earlier_predictions,
    event_champion,
    get_batch,
    monitoring_inputs,
    outcomes_only,
    score_batch,
    stored_batch_scores,
    trained_batches,
    version_threshold,
)
from jobs.reports import PERFORMANCE, reports, store_report
from jobs.runner import FollowUp, JobContext, JobResult
from model.artifact import ChurnModel
from model.event_source import model_inputs, model_spec
from model.monitoring.charts import RecallPoint, recall_chart
from model.monitoring.performance import (
    EstimatedPerformance,
    RealisedPerformance,
    estimate_performance,
    realised_performance,
)
from model.registry import Serving
from model.scoring import Scorer
from storage.events.features import features_as_of
from storage.events.labels import data_end, labels_as_of, observation_dates
from storage.tables import Batch

log = logging.getLogger("churnguard.jobs")
CONFIDENCE = 0.95


def run(ctx: JobContext) -> JobResult:
    db, settings = ctx.db, ctx.settings
    events = event_champion(ctx)
    if events is not None:
        return run_on_events(ctx, events)
    inputs = monitoring_inputs(ctx, nothing="nothing to measure")
    if isinstance(inputs, str):
        return JobResult(inputs, outcome="skipped")
    serving, schema, batch_ids = inputs
    alerts: list[AlertDraft] = []
    checked: list[dict[str, Any]] = []
    lines: list[str] = []
    recall_alert = False
    for batch_id in batch_ids:
        batch = get_batch(db, batch_id)
        if batch is None:
            continue
        ctx.progress(f"measuring the champion on batch #{batch_id}")
        frame = batch_frame(db, schema, batch_id)
        labels, probabilities, flagged, version, threshold, source = _predictions(ctx, batch, frame, serving)
        if version is None:
            checked.append({"batch_id": batch_id, "status": "not_measurable", "reason": source})
            lines.append(f"batch #{batch_id}: {source}")
            continue
        known = ~np.isnan(labels)
        realised = estimated = None
        if known.any():
            realised = realised_performance(labels[known], probabilities[known], flagged[known],
                                            target=settings.recall_target, min_churners=settings.min_churners,
                                            confidence=CONFIDENCE)
        if (~known).any():
            estimated = estimate_performance(probabilities[~known], flagged[~known], target=settings.recall_target,
                                             min_churners=settings.min_churners, confidence=CONFIDENCE,
                                             seed=int(settings.seed))
        text = "\n".join(part.to_text() for part in (realised, estimated) if part is not None)
        body = {
            "batch_id": batch_id, "source_name": batch.source_name, "model_version": version,
            "threshold": threshold, "predictions": source, "n_records": len(frame), "n_scored": len(labels),
            "realised": None if realised is None else realised.to_dict(),
            "estimated": None if estimated is None else estimated.to_dict(), "text": text,
        }  # fmt: skip
        report_id = store_report(db, PERFORMANCE, body, model_version=version, batch_id=batch_id)
        checked.append({"batch_id": batch_id, "report_id": report_id, "model_version": version,
                        "realised": None if realised is None else realised.status,
                        "recall": None if realised is None else realised.recall,
                        "estimated": None if estimated is None else estimated.status,
                        "estimated_recall": None if estimated is None else estimated.recall})
        lines.append(f"batch #{batch_id} ({version}): " + text.replace("\n", " "))
        if realised is not None and realised.alert:
            recall_alert = True
            alerts.append(_recall_alert(ctx, realised, batch, version, threshold, report_id, source))
        if estimated is not None and estimated.early_warning:
            alerts.append(_early_warning(ctx, estimated, batch, version, threshold, report_id))
    follow_ups = []
    if recall_alert and "recall" in settings.retrain_on:
        follow_ups.append(FollowUp("retrain", "recall", {}))
    return JobResult(
        summary="; ".join(lines) or "nothing to measure",
        details={"checked": checked},
        alerts=alerts,
        follow_ups=follow_ups,
    )


def _predictions(
    ctx: JobContext, batch: Batch, frame: BatchFrame, serving: Any
) -> tuple[np.ndarray, np.ndarray, np.ndarray, str | None, float | None, str]:
    """Labels, probabilities, flags of the batch's scored records, the version that scored
    them, its threshold, and where the predictions come from (or why there are none)."""
    empty = np.empty(0)
    assert batch.id is not None
    if outcomes_only(batch, serving.model):
        return _outcomes_only(ctx, batch, frame)
    scores = stored_batch_scores(ctx.db, batch.id)
    source = "scored on arrival"
    if scores is not None and batch.id in trained_batches(ctx.db, scores.model_version):
        scores = None  # scored after a model learnt from it: not an honest measurement
    if scores is None:
        if batch.id in trained_batches(ctx.db, serving.version):
            return empty, empty, empty.astype(bool), None, None, (
                f"not scored on arrival, and the champion {serving.version} learnt from it: no honest measurement"
            )
        scores = score_batch(ctx.db, ctx.settings, serving, frame, run_id=f"performance-b{batch.id}")
        source = f"scored now by {serving.version}, which never saw these outcomes"
    labels, probabilities, flagged = align(frame, scores)
    return labels, probabilities, flagged, scores.model_version, scores.threshold, source


def _outcomes_only(
    ctx: JobContext, batch: Batch, frame: BatchFrame
) -> tuple[np.ndarray, np.ndarray, np.ndarray, str | None, float | None, str]:
    empty = np.empty(0)
    labelled = ~np.isnan(frame.labels)
    ids = [str(c) for c in frame.client_ids[labelled]]
    earlier = earlier_predictions(ctx.db, ids, batch.received_at)
    if earlier.empty:
        return empty, empty, empty.astype(bool), None, None, "outcomes only, and none of these clients was scored before"
    version = str(earlier["model_version"].mode().iloc[0])
    earlier = earlier[earlier["model_version"] == version]
    by_client = earlier.set_index("client_id")
    label_of = dict(zip(ids, frame.labels[labelled], strict=True))
    chosen = [cid for cid in by_client.index if cid in label_of]
    labels = np.array([label_of[c] for c in chosen], dtype=float)
    probabilities = by_client.loc[chosen, "probability"].to_numpy(dtype=float)
    flagged = by_client.loc[chosen, "flagged"].to_numpy(dtype=bool)
    source = f"outcomes only: compared with the predictions {version} made earlier"
    return labels, probabilities, flagged, version, version_threshold(ctx.db, version), source


def _chart(ctx: JobContext, version: str, current: RecallPoint, target: float) -> bytes | None:
    """Recall of this model over its recent checks, the new one last."""
    try:
        points = []
        for row in reversed(reports(ctx.db, PERFORMANCE, limit=12)):
            if row.model_version != version:
                continue
            realised = row.body.get("realised")
            estimated = row.body.get("estimated")
            if realised:
                points.append(RecallPoint.from_realised(row.created_at, RealisedPerformance.from_dict(realised)))
            elif estimated:
                points.append(RecallPoint.from_estimate(row.created_at, EstimatedPerformance.from_dict(estimated)))
        if not points:
            points = [current]
        return recall_chart(points[-12:], target=target, title=f"Recall of model {version}")
    except Exception:
        log.exception("could not draw the recall chart")
        return None


def _recall_alert(
    ctx: JobContext, realised: RealisedPerformance, batch: Batch, version: str, threshold: float | None,
    report_id: int, source: str,
) -> AlertDraft:
    return recall_alert(ctx, realised, version=version, threshold=threshold, report_id=report_id,
                        when=batch.received_at, batch_id=batch.id, short=f"batch #{batch.id}",
                        long=f"{batch.source_name} (batch #{batch.id}, {source})")


def recall_alert(
    ctx: JobContext, realised: RealisedPerformance, *, version: str, threshold: float | None, report_id: int,
    when: datetime, batch_id: int | None, short: str, long: str,
) -> AlertDraft:
    """The ``recall`` alert: ``short`` names what was measured in the title, ``long`` in the text."""
    assert realised.recall is not None and realised.recall_low is not None and realised.recall_high is not None
    confidently_low = realised.recall_high < realised.target
    point = RecallPoint.from_realised(when, realised)
    return AlertDraft(
        kind="recall",
        severity="critical" if confidently_low else "warning",
        condition=version,
        title=f"Recall {realised.recall:.2f} below target {realised.target:.2f} on {short}",
        text=(f"Model {version} on {long}: {realised.message}"
              + (" The whole confidence interval is below the target." if confidently_low else "")),
        figures={
            "batch_id": batch_id, "report_id": report_id, "model_version": version, "threshold": threshold,
            "recall": realised.recall, "recall_ci": [realised.recall_low, realised.recall_high],
            "confidence": realised.confidence, "target": realised.target, "churners": realised.n_churners,
            "caught": realised.true_positives, "missed": realised.n_churners - realised.true_positives,
            "flagged": realised.n_flagged, "n_scored": realised.n_scored, "precision": realised.precision,
            "pr_auc": realised.pr_auc,
        },
        level=realised.target - realised.recall,
        worse_by=0.02,
        chart_png=_chart(ctx, version, point, realised.target),
    )


def _early_warning(
    ctx: JobContext, estimated: EstimatedPerformance, batch: Batch, version: str, threshold: float | None,
    report_id: int,
) -> AlertDraft:
    assert estimated.recall is not None
    point = RecallPoint.from_estimate(batch.received_at, estimated)
    return AlertDraft(
        kind="early_warning",
        severity="warning",
        condition=version,
        title=f"Estimated recall {estimated.recall:.2f} below target {estimated.target:.2f} (batch #{batch.id})",
        text=f"Model {version} on {batch.source_name} (batch #{batch.id}): {estimated.message}",
        figures={
            "batch_id": batch.id, "report_id": report_id, "model_version": version, "threshold": threshold,
            "estimated_recall": estimated.recall, "recall_range": [estimated.recall_low, estimated.recall_high],
            "target": estimated.target, "expected_churners": estimated.expected_churners,
            "flagged": estimated.n_flagged, "n_scored": estimated.n_scored, "estimated_precision": estimated.precision,
        },
        level=estimated.target - estimated.recall,
        worse_by=0.02,
        chart_png=_chart(ctx, version, point, estimated.target),
    )


# ------------------------------------------------------------------------------ event models
def run_on_events(ctx: JobContext, serving: Serving[ChurnModel]) -> JobResult:
    """Realised recall of an event champion on the newest observation date it never trained on.

    Features as of D use only events before D, so scoring D today gives exactly the score the
    model would have given at D: no prediction has to be stored in advance.  What must hold
    is that the outcome is known (D + horizon within the data) and that D is after the dates
    the model learnt from; the newest such date is measured."""
    db, settings = ctx.db, ctx.settings
    model = serving.model
    horizon = int(model.metadata_.get("horizon_days", settings.churn_horizon_days))
    trained = [pd.Timestamp(d) for d in model.metadata_.get("observation_dates", [])]
    end = data_end(db)
    if end is None:
        return JobResult("no event data stored: nothing to measure", outcome="skipped")
    settled = end - timedelta(days=horizon)
    start = (max(trained) + timedelta(days=1)) if trained else settled
    every = str(model.metadata_.get("observation_every", settings.observation_every))
    dates = [d for d in observation_dates(start, settled, every)] if start <= settled else []
    if not dates:
        last = f"{max(trained):%Y-%m-%d}" if trained else "unknown"
        return JobResult(
            f"no observation date after {serving.version}'s last training date ({last}) has a known "
            f"{horizon}-day outcome yet (event data to {end:%Y-%m-%d}): nothing to measure", outcome="skipped")
    moment = dates[-1]
    ctx.progress(f"measuring {serving.version} as of {moment:%Y-%m-%d}")
    frame = features_as_of(db, moment, spec=model_spec(model))
    frame = frame.loc[~Scorer.event_no_history(frame)].reset_index(drop=True)
    ids = frame["client_id"].astype(str).tolist()
    probabilities = model.predict_proba_frame(model_inputs(frame.drop(columns=["client_id"]))) if ids else np.empty(0)
    labels = labels_as_of(db, moment, horizon_days=horizon, client_ids=ids).to_numpy(dtype=float)
    flagged = probabilities >= serving.threshold
    realised = realised_performance(labels, probabilities, flagged, target=settings.recall_target,
                                    min_churners=settings.min_churners, confidence=CONFIDENCE)
    when = f"{moment:%Y-%m-%d}"
    source = f"event features as of {when}, outcomes within {horizon} days"
    body = {"as_of": moment.isoformat(), "model_version": serving.version, "threshold": serving.threshold,
            "predictions": source, "n_records": len(ids), "n_scored": len(ids), "realised": realised.to_dict(),
            "estimated": None, "text": realised.to_text()}
    report_id = store_report(db, PERFORMANCE, body, model_version=serving.version)
    alerts = []
    if realised.alert:
        alerts.append(recall_alert(ctx, realised, version=serving.version, threshold=serving.threshold,
                                   report_id=report_id, when=moment, batch_id=None, short=f"clients as of {when}",
                                   long=f"the clients active on {when} ({source})"))
    follow_ups = [FollowUp("retrain", "recall", {})] if alerts and "recall" in settings.retrain_on else []
    return JobResult(
        summary=f"{serving.version} as of {when}: " + realised.to_text().replace("\n", " "),
        details={"checked": [{"as_of": moment.isoformat(), "report_id": report_id, "model_version": serving.version,
                              "realised": realised.status, "recall": realised.recall}]},
        alerts=alerts,
        follow_ups=follow_ups,
    )
