"""The service's heartbeat, written from the bot's event loop (format: ``storage/heartbeat.py``).

Every ``HEARTBEAT_SECONDS`` a task on the bot's loop records whether the updater polls, when
the Bot API last answered a ``getUpdates`` and whether the job scheduler runs.  Because the
task runs on the same loop as the handlers and the scheduler, a loop that is stuck (a
blocking call, a deadlock) stops the heartbeat too, and ``churnguard health`` sees it age.

The time of the last answered poll comes from :class:`PollRequest`, the HTTP client that
``build_application`` gives to ``getUpdates`` alone: python-telegram-bot retries a lost Bot
API forever while ``updater.running`` stays true, so "running" alone would hide an outage.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from telegram.request import HTTPXRequest

from storage.heartbeat import Heartbeat, remove_heartbeat, write_heartbeat

if TYPE_CHECKING:
    from bot.app import ChurnGuardApp

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 5.0
HEARTBEAT_KEY = "churnguard.heartbeat"


class PollRequest(HTTPXRequest):
    """The ``getUpdates`` client: remembers when the Bot API last answered a poll (2xx)."""

    last_ok: float | None = None

    async def do_request(self, *args: Any, **kwargs: Any) -> tuple[int, bytes]:
        code, payload = await super().do_request(*args, **kwargs)
        if 200 <= code < 300:
            self.last_ok = time.time()
        return code, payload


class HeartbeatWriter:
    """Writes the heartbeat of one Application into ``home`` until stopped."""

    def __init__(self, home: Path, poll_request: PollRequest) -> None:
        self.home = Path(home)
        self.poll_request = poll_request
        self.started_at = time.time()
        self._task: asyncio.Task[None] | None = None
        self._failing = False

    def snapshot(self, application: ChurnGuardApp) -> Heartbeat:
        from bot.services import services_of

        svc = services_of(application)
        if not svc.schedule_jobs:
            scheduler = "off"
        else:
            running = svc.scheduler is not None and svc.scheduler.scheduler.running
            scheduler = "running" if running else "stopped"
        updater = application.updater
        return Heartbeat(pid=os.getpid(), started_at=self.started_at, written_at=time.time(),
                         polling=bool(updater is not None and updater.running),
                         last_poll_ok=self.poll_request.last_ok, scheduler=scheduler)

    def beat(self, application: ChurnGuardApp) -> None:
        """Write one heartbeat (a few hundred bytes: cheap enough for the event loop itself)."""
        try:
            write_heartbeat(self.home, self.snapshot(application))
            self._failing = False
        except OSError as error:
            if not self._failing:  # say it once, not every five seconds
                log.warning("cannot write the heartbeat in %s: %s", self.home, error)
            self._failing = True

    async def _beat_forever(self, application: ChurnGuardApp) -> None:
        while True:
            self.beat(application)
            await asyncio.sleep(HEARTBEAT_SECONDS)

    def start(self, application: ChurnGuardApp) -> None:
        if self._task is None:
            self.home.mkdir(parents=True, exist_ok=True)
            self._task = asyncio.get_running_loop().create_task(self._beat_forever(application),
                                                                name="churnguard-heartbeat")

    async def stop(self) -> None:
        """Stop beating and remove the file: a clean stop is "not running", not "stale"."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            remove_heartbeat(self.home, pid=os.getpid())


def heartbeat_of(application: ChurnGuardApp) -> HeartbeatWriter | None:
    found = application.bot_data.get(HEARTBEAT_KEY)
    return found if isinstance(found, HeartbeatWriter) else None


__all__ = ["HEARTBEAT_KEY", "HEARTBEAT_SECONDS", "HeartbeatWriter", "PollRequest", "heartbeat_of"]
