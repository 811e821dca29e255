"""Telegram's ``parse_mode`` rules: markup in, visible text plus entities out, or a 400.

A bot that forgets to escape a ``.`` in MarkdownV2 or a ``<`` in HTML works in a unit test and
fails in production with "can't parse entities"; reproducing the server's strictness here is
what lets the end-to-end tests catch that.  Offsets and lengths are in UTF-16 code units, as
in the Bot API.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from bot.emulator.errors import ApiError, JSONDict, bad_request


def utf16_len(text: str) -> int:
    """Length as the Bot API counts it (UTF-16 code units)."""
    return len(text.encode("utf-16-le")) // 2


def _byte_offset(source: str, index: int) -> int:
    return len(source[:index].encode("utf-8"))


def _cant_parse(reason: str) -> ApiError:
    return bad_request(f"can't parse entities: {reason}")


@dataclass
class _Builder:
    """Accumulates visible text and the entities laid over it."""

    parts: list[str] = field(default_factory=list)
    length: int = 0
    entities: list[JSONDict] = field(default_factory=list)

    def add(self, text: str) -> None:
        self.parts.append(text)
        self.length += utf16_len(text)

    def close(self, entity_type: str, start: int, extra: JSONDict | None = None) -> None:
        if self.length > start:
            entity: JSONDict = {"type": entity_type, "offset": start, "length": self.length - start}
            entity.update(extra or {})
            self.entities.append(entity)

    def result(self) -> tuple[str, list[JSONDict]]:
        ordered = sorted(self.entities, key=lambda e: (e["offset"], -e["length"]))
        return "".join(self.parts), ordered


def parse(text: str, parse_mode: str | None) -> tuple[str, list[JSONDict]]:
    """Visible text and entities for ``text`` sent with ``parse_mode`` (None: plain text).

    Like Telegram, surrounding whitespace is trimmed from the visible text and the entities
    are shifted or clipped to match.
    """
    mode = (parse_mode or "").lower()
    entities: list[JSONDict]
    if mode == "":
        visible, entities = text, []
    elif mode == "html":
        visible, entities = _parse_html(text)
    elif mode == "markdownv2":
        visible, entities = _parse_markdown(text, v2=True)
    elif mode == "markdown":
        visible, entities = _parse_markdown(text, v2=False)
    else:
        raise bad_request(f"unsupported parse_mode \"{parse_mode}\"")
    return trim(visible, entities)


def trim(text: str, entities: list[JSONDict]) -> tuple[str, list[JSONDict]]:
    """Drop surrounding whitespace as Telegram does, keeping entities on the same characters."""
    stripped = text.strip()
    if stripped == text:
        return text, entities
    shift = utf16_len(text[: len(text) - len(text.lstrip())])
    end = utf16_len(stripped)
    kept: list[JSONDict] = []
    for entity in entities:
        start = max(entity["offset"] - shift, 0)
        stop = min(entity["offset"] + entity["length"] - shift, end)
        if stop > start:
            kept.append({**entity, "offset": start, "length": stop - start})
    return stripped, kept


# --- HTML -------------------------------------------------------------------------------

_TAG = re.compile(
    r"<(/?)([a-zA-Z][a-zA-Z0-9-]*)"
    r"((?:\s+[a-zA-Z-]+(?:\s*=\s*(?:\"[^\"]*\"|'[^']*'|[^\s>\"']+))?)*)\s*/?>"
)
_ATTR = re.compile(r"([a-zA-Z-]+)(?:\s*=\s*(?:\"([^\"]*)\"|'([^']*)'|([^\s>\"']+)))?")
_ENTITY = re.compile(r"&(?:(lt|gt|amp|quot|apos|nbsp)|#(\d+)|#[xX]([0-9a-fA-F]+));")
_NAMED = {"lt": "<", "gt": ">", "amp": "&", "quot": '"', "apos": "'", "nbsp": "\u00a0"}
_HTML_TYPES = {
    "b": "bold", "strong": "bold", "i": "italic", "em": "italic", "u": "underline", "ins": "underline",
    "s": "strikethrough", "strike": "strikethrough", "del": "strikethrough", "tg-spoiler": "spoiler",
    "span": "spoiler", "a": "text_link", "code": "code", "pre": "pre", "blockquote": "blockquote",
    "tg-emoji": "custom_emoji",
}


def _parse_html(source: str) -> tuple[str, list[JSONDict]]:
    out = _Builder()
    # open tags: (name, start offset, extra fields)
    stack: list[tuple[str, int, JSONDict]] = []
    i = 0
    while i < len(source):
        char = source[i]
        if char == "&":
            match = _ENTITY.match(source, i)
            if match:
                named, dec, hexa = match.groups()
                out.add(_NAMED[named] if named else chr(int(dec) if dec else int(hexa, 16)))
                i = match.end()
            else:  # Telegram keeps a lone '&' as text
                out.add("&")
                i += 1
            continue
        if char != "<":
            j = i
            while j < len(source) and source[j] not in "<&":
                j += 1
            out.add(source[i:j])
            i = j
            continue
        match = _TAG.match(source, i)
        if not match:
            raise _cant_parse(f'Unsupported start tag "" at byte offset {_byte_offset(source, i)}')
        closing, name, attr_text = match.group(1) == "/", match.group(2).lower(), match.group(3)
        if closing:
            if not stack:
                raise _cant_parse(f"Unexpected end tag at byte offset {_byte_offset(source, i)}")
            open_name, start, open_extra = stack.pop()
            if open_name != name:
                raise _cant_parse(
                    f'Unmatched end tag at byte offset {_byte_offset(source, i)}, '
                    f'expected "</{open_name}>", found "</{name}>"'
                )
            _close_html(out, open_name, start, open_extra, stack)
        else:
            if name not in _HTML_TYPES:
                raise _cant_parse(f'Unsupported start tag "{name}" at byte offset {_byte_offset(source, i)}')
            attrs = {m.group(1).lower(): next((g for g in m.groups()[1:] if g is not None), "")
                     for m in _ATTR.finditer(attr_text)}
            extra: JSONDict = {}
            if name == "span" and attrs.get("class") != "tg-spoiler":
                raise _cant_parse('Tag "span" must have class "tg-spoiler"')
            if name == "a":
                extra["url"] = attrs.get("href", "")
            if name == "code" and attrs.get("class", "").startswith("language-"):
                extra["language"] = attrs["class"][len("language-"):]
            if name == "blockquote" and "expandable" in attrs:
                extra["expandable"] = True
            if name == "tg-emoji":
                extra["custom_emoji_id"] = attrs.get("emoji-id", "")
            stack.append((name, out.length, extra))
        i = match.end()
    if stack:
        raise _cant_parse(f'Can\'t find end tag corresponding to start tag "{stack[-1][0]}"')
    return out.result()


def _close_html(out: _Builder, name: str, start: int, extra: JSONDict,
                stack: list[tuple[str, int, JSONDict]]) -> None:
    entity_type = _HTML_TYPES[name]
    if name == "a":
        url = extra.get("url", "")
        if not url:
            return
        if url.startswith("tg://user?id="):
            user_id = url.split("=", 1)[1]
            if not user_id.isdigit():
                raise _cant_parse(f"Wrong user identifier in a text mention: {user_id!r}")
            out.close("text_mention", start, {"user": {"id": int(user_id), "is_bot": False, "first_name": "User"}})
            return
        out.close("text_link", start, {"url": url})
        return
    if name == "code" and stack and stack[-1][0] == "pre":
        # <pre><code class="language-x"> gives the enclosing pre its language instead
        if "language" in extra:
            stack[-1][2]["language"] = extra["language"]
        return
    if name == "blockquote" and extra.get("expandable"):
        out.close("expandable_blockquote", start)
        return
    if name == "code":
        out.close("code", start)
        return
    out.close(entity_type, start, {k: v for k, v in extra.items() if k in {"language", "custom_emoji_id"}})


# --- Markdown / MarkdownV2 ---------------------------------------------------------------

_V2_RESERVED = set("_*[]()~`>#+-=|{}.!")
_V1_RESERVED = set("_*`[")
_V2_MARKERS = {"*": "bold", "_": "italic", "__": "underline", "~": "strikethrough", "||": "spoiler"}
_V1_MARKERS = {"*": "bold", "_": "italic"}


def _parse_markdown(source: str, *, v2: bool) -> tuple[str, list[JSONDict]]:
    out = _Builder()
    markers = _V2_MARKERS if v2 else _V1_MARKERS
    reserved = _V2_RESERVED if v2 else _V1_RESERVED
    stack: list[tuple[str, int, int]] = []  # (marker, visible start, byte offset)
    quote_start: int | None = None
    i = 0
    n = len(source)
    while i < n:
        char = source[i]
        at_line_start = i == 0 or source[i - 1] == "\n"
        if v2 and quote_start is not None and at_line_start and char != ">":
            out.close("blockquote", quote_start)
            quote_start = None
        if char == "\\" and i + 1 < n and (v2 or source[i + 1] in reserved):
            nxt = source[i + 1]
            if v2 and not (0 < ord(nxt) < 127):
                raise _cant_parse("Character '\\' is reserved and must be escaped with the preceding '\\'")
            out.add(nxt)
            i += 2
            continue
        if v2 and char == ">" and at_line_start:
            if quote_start is None:
                quote_start = out.length
            i += 1
            continue
        if char == "`":
            i = _markdown_code(source, i, out, v2=v2)
            continue
        if char == "[":
            i = _markdown_link(source, i, out, v2=v2)
            continue
        two = source[i:i + 2]
        marker = two if v2 and two in ("__", "||") else char
        if marker in markers:
            if stack and stack[-1][0] == marker:
                _, start, _ = stack.pop()
                out.close(markers[marker], start)
            elif any(m == marker for m, _, _ in stack):
                raise _cant_parse(f"Can't find end of {markers[stack[-1][0]].title()} entity at byte offset "
                                  f"{stack[-1][2]}")
            else:
                stack.append((marker, out.length, _byte_offset(source, i)))
            i += len(marker)
            continue
        if char in reserved or (v2 and char == "\\"):
            raise _cant_parse(f"Character '{char}' is reserved and must be escaped with the preceding '\\'")
        out.add(char)
        i += 1
    if stack:
        marker, _, offset = stack[-1]
        raise _cant_parse(f"Can't find end of {markers[marker].title()} entity at byte offset {offset}")
    if quote_start is not None:
        out.close("blockquote", quote_start)
    return out.result()


def _markdown_code(source: str, i: int, out: _Builder, *, v2: bool) -> int:
    """Inline code or a ```pre``` block starting at ``i``; returns the index after it."""
    fence = "```" if source.startswith("```", i) else "`"
    body_start = i + len(fence)
    j = body_start
    chunks: list[str] = []
    while j < len(source):
        if v2 and source[j] == "\\" and j + 1 < len(source) and source[j + 1] in "`\\":
            chunks.append(source[j + 1])
            j += 2
            continue
        if source.startswith(fence, j):
            break
        chunks.append(source[j])
        j += 1
    else:
        raise _cant_parse(f"Can't find end of {'Pre' if fence == '```' else 'Code'} entity at byte offset "
                          f"{_byte_offset(source, i)}")
    body = "".join(chunks)
    language = None
    if fence == "```":
        first, sep, rest = body.partition("\n")
        if sep and first and " " not in first:
            language, body = first, rest
        elif sep and not first:
            body = rest
    start = out.length
    out.add(body)
    if fence == "```":
        out.close("pre", start, {"language": language} if language else None)
    else:
        out.close("code", start)
    return j + len(fence)


def _markdown_link(source: str, i: int, out: _Builder, *, v2: bool) -> int:
    """``[text](url)`` starting at ``i``; the text may hold nested formatting only in v2."""
    close = i + 1
    depth_text: list[str] = []
    while close < len(source) and source[close] != "]":
        if v2 and source[close] == "\\" and close + 1 < len(source):
            depth_text.append(source[close + 1])
            close += 2
            continue
        depth_text.append(source[close])
        close += 1
    if close >= len(source) or not source.startswith("(", close + 1):
        if v2:
            raise _cant_parse("Character '[' is reserved and must be escaped with the preceding '\\'")
        raise _cant_parse(f"Can't find end of the entity starting at byte offset {_byte_offset(source, i)}")
    end = close + 2
    url_chars: list[str] = []
    while end < len(source) and source[end] != ")":
        if v2 and source[end] == "\\" and end + 1 < len(source):
            url_chars.append(source[end + 1])
            end += 2
            continue
        url_chars.append(source[end])
        end += 1
    if end >= len(source):
        raise _cant_parse(f"Can't find end of a url at byte offset {_byte_offset(source, close + 1)}")
    inner_text, inner_entities = (_parse_markdown(source[i + 1:close], v2=v2) if v2
                                  else ("".join(depth_text), []))
    start = out.length
    out.add(inner_text)
    for entity in inner_entities:
        out.entities.append({**entity, "offset": entity["offset"] + start})
    out.close("text_link", start, {"url": "".join(url_chars)})
    return end + 1
