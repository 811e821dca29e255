"""`churnguard run` and `churnguard sandbox`.

``run`` is the service: the bot on long polling plus the scheduled jobs, in one process and
one event loop, stopped cleanly by SIGINT/SIGTERM.  A fresh install has no model, so it
first ingests the bundled Telco sample and trains one; then every command works at once.
Without ``TELEGRAM_BOT_TOKEN`` it starts the sandbox instead, because a newcomer's first
``churnguard run`` should show the bot, not an error about a token.

``sandbox`` runs the very same Application against the local Bot API emulator on
127.0.0.1 and opens a chat in the terminal.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from pydantic import SecretStr
from telegram import Update
from telegram.error import InvalidToken, NetworkError

from storage import redact
from storage.db import Database
from storage.errors import UserError
from storage.instance import instance_lock

if TYPE_CHECKING:
    from churnguard import Settings

log = logging.getLogger("churnguard.bot")

DEFAULT_SANDBOX_USER = 1_000_001
WAITING_FOR_DATA = ("the store is empty: waiting for data. An admin sends a CRM export (CSV) to the bot; its caption "
                    "names the id and label columns when they are not the defaults (the admins are told how at "
                    "start and in /help). `churnguard run --with-sample` loads the bundled Telco sample instead.")
SCHEMA_FIELDS = ("id_column", "label_column", "positive_label", "ignore_columns")


def configure_logging(settings: Settings) -> None:
    logging.basicConfig(
        level=settings.log_level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # httpx logs every Bot API request at INFO: one line per poll drowns everything else.
    # Alembic announces its plugins and context at INFO on every start.
    for noisy in ("httpx", "httpcore", "apscheduler.executors", "apscheduler.scheduler", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    redact.install()  # the handlers basicConfig just added get the filter too (see storage/redact.py)


@contextmanager
def _quiet_telegram(settings: Settings) -> Iterator[None]:
    """Silence python-telegram-bot and httpx while the caller reports their failure itself, in
    one line (at DEBUG they keep talking: whoever asked for DEBUG wants the details)."""
    if settings.log_level == "DEBUG":
        yield
        return
    loggers = [logging.getLogger(name) for name in ("telegram", "httpx", "httpcore")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.CRITICAL + 1)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def check_bot_api(settings: Settings) -> str:
    """Ask the Bot API who the bot is (getMe) before anything starts; returns the bot's username.

    Raises ``UserError`` with one line that says what to fix: a refused token, a wrong
    ``TELEGRAM_API_BASE_URL``, or a server that cannot be reached.  Without this check
    python-telegram-bot reports such failures itself, with two tracebacks and the token in
    the exception text.
    """
    from telegram import Bot
    from telegram.error import TelegramError
    from telegram.request import HTTPXRequest

    assert settings.telegram_bot_token is not None
    token = settings.telegram_bot_token.get_secret_value().strip()
    server = settings.telegram_api_base_url
    bot = Bot(token, base_url=f"{server}/bot", base_file_url=f"{server}/file/bot",
              request=HTTPXRequest(connection_pool_size=1, connect_timeout=10.0, read_timeout=10.0))

    async def ask() -> str:
        async with bot:
            return bot.username

    try:
        with _quiet_telegram(settings):
            return asyncio.run(ask())
    except InvalidToken as error:
        raise UserError(_refusal(server, error)) from None
    except NetworkError as error:
        raise UserError(f"cannot reach the Bot API server at {server} ({_reason(error)}); check "
                        "TELEGRAM_API_BASE_URL and the network") from None
    except TelegramError as error:
        raise UserError(f"the Bot API server at {server} did not answer getMe properly ({_reason(error)}); "
                        "check TELEGRAM_API_BASE_URL") from None


def _reason(error: BaseException) -> str:
    """The innermost, most specific cause, masked (python-telegram-bot quotes the token)."""
    cause = error
    while cause.__cause__ is not None and isinstance(cause.__cause__, InvalidToken | NetworkError):
        cause = cause.__cause__
    return redact.redact(str(cause))


def _refusal(server: str, error: InvalidToken) -> str:
    """401: the token is wrong or revoked; 404: the URL does not lead to a Bot API (or the
    token is malformed) -- Telegram answers both with the same exception type."""
    reason = _reason(error)
    if "404" in reason or "not found" in reason.lower():
        return (f"the Bot API server at {server} answered 404 Not Found to getMe: TELEGRAM_API_BASE_URL must be "
                "the server's root (such as https://api.telegram.org, without /bot...), and TELEGRAM_BOT_TOKEN "
                "must be the whole token from @BotFather")
    return (f"the Bot API server at {server} refused TELEGRAM_BOT_TOKEN ({reason}): the token is wrong or was "
            "revoked; get the current one from @BotFather")


def ensure_model(settings: Settings, db: Database, say: Callable[[str], None] = print, *, sample: bool = False) -> str:
    """Make sure something can serve: train on the stored data, or, with ``sample``, on the
    bundled Telco sample in an empty store.  Returns what was done, in words.  Never raises for
    a missing model: the bot still starts, and says so in its answers.

    ``sample`` is for the sandbox (and ``run --with-sample``) only: a production bot that
    loaded 7,043 fake clients would serve them, and remember Telco's schema, so that the team's
    own export is refused.  Without it an empty store waits for an admin's first upload."""
    from churnguard import SAMPLE_DATA
    from model.service import open_registry, train_and_register, training_source
    from storage.clients import client_counts
    from storage.ingest import ingest_file
    from storage.readers import Limits
    from storage.schema import schema_from_settings

    registry = open_registry(db, settings)
    if registry.champion() is not None:
        return "a champion model is serving"
    if registry.list_versions():
        message = ("no champion model: every trained version was rejected or retired; an admin can "
                   "/promote one or /retrain")
        say(message)
        return message
    try:
        events = training_source(db, settings) == "events"
    except UserError as error:
        say(str(error))
        return str(error)
    counts = client_counts(db)
    if events:
        say(f"no model yet: training one on the stored event history (time budget {settings.tuning_seconds:g} s)")
    elif counts["clients"] == 0:
        if not sample:
            say(WAITING_FOR_DATA)
            return WAITING_FOR_DATA
        if any(settings.explicit(name) for name in SCHEMA_FIELDS):
            message = ("the store is empty and a custom dataset schema is configured, so the bundled Telco "
                       "sample was not loaded; upload a CRM export (as an admin, send the CSV to the bot) "
                       "and /retrain")
            say(message)
            return message
        say(f"empty store: ingesting the bundled sample data {SAMPLE_DATA.name}")
        schema, explicit = schema_from_settings(settings)
        report = ingest_file(db, SAMPLE_DATA, schema=schema, explicit=explicit, limits=Limits.from_settings(settings),
                             source_name=SAMPLE_DATA.name)
        say(report.to_text())
        counts = client_counts(db)
    if counts["labelled_clients"] == 0 and not events:
        message = "no labelled clients stored, so no model can be trained yet; upload a labelled CRM export"
        say(message)
        return message
    if not events:
        say(f"no model yet: training one (time budget {settings.tuning_seconds:g} s)")
    try:
        result = train_and_register(db, settings, actor="churnguard run", progress=lambda line: say(f"... {line}"))
    except UserError as error:  # e.g. too little data: the bot still starts and says why
        message = f"no model trained: {error}"
        say(message)
        return message
    message = f"trained model {result.version}: {result.status}"
    say(message)
    return message


