"""What every handler needs, built once per Application and kept in ``bot_data``.

Handlers reach the database, the scorer and the retrain worker through :func:`services`
instead of module globals, so two Applications (a test restarting the bot, the bench's echo
bot next to the real one) never share state by accident.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from telegram import Update
from telegram.ext import Application, ContextTypes

from bot.access import AccessList, AuditTrail, Role
from bot.workers import answer_pool
from storage.db import Database

if TYPE_CHECKING:
    from churnguard import Settings

SERVICES_KEY = "churnguard.services"
P = ParamSpec("P")
T = TypeVar("T")

HandlerCallback = Callable[[Update, ContextTypes.DEFAULT_TYPE], Coroutine[Any, Any, Any]]
#: A button's action: the update, the context, and the payload its ``parse`` read from the data.
ButtonCallback = Callable[[Update, ContextTypes.DEFAULT_TYPE, Any], Coroutine[Any, Any, Any]]


@dataclass(frozen=True)
class Command:
    """One bot command: the single source for its handler, its role, /help and setMyCommands."""

    name: str
    description: str
    role: Role
    callback: HandlerCallback
    usage: str = ""
    # Client data and admin tools answer only in a private chat: in a group, everyone in
    # it would read the answer, strangers included.  /start, /help and the alert
    # subscription work in groups too.
    private_only: bool = True

    @property
    def audited(self) -> bool:
        """Every admin action goes into the audit log; viewers' reads do not."""
        return self.role >= Role.ADMIN

    def help_line(self) -> str:
        usage = f" {self.usage}" if self.usage else ""
        return f"/{self.name}{usage} — {self.description}"


@dataclass(frozen=True)
class Button:
    """One kind of inline button, bound to the command whose answer carries it.

    A press obeys that command's rules (role, private chats only) through the same guard, is
    audited as ``<command>:<name>``, and its ``callback_data`` is untrusted input: a client can
    send any bytes, for any message.  ``parse`` reads the payload after ``prefix`` and returns
    None for anything malformed; only a parsed payload reaches ``callback``.
    """

    command: str
    name: str
    prefix: str
    parse: Callable[[Services, str], Any]
    callback: ButtonCallback
    stale_text: str = "This button is no longer valid; send the command again."

    @property
    def action(self) -> str:
        return f"{self.command}:{self.name}"


