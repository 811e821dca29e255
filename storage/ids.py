"""One rule for client ids, applied where ids come in (every ingest) and where they are looked
up (``/score``, ``churnguard score``), and a safe way to show any stored text.

Why one rule: an id the store accepts but lookup refuses is a client nobody can ask about,
and an id holding an ANSI escape (``\\x1b[2J``) or a right-to-left override (U+202E) is an
attack on whoever reads the list — it clears a terminal or makes ``evil`` read as ``live``
in the chat.  So an id is valid when it is not empty, at most ``MAX_ID_LENGTH`` characters
(the width of the id columns), and every character is printable in Python's sense: no
control characters, no format characters (bidirectional overrides, zero-width spaces, the
soft hyphen), no line or paragraph separators, no space other than the plain one, no
unassigned or private-use code points.  Surrounding blanks are stripped first, as the
readers do.

Stores written before this rule may still hold such ids, so everything that prints stored
text passes it through ``visible`` (or ``visible_json``), which spells invisible characters
as escapes instead of emitting them: defence in depth.
"""

from __future__ import annotations

import pandas as pd

MAX_ID_LENGTH = 200  # characters, the width of client_record.client_id and event_client.client_id
INVISIBLE_PROBLEM = "the id contains control or invisible characters"


def _escape(ch: str) -> str:
    code = ord(ch)
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def visible(text: str, keep: str = "") -> str:
    """``text`` with every character that is not printable (except those in ``keep``, e.g.
    newlines of a multi-line message) written as a Python-style escape: ``\\x1b``, ``\\u202e``."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() or ch in keep else _escape(ch) for ch in text)


def _json_escape(ch: str) -> str:
    code = ord(ch)
    if code < 0x10000:
        return f"\\u{code:04x}"
    code -= 0x10000  # beyond the BMP: a UTF-16 surrogate pair, as JSON spells it
    return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"


def visible_json(text: str) -> str:
    """A JSON document with every non-printable character inside its strings written as a
    JSON ``\\uXXXX`` escape: the same JSON to a parser, harmless on a terminal.  (Outside
    strings JSON holds only printable characters and the newlines of its indentation.)"""
    if all(ch.isprintable() or ch == "\n" for ch in text):
        return text
    return "".join(ch if ch.isprintable() or ch == "\n" else _json_escape(ch) for ch in text)


# Control characters have no Unicode name; these are the ones people meet.
_CONTROL_NAMES = {0x00: "NULL", 0x07: "BELL", 0x08: "BACKSPACE", 0x09: "TAB", 0x0A: "LINE FEED",
                  0x0D: "CARRIAGE RETURN", 0x1B: "ESCAPE", 0x7F: "DELETE"}


def hidden_characters(text: str) -> str:
    """The distinct invisible characters of ``text``, named: ``U+202E RIGHT-TO-LEFT OVERRIDE``."""
    import unicodedata

    seen = dict.fromkeys(ch for ch in text if not ch.isprintable())
    names = {ch: unicodedata.name(ch, "") or _CONTROL_NAMES.get(ord(ch), "") for ch in seen}
    return ", ".join(f"U+{ord(ch):04X}" + (f" {names[ch]}" if names[ch] else "") for ch in seen)


def id_problem(text: str) -> str | None:
    """Why ``text`` (already stripped) cannot be a client id, or None when it can."""
    if not text:
        return "the id is empty"
    if len(text) > MAX_ID_LENGTH:
        return f"the id is {len(text)} characters long; ids have at most {MAX_ID_LENGTH}"
    if not text.isprintable():
        return f"{INVISIBLE_PROBLEM} ({hidden_characters(text)})"
    return None


def invisible_ids(ids: pd.Series) -> pd.Series:
    """True where a present id (text) holds a character the rule refuses (vectorised enough:
    ``str.isprintable`` runs in C, one call per id)."""
    present = ids.notna()
    result = pd.Series(False, index=ids.index)
    if present.any():
        result[present] = ~ids[present].astype(str).map(str.isprintable).astype(bool)
    return result


__all__ = ["INVISIBLE_PROBLEM", "MAX_ID_LENGTH", "hidden_characters", "id_problem", "invisible_ids", "visible",
           "visible_json"]
