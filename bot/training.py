"""Training in a child process, for the service that also answers the bot.

The jobs run a retrain in a worker thread, which keeps the event loop free but not the GIL:
the Python-heavy parts of training (the hyper-parameter search loop, the baselines, drawing
the model card's charts) hold it for milliseconds at a time, and every /score answered
meanwhile waits for it again and again.  ``churnguard run`` therefore hands the jobs this
trainer (``JobRunner(services={"trainer": ...})``, the injection point the jobs provide): the
same ``model.service.train_and_register``, run in a fresh ``spawn`` process at a lower CPU
priority.  The bot's process keeps its GIL and its cores for answers; progress lines come
back through a queue; the result (or the exception) comes back as the thread version's
would, so the retrain job, its report and its alerts do not change.

``spawn`` rather than ``fork``: the service has threads (and LightGBM's OpenMP pool), which
``fork`` does not copy safely.  The price is a few seconds of imports per retrain.
"""

from __future__ import annotations

import logging
import multiprocessing
import queue
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from typing import TYPE_CHECKING, Any

from bot.workers import lower_priority
from storage.db import Database

if TYPE_CHECKING:
    from churnguard import Settings
    from model.service import TrainResult

log = logging.getLogger(__name__)

POLL_SECONDS = 0.2
_DONE = "\x00done"
_child_lines: Any = None  # the progress queue, in the child (handed over at process start)


def _start_child(lines: Any) -> None:
    global _child_lines
    _child_lines = lines
    lower_priority()


def _train_in_child(database_url: str, settings: Settings, options: dict[str, Any]) -> TrainResult:
    """In the child: open the store, train and register, report progress through the queue."""
    from model.service import train_and_register

    db = Database(database_url)
    try:
        return train_and_register(db, settings, progress=_child_lines.put, **options)
    finally:
        _child_lines.put(_DONE)
        db.dispose()


def process_trainer(
    db: Database,
    settings: Settings,
    *,
    actor: str = "system",
    progress: Callable[[str], None] | None = None,
    registry: object | None = None,
    seed: int | None = None,
    promote: bool = True,
) -> TrainResult:
    """``train_and_register`` with the same arguments, run in a low-priority child process.

    Blocking, like the thread version; call it from a worker thread.  ``registry`` is not sent
    to the child (it holds locks and a model cache): the child opens its own, and the retrain
    job invalidates the caller's after the switch.
    """
    del registry  # the child opens its own; the retrain job invalidates the parent's after
    context = multiprocessing.get_context("spawn")
    lines = context.Queue()
    options = {"actor": actor, "seed": seed, "promote": promote}
    with ProcessPoolExecutor(max_workers=1, mp_context=context, initializer=_start_child,
                             initargs=(lines,)) as pool:
        future = pool.submit(_train_in_child, db.url, settings, options)
        finished = False
        while not finished:
            try:
                line = lines.get(timeout=POLL_SECONDS)
            except queue.Empty:
                finished = future.done()
                continue
            if line == _DONE:
                finished = True
            elif progress is not None:
                progress(str(line))
        return future.result()


__all__ = ["process_trainer"]
