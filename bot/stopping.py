"""SIGTERM and SIGINT stop ``churnguard run`` within seconds, a retrain included.

PTB's own stop signals make ``run_polling`` stop the updater, then ``Application.stop``,
which waits for every handler and every ``create_task`` task to finish: an admin's /retrain
and an upload's background follow-ups, whose retrain takes minutes.  ``docker stop`` allows
10 s before it kills.  So the service installs its own handlers, which first tell the jobs to
stop (``Services.begin_shutdown``: the retrain's worker process is killed, the run recorded
as "cancelled", follow-ups not run yet stay owed for the next start) and only then stop the
Application the way PTB's handler does.  Those waits are then short.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from bot.services import services_of

if TYPE_CHECKING:
    from telegram.ext import Application

log = logging.getLogger("churnguard.bot")

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def stop_on_signals(application: Application[Any, Any, Any, Any, Any, Any],
                    signals: Sequence[signal.Signals] = STOP_SIGNALS) -> asyncio.AbstractEventLoop:
    """Make a new event loop current and install the stop handlers on it; returns the loop.

    Call it right before ``application.run_polling(stop_signals=None)``, which runs on the
    current loop.  A second signal while stopping is logged and otherwise ignored: the first
    one's shutdown is already bounded.
    """
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    stopping: list[int] = []

    def stop(signum: int) -> None:
        name = signal.Signals(signum).name
        if stopping:
            log.info("%s received again; already stopping", name)
            return
        stopping.append(signum)
        log.info("%s received: stopping; a running retrain is cancelled", name)
        services_of(application).begin_shutdown()
        raise SystemExit  # what PTB's own handler does: run_polling then stops the Application cleanly

    for sig in signals:
        loop.add_signal_handler(sig, stop, int(sig))
    return loop


__all__ = ["STOP_SIGNALS", "stop_on_signals"]