def run(args: argparse.Namespace, settings: Settings) -> int:
    """The service: bot + scheduler; the sandbox when no token is configured."""
    if settings.telegram_bot_token is None or not settings.telegram_bot_token.get_secret_value().strip():
        print("TELEGRAM_BOT_TOKEN is not set: starting the offline sandbox instead "
              "(set the token, and TELEGRAM_API_BASE_URL for a self-hosted Bot API, to serve real users).",
              file=sys.stderr)
        return sandbox(argparse.Namespace(user_id=None), settings)
    from bot.app import build_application
    from bot.stopping import stop_on_signals

    configure_logging(settings)
    server = settings.telegram_api_base_url
    # One service per store: refused here, before the Bot API or the store is touched.
    with instance_lock(settings.home, "churnguard run") as lock:
        username = check_bot_api(settings)
        db = Database(settings.database_url)
        try:
            lock.acquire_database(db)
            db.create_schema()
            ensure_model(settings, db, say=log.info, sample=bool(getattr(args, "with_sample", False)))
            application = build_application(settings, db=db, announce=True)
            log.info("polling %s for updates as @%s; stop with Ctrl-C or SIGTERM", server, username)
            stop_on_signals(application)  # SIGINT/SIGTERM: cancel a running retrain first (bot/stopping.py)
            try:
                application.run_polling(
                    allowed_updates=Update.ALL_TYPES,
                    stop_signals=None,
                    close_loop=True,
                )
            except InvalidToken as error:  # revoked between the check above and the first poll
                raise UserError(_refusal(server, error)) from None
            except NetworkError as error:
                # Only start-up gets here: once polling, PTB retries lost connections by itself.
                raise UserError(f"cannot reach the Bot API server at {server} ({_reason(error)}); check "
                                "TELEGRAM_API_BASE_URL and the network") from None
        finally:
            lock.release()
            db.dispose()
    log.info("stopped")
    return 0


