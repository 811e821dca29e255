"""Performance job: is the champion still catching the churners it promised to catch?

The champion's data source (model/sources.py) gives the rows to measure: for client
snapshots, the rows of each checked batch (by default the latest; after an ingest, each new
batch); for event history, the clients active at the newest observation date whose outcome is
known and that the champion never trained on.  Only rows the champion never trained on count
(clients it never saw, or dates after its training period): features describe their as-of
date, so scoring them now gives the score the model would have given then, and scoring rows
it learnt from would flatter it.

* **Outcomes known**: realised recall, precision and PR-AUC.  Recall below the target raises
  a ``recall`` alert with the confidence interval and the number of churners; below
  ``CHURNGUARD_MIN_CHURNERS`` there is no alert and the report says so.  The alert compares
  the point estimate with the target, so it agrees with anyone recomputing recall from the
  same scores and labels.
* **Outcomes not known yet**: the recall expected from the calibrated probabilities (CBPE);
  below the target it raises an ``early_warning``.

Every check is stored as a "performance" report.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

import numpy as np

from jobs.alerts import AlertDraft
from jobs.data import monitored, scorable, score_rows
from jobs.reports import PERFORMANCE, reports, store_report
from jobs.runner import FollowUp, JobContext, JobResult
from jobs.shadow import Action, Shadow, act, announce, measure, pick_shadow
from model.artifact import ChurnModel
from model.monitoring.charts import RecallPoint, recall_chart
from model.monitoring.performance import (
    EstimatedPerformance,
    RealisedPerformance,
    estimate_performance,
    realised_performance,
)
from model.monitoring.shadow import ShadowComparison
from model.registry import Serving
from model.sources import DataSource, RowSet
from storage.tables import utcnow

log = logging.getLogger("churnguard.jobs")
CONFIDENCE = 0.95


def run(ctx: JobContext) -> JobResult:
    settings = ctx.settings
    inputs = monitored(ctx, nothing="nothing to measure")
    if isinstance(inputs, str):
        return JobResult(inputs, outcome="skipped")
    serving, source = inputs.serving, inputs.source
    model = serving.model
    alerts: list[AlertDraft] = []
    checked: list[dict[str, Any]] = []
    lines: list[str] = []
    recall_alert = False
    shadow, shadow_note = pick_shadow(ctx, serving)
    if shadow_note is not None:
        lines.append(shadow_note)
    sets = source.outcomes(inputs.batch_ids, model)
    if not sets:
        newest = model.newest_training_date()
        since = f" after its last training date ({newest:%Y-%m-%d})" if newest is not None else ""
        return JobResult(f"nothing to measure: no date{since} has a known outcome yet", outcome="skipped")
    for found in sets:
        ctx.progress(f"measuring {serving.version} on {found.name}")
        rows = scorable(found, settings)
        fresh = source.unseen(model, rows)
        label = f"batch #{rows.batch_id}" if rows.batch_id is not None else found.name
        if not fresh.any():
            reason = f"{serving.version} learnt from all of these rows: no honest measurement"
            checked.append({"batch_id": rows.batch_id, "status": "not_measurable", "reason": reason})
            lines.append(f"{label}: {reason}")
            continue
        rows = rows.subset(fresh)
        scores = score_rows(serving, rows)
        labels = rows.labels
        known = ~np.isnan(labels)
        realised = estimated = None
        if known.any():
            realised = realised_performance(labels[known], scores.probabilities[known], scores.flagged[known],
                                            target=settings.recall_target, min_churners=settings.min_churners,
                                            confidence=CONFIDENCE)
        if (~known).any():
            estimated = estimate_performance(scores.probabilities[~known], scores.flagged[~known],
                                             target=settings.recall_target, min_churners=settings.min_churners,
                                             confidence=CONFIDENCE, seed=int(settings.seed))
        excluded = int((~fresh).sum())
        how = f"scored by {serving.version}, which never trained on them"
        if excluded:
            how += f" ({excluded} rows it trained on left out)"
        text = "\n".join(part.to_text() for part in (realised, estimated) if part is not None)
        beside, said, action, comparison = _beside_shadow(ctx, shadow, serving, source, rows)
        if comparison is not None and action is not None and action.taken != "none":
            shadow = None  # decided: the rest of this run measures the champion alone
        body = {
            "batch_id": rows.batch_id, "source_name": found.name, "model_version": serving.version,
            "as_of": None if rows.when is None else rows.when.isoformat(), "threshold": scores.threshold,
            "predictions": how, "n_records": len(found), "n_scored": len(rows), "n_trained_on": excluded,
            "realised": None if realised is None else realised.to_dict(),
            "estimated": None if estimated is None else estimated.to_dict(), "shadow": beside,
            "text": text + (f"\n{beside['text']}" if beside is not None else ""),
        }  # fmt: skip
        report_id = store_report(ctx.db, PERFORMANCE, body, model_version=serving.version, batch_id=rows.batch_id)
        checked.append({"batch_id": rows.batch_id, "as_of": body["as_of"], "report_id": report_id,
                        "model_version": serving.version,
                        "realised": None if realised is None else realised.status,
                        "recall": None if realised is None else realised.recall,
                        "estimated": None if estimated is None else estimated.status,
                        "estimated_recall": None if estimated is None else estimated.recall,
                        "shadow": None if beside is None else {
                            "version": beside["shadow_version"], "status": beside["status"],
                            "verdict": None if comparison is None else comparison.verdict,
                            "action": None if action is None else action.taken}})
        lines.append(f"{label} ({serving.version}): " + text.replace("\n", " ") + (f" {said}" if said else ""))
        if comparison is not None and action is not None:
            news = announce(comparison, action, where=label, report_id=report_id, batch_id=rows.batch_id)
            if news is not None:
                alerts.append(news)
        when = rows.when or utcnow()
        if realised is not None and realised.alert:
            recall_alert = True
            alerts.append(recall_alert_for(ctx, realised, version=serving.version, threshold=scores.threshold,
                                           report_id=report_id, when=when, batch_id=rows.batch_id, short=label,
                                           long=f"{found.name} ({how})"))
        if estimated is not None and estimated.early_warning:
            alerts.append(_early_warning(ctx, estimated, version=serving.version, threshold=scores.threshold,
                                         report_id=report_id, when=when, batch_id=rows.batch_id, short=label,
                                         long=found.name))
    follow_ups = []
    if recall_alert and "recall" in settings.retrain_on:
        follow_ups.append(FollowUp("retrain", "recall", {}))
    return JobResult(
        summary="; ".join(lines) or "nothing to measure",
        details={"checked": checked},
        alerts=alerts,
        follow_ups=follow_ups,
    )


def _beside_shadow(ctx: JobContext, shadow: Shadow | None, serving: Serving[ChurnModel], source: DataSource,
                   rows: RowSet) -> tuple[dict[str, Any] | None, str, Action | None, ShadowComparison | None]:
    """The shadow challenger measured on the same rows (jobs/shadow.py), and what its verdict did:
    the report part, a sentence for the summary, the action and the comparison."""
    if shadow is None:
        return None, "", None, None
    try:
        beside, comparison = measure(ctx, shadow, serving, source, rows)
    except Exception as error:  # the champion's measurement stands on its own
        log.exception("could not measure shadow %s", shadow.version)
        return ({"shadow_version": shadow.version, "champion_version": serving.version, "status": "failed",
                 "text": f"shadow {shadow.version} could not be measured: {error}"},
                f"Shadow {shadow.version} could not be measured ({error}).", None, None)
    if comparison is None:
        return beside, f"Shadow {shadow.version}: {beside['text']}.", None, None
    try:
        action = act(ctx, comparison)
    except Exception as error:  # e.g. the shadow's files were damaged since it scored: nothing moved
        log.exception("could not act on the verdict about shadow %s", shadow.version)
        action = Action("none", f"the verdict could not be carried out: {error}")
    beside["action"] = action.to_dict()
    said = f"{comparison.line()} {comparison.message}"
    if action.taken != "none":
        said += f" {action.note}."
    elif comparison.decisive:
        said += f" Not acted on: {action.note}."
    return beside, said, action, comparison


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


def recall_alert_for(
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
    ctx: JobContext, estimated: EstimatedPerformance, *, version: str, threshold: float | None, report_id: int,
    when: datetime, batch_id: int | None, short: str, long: str,
) -> AlertDraft:
    assert estimated.recall is not None
    point = RecallPoint.from_estimate(when, estimated)
    return AlertDraft(
        kind="early_warning",
        severity="warning",
        condition=version,
        title=f"Estimated recall {estimated.recall:.2f} below target {estimated.target:.2f} ({short})",
        text=f"Model {version} on {long}: {estimated.message}",
        figures={
            "batch_id": batch_id, "report_id": report_id, "model_version": version, "threshold": threshold,
            "estimated_recall": estimated.recall, "recall_range": [estimated.recall_low, estimated.recall_high],
            "target": estimated.target, "expected_churners": estimated.expected_churners,
            "flagged": estimated.n_flagged, "n_scored": estimated.n_scored, "estimated_precision": estimated.precision,
        },
        level=estimated.target - estimated.recall,
        worse_by=0.02,
        chart_png=_chart(ctx, version, point, estimated.target),
    )
