"""Pytest fixtures and helpers for end-to-end bot tests: a real PTB bot, real HTTP, a local Telegram.

tests/bot/conftest.py re-exports the fixtures, so every test under tests/bot can ask for them:

``emulator``
    A started :class:`bot.emulator.Emulator` on a free 127.0.0.1 port, stopped after the test
    (after any bot the test started, so the bot never polls a dead server).
``bot_token``
    The token that emulator accepts (``emulator.token``).
``start_bot``
    A factory: ``start_bot(application)`` or ``start_bot(handlers=[...])`` runs the bot in a
    background thread (:class:`bot.emulator.ptb.PollingThread`) and returns it; the test stays
    synchronous and uses the blocking waits (``emulator.wait_for_replies(update_id)``).  Stopped
    at teardown, before the emulator.

Helpers for tests that drive the bot on their own loop with ``asyncio.run`` (pytest-asyncio is
not used in this project): :func:`build_app`, :func:`run_async`, and
:func:`bot.emulator.ptb.running`; there, wait with the ``*_async`` methods of the emulator so
the bot's loop keeps turning.  :func:`tiny_png` gives a valid image for photo tests.
"""

from __future__ import annotations

import asyncio
import struct
import zlib
from collections.abc import Callable, Coroutine, Iterator, Sequence
from typing import Any, TypeVar

import pytest
from telegram.ext import Application, BaseHandler, BaseRateLimiter

from bot.emulator import Emulator
from bot.emulator.ptb import PollingThread, application_builder, running

__all__ = ["bot_token", "build_app", "emulator", "run_async", "running", "start_bot", "tiny_png"]

_T = TypeVar("_T")
#: A whole scenario (bot start, chat, bot stop) must finish within this, so no test can hang.
SCENARIO_TIMEOUT = 20.0

ErrorCallback = Callable[[object, Any], Coroutine[Any, Any, None]]


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    emu = Emulator().start()
    try:
        yield emu
    finally:
        emu.stop()


@pytest.fixture
def bot_token(emulator: Emulator) -> str:
    return emulator.token


def build_app(emulator: Emulator, handlers: Sequence[BaseHandler[Any, Any, Any]] = (), *,
              rate_limiter: BaseRateLimiter[Any] | None = None,
              error_handler: ErrorCallback | None = None) -> Application[Any, Any, Any, Any, Any, Any]:
    """A PTB Application pointed at the emulator, with the given handlers (and no job queue)."""
    builder = application_builder(emulator).job_queue(None)
    if rate_limiter is not None:
        builder = builder.rate_limiter(rate_limiter)
    app = builder.build()
    for handler in handlers:
        app.add_handler(handler)
    if error_handler is not None:
        app.add_error_handler(error_handler)
    return app


def run_async(coroutine: Coroutine[Any, Any, _T], timeout: float = SCENARIO_TIMEOUT) -> _T:
    """``asyncio.run`` with a deadline: a stuck scenario fails the test instead of hanging the suite."""
    async def bounded() -> _T:
        return await asyncio.wait_for(coroutine, timeout)
    return asyncio.run(bounded())


@pytest.fixture
def start_bot(emulator: Emulator) -> Iterator[Callable[..., PollingThread]]:
    started: list[PollingThread] = []

    def start(application: Application[Any, Any, Any, Any, Any, Any] | None = None, *,
              handlers: Sequence[BaseHandler[Any, Any, Any]] = (), poll_timeout: float = 10.0) -> PollingThread:
        app = application if application is not None else build_app(emulator, handlers)
        thread = PollingThread(app, poll_timeout=poll_timeout).start()
        started.append(thread)
        return thread

    try:
        yield start
    finally:
        for thread in reversed(started):
            thread.stop()


def tiny_png(width: int = 3, height: int = 2) -> bytes:
    """A valid RGB PNG of the given size (Telegram refuses photos that are not images)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    rows = b"".join(b"\x00" + b"\x10\x80\xf0" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows))
            + chunk(b"IEND", b""))
