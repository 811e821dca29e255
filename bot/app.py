"""The one place a ChurnGuard Telegram Application is put together.

``build_application`` wires handlers, rate limiting, timeouts and the Bot API address;
``setup`` does the asynchronous part (database, model services, command menus, schedules).
PTB calls ``post_init`` only from ``run_polling``, so ``setup`` is a plain coroutine that
``post_init`` calls and that tests and the sandbox call themselves when they drive the
Application with ``async with app: await app.start(); await app.updater.start_polling()``.

Build a new Application for each event loop: PTB's HTTP clients, locks and job queue
belong to the loop they were first used on.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import TYPE_CHECKING, Any, Self

from telegram import BotCommand, BotCommandScopeChat, BotCommandScopeDefault, Update
from telegram.error import TelegramError
from telegram.ext import (
    Application,
    ApplicationBuilder,
    BaseHandler,
    CallbackQueryHandler,
    CommandHandler,
    MessageHandler,
    TypeHandler,
    filters,
)
from telegram.request import HTTPXRequest

from bot.access import AccessList, Role
from bot.emulator.ptb import PollingThread
from bot.first_upload import announce_waiting
from bot.guard import gate, guard, guard_button, unknown_button
from bot.handlers import admin, alerts, campaign, drift, errors, export, model, scoring, start, subscribe, top, upload
from bot.heartbeat import HEARTBEAT_KEY, HeartbeatWriter, PollRequest, heartbeat_of
from bot.notifier import TelegramNotifier
from bot.retry import RetryingRateLimiter
from bot.services import SERVICES_KEY, Button, Command, Services, services_of
from bot.workers import background_pool, freeze_startup_heap
from storage.db import Database
from storage.errors import UserError
from storage.tables import Meta

if TYPE_CHECKING:
    from churnguard import Settings

log = logging.getLogger(__name__)

DEFAULT_CONCURRENCY = 32
POLL_TIMEOUT_SECONDS = 10
# Connections to the Bot API for replies.  httpcore checks every pooled connection on each
# request (a few syscalls each), so a big pool costs CPU on every reply; Telegram allows about
# 30 messages/s per bot, which 4 keep-alive connections carry even at a 100 ms round trip.
# Requests beyond that wait for a free connection (pool_timeout), they do not fail.
CONNECTIONS = 4
SCOPES_META_KEY = "bot.command_scopes"
ANNOUNCE_KEY = "churnguard.announce_waiting"

ChurnGuardApp = Application[Any, Any, Any, Any, Any, Any]


def all_commands() -> list[Command]:
    """Every command in menu order: what viewers use most first, admin tools last."""
    modules = (start, scoring, top, export, model, drift, alerts, subscribe, admin, campaign)
    return [command for module in modules for command in module.COMMANDS]


def build_application(
    settings: Settings,
    *,
    db: Database | None = None,
    concurrency: int = DEFAULT_CONCURRENCY,
    connections: int = CONNECTIONS,
    overall_max_rate: float = 30.0,
    schedule_jobs: bool = True,
    notes: Sequence[str] = (),
    announce: bool = False,
) -> ChurnGuardApp:
    """A configured, not yet initialised Application.

    ``overall_max_rate`` is Telegram's global flood limit (30 messages/s); the bench sets it
    to 0 because a local emulator has no such limit and pacing would be all it measured.
    ``schedule_jobs`` False leaves the scheduled jobs out (tests that only exercise the bot).
    ``connections`` caps the keep-alive connections used for replies (see ``CONNECTIONS``).
    ``announce`` tells each admin at start how to send data when the store is empty
    (``churnguard run`` sets it; tests and the sandbox do not).
    """
    if settings.telegram_bot_token is None or not settings.telegram_bot_token.get_secret_value().strip():
        raise UserError("TELEGRAM_BOT_TOKEN is not set; set it, or try the bot offline with `churnguard sandbox`")
    if not 1 <= concurrency <= 256:
        raise ValueError("concurrency must be between 1 and 256")
    token = settings.telegram_bot_token.get_secret_value().strip()
    root = settings.telegram_api_base_url.rstrip("/")
    request = HTTPXRequest(
        connection_pool_size=connections,
        connect_timeout=10.0,
        read_timeout=20.0,
        write_timeout=20.0,
        pool_timeout=20.0,
        media_write_timeout=60.0,
    )
    # getUpdates gets its own small pool: a long poll must never wait behind replies.  It also
    # remembers when a poll last succeeded, for the heartbeat (bot/heartbeat.py).
    updates_request = PollRequest(connection_pool_size=2, connect_timeout=10.0, read_timeout=10.0, pool_timeout=10.0)
    application: ChurnGuardApp = (
        ApplicationBuilder()
        .token(token)
        .base_url(f"{root}/bot")
        .base_file_url(f"{root}/file/bot")
        .request(request)
        .get_updates_request(updates_request)
        .rate_limiter(RetryingRateLimiter(overall_max_rate=overall_max_rate))
        .concurrent_updates(concurrency)
        .post_init(setup)
        .post_shutdown(teardown)
        .build()
    )
    svc = Services(
        settings=settings,
        db=db if db is not None else Database(settings.database_url),
        access=AccessList.from_ids(settings.admin_ids, settings.viewer_ids),
        commands=all_commands(),
        notes=list(notes),
        schedule_jobs=schedule_jobs,
    )
    application.bot_data[SERVICES_KEY] = svc
    application.bot_data[HEARTBEAT_KEY] = HeartbeatWriter(settings.home, updates_request)
    application.bot_data[ANNOUNCE_KEY] = announce
    for handler, group in handlers(svc.commands):
        application.add_handler(handler, group=group)
    application.add_error_handler(errors.on_error)
    return application


def all_buttons() -> list[Button]:
    """Every kind of inline button; each belongs to a command and obeys its rules."""
    return [*scoring.BUTTONS, *top.BUTTONS, *export.BUTTONS, *campaign.BUTTONS]


def handlers(commands: Iterable[Command]) -> list[tuple[BaseHandler[Any, Any, Any], int]]:
    """The gate first (group -1), then commands, buttons, uploads, and the fallback last.

    Commands and buttons go through the same guard (bot/guard.py): a button whose command is
    not registered would have no rules to obey, so it is an error at start-up.
    """
    found: list[tuple[BaseHandler[Any, Any, Any], int]] = [(TypeHandler(Update, gate), -1)]
    by_name = {command.name: command for command in commands}
    for command in by_name.values():
        callback = guard(command.name, command.role, command.callback, private_only=command.private_only)
        found.append((CommandHandler(command.name, callback), 0))
    for button in all_buttons():
        if button.command not in by_name:
            raise RuntimeError(f"button {button.action} belongs to /{button.command}, which is not a command")
        found.append((CallbackQueryHandler(guard_button(button, by_name[button.command]),
                                           pattern=f"^{re.escape(button.prefix)}"), 0))
    found.append((CallbackQueryHandler(unknown_button), 0))
    found += [(handler, 0) for handler in campaign.handlers()]
    found.append((MessageHandler(filters.Document.ALL, guard("upload", Role.ADMIN, upload.upload)), 0))
    found.append((MessageHandler(filters.COMMAND | filters.TEXT, start.unknown_command), 0))
    return found


async def setup(application: ChurnGuardApp) -> None:
    """Make the Application ready to serve; safe to call twice (post_init and a test)."""
    svc = services_of(application)
    if svc.ready:
        return
    # Jobs (training above all) use the loop's default executor: make it the low-priority pool.
    asyncio.get_running_loop().set_default_executor(background_pool())
    await svc.offload(svc.db.create_schema)
    await svc.offload(svc.load_model_services)
    svc.start_audit_retry()
    notifier = TelegramNotifier(application.bot, svc.db, svc.access)
    notifier.bind(asyncio.get_running_loop())
    svc.notifier = notifier
    svc.make_runner()
    await publish_commands(application, svc)
    if svc.schedule_jobs:
        await svc.start_scheduler()
    heartbeat = heartbeat_of(application)
    if heartbeat is not None:
        heartbeat.start(application)
    if application.bot_data.get(ANNOUNCE_KEY):
        await announce_waiting(application)
    # Everything loaded so far lives as long as the process: keep full collections from
    # walking it during answers (bot/workers.py).  Once per process, before polling starts.
    freeze_startup_heap()
    svc.ready = True
    log.info("bot ready: %d admin(s), %d viewer(s)", len(svc.access.admins), len(svc.access.viewers))


async def teardown(application: ChurnGuardApp) -> None:
    """post_shutdown: stop the heartbeat, the jobs (a running retrain is cancelled) and the
    scheduler; the database is the caller's to dispose."""
    svc = services_of(application)
    heartbeat = heartbeat_of(application)
    if heartbeat is not None:
        await heartbeat.stop()
    await svc.stop_jobs()
    await svc.stop_scheduler()
    await svc.stop_audit_retry()
    svc.close_pools()


