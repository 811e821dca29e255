"""Transient Telegram failures (429, 5xx, dropped connections) are retried; others are not."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter

from bot.emulator import Emulator
from bot.retry import RetryingRateLimiter, retry_call
from tests.bot.churnguard_fixtures import ADMIN, live_bot, make_settings  # noqa: F401


class Flaky:
    """Fails with the given errors, in order, then answers "ok"."""

    def __init__(self, *errors: Exception) -> None:
        self.errors = list(errors)
        self.calls = 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "ok"


def test_network_errors_and_flood_waits_are_retried_until_success() -> None:
    flaky = Flaky(NetworkError("Bad Gateway"), RetryAfter(timedelta(0)), NetworkError("connection reset"))

    assert asyncio.run(retry_call(flaky, attempts=4, base_delay=0)) == "ok"
    assert flaky.calls == 4


def test_retries_stop_after_the_last_attempt() -> None:
    flaky = Flaky(NetworkError("1"), NetworkError("2"), NetworkError("3"))

    with pytest.raises(NetworkError, match="3"):
        asyncio.run(retry_call(flaky, attempts=3, base_delay=0))
    assert flaky.calls == 3


@pytest.mark.parametrize("error", [Forbidden("bot was blocked by the user"), BadRequest("message is too long")])
def test_permanent_errors_are_not_retried(error: Exception) -> None:
    flaky = Flaky(error)

    with pytest.raises(type(error)):
        asyncio.run(retry_call(flaky, base_delay=0))
    assert flaky.calls == 1


def test_the_bot_rides_out_5xx_429_and_dropped_connections(home: Path, emulator: Emulator, live_bot) -> None:  # noqa: F811
    bot = live_bot(make_settings(home, emulator))
    assert isinstance(bot.application.bot.rate_limiter, RetryingRateLimiter)

    emulator.fail_next("sendMessage", 502, times=2)
    assert "You are an admin" in bot.ask(ADMIN, "/start")
    emulator.fail_next("sendMessage", 429, retry_after=1)
    assert "You are an admin" in bot.ask(ADMIN, "/help")
    emulator.drop_next("sendMessage")
    assert "Subscribed" in bot.ask(ADMIN, "/subscribe")

    statuses = [call.status for call in emulator.calls("sendMessage")]
    assert statuses.count(502) == 2 and statuses.count(429) == 1
    assert len(bot.bot_messages(ADMIN)) == 3  # each answer arrived once
