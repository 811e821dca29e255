"""Run one job: record it, keep the event loop free, raise its alerts, run what it asks next.

Every way a job starts — a cron slot, a catch-up after downtime, ``churnguard jobs run``,
an admin's /retrain — goes through :meth:`JobRunner.run`, so every run is recorded the same
way and fails the same way: the exception becomes a "failed" job run and a ``job_failed``
alert to admins, never a crash of the service.

Jobs are plain synchronous functions (``JobContext -> JobResult``): they do database work,
pandas and LightGBM, which would block the bot's event loop, so the runner runs them in a
worker thread (``asyncio.to_thread``).  A thread rather than a process: LightGBM releases
the GIL while it trains, OpenMP and ``fork`` do not mix, and a ``spawn`` process would have
to re-import pandas/LightGBM and re-open the database for every run.

Only one instance of a job runs at a time, across threads *and* processes: a lock file per
job under ``<home>/locks`` (``flock``) keeps the service's scheduled ingest and a shell's
``churnguard jobs run ingest`` from moving the same inbox file twice.

A job may ask for follow-ups (ingest: "check drift and performance on the new batches",
performance: "retrain, recall fell"); they run after it, each as its own recorded run.  They
are owed in the store until they have run (``jobs/owed.py``), so a shutdown or a crash
between them does not lose them: the next start runs them.

Stopping (:meth:`JobRunner.begin_shutdown`, called on SIGTERM/SIGINT): nothing new starts, a
job waiting for another one's lock gives up, and a job that can be cancelled (a retrain,
whose worker process is killed) stops within seconds and is recorded as "cancelled".
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import fcntl
import inspect
import logging
import threading
import time
import traceback
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from importlib import import_module
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from jobs import owed
from jobs.alerts import AlertDecision, AlertDraft, deliver, raise_alert, unsent
from jobs.notifier import Notifier
from jobs.runs import RunView, finish_run, start_run
from storage.db import Database
from storage.errors import UserError, chat_text
from storage.redact import redact

if TYPE_CHECKING:
    from churnguard import Settings

log = logging.getLogger("churnguard.jobs")

JOB_NAMES = ("ingest", "drift", "performance", "retrain")
FOLLOW_UP_WAIT_SECONDS = 600.0
STOP_SECONDS = 4.0  # how long a stopping service waits for its cancelled jobs to record their end
LOCK_POLL_SECONDS = 0.2
_DEFAULT_JOBS = {name: f"jobs.{name}_job:run" for name in JOB_NAMES}

Progress = Callable[[str], None]
AsyncProgress = Callable[[str], Awaitable[None]] | Callable[[str], None]


@dataclass(frozen=True)
class FollowUp:
    """A job another job asks for, e.g. ``FollowUp("drift", "new_batch", {"batch_ids": [7]})``.

    ``owed_id`` is its row in ``owed_job`` once it is owed (set by the runner); ``resumed``
    marks one that a previous process owed and this one runs at start."""

    job: str
    trigger: str
    params: dict[str, Any] = field(default_factory=dict)
    owed_id: int | None = field(default=None, compare=False)
    resumed: bool = field(default=False, compare=False)

    def step(self) -> owed.Step:
        return self.job, self.trigger, self.params


class JobCancelled(Exception):
    """The service is stopping and the job stopped before its end (recorded as "cancelled")."""


@dataclass
class JobContext:
    """What a job gets: settings, the store, why it runs, and a progress line to report to."""

    settings: Settings
    db: Database
    run_id: int
    job: str
    trigger: str
    params: dict[str, Any]
    progress: Progress
    services: dict[str, Any] = field(default_factory=dict)
    # Set when the service stops: a long job may watch it and raise JobCancelled.
    cancel: threading.Event = field(default_factory=threading.Event)

    @property
    def charts_dir(self) -> Path:
        return Path(self.settings.home) / "charts"


@dataclass
class JobResult:
    """What a job reports: a one-line summary, details for the run row, alerts, follow-ups.

    ``outcome`` is "ok" or "skipped" (nothing to do, or not allowed now); a failure is an
    exception, never a result.
    """

    summary: str
    outcome: str = "ok"
    details: dict[str, Any] = field(default_factory=dict)
    alerts: list[AlertDraft] = field(default_factory=list)
    follow_ups: list[FollowUp] = field(default_factory=list)


@dataclass
class RunReport:
    """One finished run as the command line, the bot and the tests see it."""

    run: RunView
    summary: str
    alerts: list[AlertDecision] = field(default_factory=list)
    delivered: dict[int, int] = field(default_factory=dict)

    @property
    def job(self) -> str:
        return self.run.job

    @property
    def outcome(self) -> str:
        return self.run.outcome

    def as_dict(self) -> dict[str, Any]:
        return {
            **self.run.as_dict(),
            "summary": self.summary,
            "alerts": [decision.as_dict() for decision in self.alerts],
        }


class JobBusy(UserError):
    """The job is already running (in this process or another one)."""

    exit_code = 3


JobFunction = Callable[[JobContext], JobResult]


def _resolve(target: str | JobFunction) -> JobFunction:
    if callable(target):
        return target
    module_name, _, attr = target.partition(":")
    function: JobFunction = getattr(import_module(module_name), attr)
    return function


class _JobLock:
    """Per-job exclusion: a thread lock for this process plus ``flock`` for other processes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.thread_lock = threading.Lock()

    @contextlib.contextmanager
    def hold(self, wait_seconds: float, stop: threading.Event | None = None) -> Iterator[bool]:
        """Yield True once both locks are held, False when ``wait_seconds`` ran out first or
        ``stop`` was set while waiting (a stopping service does not wait 10 minutes for a lock)."""
        deadline = time.monotonic() + wait_seconds

        def give_up() -> bool:
            return time.monotonic() >= deadline or (stop is not None and stop.is_set())

        got = self.thread_lock.acquire(False)
        while not got and not give_up():
            got = self.thread_lock.acquire(timeout=min(LOCK_POLL_SECONDS, max(deadline - time.monotonic(), 0.01)))
        if not got:
            yield False
            return
        handle: IO[str] | None = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            handle = self.path.open("a")
            while True:
                try:
                    fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if give_up():
                        yield False
                        return
                    time.sleep(LOCK_POLL_SECONDS)
            try:
                yield True
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
        finally:
            if handle is not None:
                handle.close()
            self.thread_lock.release()

    @property
    def busy_here(self) -> bool:
        return self.thread_lock.locked()


