"""The one place secrets are masked: the bot token and database passwords never leave the server.

Two ways in, one rule (:func:`redact`):

* **Logging.** :func:`install` puts a :class:`RedactingFilter` in front of every log record
  of the process, at every level and from every library (python-telegram-bot logs its Bot
  API URL, which holds the token, at DEBUG; httpx logs request URLs; APScheduler and asyncio
  log exceptions whose text may quote either).  The filter rewrites the record's message,
  arguments, exception text and stack text.  A filter attached to the root *logger* would
  only see records logged on the root logger itself (Python consults a logger's filters for
  its own records, not for those its children propagate), so the same filter is applied to
  each record as it is created (the log record factory) and to the root's handlers.
* **Everything else** that shows an exception's text to a person: the command line's
  ``churnguard: ...`` line on stderr, the admins' error notifications, alert texts, job run
  errors and the audit log call :func:`redact` on the text before it leaves.

What is masked: every secret registered with :func:`register` (the token, and its secret
half on its own), anything shaped like a Bot API token (``<digits>:<35 or so characters>``,
``bot<digits>:<secret>`` in a URL) and the password of any ``scheme://user:password@host``
URL or ``password=...`` pair, as SQLAlchemy's ``hide_password`` does.  The bot's numeric
id stays visible (it is public, and tells an operator which bot a line is about).

It lives in ``storage`` because that is the lowest layer: every other one may import it.
"""

from __future__ import annotations

import logging
import re
import sys
import threading
import traceback
from collections.abc import Callable
from types import TracebackType
from typing import Any

MASK = "***"
# A secret shorter than this is not registered: masking every "abc" in every line would make
# logs unreadable and protect nothing (such a value is not a real token or password anyway).
MIN_SECRET_LENGTH = 8

# bot<digits>:<secret> as in the Bot API URLs (/bot<token>/getMe, /file/bot<token>/...).
_TOKEN_IN_URL = re.compile(r"(bot\d+:)[A-Za-z0-9_-]+")
# A bare Bot API token: the bot id, a colon and its secret (35 characters at Telegram).
_TOKEN_SHAPED = re.compile(r"(?<![A-Za-z0-9_])(\d{3,}:)[A-Za-z0-9_-]{30,}")
# scheme://user:password@host (database URLs, proxies); the user name stays.
_URL_PASSWORD = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*://[^\s:/@]*:)([^\s@/]+)(@)")
# password=... in libpq key/value strings and driver messages.
_KEY_PASSWORD = re.compile(r"(\bpassword\s*=\s*)('[^']*'|\"[^\"]*\"|[^\s&;,)]+)", re.IGNORECASE)

_DONE = "_churnguard_redacted"
_lock = threading.Lock()
_secrets: tuple[str, ...] = ()


def register(*secrets: str | None) -> None:
    """Mask these values from now on, wherever they appear (process-wide).

    A Bot API token registers its secret half too, so a line that quotes only that part (or
    the token URL-encoded around its colon) is masked all the same.
    """
    global _secrets
    found: set[str] = set(_secrets)
    for secret in secrets:
        value = (secret or "").strip()
        if len(value) < MIN_SECRET_LENGTH:
            continue
        found.add(value)
        _, colon, tail = value.partition(":")
        if colon and len(tail) >= MIN_SECRET_LENGTH:
            found.add(tail)
    with _lock:
        # Longest first, so a token is masked whole before its secret half is looked for.
        _secrets = tuple(sorted(found, key=len, reverse=True))


def redact(text: str) -> str:
    """``text`` with every secret masked.  Cheap when there is nothing to mask."""
    if not text:
        return text
    for secret in _secrets:
        if secret in text:
            text = text.replace(secret, _masked(secret))
    if ":" in text:
        text = _TOKEN_IN_URL.sub(rf"\g<1>{MASK}", text)
        text = _TOKEN_SHAPED.sub(rf"\g<1>{MASK}", text)
        if "@" in text:
            text = _URL_PASSWORD.sub(rf"\g<1>{MASK}\g<3>", text)
    if "assword" in text or "ASSWORD" in text:
        text = _KEY_PASSWORD.sub(rf"\g<1>{MASK}", text)
    return text


def _masked(secret: str) -> str:
    """A token keeps its public bot id: ``123456:***``; anything else becomes ``***``."""
    head, colon, _ = secret.partition(":")
    return f"{head}:{MASK}" if colon and head.isdigit() else MASK


def redact_values(value: Any) -> Any:
    """``value`` with every string inside it (dict values and keys, list items) masked: for
    JSON documents that are stored or sent, such as an alert's figures or a job run's details."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {redact_values(key): redact_values(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(redact_values(item) for item in value)
    return value


def redact_error(error: BaseException) -> str:
    """``Type: message`` of an exception, masked: for texts shown to people (not logs)."""
    return redact(f"{type(error).__name__}: {error}")


class RedactingFilter(logging.Filter):
    """Masks secrets in a log record: its message and arguments, exception and stack text.

    The message is rendered once (``getMessage``) and stored masked, without its arguments,
    when it held a secret; the exception is formatted here (as ``logging.Formatter`` would)
    and stored masked in ``exc_text``, which every formatter prints instead of formatting the
    exception again.  Applying it twice changes nothing.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, _DONE, False):
            return True
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: leave it to logging's own error report
            message = None
        if message is not None:
            masked = redact(message)
            if masked != message:
                record.msg, record.args = masked, None
        if record.exc_info and record.exc_info[0] is not None and not record.exc_text:
            record.exc_text = _format_exception(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        setattr(record, _DONE, True)
        return True


_FILTER = RedactingFilter("churnguard.redact")
_formatter = logging.Formatter()


def _format_exception(exc_info: Any) -> str:
    return _formatter.formatException(exc_info)


_installed_factory: Callable[..., logging.LogRecord] | None = None


def install(*secrets: str | None) -> None:
    """Register ``secrets`` and mask every log record, warning and uncaught exception of this
    process.

    Call it at start-up in every entry point, before anything logs; calling it again (with
    more secrets, or after logging was configured) is safe and adds the filter to handlers
    added since.
    """
    global _installed_factory
    register(*secrets)
    root = logging.getLogger()
    if _FILTER not in root.filters:
        root.addFilter(_FILTER)
    for handler in [*root.handlers, logging.lastResort]:
        if handler is not None and _FILTER not in handler.filters:
            handler.addFilter(_FILTER)
    current = logging.getLogRecordFactory()
    if current is not _installed_factory:
        base = current

        def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
            record = base(*args, **kwargs)
            _FILTER.filter(record)
            return record

        _installed_factory = factory
        logging.setLogRecordFactory(factory)
    sys.excepthook = _excepthook
    threading.excepthook = _thread_excepthook
    logging.captureWarnings(True)  # a library's warning text goes through the same filter


def _excepthook(kind: type[BaseException], error: BaseException, tb: TracebackType | None) -> None:
    """An uncaught exception's traceback, masked (Python would print it to stderr as it is)."""
    sys.stderr.write(redact("".join(traceback.format_exception(kind, error, tb))))


def _thread_excepthook(args: threading.ExceptHookArgs) -> None:
    if args.exc_type is SystemExit:
        return
    name = args.thread.name if args.thread is not None else "?"
    text = "".join(traceback.format_exception(args.exc_type, args.exc_value, args.exc_traceback))
    sys.stderr.write(redact(f"Exception in thread {name}:\n{text}"))


__all__ = ["MASK", "RedactingFilter", "install", "redact", "redact_error", "redact_values", "register"]
