"""Bot API error shapes, so a client sees exactly what Telegram would send it.

Every failure the emulator reports goes through :class:`ApiError`; the HTTP status and the
JSON body (``ok``, ``error_code``, ``description``, optional ``parameters``) mirror the
official server, which is what python-telegram-bot maps to ``BadRequest``, ``Forbidden``,
``InvalidToken``, ``RetryAfter``, ``Conflict`` and ``NetworkError``.
"""

from __future__ import annotations

from typing import Any

JSONDict = dict[str, Any]


class ApiError(Exception):
    """A Bot API failure: raised inside the emulator, rendered as the official JSON error."""

    def __init__(self, status: int, description: str, parameters: JSONDict | None = None) -> None:
        super().__init__(description)
        self.status = status
        self.description = description
        self.parameters = parameters

    def payload(self) -> JSONDict:
        """The response body Telegram sends for this error."""
        body: JSONDict = {"ok": False, "error_code": self.status, "description": self.description}
        if self.parameters:
            body["parameters"] = self.parameters
        return body


def bad_request(reason: str) -> ApiError:
    """400 with Telegram's ``Bad Request: <reason>`` wording."""
    return ApiError(400, f"Bad Request: {reason}")


def unauthorized() -> ApiError:
    """401: a well-formed token the server does not know."""
    return ApiError(401, "Unauthorized")


def not_found(reason: str | None = None) -> ApiError:
    """404: an unknown method (``reason="method not found"``), a malformed token, a missing file."""
    return ApiError(404, f"Not Found: {reason}" if reason else "Not Found")


def blocked_by_user() -> ApiError:
    """403 for a chat whose user blocked the bot."""
    return ApiError(403, "Forbidden: bot was blocked by the user")


def too_many_requests(retry_after: float) -> ApiError:
    """429 flood control; ``parameters.retry_after`` is what clients wait for."""
    seconds: float = int(retry_after) if float(retry_after).is_integer() else retry_after
    return ApiError(429, f"Too Many Requests: retry after {seconds}", {"retry_after": seconds})


def conflict() -> ApiError:
    """409 for a long poll cut short by a newer ``getUpdates`` (two bot instances running)."""
    return ApiError(409, "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running")


_SERVER_ERRORS = {
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


def server_error(status: int) -> ApiError:
    """A 5xx as Telegram's front end reports it."""
    return ApiError(status, _SERVER_ERRORS.get(status, "Internal Server Error"))


def from_status(status: int, retry_after: float = 1.0, description: str | None = None) -> ApiError:
    """The error an injected fault with this HTTP status produces."""
    if description is not None:
        return ApiError(status, description, {"retry_after": retry_after} if status == 429 else None)
    if status == 429:
        return too_many_requests(retry_after)
    if status == 403:
        return blocked_by_user()
    if status == 401:
        return unauthorized()
    if status == 404:
        return not_found()
    if status == 409:
        return conflict()
    if status >= 500:
        return server_error(status)
    if status == 400:
        return bad_request("injected failure")
    raise ValueError(f"cannot inject HTTP status {status}: use 400, 401, 403, 404, 409, 429 or 5xx")
