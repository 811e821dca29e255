"""Request parameters as the Bot API accepts them: JSON body, urlencoded form, multipart, query.

Clients differ in how they encode a call: python-telegram-bot sends a urlencoded form (or
multipart when a file is attached) whose values are strings, with objects and lists JSON-encoded;
curl users send JSON. The getters here accept both encodings for one parameter, so method code
reads ``params.integer("chat_id")`` and never cares how the value travelled.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from bot.emulator.errors import JSONDict, bad_request


@dataclass(frozen=True)
class Upload:
    """A file that arrived as a multipart part."""

    field: str
    filename: str
    content_type: str
    content: bytes


_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off", ""}


class Params:
    """The parameters of one Bot API call, with typed getters that raise 400 like Telegram."""

    def __init__(self, values: JSONDict | None = None, uploads: dict[str, Upload] | None = None) -> None:
        self.values: JSONDict = dict(values or {})
        self.uploads: dict[str, Upload] = dict(uploads or {})

    def has(self, name: str) -> bool:
        return name in self.values or name in self.uploads

    def raw(self, name: str) -> Any:
        return self.values.get(name)

    def string(self, name: str, default: str | None = None, *, required: bool = False) -> str | None:
        value = self.values.get(name)
        if value is None:
            if required:
                raise bad_request(f"{name} is empty")
            return default
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, int | float | str):
            return str(value)
        raise bad_request(f"field \"{name}\" must be of type String")

    def integer(self, name: str, default: int | None = None, *, required: bool = False) -> int | None:
        value = self.values.get(name)
        if value is None:
            if required:
                raise bad_request(f"{name} is empty")
            return default
        if isinstance(value, bool):
            raise bad_request(f"field \"{name}\" must be of type Integer")
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                return int(value.strip())
            except ValueError:
                pass
        raise bad_request(f"field \"{name}\" must be of type Integer")

    def number(self, name: str, default: float | None = None) -> float | None:
        value = self.values.get(name)
        if value is None:
            return default
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value.strip())
            except ValueError:
                pass
        raise bad_request(f"field \"{name}\" must be of type Float")

    def flag(self, name: str, default: bool = False) -> bool:
        value = self.values.get(name)
        if value is None:
            return default
        if isinstance(value, bool):
            return value
        if isinstance(value, int):
            return value != 0
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
        raise bad_request(f"field \"{name}\" must be of type Boolean")

    def json_value(self, name: str, default: Any = None, *, what: str | None = None) -> Any:
        """An object or array parameter; in a form it is a JSON string (e.g. ``reply_markup``)."""
        value = self.values.get(name)
        if value is None:
            return default
        if isinstance(value, str):
            if value.strip() == "":
                return default
            try:
                return json.loads(value)
            except ValueError:
                raise bad_request(f"can't parse {what or name} JSON object") from None
        return value

    def chat_id(self) -> int:
        """``chat_id`` as an int; usernames (``@channel``) are not emulated, so they are "not found"."""
        value = self.values.get("chat_id")
        if value is None or value == "":
            raise bad_request("chat_id is empty")
        if isinstance(value, str) and value.startswith("@"):
            raise bad_request("chat not found")
        result = self.integer("chat_id")
        assert result is not None
        return result

    def public(self) -> JSONDict:
        """The parameters as recorded for tests: values decoded, uploads described, not dumped."""
        decoded: JSONDict = {}
        for key, value in self.values.items():
            if isinstance(value, str) and value[:1] in "[{":
                try:
                    decoded[key] = json.loads(value)
                    continue
                except ValueError:
                    pass
            decoded[key] = value
        for key, upload in self.uploads.items():
            decoded[key] = {"upload": upload.filename, "size": len(upload.content), "mime_type": upload.content_type}
        return decoded