def sandbox_identity(settings: Settings, requested: int | None) -> tuple[int, list[int], list[str]]:
    """Who the terminal user is, the admin list for this session, and what to tell them about it."""
    admins = list(settings.admin_ids)
    notes: list[str] = []
    user_id = requested if requested is not None else (admins[0] if admins else DEFAULT_SANDBOX_USER)
    if user_id <= 0:
        raise UserError(f"--user-id must be a positive Telegram user id, got {user_id}")
    if not admins:
        admins = [user_id]
        notes.append(f"Sandbox: no admin ids are configured (CHURNGUARD_ADMIN_IDS), so you (user {user_id}) "
                     "are an admin for this session only.")
    elif user_id in admins:
        notes.append(f"Sandbox: you are user {user_id}, an admin.")
    elif user_id in settings.viewer_ids:
        notes.append(f"Sandbox: you are user {user_id}, a viewer (CHURNGUARD_VIEWER_IDS).")
    else:
        notes.append(f"Sandbox: user {user_id} is neither an admin nor a viewer, so the bot treats you as a stranger.")
    return user_id, admins, notes


def sandbox(args: argparse.Namespace, settings: Settings) -> int:
    """The same bot against the local emulator, with a chat in this terminal."""
    configure_logging(settings)
    if settings.log_level == "INFO":
        # The chat owns the terminal; only warnings interrupt it.
        logging.getLogger().setLevel(logging.WARNING)
    user_id, admins, notes = sandbox_identity(settings, getattr(args, "user_id", None))
    with instance_lock(settings.home, "churnguard sandbox") as lock:
        db = Database(settings.database_url)
        try:
            lock.acquire_database(db)
            db.create_schema()
            return _sandbox_chat(settings, db, user_id, admins, notes)
        finally:
            lock.release()
            db.dispose()


def _sandbox_chat(settings: Settings, db: Database, user_id: int, admins: list[int], notes: list[str]) -> int:
    from bot.app import BotThread, build_application
    from bot.emulator import Emulator
    from bot.terminal_chat import run_terminal_chat

    emulator = Emulator().start()
    try:
        print("Preparing the sandbox…", flush=True)
        ensure_model(settings, db, say=lambda line: print(line, flush=True), sample=True)
        local = settings.model_copy(update={
            "telegram_bot_token": SecretStr(emulator.token),
            "telegram_api_base_url": emulator.base_url,
            "admin_ids": admins,
        })
        application = build_application(local, db=db, notes=notes[:1] if not settings.admin_ids else [])
        emulator.add_user(user_id, first_name="You")  # the chat must exist for its command menu
        for note in notes:
            print(note, flush=True)
        print(f"Local Bot API emulator at {emulator.base_url}; photos and documents are saved under "
              f"{settings.home / 'sandbox-files'}.", flush=True)
        with BotThread(application):
            return run_terminal_chat(emulator, user_id=user_id, files_dir=settings.home / "sandbox-files")
    finally:
        emulator.stop()


__all__ = ["DEFAULT_SANDBOX_USER", "WAITING_FOR_DATA", "check_bot_api", "ensure_model", "run", "sandbox",
           "sandbox_identity"]
