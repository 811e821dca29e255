"""Drift job: does the newest data still look like what the champion learnt from?

It compares what arrived (the champion's data source says what that is: the rows of each
new batch of client snapshots — by default the latest — or, for event history, the features
of the clients active at the scoring date) with the champion's training reference
(``ChurnModel.reference_frame()``: the rows of the newest date it trained on, which is what a
period looks like when it arrives), feature by feature (``model.monitoring.drift``: PSI +
KS/chi-square + a minimum sample size, verdict weighted by feature importance), and the
champion's score distribution too.  Every check
is stored as a "drift" report; a "drift" verdict raises a ``drift`` alert with a chart of
the most drifted features.  Score drift alone is reported, not alerted: it is a
consequence of feature drift, and the performance job watches what it means for recall.

A model feature missing from the batch is compared as all-missing — a column that vanished
from the CRM export is drift, not a crash.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd

from jobs.alerts import AlertDraft
from jobs.data import get_batch, monitored, outcomes_only
from jobs.reports import DRIFT, store_report
from jobs.runner import FollowUp, JobContext, JobResult
from model.artifact import ChurnModel
from model.features import level_key
from model.monitoring.charts import drift_chart
from model.monitoring.drift import DriftReport, DriftSettings, detect_drift

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
    settings = ctx.settings
    inputs = monitored(ctx, nothing="nothing to compare with")
    if isinstance(inputs, str):
        return JobResult(inputs, outcome="skipped")
    serving, source = inputs.serving, inputs.source
    model = serving.model
    config = drift_settings(settings)
    alerts: list[AlertDraft] = []
    checked: list[dict[str, Any]] = []
    sets = source.arrivals(inputs.batch_ids)
    if not sets:
        return JobResult("no client batch stored yet", outcome="skipped")
    for rows in sets:
        batch = get_batch(ctx.db, rows.batch_id) if rows.batch_id is not None else None
        if batch is not None and outcomes_only(batch, model):
            checked.append({"batch_id": rows.batch_id, "verdict": "not_checked",
                            "reason": "the batch brings outcomes only, not the model's features"})
            continue
        ctx.progress(f"checking {rows.name} against {serving.version}'s reference")
        report, absent = compare_with_reference(model, rows.inputs, config)
        text = report.to_text()
        if absent:
            text += f"\nMissing from the data (compared as empty): {', '.join(absent)}"
        body = {**report.to_dict(), "text": text, "batch_id": rows.batch_id, "source_name": rows.name,
                "as_of": None if rows.when is None else rows.when.isoformat(),
                "model_version": serving.version, "missing_columns": absent}
        report_id = store_report(ctx.db, DRIFT, body, model_version=serving.version, batch_id=rows.batch_id)
        checked.append({"batch_id": rows.batch_id, "name": rows.name, "as_of": body["as_of"], "report_id": report_id,
                        "verdict": report.verdict, "drifted_share": report.drifted_share,
                        "drifted": [r.feature for r in report.drifted_features],
                        "score_psi": None if report.score is None else report.score.psi})
        if report.verdict == "drift":
            alerts.append(_alert(report, text, serving.version, rows.batch_id, rows.name, report_id))
    follow_ups = []
    if alerts and "drift" in settings.retrain_on:
        follow_ups.append(FollowUp("retrain", "drift", {}))
    verdicts = ", ".join(f"{_short(c)}: {str(c['verdict']).replace('_', ' ')}" for c in checked)
    return JobResult(
        summary=f"drift vs {serving.version}: {verdicts or 'nothing checked'}",
        details={"model_version": serving.version, "checked": checked},
        alerts=alerts,
        follow_ups=follow_ups,
    )


def _short(checked: dict[str, Any]) -> str:
    if checked.get("batch_id") is not None:
        return f"batch #{checked['batch_id']}"
    return str(checked.get("name"))


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
        title=f"Data drift in {source}",
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
