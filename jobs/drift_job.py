"""Drift job: does the newest data still look like what the champion learnt from?

It compares a batch (by default the latest client batch; after an ingest, each new batch)
with the champion's training reference (``ChurnModel.reference_frame()``), feature by
feature (``model.monitoring.drift``: PSI + KS/chi-square + a minimum sample size, verdict
weighted by feature importance), and the champion's score distribution too.  Every check
is stored as a "drift" report; a "drift" verdict raises a ``drift`` alert with a chart of
the most drifted features.  Score drift alone is reported, not alerted: it is a
consequence of feature drift, and the performance job watches what it means for recall.

A model feature missing from the batch is compared as all-missing — a column that vanished
from the CRM export is drift, not a crash.

A champion trained on event history has no batches to compare: the job then computes its
features for the clients active at the scoring date (now, or the end of the event data) and
compares those with the observation-date rows it learnt from.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd

from jobs.alerts import AlertDraft
from jobs.data import (
    batch_frame,
    event_champion,
    get_batch,
    monitoring_inputs,
    outcomes_only,
)
from jobs.reports import DRIFT, store_report
from jobs.runner import FollowUp, JobContext, JobResult
from model.artifact import ChurnModel
from model.event_source import model_inputs, model_spec, scoring_date
from model.features import level_key
from model.monitoring.charts import drift_chart
from model.monitoring.drift import DriftReport, DriftSettings, detect_drift
from model.registry import Serving
from model.scoring import Scorer
from storage.events.features import features_as_of

log = logging.getLogger("churnguard.jobs")


def drift_settings(settings: Any) -> DriftSettings:
    return DriftSettings(
        psi_moderate=settings.drift_psi_moderate,
        psi_drift=settings.drift_psi_threshold,
        alpha=settings.drift_alpha,
        min_samples=settings.drift_min_samples,
        drifted_share=settings.drift_share,
    )


def compare_with_reference(model: ChurnModel, features_frame: pd.DataFrame,
                           config: DriftSettings) -> tuple[DriftReport, list[str]]:
    """Drift of ``features_frame`` against the model's training reference, and the model
    features the frame lacks (compared as all-missing)."""
    reference = model.reference_frame()
    features = [c for c in model.raw_columns_ if c in reference.columns]
    kinds: dict[str, Any] = {c: model.train_columns_types_[c] for c in features}
    current = features_frame.copy()
    absent = [c for c in features if c not in current.columns]
    for column in absent:
        current[column] = np.nan if kinds[column] == "numeric" else pd.Series([None] * len(current), dtype=object)
    for column in features:  # the model's own spelling of levels, as in its reference sample
        if kinds[column] == "categorical":
            current[column] = pd.Series([level_key(v) for v in current[column].tolist()], dtype=object)
    current_scores = model.predict_proba_frame(current) if len(current) else np.empty(0)
    report = detect_drift(
        reference[features], current[features], features=features, importances=model.importances_,
        kinds=kinds, reference_scores=reference["score"].to_numpy(dtype=float) if "score" in reference else None,
        current_scores=current_scores if "score" in reference else None, settings=config,
    )  # fmt: skip
    return report, absent


def run(ctx: JobContext) -> JobResult:
    db, settings = ctx.db, ctx.settings
    events = event_champion(ctx)
    if events is not None:
        return run_on_events(ctx, events)
    inputs = monitoring_inputs(ctx, nothing="nothing to compare with")
    if isinstance(inputs, str):
        return JobResult(inputs, outcome="skipped")
    serving, schema, batch_ids = inputs
    model = serving.model
    config = drift_settings(settings)
    alerts: list[AlertDraft] = []
    checked: list[dict[str, Any]] = []
    for batch_id in batch_ids:
        batch = get_batch(db, batch_id)
        if batch is None:
            continue
        if outcomes_only(batch, model):
            checked.append({"batch_id": batch_id, "verdict": "not_checked",
                            "reason": "the batch brings outcomes only, not the model's features"})
            continue
        ctx.progress(f"checking batch #{batch_id} against {serving.version}'s reference")
        frame = batch_frame(db, schema, batch_id)
        report, absent = compare_with_reference(model, frame.features, config)
        text = report.to_text()
        if absent:
            text += f"\nMissing from the batch (compared as empty): {', '.join(absent)}"
        body = {**report.to_dict(), "text": text, "batch_id": batch_id, "source_name": batch.source_name,
                "model_version": serving.version, "missing_columns": absent}
        report_id = store_report(db, DRIFT, body, model_version=serving.version, batch_id=batch_id)
        checked.append({"batch_id": batch_id, "report_id": report_id, "verdict": report.verdict,
                        "drifted_share": report.drifted_share, "drifted": [r.feature for r in report.drifted_features],
                        "score_psi": None if report.score is None else report.score.psi})
        if report.verdict == "drift":
            alerts.append(_alert(report, text, serving.version, batch_id, batch.source_name, report_id))
    follow_ups = []
    if alerts and "drift" in settings.retrain_on:
        follow_ups.append(FollowUp("retrain", "drift", {}))
    verdicts = ", ".join(f"batch #{c['batch_id']}: {str(c['verdict']).replace('_', ' ')}" for c in checked)
    return JobResult(
        summary=f"drift vs {serving.version}: {verdicts or 'nothing checked'}",
        details={"model_version": serving.version, "checked": checked},
        alerts=alerts,
        follow_ups=follow_ups,
    )


def run_on_events(ctx: JobContext, serving: Serving[ChurnModel]) -> JobResult:
    """Drift of an event champion's features: the clients active at the scoring date (now,
    or the end of the event data), computed as the model computes them, against the
    observation-date rows it was trained on."""
    db, settings = ctx.db, ctx.settings
    model = serving.model
    moment = scoring_date(db)
    when = f"{moment:%Y-%m-%d %H:%M}"
    ctx.progress(f"computing event features as of {when}")
    frame = features_as_of(db, moment, spec=model_spec(model))
    frame = frame.loc[~Scorer.event_no_history(frame)].reset_index(drop=True)
    report, absent = compare_with_reference(model, model_inputs(frame.drop(columns=["client_id"])),
                                            drift_settings(settings))
    text = report.to_text()
    body = {**report.to_dict(), "text": text, "batch_id": None, "as_of": moment.isoformat(),
            "source_name": f"event features as of {when}", "model_version": serving.version,
            "missing_columns": absent}
    report_id = store_report(db, DRIFT, body, model_version=serving.version)
    alerts = []
    if report.verdict == "drift":
        alerts.append(_alert(report, text, serving.version, None, f"event features as of {when}", report_id))
    follow_ups = [FollowUp("retrain", "drift", {})] if alerts and "drift" in settings.retrain_on else []
    return JobResult(
        summary=f"drift vs {serving.version}: event features as of {when}: {report.verdict.replace('_', ' ')}",
        details={"model_version": serving.version, "checked": [
            {"as_of": moment.isoformat(), "report_id": report_id, "verdict": report.verdict,
             "drifted_share": report.drifted_share, "drifted": [r.feature for r in report.drifted_features]}]},
        alerts=alerts,
        follow_ups=follow_ups,
    )


def _alert(report: DriftReport, text: str, version: str, batch_id: int | None, source: str,
           report_id: int) -> AlertDraft:
    threshold = report.settings.drifted_share
    severity = "critical" if report.drifted_share >= min(1.0, 2 * threshold) or report.score_drifted else "warning"
    drifted = report.drifted_features
    try:
        chart = drift_chart(report)
    except Exception:  # a chart is a nicety; the alert must go out without it
        log.exception("could not draw the drift chart")
        chart = None
    return AlertDraft(
        kind="drift",
        severity=severity,
        condition=version,
        title=f"Data drift in batch #{batch_id} ({source})" if batch_id is not None else f"Data drift in the {source}",
        text=text,
        figures={
            "batch_id": batch_id,
            "report_id": report_id,
            "model_version": version,
            "drifted_share": round(report.drifted_share, 4),
            "drift_share_threshold": threshold,
            "n_current": report.n_current,
            "n_reference": report.n_reference,
            "drifted_features": {r.feature: {"psi": round(r.psi, 4), "p_value": r.p_value, "test": r.test,
                                             "importance": round(r.importance, 4)} for r in drifted},
            "score_psi": None if report.score is None else round(report.score.psi, 4),
            "score_drifted": report.score_drifted,
        },
        level=report.drifted_share,
        worse_by=0.1,
        chart_png=chart,
    )
