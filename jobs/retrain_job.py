"""Retrain job: train a challenger on the accumulated labelled data; promote only through the gate.

Triggers (``CHURNGUARD_RETRAIN_ON``, any of schedule, new_labels, drift, recall) and an
admin's /retrain or ``churnguard jobs run retrain`` (always run).  An automatic trigger only
trains when labelled data arrived since the newest model version was trained — retraining
on the same rows gives the same model, and a drift alert that repeats must not start a
training each time.

Training goes through ``model.service.train_and_register``: the challenger and the champion
are scored on the same held-out test rows and the acceptance gate decides; when it refuses,
the champion stays and the report says why.  With ``CHURNGUARD_PROMOTION=shadow`` a challenger
that passes is kept as a candidate instead (model/challenger.py), runs in shadow beside the
champion, and the performance job promotes or retires it (jobs/shadow.py).  Nothing is
written before training ends, so a crash mid-training leaves the champion untouched; the
runner then marks the run failed and alerts the admins (``job_failed``).  A trainer that takes ``cancel`` (the service's worker
process, ``bot/training.py``) is handed the runner's stop event: SIGTERM then stops the
training within seconds, nothing is registered, and the run is recorded as "cancelled".

:class:`RetrainWorker` is what the bot's /retrain uses: the training runs in a worker
thread of the shared :class:`~jobs.runner.JobRunner` (the event loop keeps answering), one
retrain at a time across the process and the store, with progress lines delivered to an
async callback on the loop (e.g. editing a Telegram message).
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlmodel import col, select

from jobs.alerts import AlertDraft
from jobs.data import registry_of
from jobs.reports import RETRAIN, store_report
from jobs.runner import JobCancelled, JobContext, JobResult, JobRunner, RunReport
from model.challenger import promotes_at_once, supersede
from model.registry import CANDIDATE
from model.sources import EVENTS, SnapshotSource, SourceConfig, source_for_training
from storage.db import Database
from storage.errors import UserError
from storage.tables import ModelVersion, utcnow

log = logging.getLogger("churnguard.jobs")
AUTOMATIC = {"schedule": "schedule", "catch_up": "schedule", "new_labels": "new_labels", "drift": "drift",
             "recall": "recall"}


class Trainer(Protocol):
    """``model.service.train_and_register`` or a stand-in with its signature (tests)."""

    def __call__(self, db: Database, settings: Any, **kwargs: Any) -> Any: ...


def default_trainer(db: Database, settings: Any, **kwargs: Any) -> Any:
    from model.service import train_and_register

    accepted = inspect.signature(train_and_register).parameters
    return train_and_register(db, settings, **{k: v for k, v in kwargs.items() if k in accepted})


def labelled_batch_ids(db: Database) -> list[int]:
    """The labelled client batches, oldest first."""
    return SnapshotSource(db, SourceConfig()).learnable_batches()


def newest_version(db: Database) -> ModelVersion | None:
    with db.session() as session:
        return session.exec(select(ModelVersion).order_by(col(ModelVersion.id).desc())).first()


def new_labels_since_last_training(db: Database, settings: Any) -> tuple[bool, str]:
    """Whether batches a model learns from arrived that the newest model version was not
    trained on (labelled client batches, or any event file: every new event can settle an
    outcome)."""
    source = source_for_training(db, SourceConfig.from_settings(settings))
    what = "event" if source.kind == EVENTS else "labelled"
    learnable = source.learnable_batches()
    if not learnable:
        return False, f"no {what} data stored"
    newest = newest_version(db)
    if newest is None:
        return True, "no model trained yet"
    seen = {int(b) for b in newest.batch_ids}
    fresh = [b for b in learnable if b not in seen and b > max(seen, default=0)]
    if not fresh:
        return False, f"no {what} batch arrived since {newest.version} was trained"
    return True, f"{what} batch(es) {', '.join(f'#{b}' for b in fresh)} arrived since {newest.version}"


def window_batches(learnable: list[int], window: int) -> list[int] | None:
    """The labelled batches a challenger learns from: the newest ``window`` ones (0 = all)."""
    if window <= 0:
        return None
    return learnable[-window:]


def run(ctx: JobContext) -> JobResult:
    db, settings = ctx.db, ctx.settings
    trigger = ctx.trigger
    actor = str(ctx.params.get("actor") or ("system" if trigger != "manual" else "cli"))
    source = source_for_training(db, SourceConfig.from_settings(settings))
    events = source.kind == EVENTS
    learnable = source.learnable_batches()
    if not events and not learnable:
        return JobResult("no labelled data stored yet: ingest a CRM export with the label column first",
                         outcome="skipped")
    if trigger in AUTOMATIC:
        kind = AUTOMATIC[trigger]
        if kind not in settings.retrain_on:
            return JobResult(f"retrain on {kind} is off (CHURNGUARD_RETRAIN_ON={','.join(settings.retrain_on)})",
                             outcome="skipped")
        due, why = new_labels_since_last_training(db, settings)
        if not due:
            return JobResult(f"nothing new to learn from: {why}", outcome="skipped", details={"reason": why})
    else:
        due, why = True, f"requested by {actor}"
    if ctx.cancel.is_set():
        raise JobCancelled("the service is stopping; the retrain did not start")
    registry = registry_of(ctx.services, db, settings)
    before = registry.champion()
    trainer: Trainer = ctx.services.get("trainer") or default_trainer
    kwargs: dict[str, Any] = {"actor": actor, "progress": ctx.progress, "registry": registry}
    if "cancel" in _parameters(trainer):
        kwargs["cancel"] = ctx.cancel
    in_shadow = not promotes_at_once(settings, registry)  # CHURNGUARD_PROMOTION=shadow: a passing model waits
    if in_shadow:
        if not _accepts(trainer, "promote"):
            raise UserError("CHURNGUARD_PROMOTION is shadow but this trainer cannot keep a challenger as a candidate")
        kwargs["promote"] = False
    window = None if events else window_batches(learnable, int(settings.retrain_window_batches))
    window_note = "the event history at every observation date" if events else "all labelled data"
    if window is not None:
        window_note = f"the newest {len(window)} labelled batch(es): {', '.join(f'#{b}' for b in window)}"
        if "batch_window" in _parameters(trainer):
            kwargs["batch_window"] = window
        else:
            window_note += " (not applied: this trainer takes no window; trained on all labelled data)"
    ctx.progress(f"training a challenger on {window_note}")
    started = utcnow()
    result = trainer(db, settings, **kwargs)
    registry.invalidate()
    after = registry.champion()
    version, status = str(result.version), str(result.status)
    reasons = [str(r) for r in getattr(result, "reasons", [])]
    promoted = after is not None and after.version == version and (before is None or before.version != version)
    shadowed = in_shadow and status == CANDIDATE
    superseded = supersede(registry, version, actor=actor) if shadowed else []
    if promoted:
        summary = f"{version} passed the acceptance gate and is the champion now" + (
            f" (was {before.version})" if before is not None else "")
    elif shadowed and before is not None:
        summary = (f"{version} passed the acceptance gate and runs in shadow beside champion {before.version}; it is "
                   "promoted when outcomes of new clients show it keeps the recall target and is not worse")
        if superseded:
            summary += f" (it replaces the shadow {', '.join(superseded)})"
    else:
        stays = f"champion {before.version} stays" if before is not None else "there is still no champion"
        summary = f"{version} {status}; {stays}" + (": " + "; ".join(reasons) if reasons else "")
    body = {
        "trigger": trigger, "why": why, "actor": actor, "version": version, "status": status, "promoted": promoted,
        "reasons": reasons, "champion_before": None if before is None else before.version,
        "champion_after": None if after is None else after.version, "window": window_note,
        "started_at": started.isoformat(), "finished_at": utcnow().isoformat(), "text": summary,
        "shadow": shadowed, "superseded": superseded,
        "gate": _report_part(result, "gate"), "metrics": _report_part(result, "metrics"),
        "warnings": [str(w) for w in _report_part(result, "warnings") or []],
    }  # fmt: skip
    store_report(db, RETRAIN, body, model_version=version)
    ctx.progress(summary)
    announcement = announce(version, promoted=promoted, before=None if before is None else before.version,
                            trigger=trigger, why=why, window=window_note, reasons=reasons,
                            test=(_report_part(result, "metrics") or {}).get("test"), shadow=shadowed,
                            superseded=superseded)
    return JobResult(summary=summary, details={"result": {k: body[k] for k in (
        "version", "status", "promoted", "reasons", "champion_before", "champion_after", "window", "why",
        "warnings", "shadow", "superseded")}},
        alerts=[announcement])


TRIGGER_WORDS = {
    "manual": "an admin asked for it",
    "schedule": "its schedule was due",
    "catch_up": "a scheduled retrain was missed while the service was down",
    "new_labels": "new labelled data arrived",
    "drift": "the data drifted from what the champion learnt from",
    "recall": "the champion's recall fell below the target",
}


def announce(version: str, *, promoted: bool, before: str | None, trigger: str, why: str, window: str,
             reasons: list[str], test: Any, shadow: bool = False, superseded: list[str] | None = None) -> AlertDraft:
    """The news of a finished retrain for subscribers and admins: a new champion, a challenger
    that now runs in shadow (``CHURNGUARD_PROMOTION=shadow``), or a challenger the gate turned
    down, with why it trained and the figures that decided.

    A retrain the scheduler or a new file started happens while nobody watches; without this
    the team would only notice a different model version in /score.
    """
    # who asked is in the audit log; the news says why the data called for a new model
    detail = "" if trigger == "manual" else f" ({why})"
    because = f"It retrained because {TRIGGER_WORDS.get(trigger, trigger)}{detail}, on {window}."
    figures = _test_line(test)
    if promoted:
        title = f"New champion model {version}" + (f" (was {before})" if before else "")
        text = (f"{version} passed the acceptance gate and now gives every score"
                + (f", replacing {before}." if before else ".") + f" {because}" + (f"\n{figures}" if figures else ""))
    elif shadow:
        title = f"Retrained model {version} runs in shadow; {before} stays the champion"
        text = (f"{version} passed the acceptance gate. It now scores every new client beside {before}, shown to "
                "nobody, and becomes the champion once the outcomes of clients neither model trained on show that "
                "it keeps the recall target and is not significantly worse; if it is significantly worse it is "
                f"retired. {because}" + (f"\n{figures}" if figures else "")
                + (f"\nIt replaces the shadow challenger {', '.join(superseded)}." if superseded else ""))
    else:
        stays = f"{before} stays the champion" if before else "there is still no champion"
        title = f"Retrained model {version} was not promoted; {stays}"
        text = (f"{version} did not pass the acceptance gate, so {stays}. {because}"
                + (f"\n{figures}" if figures else "")
                + "".join(f"\n- {reason}" for reason in reasons))
    return AlertDraft(kind="retrain", severity="info", condition=version, title=title, text=text,
                      figures={"version": version, "promoted": promoted, "champion_before": before,
                               "trigger": trigger, "reasons": reasons, "shadow": shadow,
                               "superseded": list(superseded or [])})


def _test_line(test: Any) -> str:
    """Test-split recall and precision of the new version, and of the champion it was compared with."""
    if not isinstance(test, dict) or not isinstance(test.get("lightgbm"), dict):
        return ""

    def pair(figures: dict[str, Any]) -> str | None:
        recall, precision = figures.get("recall"), figures.get("precision")
        if not isinstance(recall, int | float) or not isinstance(precision, int | float):
            return None
        return f"recall {recall:.1%}, precision {precision:.1%}"

    mine = pair(test["lightgbm"])
    if mine is None:
        return ""
    theirs = pair(test["champion"]) if isinstance(test.get("champion"), dict) else None
    return (f"On clients it never saw: {mine}"
            + (f" (the champion it was compared with: {theirs})." if theirs else "."))


def _accepts(function: Any, name: str) -> bool:
    """Whether ``function`` takes the keyword ``name``, by name or through ``**kwargs``."""
    try:
        parameters = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.name == name or p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters)


def _parameters(function: Any) -> set[str]:
    try:
        return set(inspect.signature(function).parameters)
    except (TypeError, ValueError):
        return set()


def _report_part(result: Any, key: str) -> Any:
    report = getattr(result, "report", None)
    return report.get(key) if isinstance(report, dict) else None


# --------------------------------------------------------------------------------------------
# The bot's /retrain
# --------------------------------------------------------------------------------------------


class RetrainBusy(UserError):
    """A retrain is already running; the message says since when and who asked."""

    exit_code = 3


@dataclass(frozen=True)
class RunningRetrain:
    actor: str
    started_at: datetime


OnProgress = Callable[[str], Awaitable[None]] | Callable[[str], None]


class RetrainWorker:
    """One retrain at a time, off the event loop, with progress to a callback.

    Shares the runner (and so the per-job lock) with the scheduler: a /retrain during a
    scheduled retrain is told one is running, and vice versa the scheduled one is skipped.
    """

    def __init__(self, runner: JobRunner) -> None:
        self.runner = runner
        self.current: RunningRetrain | None = None

    @property
    def busy(self) -> bool:
        return self.current is not None or self.runner.is_running("retrain")

    def _busy_error(self) -> RetrainBusy:
        if self.current is not None:
            since = f"{self.current.started_at:%H:%M} UTC"
            return RetrainBusy(f"a retrain is already running (started {since} by {self.current.actor}); "
                               "you will see its result when it ends")
        return RetrainBusy("a retrain is already running; try again when it has finished")

    async def retrain(self, *, actor: str, on_progress: OnProgress | None = None) -> RunReport:
        """Train now; returns the run report (its summary says promoted or why not).

        Raises :class:`RetrainBusy` at once when a retrain is running.  A crash in training
        comes back as a report with outcome "failed" (and a job_failed alert to admins).
        """
        if self.busy:
            raise self._busy_error()
        self.current = RunningRetrain(actor, utcnow())
        try:
            reports = await self.runner.run("retrain", trigger="manual", params={"actor": actor},
                                            progress=on_progress, follow=False)
        finally:
            self.current = None
        report = reports[0]
        if report.outcome == "skipped" and "already running" in report.summary:
            raise self._busy_error()
        return report


__all__ = [
    "RetrainBusy",
    "RetrainWorker",
    "RunningRetrain",
    "Trainer",
    "default_trainer",
    "labelled_batch_ids",
    "new_labels_since_last_training",
    "run",
    "window_batches",
]