def command_menus(commands: Sequence[Command], access: AccessList) -> dict[int | None, list[BotCommand]]:
    """Menu per scope: the default scope (everyone, strangers too) shows only /start;
    each viewer's and each admin's private chat shows what that role may use."""
    def menu(role: Role) -> list[BotCommand]:
        return [BotCommand(command.name, command.description) for command in commands if command.role <= role]

    menus: dict[int | None, list[BotCommand]] = {None: [BotCommand("start", "what this bot does")]}
    for viewer in sorted(access.viewers):
        menus[viewer] = menu(Role.VIEWER)
    for admin_id in sorted(access.admins):
        menus[admin_id] = menu(Role.ADMIN)
    return menus


async def publish_commands(application: ChurnGuardApp, svc: Services) -> None:
    """setMyCommands per scope, and the strangers' menu again for chats that lost their access.

    The chats that hold a privileged menu are remembered in the store, so that removing an id
    from CHURNGUARD_ADMIN_IDS also removes the admin commands from that person's menu at the
    next start.  (setMyCommands rather than deleteMyCommands: the bot relies only on the core
    Bot API methods, which every self-hosted server and emulator implements.)
    """
    bot = application.bot
    menus = command_menus(svc.commands, svc.access)
    privileged = {chat for chat in menus if chat is not None}
    previous = await svc.offload(_published_scopes, svc.db)
    former = previous - privileged
    for lost in sorted(former):
        menus[lost] = list(menus[None])
    published: set[int] = set()
    for chat_id, commands in menus.items():
        scope = BotCommandScopeDefault() if chat_id is None else BotCommandScopeChat(chat_id)
        try:
            await bot.set_my_commands(commands, scope=scope)
        except TelegramError as error:
            # Telegram refuses a chat scope ("chat not found") for a user who never opened the bot.
            log.warning("command menu for chat %s not published: %s", chat_id if chat_id else "default", error)
            continue
        if chat_id is not None:
            published.add(chat_id)
    remembered = (published & privileged) | (previous & privileged) | (former - published)
    await svc.offload(_remember_scopes, svc.db, remembered)


