"""The HTTP face of the emulator: Telegram's URL layout, encodings, long polling and faults.

Routes mirror api.telegram.org: ``/bot<token>/<method>`` (GET or POST; JSON, urlencoded or
multipart) and ``/file/bot<token>/<file_path>`` for downloads, so a real client only needs its
base URLs pointed here.  Runs on the emulator's own event loop; state changes made from other
threads reach waiting long polls through a waker that hops onto this loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
from typing import Any

from aiohttp import web

from bot.emulator.errors import ApiError, JSONDict, bad_request, conflict, from_status, not_found, unauthorized
from bot.emulator.methods import MAX_UPLOAD_BYTES, METHODS
from bot.emulator.params import Params, Upload
from bot.emulator.state import EmulatorState

_LOGGER = logging.getLogger(__name__)
_TOKEN = re.compile(r"^\d+:[A-Za-z0-9_-]+$")
_CANONICAL = {name.lower(): name for name in [*METHODS, "getUpdates"]}


class ApiServer:
    """The aiohttp application serving one bot's Bot API calls from an :class:`EmulatorState`."""

    def __init__(self, state: EmulatorState) -> None:
        self.state = state
        self._loop: asyncio.AbstractEventLoop | None = None
        self._changed: asyncio.Event | None = None
        self._waker: int | None = None

    def build_app(self) -> web.Application:
        # room for Telegram's 50 MB upload limit plus multipart overhead; larger bodies get 413
        app = web.Application(client_max_size=MAX_UPLOAD_BYTES + 1024 * 1024)
        app.router.add_route("*", r"/{bot:bot[^/]*}/{method:[^/]*}", self.api)
        app.router.add_get(r"/file/{bot:bot[^/]*}/{path:.+}", self.download)
        app.on_startup.append(self._attach)
        app.on_shutdown.append(self._detach)
        return app

    async def _attach(self, app: web.Application) -> None:
        self._loop = asyncio.get_running_loop()
        self._changed = asyncio.Event()
        loop = self._loop
        self._waker = self.state.add_waker(lambda: loop.call_soon_threadsafe(self._wake))

    async def _detach(self, app: web.Application) -> None:
        if self._waker is not None:
            self.state.remove_waker(self._waker)
        self._wake()

    def _wake(self) -> None:
        """Release every waiting long poll; each re-checks the state (runs on this loop)."""
        if self._changed is not None:
            changed, self._changed = self._changed, asyncio.Event()
            changed.set()

    # --- Bot API calls ---------------------------------------------------------------------

    async def api(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["method"]
        method = _CANONICAL.get(name.lower(), name)
        params = Params()
        try:
            token = request.match_info["bot"][len("bot"):]
            if not _TOKEN.match(token):
                raise not_found()
            if token != self.state.token:
                raise unauthorized()
            params = await _read_params(request)
            if name.lower() not in _CANONICAL:
                raise not_found("method not found")
            fault = self.state.take_fault(method)
            if fault is not None:
                if fault.kind == "drop":
                    self.state.record_call(method, params.public(), 0, "connection dropped (injected)")
                    return _drop(request)
                if fault.kind == "delay":
                    await asyncio.sleep(fault.delay)
                else:
                    raise from_status(fault.status, fault.retry_after, fault.description)
            if method == "getUpdates":
                result: Any = await self._get_updates(params)
            else:
                with self.state.lock:
                    result = METHODS[method](self.state, params)
        except ApiError as error:
            if error.status == 409 and (request.transport is None or request.transport.is_closing()):
                raise asyncio.CancelledError from None  # a poll its client abandoned: nobody to tell
            self.state.record_call(method, params.public(), error.status, error.description)
            return web.json_response(error.payload(), status=error.status)
        except Exception as error:  # a bug here must reach the test as a readable Bot API error
            _LOGGER.exception("emulator failed on %s", method)
            failure = ApiError(500, f"Internal Server Error: emulator failed on {method}: {error!r}")
            self.state.record_call(method, params.public(), 500, failure.description)
            return web.json_response(failure.payload(), status=500)
        self.state.record_call(method, params.public(), 200, None, result)
        return web.json_response({"ok": True, "result": result})

    async def _get_updates(self, params: Params) -> list[JSONDict]:
        """Long polling: answer at once when updates wait, else when one arrives or ``timeout`` ends."""
        offset = params.integer("offset")
        limit = min(max(params.integer("limit", 100) or 100, 1), 100)
        timeout = max(params.number("timeout", 0.0) or 0.0, 0.0)
        allowed = params.json_value("allowed_updates", what="allowed_updates")
        if allowed is not None and (not isinstance(allowed, list) or not all(isinstance(a, str) for a in allowed)):
            raise bad_request("can't parse allowed_updates JSON object")
        generation = self.state.begin_poll()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        waiting = False
        try:
            while True:
                assert self._changed is not None
                changed = self._changed  # taken before checking, so a change after the check still wakes us
                if self.state.poll_superseded(generation):
                    raise conflict()
                updates = self.state.take_updates(offset, limit, allowed)
                remaining = deadline - loop.time()
                if updates or remaining <= 0 or self.state.closing:
                    return updates
                if not waiting:
                    waiting = True
                    self.state.poll_waiting(+1)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(changed.wait(), remaining)
        finally:
            if waiting:
                self.state.poll_waiting(-1)

    # --- file downloads --------------------------------------------------------------------

    async def download(self, request: web.Request) -> web.StreamResponse:
        path = request.match_info["path"]
        token = request.match_info["bot"][len("bot"):]
        stored = self.state.file_at(path) if token == self.state.token else None
        if stored is None:
            self.state.record_call("downloadFile", {"file_path": path}, 404, "Not Found")
            return web.json_response(not_found().payload(), status=404)
        fault = self.state.take_fault("downloadFile")
        if fault is not None and fault.kind == "drop":
            self.state.record_call("downloadFile", {"file_path": path}, 0, "connection dropped (injected)")
            return _drop(request)
        if fault is not None and fault.kind == "status":
            error = from_status(fault.status, fault.retry_after, fault.description)
            self.state.record_call("downloadFile", {"file_path": path}, error.status, error.description)
            return web.json_response(error.payload(), status=error.status)
        self.state.record_call("downloadFile", {"file_path": path}, 200, None, {"size": len(stored.content)})
        return web.Response(body=stored.content, content_type=stored.mime_type or "application/octet-stream")


async def _read_params(request: web.Request) -> Params:
    """Merge query string and body, whatever the encoding; uploads come from multipart parts."""
    values: JSONDict = dict(request.query)
    uploads: dict[str, Upload] = {}
    try:
        if request.content_type == "application/json":
            raw = await request.read()
            if raw.strip():
                try:
                    body = json.loads(raw)
                except ValueError:
                    raise bad_request("can't parse JSON encoded request body") from None
                if not isinstance(body, dict):
                    raise bad_request("JSON request body must be an object")
                values.update(body)
        elif request.content_type in ("multipart/form-data", "application/x-www-form-urlencoded"):
            form = await request.post()
            for key, value in form.items():
                if isinstance(value, web.FileField):
                    uploads[key] = Upload(key, value.filename, value.content_type, value.file.read())
                else:
                    values[key] = value
    except web.HTTPRequestEntityTooLarge:
        raise ApiError(413, "Request Entity Too Large") from None
    return Params(values, uploads)


def _drop(request: web.Request) -> web.StreamResponse:
    """Close the connection without an answer, as a network failure would."""
    transport = request.transport
    if transport is not None:
        transport.abort()
    raise asyncio.CancelledError
