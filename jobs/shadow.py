"""The shadow challenger in the jobs: score it on arrival, measure it beside the champion, act.

With ``CHURNGUARD_SHADOW=on`` the newest ``candidate`` version (model/challenger.py) runs in
shadow:

* **On arrival** (the ingest and arrival jobs, ``jobs/ingest_job.py``) it scores the same
  new clients as the champion.  Its predictions go to ``shadow_prediction`` with its own
  version and the champion's, never to ``prediction``: /score, /top, exports and campaigns
  serve the champion only, and nothing that shows scores reads that table.
* **When outcomes arrive** (the performance job) both models score the checked rows that
  *neither* trained on and whose outcome is known — the champion's realised recall keeps its
  own rows (those the champion never trained on) — and the paired comparison of
  model/monitoring/shadow.py is stored in the performance report under ``shadow``, said in
  the job's summary and shown by ``churnguard shadow``.
* **The verdict acts** only with ``CHURNGUARD_PROMOTION=shadow``: "promote" makes the shadow
  the champion through the registry (audited, actor ``shadow``), "retire" rejects it with the
  reasons; either is announced with a ``retrain`` alert, like a retrain's result.  "wait"
  changes nothing and the summary says why.  With ``CHURNGUARD_PROMOTION=gate`` the verdict is
  advice for an admin, who promotes by hand.

A shadow that cannot run (its files are damaged, or it learnt from other data than the
champion: event history against the client table) is left alone and the summary says so;
it never stops the champion's own work.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

from jobs.alerts import AlertDraft
from jobs.data import registry_of, schema_or_none, score_rows, store_shadow_scores
from jobs.runner import JobContext
from model.artifact import ChurnModel
from model.challenger import shadow_enabled, shadow_promotion
from model.monitoring.shadow import ShadowComparison, compare_models
from model.registry import CANDIDATE, ArtifactError, NotFound, Serving
from model.sources import DataSource, RowSet, SourceConfig, model_source_kind, source_for_model
from storage.tables import AuditLog

log = logging.getLogger("churnguard.jobs")
ACTOR = "shadow"  # who promotes or retires a shadow, in the audit log and the champion history
CONFIDENCE = 0.95


@dataclass(frozen=True)
class Shadow:
    """The challenger running in shadow: the model and the source that gives its rows."""

    serving: Serving[ChurnModel]
    source: DataSource

    @property
    def version(self) -> str:
        return self.serving.version


def pick_shadow(ctx: JobContext, champion: Serving[ChurnModel]) -> tuple[Shadow | None, str | None]:
    """The shadow to run beside ``champion``, and a note when a candidate exists but cannot run.

    (None, None) when ``CHURNGUARD_SHADOW`` is off or there is no candidate."""
    if not shadow_enabled(ctx.settings):
        return None, None
    registry = registry_of(ctx.services, ctx.db, ctx.settings)
    info = registry.newest_candidate()
    if info is None:
        return None, None
    try:
        model = registry.load(info.version)
    except ArtifactError as error:
        log.error("shadow %s cannot run: %s (%s)", info.version, error, error.path)
        return None, f"shadow {info.version} cannot run: {error}"
    if model_source_kind(model) != model_source_kind(champion.model):
        return None, (f"shadow {info.version} learnt from other data than champion {champion.version} (event "
                      "history against the client table), so it cannot score the same clients: it is not run")
    try:
        source = source_for_model(ctx.db, SourceConfig.from_settings(ctx.settings), model,
                                  schema=schema_or_none(ctx.db, ctx.settings))
    except Exception as error:  # the champion's work goes on without it
        log.exception("shadow %s cannot run", info.version)
        return None, f"shadow {info.version} cannot run: {error}"
    return Shadow(Serving(info.version, model, float(info.threshold), info.version), source), None


def score_on_arrival(ctx: JobContext, shadow: Shadow, rows: RowSet, *, like: DataSource, champion_version: str,
                     run_id: str) -> str:
    """Score the rows the champion just scored with the shadow and keep its predictions apart."""
    mine = shadow.source.same_rows(rows, like)
    scores = score_rows(shadow.serving, mine)
    store_shadow_scores(ctx.db, mine, scores, champion_version=champion_version, run_id=f"shadow-{run_id}")
    return f"{rows.name} scored in shadow by {shadow.version} ({len(mine)} clients, not shown)"


def measure(ctx: JobContext, shadow: Shadow, champion: Serving[ChurnModel], source: DataSource,
            rows: RowSet) -> tuple[dict[str, Any], ShadowComparison | None]:
    """Compare the shadow with the champion on ``rows`` (the champion's unseen rows of one check):
    the ones the shadow never trained on either and whose outcome is known.

    Returns the report part (``shadow`` in the performance report) and the comparison (None
    when there is nothing to compare yet)."""
    settings = ctx.settings
    fresh = shadow.source.unseen(shadow.serving.model, rows)
    known = ~np.isnan(rows.labels)
    part: dict[str, Any] = {
        "shadow_version": shadow.version, "champion_version": champion.version, "n_rows": len(rows),
        "n_trained_on_shadow": int((~fresh).sum()), "n_outcome_unknown": int((fresh & ~known).sum()),
    }
    if not (fresh & known).any():
        if not fresh.any():
            why = f"shadow {shadow.version} learnt from all of these rows: no fair comparison with {champion.version}"
        else:
            why = f"no outcome is known yet for the rows neither {champion.version} nor {shadow.version} trained on"
        return {**part, "status": "not_comparable", "text": why}, None
    paired = rows.subset(fresh & known)
    mine = score_rows(champion, paired)
    theirs = score_rows(shadow.serving, shadow.source.same_rows(paired, source))
    comparison = compare_models(paired.labels == 1, mine.probabilities, mine.flagged, theirs.probabilities,
                                theirs.flagged, champion_version=champion.version, shadow_version=shadow.version,
                                target=settings.recall_target, min_churners=settings.min_churners,
                                confidence=CONFIDENCE, seed=int(settings.seed))
    text = comparison.to_text()
    if part["n_trained_on_shadow"]:
        text += f"\n  ({part['n_trained_on_shadow']} rows {shadow.version} trained on left out of the comparison)"
    return {**part, "status": "compared", "comparison": comparison.to_dict(), "text": text}, comparison


@dataclass(frozen=True)
class Action:
    """What the verdict did: "promoted", "retired", or "none" with why not."""

    taken: str
    note: str

    def to_dict(self) -> dict[str, Any]:
        return {"taken": self.taken, "note": self.note}


def act(ctx: JobContext, comparison: ShadowComparison) -> Action:
    """Promote or retire the shadow as its verdict says, when ``CHURNGUARD_PROMOTION=shadow``."""
    shadow, champion = comparison.shadow_version, comparison.champion_version
    if comparison.verdict == "wait":
        return Action("none", "waiting: " + comparison.message)
    if not shadow_promotion(ctx.settings):
        advice = "promoting" if comparison.verdict == "promote" else "rejecting"
        return Action("none", f"CHURNGUARD_PROMOTION=gate: the shadow result supports {advice} {shadow}; "
                              "an admin decides")
    registry = registry_of(ctx.services, ctx.db, ctx.settings)
    try:
        info = registry.get(shadow)
    except NotFound:
        return Action("none", f"{shadow} is no longer registered")
    current = registry.champion()
    if info.status != CANDIDATE:
        return Action("none", f"{shadow} is {info.status} now; nothing to decide")
    if current is None or current.version != champion:
        return Action("none", f"the champion changed since the comparison (now "
                              f"{'none' if current is None else current.version}); waiting for one against it")
    if comparison.verdict == "promote":
        registry.promote(shadow, ACTOR)
        _audit(ctx, "shadow_promote", f"{champion} -> {shadow}: {comparison.message}")
        return Action("promoted", f"{shadow} promoted; it replaces {champion}")
    registry.reject(shadow, ACTOR, "shadow comparison: " + "; ".join(comparison.reasons))
    return Action("retired", f"{shadow} rejected; {champion} stays the champion")


def _audit(ctx: JobContext, action: str, detail: str) -> None:
    with ctx.db.session() as session:
        session.add(AuditLog(actor=ACTOR, action=action, detail=detail, result="ok"))


def announce(comparison: ShadowComparison, action: Action, *, where: str, report_id: int,
             batch_id: int | None) -> AlertDraft | None:
    """The news of a shadow promoted or retired, as a ``retrain`` alert for subscribers and admins."""
    if action.taken not in ("promoted", "retired"):
        return None
    shadow, champion = comparison.shadow_version, comparison.champion_version
    c, s = comparison.champion, comparison.shadow
    facts = (f"On {comparison.n_clients:,} new clients neither model trained on ({where}, {s.n_churners} churners) "
             f"{shadow} caught {s.true_positives} (recall {_pct(s.recall)}, precision {_pct(s.precision)}) and "
             f"{champion} caught {c.true_positives} (recall {_pct(c.recall)}, precision {_pct(c.precision)}).")
    boot = comparison.bootstrap
    if boot is not None and boot.pr_auc.estimate is not None and boot.pr_auc.low is not None:
        facts += (f" PR-AUC difference {boot.pr_auc.estimate:+.3f} ({boot.confidence:.0%} interval "
                  f"{boot.pr_auc.low:+.3f} to {boot.pr_auc.high:+.3f}).")
    if action.taken == "promoted":
        title = f"New champion model {shadow} (was {champion}), promoted by its shadow result"
        text = (f"{shadow} ran in shadow beside {champion} and met the recall target "
                f"{comparison.target:.0%} without being significantly worse, so it now gives every score. {facts}")
    else:
        title = f"Shadow challenger {shadow} retired; {champion} stays the champion"
        text = (f"{shadow} ran in shadow beside {champion} and was significantly worse, so it was rejected. {facts}"
                + "".join(f"\n- {reason}" for reason in comparison.reasons))
    return AlertDraft(
        kind="retrain", severity="info", condition=f"shadow-{action.taken}:{shadow}", title=title, text=text,
        figures={"version": shadow, "promoted": action.taken == "promoted", "champion_before": champion,
                 "trigger": "shadow", "reasons": list(comparison.reasons), "report_id": report_id,
                 "batch_id": batch_id, "verdict": comparison.verdict, "n_clients": comparison.n_clients,
                 "churners": s.n_churners, "recall": {shadow: s.recall, champion: c.recall},
                 "precision": {shadow: s.precision, champion: c.precision},
                 "pr_auc": {shadow: s.pr_auc, champion: c.pr_auc},
                 "mcnemar_churners_p": comparison.churners.p_value, "mcnemar_stayers_p": comparison.stayers.p_value},
    )


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


__all__ = ["ACTOR", "Action", "Shadow", "act", "announce", "measure", "pick_shadow", "score_on_arrival"]