def _published_scopes(db: Database) -> set[int]:
    with db.read_session() as session:
        row = session.get(Meta, SCOPES_META_KEY)
        if row is None:
            return set()
        try:
            return {int(chat) for chat in json.loads(row.value)}
        except (ValueError, TypeError):
            return set()


def _remember_scopes(db: Database, chats: set[int]) -> None:
    with db.session() as session:
        row = session.get(Meta, SCOPES_META_KEY) or Meta(key=SCOPES_META_KEY, value="[]")
        row.value = json.dumps(sorted(chats))
        session.add(row)


@asynccontextmanager
async def running(application: ChurnGuardApp, *, poll_timeout: int = POLL_TIMEOUT_SECONDS) -> AsyncIterator[ChurnGuardApp]:
    """Initialise, set up, start and poll; on exit stop polling, the jobs and the Application.

    What ``run_polling`` does, minus owning the event loop and the signal handlers, for
    callers that run the bot inside their own loop (the sandbox, tests, the bench).
    """
    async with application:
        await setup(application)
        await application.start()
        assert application.updater is not None
        await application.updater.start_polling(poll_interval=0.0, timeout=poll_timeout,
                                                allowed_updates=Update.ALL_TYPES)
        try:
            yield application
        finally:
            if application.updater.running:
                await application.updater.stop()
            # Cancel a running retrain first, then let the handlers finish (the /retrain handler
            # says it was cancelled), and only then close the pools they use.
            await services_of(application).stop_jobs()
            if application.running:
                await application.stop()
            await teardown(application)


class BotThread(PollingThread):
    """The ChurnGuard bot polling on its own event loop in a background thread.

    For synchronous callers that must keep their thread (the terminal chat reading stdin,
    a benchmark or test that blocks while waiting for replies).  The thread mechanics are the
    emulator's ``PollingThread``; only the start-up differs: ChurnGuard's ``running`` also
    runs ``setup`` (database, command menus, scheduler), with longer time limits because an
    empty store trains first.
    """

    def __init__(self, application: ChurnGuardApp, *, poll_timeout: int = POLL_TIMEOUT_SECONDS) -> None:
        super().__init__(application, poll_timeout=poll_timeout)
        self.application: ChurnGuardApp = application

    def serving(self) -> AbstractAsyncContextManager[Any]:
        return running(self.application, poll_timeout=int(self.poll_timeout))

    def start(self, timeout: float = 120.0) -> Self:
        return super().start(timeout)

    def stop(self, timeout: float = 60.0) -> None:
        super().stop(timeout)

    def run(self, coroutine: Any, timeout: float = 60.0) -> Any:
        return super().run(coroutine, timeout)


__all__ = ["BotThread", "ChurnGuardApp", "all_buttons", "all_commands", "build_application", "command_menus", "publish_commands", "running", "setup"]
