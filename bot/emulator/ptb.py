"""Running a python-telegram-bot ``Application`` against an :class:`Emulator`.

Two ways, for two kinds of callers: :func:`running` is an async context manager for code that
already lives on the bot's event loop (``asyncio.run`` in a test); :class:`PollingThread` runs
the bot on its own loop in a background thread, so synchronous code (the terminal chat, plain
pytest functions) can inject and block-wait freely.  Both stop the bot before returning, which
matters: the emulator must outlive the bot's last ``getUpdates``.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Coroutine
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, Self, TypeVar

from telegram.ext import Application, ApplicationBuilder

from bot.emulator.emulator import Emulator

_T = TypeVar("_T")


def application_builder(emulator: Emulator) -> ApplicationBuilder:
    """An ``ApplicationBuilder`` whose bot talks to the emulator (token and both base URLs set)."""
    return (ApplicationBuilder().token(emulator.token)
            .base_url(emulator.bot_api_url).base_file_url(emulator.file_url))


@asynccontextmanager
async def running(application: Application, *, poll_timeout: float = 10.0) -> AsyncIterator[Application]:
    """What ``run_polling`` does, minus signal handling and loop ownership.

    Same order as PTB: initialize, ``post_init``, start polling (no pause between polls),
    start; on exit stop polling, stop, ``post_stop``, shut down, ``post_shutdown``.
    """
    assert application.updater is not None, "build the Application with an Updater to poll"
    await application.initialize()
    try:
        if application.post_init:
            await application.post_init(application)
        await application.updater.start_polling(poll_interval=0.0, timeout=int(poll_timeout))
        await application.start()
        yield application
    finally:
        if application.updater.running:
            await application.updater.stop()
        if application.running:
            await application.stop()
            if application.post_stop:
                await application.post_stop(application)
        await application.shutdown()
        if application.post_shutdown:
            await application.post_shutdown(application)


class PollingThread:
    """A bot polling the emulator on a private event loop in a daemon thread.

    ``start()`` returns once polling has begun and re-raises start-up failures (a bad token,
    an unreachable emulator); ``stop()`` stops the bot cleanly and re-raises what broke it.
    """

    def __init__(self, application: Application, *, poll_timeout: float = 10.0) -> None:
        self.application = application
        self.poll_timeout = poll_timeout
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._failure: BaseException | None = None
        self._thread = threading.Thread(target=self._main, name="telegram-bot", daemon=True)

    def _main(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as error:
            self._failure = error
        finally:
            self._ready.set()

    @property
    def loop(self) -> asyncio.AbstractEventLoop | None:
        return self._loop

    def serving(self) -> AbstractAsyncContextManager[Any]:
        """The context that starts and stops the bot; subclasses add their own set-up."""
        return running(self.application, poll_timeout=self.poll_timeout)

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        async with self.serving():
            self._ready.set()
            await self._stop.wait()

    def start(self, timeout: float = 15.0) -> Self:
        self._thread.start()
        if not self._ready.wait(timeout):
            raise RuntimeError(f"the bot did not start polling within {timeout} s")
        if self._failure is not None:
            raise self._failure
        return self

    def stop(self, timeout: float = 15.0) -> None:
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None and self._thread.is_alive():
            loop.call_soon_threadsafe(stop.set)
            self._thread.join(timeout)
            if self._thread.is_alive():
                raise RuntimeError(f"the bot did not stop within {timeout} s")
        if self._failure is not None:
            raise self._failure

    def run(self, coroutine: Coroutine[Any, Any, _T], timeout: float = 15.0) -> _T:
        """Run a coroutine on the bot's loop (e.g. ``application.bot.send_message``) and return its result."""
        if self._loop is None:
            coroutine.close()
            raise RuntimeError("the bot is not running")
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
