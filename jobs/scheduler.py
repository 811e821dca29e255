"""Cron schedules for the jobs, on APScheduler 3's AsyncIOScheduler in the bot's event loop.

Restart safety comes from storage, not from APScheduler's job store: each job's schedule
(its cron line and the time it was first scheduled) is kept in the ``meta`` table, and its
last run in ``job_run``.  On start, a job whose last run (or, if it never ran, its first
scheduling) is older than a cron slot that has since passed is run once, now: a service
that was down for a week catches up with one ingest, not 2,016.  APScheduler itself only
holds the in-memory cron triggers (coalesce on, one instance per job), which is why it
needs no pickled job store.

Follow-ups that the last process owed but did not run (an upload's checks and retrain that a
shutdown cancelled or never started; see ``jobs/owed.py``) run once on start too, before the
missed slots.

Besides the four jobs, an outbox pass every ``outbox_seconds`` delivers alerts that were
stored without being sent (raised by ``churnguard jobs run`` in a shell, or whose send
failed).

Use (the bot's ``churnguard run``)::

    runner = JobRunner(settings, db, notifier)
    scheduler = JobScheduler(runner)
    await scheduler.start()        # inside the running loop, e.g. PTB's post_init
    ...
    await scheduler.shutdown()     # e.g. PTB's post_shutdown
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from jobs.cron import cron_trigger, first_missed, is_off, next_fire
from jobs.owed import Owed, claim_orphaned
from jobs.runner import FOLLOW_UP_WAIT_SECONDS, JOB_NAMES, JobRunner, RunReport
from jobs.runs import RunView, close_interrupted, last_runs
from storage.db import Database
from storage.tables import Meta, utcnow

if TYPE_CHECKING:
    from churnguard import Settings

log = logging.getLogger("churnguard.scheduler")
_META_PREFIX = "job_schedule:"
MISFIRE_GRACE_SECONDS = 300


def schedules(settings: Settings) -> dict[str, str]:
    """Job name -> cron line ("off" when disabled)."""
    table = {
        "ingest": settings.ingest_cron,
        "drift": settings.drift_cron,
        "performance": settings.performance_cron,
        "retrain": settings.retrain_cron,
    }
    if "schedule" not in settings.retrain_on:
        table["retrain"] = "off"
    return table


def setting_of(job: str) -> str:
    return f"CHURNGUARD_{job.upper()}_CRON"


@dataclass(frozen=True)
class ScheduleView:
    """One job's schedule as ``churnguard jobs list`` shows it."""

    job: str
    cron: str
    since: datetime | None
    next_run: datetime | None
    last_run: RunView | None
    missed: datetime | None

    @property
    def enabled(self) -> bool:
        return not is_off(self.cron)

    def as_dict(self) -> dict[str, Any]:
        return {
            "job": self.job,
            "cron": self.cron,
            "setting": setting_of(self.job),
            "enabled": self.enabled,
            "scheduled_since": None if self.since is None else self.since.isoformat(),
            "next_run": None if self.next_run is None else self.next_run.isoformat(),
            "missed_slot": None if self.missed is None else self.missed.isoformat(),
            "last_run": None if self.last_run is None else self.last_run.as_dict(),
        }


def stored_schedules(db: Database) -> dict[str, dict[str, Any]]:
    """What the store remembers: job -> {"cron": ..., "since": datetime}."""
    with db.session() as session:
        rows = session.exec(_meta_rows()).all()
    found: dict[str, dict[str, Any]] = {}
    for row in rows:
        try:
            value = json.loads(row.value)
            found[row.key.removeprefix(_META_PREFIX)] = {
                "cron": str(value["cron"]),
                "since": datetime.fromisoformat(value["since"]),
            }
        except (ValueError, KeyError, TypeError):
            log.warning("ignoring a damaged schedule row %s", row.key)
    return found


def _meta_rows() -> Any:
    from sqlmodel import col, select

    return select(Meta).where(col(Meta.key).startswith(_META_PREFIX))


def remember_schedules(db: Database, settings: Settings, now: datetime | None = None) -> dict[str, dict[str, Any]]:
    """Store each job's cron line; the first time a job is scheduled becomes its ``since``."""
    now = now or utcnow()
    known = stored_schedules(db)
    with db.session() as session:
        for job, cron in schedules(settings).items():
            entry = known.get(job)
            if entry is not None and entry["cron"] == cron:
                continue
            since = entry["since"] if entry is not None else now
            if entry is not None and is_off(entry["cron"]) and not is_off(cron):
                since = now  # re-enabled: slots while it was off were not "missed"
            row = session.get(Meta, _META_PREFIX + job)
            value = json.dumps({"cron": cron, "since": since.isoformat()})
            if row is None:
                session.add(Meta(key=_META_PREFIX + job, value=value))
            else:
                row.value = value
                session.add(row)
            known[job] = {"cron": cron, "since": since}
    return known