@dataclass
class Services:
    """Per-Application state.  Heavy objects (registry, scorer) are created in a worker
    thread by :meth:`load_model_services`, because opening them touches the database."""

    settings: Settings
    db: Database
    access: AccessList
    commands: list[Command] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    schedule_jobs: bool = True
    registry: Any = None  # model.registry.Registry[ChurnModel], shared with the jobs
    scorer: Any = None  # model.scoring.Scorer
    runner: Any = None  # jobs.runner.JobRunner, shared by /retrain and the schedules
    retrain_worker: Any = None  # jobs.retrain_job.RetrainWorker: one retrain at a time
    scheduler: Any = None  # jobs.scheduler.JobScheduler
    notifier: Any = None  # bot.notifier.TelegramNotifier
    # Stranger handling: who has had their one refusal (also remembered in the audit log).
    told_strangers: set[int] = field(default_factory=set)
    stranger_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    # Short-lived answers that paging buttons reuse instead of re-ranking every client.
    cache: dict[str, tuple[float, Any]] = field(default_factory=dict)
    # Long callback payloads (client ids over Telegram's 64-byte callback_data limit).
    tokens: dict[str, str] = field(default_factory=dict)
    ready: bool = False
    answers: ThreadPoolExecutor | None = None  # see bot/workers.py
    # Audit rows, kept in memory and retried while the database is down (bot/access.py).
    audit_trail: AuditTrail = field(init=False)
    audit_retry: asyncio.Task[None] | None = None

    def __post_init__(self) -> None:
        self.audit_trail = AuditTrail(self.db)

    # ------------------------------------------------------------------ blocking work
    async def offload(self, function: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Run blocking work (database, model, charts) in the answer pool, off the event loop."""
        if self.answers is None:
            self.answers = answer_pool()
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.answers, functools.partial(function, *args, **kwargs))

    # ------------------------------------------------------------------ audit retries
    def start_audit_retry(self) -> None:
        """On the running loop: write audit rows kept during a database outage every few seconds."""
        if self.audit_retry is None:
            self.audit_retry = asyncio.get_running_loop().create_task(self._retry_audit(),
                                                                       name="churnguard-audit-retry")

    async def _retry_audit(self) -> None:
        trail = self.audit_trail
        while True:
            await asyncio.sleep(trail.retry_seconds)
            if trail.pending:
                try:
                    await asyncio.to_thread(trail.flush, force=True)
                except Exception:
                    logging.getLogger(__name__).exception("the audit retry failed; it runs again")

    async def stop_audit_retry(self) -> None:
        """Stop the retries and try once more; rows the database still does not take are logged."""
        if self.audit_retry is not None:
            self.audit_retry.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.audit_retry
            self.audit_retry = None
        trail = self.audit_trail
        if trail.pending and not await asyncio.to_thread(trail.flush, force=True):
            logging.getLogger(__name__).error(
                "%d audit row(s) could not be written before shutdown: the database does not answer", trail.pending)

    def close_pools(self) -> None:
        if self.answers is not None:
            self.answers.shutdown(wait=False, cancel_futures=True)
            self.answers = None

    # ------------------------------------------------------------------ model and jobs
    def load_model_services(self) -> None:
        """Blocking: open the registry and the scorer of this store (no model is loaded yet)."""
        from model.service import open_registry, open_scorer

        self.registry = open_registry(self.db, self.settings)
        self.scorer = open_scorer(self.db, self.settings, self.registry)

    def after_change(self) -> None:
        """Blocking: new data or a new champion: drop cached rankings; pick up a schema that
        the first ingest has just fixed (the scorer reads it once, when opened)."""
        self.cache.clear()
        if self.registry is not None:
            self.registry.invalidate()
        if self.scorer is not None and self.scorer.schema is None:
            from model.service import open_scorer

            self.scorer = open_scorer(self.db, self.settings, self.registry)

    def make_runner(self) -> None:
        from bot.training import process_trainer
        from jobs.ingest_job import ARRIVAL_JOB, ARRIVAL_TARGET
        from jobs.retrain_job import RetrainWorker
        from jobs.runner import JobRunner

        # The registry is shared so the jobs' model cache is the scorer's; training runs in a
        # child process so that it never holds this process's GIL (see bot/training.py).
        # "arrival" follows up an admin's upload as the inbox job follows up its files.
        self.runner = JobRunner(self.settings, self.db, self.notifier, jobs={ARRIVAL_JOB: ARRIVAL_TARGET},
                                services={"registry": self.registry, "trainer": process_trainer})
        self.retrain_worker = RetrainWorker(self.runner)

    def begin_shutdown(self) -> None:
        """SIGTERM/SIGINT: cancel a running retrain (its worker is killed) and start no new job.
        Returns at once, so a signal handler can call it before the Application stops."""
        if self.runner is not None:
            self.runner.begin_shutdown()

    async def stop_jobs(self) -> None:
        """Stop the jobs and wait (a few seconds at most) until the running ones recorded their end."""
        if self.runner is not None:
            await self.runner.shutdown()

    async def start_scheduler(self) -> None:
        from jobs.scheduler import JobScheduler

        self.scheduler = JobScheduler(self.runner)
        missed = await self.scheduler.start()
        if missed:
            logging.getLogger(__name__).info("catching up on missed jobs: %s", ", ".join(missed))

    async def stop_scheduler(self) -> None:
        if self.scheduler is not None:
            await self.scheduler.shutdown(wait_catch_up=False)
            self.scheduler = None

    # ------------------------------------------------------------------ small caches
    def cached(self, key: str, ttl: float) -> Any | None:
        hit = self.cache.get(key)
        if hit is None or time.monotonic() - hit[0] > ttl:
            return None
        return hit[1]

    def remember(self, key: str, value: Any) -> None:
        if len(self.cache) > 256:
            self.cache.clear()
        self.cache[key] = (time.monotonic(), value)

    def commands_for(self, role: Role) -> list[Command]:
        return [command for command in self.commands if command.role <= role and role > Role.STRANGER]


def services(context: ContextTypes.DEFAULT_TYPE) -> Services:
    return services_of(context.application)


def services_of(application: Application[Any, Any, Any, Any, Any, Any]) -> Services:
    found = application.bot_data.get(SERVICES_KEY)
    if not isinstance(found, Services):
        raise RuntimeError("this Application was not built by bot.app.build_application")
    return found


__all__ = ["SERVICES_KEY", "Button", "ButtonCallback", "Command", "HandlerCallback", "Services", "services",
           "services_of"]