class JobRunner:
    """Runs the jobs of one store.  One per process; the scheduler and the bot share it.

    ``notifier`` None means "store alerts, deliver nothing" (the command line: the running
    service's outbox delivers them).  ``jobs`` replaces job functions (tests); ``services``
    are handed to every job's context (e.g. ``{"trainer": ...}`` to inject a trainer).
    """

    def __init__(
        self,
        settings: Settings,
        db: Database,
        notifier: Notifier | None = None,
        *,
        jobs: Mapping[str, str | JobFunction] | None = None,
        services: Mapping[str, Any] | None = None,
    ) -> None:
        self.settings = settings
        self.db = db
        self.notifier = notifier
        self.jobs: dict[str, str | JobFunction] = {**_DEFAULT_JOBS, **dict(jobs or {})}
        self.services: dict[str, Any] = dict(services or {})
        self._locks: dict[str, _JobLock] = {}
        self._inflight: set[int] = set()
        self.stopping = threading.Event()
        self._active: set[asyncio.Future[None]] = set()

    @property
    def names(self) -> list[str]:
        return list(self.jobs)

    def _lock(self, job: str) -> _JobLock:
        if job not in self._locks:
            self._locks[job] = _JobLock(Path(self.settings.home) / "locks" / f"{job}.lock")
        return self._locks[job]

    def is_running(self, job: str) -> bool:
        """True while this process runs ``job`` (e.g. the bot asking "is a retrain running?")."""
        return self._lock(job).busy_here

    def check_name(self, job: str) -> None:
        if job not in self.jobs:
            raise UserError(f"unknown job {job!r}; jobs are: {', '.join(self.jobs)}", job=job)

    # ------------------------------------------------------------------ stopping
    def begin_shutdown(self) -> None:
        """Stop, from a signal handler or any thread: nothing new starts, a job waiting for a
        lock gives up, a cancellable job (a retrain) stops within seconds as "cancelled";
        follow-ups not run yet stay owed for the next start.  Returns at once."""
        if not self.stopping.is_set():
            log.info("stopping the jobs: a running retrain is cancelled; follow-ups not run yet wait for the next start")
        self.stopping.set()

    async def shutdown(self, timeout: float = STOP_SECONDS) -> int:
        """:meth:`begin_shutdown`, then wait up to ``timeout`` seconds for the runs in progress
        to record their end; returns how many were still running."""
        self.begin_shutdown()
        waiting = {marker for marker in self._active if not marker.done()}
        if not waiting:
            return 0
        _, left = await asyncio.wait(waiting, timeout=timeout)
        if left:
            log.warning("%d job run(s) still running at shutdown; the next start closes them as interrupted",
                        len(left))
        return len(left)

    # ------------------------------------------------------------------ running
    async def run(
        self,
        job: str,
        *,
        trigger: str = "manual",
        params: Mapping[str, Any] | None = None,
        progress: AsyncProgress | None = None,
        wait_seconds: float = 0.0,
        follow: bool = True,
        owe: bool = False,
        owed_id: int | None = None,
    ) -> list[RunReport]:
        """Run ``job`` once (and its follow-ups when ``follow``); one report per run, in order.

        ``wait_seconds`` > 0 waits that long for a running instance to finish first; with 0 a
        busy job gives a "skipped" run.  ``progress`` receives the job's progress lines on
        the event loop, one at a time and newest-wins when they come faster than it handles them.
        ``owe`` records the job itself as owed before it runs (an upload's follow-up work), so
        a shutdown before it ran leaves it for the next start; ``owed_id`` runs an owed job
        taken over from a previous process.  Follow-ups are always owed until they ran.
        """
        self.check_name(job)
        marker: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._active.add(marker)
        try:
            first = FollowUp(job, trigger, dict(params or {}), owed_id=owed_id, resumed=owed_id is not None)
            if owe and owed_id is None:
                [new_id] = await asyncio.to_thread(owed.owe, self.db, [first.step()])
                first = dataclasses.replace(first, owed_id=new_id)
            return await self._run_chain(first, progress=progress, wait_seconds=wait_seconds, follow=follow)
        finally:
            self._active.discard(marker)
            marker.set_result(None)

    async def _run_chain(
        self, first: FollowUp, *, progress: AsyncProgress | None, wait_seconds: float, follow: bool
    ) -> list[RunReport]:
        reports: list[RunReport] = []
        queue: list[FollowUp] = [first]
        seen: set[tuple[str, str]] = set()
        while queue:
            if self.stopping.is_set():
                if queue[0] is first and first.owed_id is None:
                    reports.append(await asyncio.to_thread(self._not_started, first))
                else:
                    log.info("the service is stopping: %s will run at the next start",
                             ", ".join(f"{step.job} ({step.trigger})" for step in queue))
                break
            step = queue.pop(0)
            key = (step.job, repr(sorted(step.params.items())))
            if key in seen or step.job not in self.jobs:
                if step.owed_id is not None:  # the same check already ran in this chain
                    await asyncio.to_thread(owed.settle, self.db, step.owed_id, [])
                continue
            seen.add(key)
            # A follow-up waits for a scheduled run of the same job; a retrain already running is enough.
            follow_wait = 0.0 if step.job == "retrain" else FOLLOW_UP_WAIT_SECONDS
            wait = wait_seconds if step is first else follow_wait
            report, follow_ups = await self._run_one(step, progress=progress if step is first else None,
                                                     wait_seconds=wait, follow=follow)
            if report is not None:
                reports.append(report)
            queue.extend(follow_ups)
        return reports

    def run_sync(self, job: str, **kwargs: Any) -> list[RunReport]:
        """:meth:`run` for callers without an event loop (the command line, tests)."""
        return asyncio.run(self.run(job, **kwargs))

    async def _run_one(
        self, step: FollowUp, *, progress: AsyncProgress | None, wait_seconds: float, follow: bool
    ) -> tuple[RunReport | None, list[FollowUp]]:
        loop = asyncio.get_running_loop()
        lines: asyncio.Queue[str | None] = asyncio.Queue()
        pump = asyncio.create_task(self._pump(lines, progress)) if progress is not None else None

        def report_progress(line: str) -> None:
            log.info("%s: %s", step.job, line)
            if pump is not None:
                loop.call_soon_threadsafe(lines.put_nowait, line)

        try:
            result = await asyncio.to_thread(self._execute, step, report_progress, wait_seconds, follow)
        finally:
            if pump is not None:
                lines.put_nowait(None)
                await pump
        report, follow_ups = result
        if report is not None and self.notifier is not None:
            ids = [d.alert_id for d in report.alerts if d.stored and d.alert_id is not None]
            report.delivered = await self.deliver(ids)
        return report, follow_ups

    @staticmethod
    async def _pump(lines: asyncio.Queue[str | None], progress: AsyncProgress | None) -> None:
        assert progress is not None
        done = False
        while not done:
            line = await lines.get()
            if line is None:
                return
            while not lines.empty():  # newest wins: skip lines the callback had no time for
                newer = lines.get_nowait()
                if newer is None:
                    done = True
                    break
                line = newer
            try:
                outcome = progress(line)
                if inspect.isawaitable(outcome):
                    await outcome
            except Exception:
                log.exception("progress callback failed; the job goes on")

    def _execute(self, step: FollowUp, progress: Progress, wait_seconds: float, follow: bool
                 ) -> tuple[RunReport | None, list[FollowUp]]:
        """In the worker thread: lock, record, run, record the end, store alerts.

        (None, []) when the service began stopping before the job could start: it stays owed."""
        lock = self._lock(step.job)
        with lock.hold(wait_seconds, self.stopping) as acquired:
            if self.stopping.is_set():
                return (None if step.owed_id is not None else self._not_started(step)), []
            if not acquired:
                run_id = start_run(self.db, step.job, trigger=step.trigger, details={"params": step.params})
                view = finish_run(self.db, run_id, "skipped", details={"summary": f"{step.job} is already running"})
                self._settle(step, run_id, [])
                return RunReport(view, f"{step.job} is already running; this run was skipped"), []
            return self._execute_locked(step, progress, follow)

    def _execute_locked(self, step: FollowUp, progress: Progress, follow: bool
                        ) -> tuple[RunReport, list[FollowUp]]:
        details: dict[str, Any] = {"params": step.params}
        if step.resumed:
            details["resumed"] = True  # owed by a process that stopped before running it
        run_id = start_run(self.db, step.job, trigger=step.trigger, details=details)
        context = JobContext(self.settings, self.db, run_id, step.job, step.trigger, dict(step.params), progress,
                             dict(self.services), cancel=self.stopping)
        try:
            result = _resolve(self.jobs[step.job])(context)
            if result.outcome not in ("ok", "skipped"):
                raise ValueError(f"job {step.job} returned outcome {result.outcome!r}")
        except JobCancelled as cancelled:
            return self._cancelled(step, run_id, cancelled), []  # still owed, if it was
        except Exception as error:
            report = self._failed(step, run_id, error)
            self._settle(step, run_id, [])
            return report, []
        decisions = self._store_alerts(result.alerts)
        details = {
            **result.details,
            "summary": result.summary,
            "alerts": [d.as_dict() for d in decisions],
            "follow_ups": [f.job for f in result.follow_ups],
        }
        view = finish_run(self.db, run_id, result.outcome, details=details)
        log.info("job %s (%s) %s: %s", step.job, step.trigger, result.outcome, result.summary)
        follow_ups = self._settle(step, run_id, list(result.follow_ups) if follow else [])
        return RunReport(view, result.summary, decisions), follow_ups

    def _settle(self, step: FollowUp, run_id: int, follow_ups: list[FollowUp]) -> list[FollowUp]:
        """``step`` ran: forget that it was owed and owe its follow-ups, in one transaction."""
        if step.owed_id is None and not follow_ups:
            return []
        ids = owed.settle(self.db, step.owed_id, [f.step() for f in follow_ups], origin_run_id=run_id)
        return [dataclasses.replace(f, owed_id=i) for f, i in zip(follow_ups, ids, strict=True)]

    def _cancelled(self, step: FollowUp, run_id: int, error: JobCancelled) -> RunReport:
        message = str(error) or "the service is stopping"
        log.warning("job %s (%s) cancelled: %s", step.job, step.trigger, message)
        view = finish_run(self.db, run_id, "cancelled", error=message,
                          details={"summary": f"{step.job} cancelled: {message}"})
        return RunReport(view, f"{step.job} cancelled: {message}")

    def _not_started(self, step: FollowUp) -> RunReport:
        """A run asked for while the service stops (an admin's /retrain in the last second)."""
        run_id = start_run(self.db, step.job, trigger=step.trigger, details={"params": step.params})
        return self._cancelled(step, run_id, JobCancelled("the service is stopping; it did not start"))

    def _failed(self, step: FollowUp, run_id: int, error: Exception) -> RunReport:
        message = redact(str(error) if isinstance(error, UserError) else f"{type(error).__name__}: {error}")
        said = redact(chat_text(error))  # what a chat shows: the bot's advice instead of the command line's
        if not isinstance(error, UserError):
            log.error("job %s failed:\n%s", step.job, "".join(traceback.format_exception(error)))
        view = finish_run(self.db, run_id, "failed", error=message,
                          details={"summary": f"{step.job} failed: {message}", "chat_error": said})
        draft = AlertDraft(
            kind="job_failed",
            severity="critical" if step.job == "retrain" else "warning",
            condition=f"{step.job}:{type(error).__name__}",
            title=f"Job {step.job} failed",
            text=f"The {step.job} job (run #{run_id}, trigger {step.trigger}) failed: {message}"
            + (" The champion model is unchanged." if step.job == "retrain" else ""),
            figures={"job": step.job, "run_id": run_id, "trigger": step.trigger, "error": message},
            chat_text=f"The {step.job} job (run #{run_id}, trigger {step.trigger}) failed: {said}"
            + (" The champion model is unchanged." if step.job == "retrain" else ""),
        )
        decisions = self._store_alerts([draft])
        return RunReport(view, f"{step.job} failed: {message}", decisions)

    def _store_alerts(self, drafts: list[AlertDraft]) -> list[AlertDecision]:
        decisions = []
        for draft in drafts:
            try:
                decisions.append(
                    raise_alert(self.db, draft, cooldown_hours=self.settings.alert_cooldown_hours,
                                charts_dir=Path(self.settings.home) / "charts")
                )
            except Exception:
                log.exception("could not store the %s alert", draft.kind)
        return decisions

    # ------------------------------------------------------------------ delivery
    async def deliver(self, alert_ids: list[int]) -> dict[int, int]:
        """Send stored alerts through the notifier, never the same alert twice at once."""
        if self.notifier is None:
            return {}
        mine = [i for i in alert_ids if i not in self._inflight]
        self._inflight.update(mine)
        try:
            return await deliver(self.db, self.notifier, mine)
        finally:
            self._inflight.difference_update(mine)

    async def flush_outbox(self) -> dict[int, int]:
        """Deliver recent alerts nobody has sent yet (raised by the command line, or a failed send)."""
        if self.notifier is None:
            return {}
        rows = await asyncio.to_thread(unsent, self.db)
        return await self.deliver([row.id for row in rows if row.id is not None])

