"""Helpers for end-to-end tests of the ChurnGuard bot: the real Application, over real HTTP,
against the local Bot API emulator, on a real store.

``trained_template`` trains one model for the whole session (the bundled Telco sample,
through ``ensure_model`` exactly as ``churnguard run`` does on a fresh install, with a short
tuning budget); ``trained_home`` gives each test its own copy of that store, model folders
included.

:class:`LiveBot` runs ``build_application`` in a background thread and talks to it as an
admin (``ADMIN``), a viewer (``VIEWER``) or a stranger (``STRANGER``).
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from bot.access import audit_entries
from bot.app import BotThread, ChurnGuardApp, build_application
from bot.emulator import ChatMessage, Emulator
from bot.services import Services, services_of
from churnguard import Settings
from storage.db import Database

ADMIN, SECOND_ADMIN, VIEWER, STRANGER = 111, 112, 222, 333
TUNING_SECONDS = 2.0
REPLY_TIMEOUT = 30.0
DB_FILES = ("churnguard.db", "churnguard.db-wal", "churnguard.db-shm")


def make_settings(home: Path, emulator: Emulator | None = None, **overrides: Any) -> Settings:
    """Settings for a test store; no .env file, the roles above, a quick training budget."""
    values: dict[str, Any] = {
        "home": home,
        "admin_ids": [ADMIN, SECOND_ADMIN],
        "viewer_ids": [VIEWER],
        "tuning_seconds": TUNING_SECONDS,
        # Schedules stay off in tests; jobs are run explicitly where a test needs them.
        "ingest_cron": "off", "drift_cron": "off", "performance_cron": "off", "retrain_cron": "off",
    }
    if emulator is not None:
        values["telegram_bot_token"] = SecretStr(emulator.token)
        values["telegram_api_base_url"] = emulator.base_url
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


_TEMPLATE: list[Path] = []


@pytest.fixture(scope="session")
def trained_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store holding the Telco sample and one champion model, trained once per session.

    Test modules import this fixture, which gives each module its own fixture definition;
    the module-level cache keeps it to one training per session all the same.
    """
    from bot.commands import ensure_model

    if _TEMPLATE:
        return _TEMPLATE[0]
    home = tmp_path_factory.mktemp("trained") / "home"
    settings = make_settings(home)
    db = Database(settings.database_url).create_schema()
    try:
        outcome = ensure_model(settings, db, say=lambda _line: None, sample=True)
    finally:
        db.dispose()  # checkpoints the WAL, so copying the .db file copies everything
    assert "champion" in outcome, outcome
    _TEMPLATE.append(home)
    return home


@pytest.fixture
def trained_home(trained_template: Path, tmp_path: Path) -> Path:
    """This test's own copy of the trained store: its database and its models folder (the store
    names model folders relative to the models folder, as a restored backup would need)."""
    home = tmp_path / "home"
    home.mkdir()
    for name in DB_FILES:
        if (trained_template / name).exists():
            shutil.copy2(trained_template / name, home / name)
    shutil.copytree(trained_template / "models", home / "models")
    return home


class LiveBot:
    """The ChurnGuard Application polling the emulator from a background thread."""

    def __init__(self, emulator: Emulator, settings: Settings, **build: Any) -> None:
        self.emulator = emulator
        self.settings = settings
        self.db = Database(settings.database_url)
        build.setdefault("schedule_jobs", False)
        self.application: ChurnGuardApp = build_application(settings, db=self.db, **build)
        self.thread = BotThread(self.application)
        for user in (ADMIN, SECOND_ADMIN, VIEWER, STRANGER):
            emulator.add_user(user)

    def __enter__(self) -> LiveBot:
        self.thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        try:
            self.thread.stop()
        finally:
            self.db.dispose()

    @property
    def services(self) -> Services:
        return services_of(self.application)

    def send(self, user: int, text: str, replies: int = 1, timeout: float = REPLY_TIMEOUT) -> list[ChatMessage]:
        """``user`` sends ``text``; returns the bot's first ``replies`` messages in that chat after it."""
        update_id = self.emulator.inject_message(user, text)
        return self.emulator.wait_for_replies(update_id, replies, timeout)[:replies]

    def ask(self, user: int, text: str, timeout: float = REPLY_TIMEOUT) -> str:
        """The text (or caption) of the single reply to ``text``."""
        return self.send(user, text, 1, timeout)[0].shown_text

    def press(self, user: int, message: ChatMessage, data: str) -> int:
        return self.emulator.inject_callback(user, message.message_id, data)

    def audit_count(self, actor: int, action: str | None = None) -> int:
        return len(audit_entries(self.db, actor=actor, action=action))

    def wait_audits(self, actor: int, count: int, action: str | None = None, timeout: float = REPLY_TIMEOUT) -> None:
        """Block until ``actor`` has ``count`` audit rows: the sign the bot finished with those updates."""
        deadline = time.monotonic() + timeout
        while self.audit_count(actor, action) < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{actor} has {self.audit_count(actor, action)} audit rows, expected {count}")
            time.sleep(0.02)

    def bot_messages(self, chat_id: int) -> list[ChatMessage]:
        return [message for message in self.emulator.messages(chat_id) if message.from_bot]


@pytest.fixture
def live_bot(emulator: Emulator) -> Iterator[Any]:
    """A factory: ``live_bot(settings, **build_options)`` starts a bot, stopped at teardown."""
    started: list[LiveBot] = []

    def start(settings: Settings, **build: Any) -> LiveBot:
        bot = LiveBot(emulator, settings, **build).__enter__()
        started.append(bot)
        return bot

    try:
        yield start
    finally:
        for bot in reversed(started):
            bot.__exit__(None, None, None)


__all__ = [
    "ADMIN",
    "SECOND_ADMIN",
    "STRANGER",
    "VIEWER",
    "LiveBot",
    "live_bot",
    "make_settings",
    "trained_home",
    "trained_template",
]
