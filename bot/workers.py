"""Worker threads for blocking work, in two pools: answers first, background after.

The bot and the scheduled jobs share one process and one event loop (``churnguard run``).
Blocking work never runs on the loop, but it still competes for the CPU: a retrain keeps
every core busy (LightGBM's OpenMP threads plus pandas), and a /score waiting behind it for
a time slice is exactly the slow answer a retention manager notices.  So:

* the bot's handlers offload to the **answer pool** (normal priority, see
  ``Services.offload``);
* everything else that uses the loop's default executor — the jobs' ``asyncio.to_thread``,
  hence training — runs in the **background pool**, whose threads lower their own OS
  priority (``nice`` +10; on Linux a thread's nice value is its own, and the OpenMP threads
  a trainer starts inherit it).

The kernel then gives the CPU to answers whenever both want it; training takes what is left.
Where thread priorities cannot be changed the pools still work, just without the preference.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import threading
from concurrent.futures import ThreadPoolExecutor

log = logging.getLogger(__name__)

BACKGROUND_NICE = 10
# Answers are short (a record lookup and a tree walk) and hold the GIL part of the time, so a
# few threads keep the cores busy; more only add GIL hand-offs, and staying within SQLAlchemy's
# default pool of 5 connections avoids opening (and re-configuring) SQLite connections per answer.
ANSWER_THREADS = 4
BACKGROUND_THREADS = 4


def lower_priority(nice: int = BACKGROUND_NICE) -> None:
    """Lower the calling thread's scheduling priority (Linux: per thread; elsewhere best effort)."""
    with contextlib.suppress(AttributeError, OSError, PermissionError):
        current = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), max(current, nice))


def thread_nice() -> int | None:
    """The calling thread's nice value (None where it cannot be read); used by the tests."""
    try:
        return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    except (AttributeError, OSError):
        return None


_heap_frozen = False


def freeze_startup_heap() -> bool:
    """Once per process, after start-up: move every object alive now out of the garbage
    collector's view (``gc.freeze``).  True when this call froze it.

    pandas, scikit-learn, SciPy, matplotlib and LightGBM leave a few hundred thousand objects
    that live as long as the process.  CPython's full collection walks all of them, so every
    few thousand answers one reply stalled for 200-500 ms while the collector re-proved that
    the imported modules were still alive (bench/bot.py showed these pauses as the p99).
    Frozen objects are never scanned again; objects created afterwards (updates, sessions,
    results) are collected as usual.  A collection first, so that start-up garbage is
    freed rather than frozen.
    """
    global _heap_frozen
    if _heap_frozen:
        return False
    gc.collect()
    gc.freeze()
    _heap_frozen = True
    log.debug("froze %d start-up objects out of the garbage collector's view", gc.get_freeze_count())
    return True


def answer_pool(max_workers: int = ANSWER_THREADS) -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="churnguard-answer")


def background_pool(max_workers: int = BACKGROUND_THREADS) -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="churnguard-background",
                              initializer=lower_priority)


__all__ = ["BACKGROUND_NICE", "answer_pool", "background_pool", "freeze_startup_heap", "lower_priority", "thread_nice"]