def schedule_table(db: Database, settings: Settings, now: datetime | None = None) -> list[ScheduleView]:
    """Schedules, next and last runs and any missed slot, without changing anything."""
    now = now or utcnow()
    stored = stored_schedules(db)
    runs = last_runs(db)
    views = []
    for job, cron in schedules(settings).items():
        since = stored.get(job, {}).get("since")
        last = runs.get(job)
        missed = _missed(cron, since, last, now)
        views.append(ScheduleView(job, cron, since, next_fire(cron, now), last, missed))
    return views


def _missed(cron: str, since: datetime | None, last: RunView | None, now: datetime) -> datetime | None:
    if is_off(cron):
        return None
    anchors = [t for t in (since, None if last is None else last.started_at) if t is not None]
    if not anchors:
        return None  # never scheduled before: its slots start now
    return first_missed(cron, max(anchors), now)


def due_on_start(db: Database, settings: Settings, now: datetime | None = None) -> list[str]:
    """Jobs whose last run is older than a cron slot that has passed: each runs once, now."""
    now = now or utcnow()
    return [view.job for view in schedule_table(db, settings, now) if view.missed is not None]


class JobScheduler:
    """The four jobs on cron triggers plus the alert outbox, in the current event loop."""

    def __init__(self, runner: JobRunner, *, outbox_seconds: float = 30.0) -> None:
        self.runner = runner
        self.outbox_seconds = outbox_seconds
        self.scheduler = AsyncIOScheduler(timezone="UTC")
        self.catch_up: list[asyncio.Task[list[RunReport]]] = []

    @property
    def settings(self) -> Settings:
        return self.runner.settings

    @property
    def db(self) -> Database:
        return self.runner.db

    async def start(self, now: datetime | None = None) -> list[str]:
        """Start the cron triggers; run each job that missed a slot once.  Returns those jobs."""
        db, settings = self.db, self.settings
        closed = await asyncio.to_thread(close_interrupted, db)
        if closed:
            log.warning("marked %d job run(s) interrupted by the last shutdown as failed", len(closed))
        owed = await asyncio.to_thread(claim_orphaned, db)
        now = now or utcnow()
        due = await asyncio.to_thread(due_on_start, db, settings, now)
        await asyncio.to_thread(remember_schedules, db, settings, now)
        for job, cron in schedules(settings).items():
            if is_off(cron) or job not in self.runner.jobs:
                continue
            self.scheduler.add_job(
                self._scheduled, cron_trigger(cron), args=[job], id=job, name=f"churnguard {job}",
                coalesce=True, max_instances=1, misfire_grace_time=MISFIRE_GRACE_SECONDS, replace_existing=True,
            )  # fmt: skip
        if self.outbox_seconds > 0 and self.runner.notifier is not None:
            self.scheduler.add_job(
                self._outbox, "interval", seconds=self.outbox_seconds, id="outbox", name="churnguard alert outbox",
                coalesce=True, max_instances=1, replace_existing=True,
            )  # fmt: skip
        self.scheduler.start()
        missed = [name for name in JOB_NAMES if name in due]
        if owed:
            log.info("running %d follow-up(s) the last shutdown left undone: %s", len(owed),
                     ", ".join(f"{row.job} ({row.trigger})" for row in owed))
        if missed:
            log.info("jobs %s missed their schedule while the service was down; running each once now",
                     ", ".join(missed))
        if owed or missed:
            self.catch_up.append(asyncio.create_task(self._catch_up(missed, owed)))
        return missed

    async def _catch_up(self, jobs: list[str], owed: list[Owed] | None = None) -> list[RunReport]:
        """One after the other: first what the last process owed (oldest first), then the missed
        slots in pipeline order: new data first, then checks, then retraining."""
        reports: list[RunReport] = []
        for row in owed or []:
            if row.job not in self.runner.jobs:
                log.warning("owed job %s is unknown to this version; it is left in the store", row.job)
                continue
            try:
                reports.extend(await self.runner.run(
                    row.job, trigger=row.trigger, params=row.params, owed_id=row.id,
                    wait_seconds=0.0 if row.job == "retrain" else FOLLOW_UP_WAIT_SECONDS))
            except Exception:  # the runner records failures itself; this is a last resort
                log.exception("owed job %s could not be run", row.job)
        for job in jobs:
            reports.extend(await self._run(job, "catch_up"))
        return reports

    async def shutdown(self, *, wait_catch_up: bool = True) -> None:
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        if wait_catch_up and self.catch_up:
            await asyncio.gather(*self.catch_up, return_exceptions=True)

    def next_runs(self) -> dict[str, datetime | None]:
        return {job.id: job.next_run_time for job in self.scheduler.get_jobs()}

    async def _scheduled(self, job: str) -> None:
        await self._run(job, "schedule")

    async def _run(self, job: str, trigger: str) -> list[RunReport]:
        try:
            return await self.runner.run(job, trigger=trigger)
        except Exception:  # the runner records failures itself; this is a last resort
            log.exception("job %s could not be run", job)
            return []

    async def _outbox(self) -> None:
        try:
            await self.runner.flush_outbox()
        except Exception:
            log.exception("alert outbox pass failed")
