"""Riding out Telegram's transient failures: 429 flood waits, 5xx answers and network drops.

PTB's ``AIORateLimiter`` already waits out ``RetryAfter`` (HTTP 429 with ``retry_after``) and
paces requests; it does not retry a 502 or a dropped connection.  Rather than sprinkling
try/except around every ``send_*`` call, the retry sits in the rate limiter itself, which PTB
routes every Bot API call through (except ``getUpdates``, whose own loop already retries).
File downloads bypass the rate limiter, so they use :func:`retry_call` directly.
"""

from __future__ import annotations

import asyncio
import logging
import warnings
from collections.abc import Awaitable, Callable, Coroutine
from datetime import timedelta
from typing import Any, TypeVar

from telegram.error import BadRequest, NetworkError, RetryAfter
from telegram.ext import AIORateLimiter

log = logging.getLogger(__name__)

T = TypeVar("T")

DEFAULT_ATTEMPTS = 4
DEFAULT_BASE_DELAY = 0.5
MAX_RETRY_AFTER = 60.0


def retry_after_seconds(error: RetryAfter) -> float:
    """The server's requested wait in seconds (PTB is moving this attribute from int to timedelta)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        value = error.retry_after
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


async def retry_call(
    call: Callable[[], Awaitable[T]],
    *,
    attempts: int = DEFAULT_ATTEMPTS,
    base_delay: float = DEFAULT_BASE_DELAY,
    what: str = "Telegram request",
) -> T:
    """Await ``call()``; on a network failure or 5xx (PTB raises ``NetworkError`` for both) or a
    429, wait and try again, up to ``attempts`` times in all.  ``BadRequest`` is a subclass of
    ``NetworkError`` in PTB but a 400 never heals by itself, so it is not retried.

    Waits double from ``base_delay``; a 429 waits what the server asked for (capped, so a
    broken server cannot park the bot for hours).  Other errors (403 blocked, 400 bad
    request) are not transient and propagate at once.
    """
    if attempts < 1:
        raise ValueError("attempts must be >= 1")
    delay = base_delay
    for attempt in range(1, attempts + 1):
        try:
            return await call()
        except RetryAfter as error:
            if attempt == attempts:
                raise
            wait = min(retry_after_seconds(error), MAX_RETRY_AFTER) + 0.1
            log.info("%s: flood limit, retrying in %.1f s (attempt %d/%d)", what, wait, attempt, attempts)
            await asyncio.sleep(wait)
        except NetworkError as error:
            if isinstance(error, BadRequest) or attempt == attempts:
                raise
            log.warning("%s failed (%s), retrying in %.1f s (attempt %d/%d)", what, error, delay, attempt, attempts)
            await asyncio.sleep(delay)
            delay *= 2
    raise AssertionError("unreachable")  # pragma: no cover


class RetryingRateLimiter(AIORateLimiter):
    """``AIORateLimiter`` (pacing + 429 handling) plus retries of network failures and 5xx."""

    def __init__(
        self,
        *,
        overall_max_rate: float = 30,
        max_retries: int = 3,
        network_attempts: int = DEFAULT_ATTEMPTS,
        base_delay: float = DEFAULT_BASE_DELAY,
    ) -> None:
        super().__init__(overall_max_rate=overall_max_rate, max_retries=max_retries)
        self._network_attempts = network_attempts
        self._base_delay = base_delay

    async def process_request(
        self,
        callback: Callable[..., Coroutine[Any, Any, bool | dict[str, Any] | list[dict[str, Any]]]],
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: int | None,
    ) -> bool | dict[str, Any] | list[dict[str, Any]]:
        parent = super().process_request

        async def once() -> bool | dict[str, Any] | list[dict[str, Any]]:
            return await parent(callback, args, kwargs, endpoint, data, rate_limit_args)

        # RetryAfter is handled (with pacing of all other requests) by the parent; only
        # NetworkError reaches this loop, so a 429 is never waited out twice.
        delay = self._base_delay
        for attempt in range(1, self._network_attempts + 1):
            try:
                return await once()
            except RetryAfter:
                raise
            except NetworkError as error:
                if isinstance(error, BadRequest) or attempt == self._network_attempts:
                    raise
                log.warning("%s failed (%s), retrying in %.1f s (attempt %d/%d)",
                            endpoint, error, delay, attempt, self._network_attempts)
                await asyncio.sleep(delay)
                delay *= 2
        raise AssertionError("unreachable")  # pragma: no cover


__all__ = ["RetryingRateLimiter", "retry_call"]
