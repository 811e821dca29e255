"""Answers run at normal priority; the jobs' default executor (training) at a lower one."""

from __future__ import annotations

import asyncio
import gc
import os
import sys
import weakref
from pathlib import Path

import pytest

from bot.emulator import Emulator
from bot.workers import BACKGROUND_NICE, answer_pool, background_pool, freeze_startup_heap, thread_nice
from tests.bot.churnguard_fixtures import live_bot, make_settings  # noqa: F401

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread nice values are Linux's")


def test_background_threads_lower_their_own_priority_only() -> None:
    base = os.getpriority(os.PRIO_PROCESS, 0)
    with background_pool(1) as background, answer_pool(1) as answers:
        low = background.submit(thread_nice).result()
        normal = answers.submit(thread_nice).result()

    assert low == max(base, BACKGROUND_NICE)
    assert normal == base
    assert thread_nice() == base  # the caller's thread is untouched


def test_in_the_bot_jobs_run_below_answers(home: Path, emulator: Emulator, live_bot) -> None:  # noqa: F811
    bot = live_bot(make_settings(home, emulator))
    base = os.getpriority(os.PRIO_PROCESS, 0)

    job_thread = bot.thread.run(asyncio.to_thread(thread_nice))  # what the job runner uses
    answer_thread = bot.thread.run(bot.services.offload(thread_nice))

    assert job_thread == max(base, BACKGROUND_NICE)
    assert answer_thread == base


def test_a_started_bot_keeps_its_start_up_objects_out_of_the_collectors_view(
    home: Path, emulator: Emulator, live_bot  # noqa: F811
) -> None:
    live_bot(make_settings(home, emulator))

    # Full collections skip what was alive at start-up (the imported libraries), so they no
    # longer stall an answer for hundreds of milliseconds; later objects are still collected.
    assert gc.get_freeze_count() > 0
    assert freeze_startup_heap() is False  # once per process: a second bot does not collect again
    cycle = _Node()
    cycle.itself = cycle
    gone = weakref.ref(cycle)
    del cycle
    gc.collect()
    assert gone() is None


class _Node:
    itself: object = None
