"""Pilot segments: ``plan == 'annual'``, ``Contract == 'Month-to-month' and tenure < 12``.

A segment is typed by an admin, in the CLI or in a chat, so it is parsed here by a small
recursive-descent parser and never handed to ``eval`` or ``DataFrame.query`` (either would
run whatever Python or pandas expression the text holds).  The grammar:

    segment    := or_expr
    or_expr    := and_expr ("or" and_expr)*
    and_expr   := not_expr ("and" not_expr)*
    not_expr   := "not" not_expr | "(" or_expr ")" | comparison
    comparison := column op literal | column ["not"] "in" "(" literal ("," literal)* ")"
    op         := < <= == != >= > =          (= means ==)
    column     := name | `back-quoted name`
    literal    := number | 'text' | "text"

Each comparison is a ``model.rules.HistoryRule`` (the one-comparison language of
``CHURNGUARD_NO_HISTORY_RULE``), so a segment and the no-history rule read values the same
way: a missing value never matches, text compares trimmed and case-sensitively.  Curly
quotes and dashes that phones put into typed text are read as their plain forms.

``check`` compares a parsed segment with the clients' columns before anything is stored:
an unknown column, a number compared with text, or a text value no client has are refused
with what the columns and their values actually are.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Union

import numpy as np
import pandas as pd

from model.rules import HistoryRule
from storage.errors import UserError

MAX_LENGTH = 500
MAX_COMPARISONS = 30
_PLAIN_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*")
_TOKEN = re.compile(
    r"""\s*(?:
        (?P<lparen>\() | (?P<rparen>\)) | (?P<comma>,)
      | (?P<op><=|>=|==|!=|<|>|=)
      | (?P<number>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)(?![A-Za-z_])
      | '(?P<single>[^']*)' | "(?P<double>[^"]*)"
      | `(?P<quoted>[^`]+)`
      | (?P<name>[A-Za-z_][A-Za-z0-9_.]*)
    )""",
    re.VERBOSE,
)
_PHONE_PUNCTUATION = str.maketrans({"‘": "'", "’": "'", "‚": "'", "“": '"', "”": '"', "„": '"', "«": '"',
                                    "»": '"', "≤": "<=", "≥": ">=", "≠": "!="})
KEYWORDS = frozenset({"and", "or", "not", "in"})
_SAY = {"op": "an operator (== != < <= > >=)", "number": "a number", "text": "a quoted text", "name": "a column name",
        "rparen": "')'", "lparen": "'('", "in": "'in'", "not": "'not'"}
EXAMPLE = "plan == 'annual' and tenure < 12"  # when the clients' own columns cannot give one


@dataclass(frozen=True)
class Comparison:
    rule: HistoryRule

    def mask(self, frame: pd.DataFrame) -> np.ndarray:
        return self.rule.mask(frame)

    def __str__(self) -> str:
        return str(self.rule)


@dataclass(frozen=True)
class Not:
    inner: Node

    def mask(self, frame: pd.DataFrame) -> np.ndarray:
        return ~self.inner.mask(frame)

    def __str__(self) -> str:
        return f"not ({self.inner})"


@dataclass(frozen=True)
class Both:
    parts: tuple[Node, ...]
    join: str  # "and" | "or"

    def mask(self, frame: pd.DataFrame) -> np.ndarray:
        combine: Callable[[np.ndarray, np.ndarray], np.ndarray] = np.logical_and if self.join == "and" \
            else np.logical_or
        result = self.parts[0].mask(frame)
        for part in self.parts[1:]:
            result = combine(result, part.mask(frame))
        return np.asarray(result, dtype=bool)

    def __str__(self) -> str:
        return f" {self.join} ".join(f"({part})" if isinstance(part, Both) else str(part) for part in self.parts)


Node = Union[Comparison, Not, Both]  # noqa: UP007 (a runtime alias used in annotations above)


@dataclass(frozen=True)
class Segment:
    """A parsed segment; ``text`` is what the user typed (normalised)."""

    text: str
    root: Node

    def mask(self, frame: pd.DataFrame) -> np.ndarray:
        """One boolean per row: the rows the segment selects."""
        return np.asarray(self.root.mask(frame), dtype=bool)

    def comparisons(self) -> list[HistoryRule]:
        found: list[HistoryRule] = []

        def walk(node: Node) -> None:
            if isinstance(node, Comparison):
                found.append(node.rule)
            elif isinstance(node, Not):
                walk(node.inner)
            else:
                for part in node.parts:
                    walk(part)

        walk(self.root)
        return found

    def __str__(self) -> str:
        return self.text


def _refuse(text: str, problem: str, example: str | None = None) -> UserError:
    return UserError(f"the segment {text!r} cannot be read: {problem}. Write comparisons such as "
                     f"{example or EXAMPLE!r}, "
                     "joined with and / or (operators < <= == != >= >, text in quotes, `back quotes` around a "
                     "column name with spaces)", segment=text, problem=problem)


def _refuse_in(parser: _Parser, problem: str) -> UserError:
    return _refuse(parser.text, problem, parser.example)


@dataclass
class _Token:
    kind: str
    value: str
    position: int


def _tokens(text: str, example: str | None = None) -> list[_Token]:
    found: list[_Token] = []
    position = 0
    while position < len(text):
        if text[position:].strip() == "":
            break
        match = _TOKEN.match(text, position)
        if match is None or match.end() == position:
            shown = text[position:position + 12].strip()
            raise _refuse(text, f"unexpected {shown!r} at character {position + 1}", example)
        kind = match.lastgroup or ""
        value = match.group(kind)
        if kind in ("single", "double"):
            kind = "text"
        elif kind == "name" and value.lower() in KEYWORDS:
            kind, value = value.lower(), value.lower()
        elif kind == "quoted":
            kind, value = "name", value.strip()
        found.append(_Token(kind, value, position))
        position = match.end()
    return found


class _Parser:
    def __init__(self, text: str, example: str | None = None) -> None:
        self.text = text
        self.example = example
        self.tokens = _tokens(text, example)
        self.index = 0
        self.comparisons = 0

    def peek(self) -> _Token | None:
        return self.tokens[self.index] if self.index < len(self.tokens) else None

    def take(self, *kinds: str) -> _Token:
        token = self.peek()
        if token is None:
            raise _refuse_in(self, f"it ends where {self.expected(kinds)} was expected")
        if token.kind not in kinds:
            raise _refuse_in(self, f"{token.value!r} at character {token.position + 1} where "
                                     f"{self.expected(kinds)} was expected")
        self.index += 1
        return token

    @staticmethod
    def expected(kinds: Sequence[str]) -> str:
        return " or ".join(_SAY.get(kind, kind) for kind in kinds)

    def parse(self) -> Node:
        if not self.tokens:
            raise _refuse_in(self, "it is empty")
        node = self.or_expr()
        extra = self.peek()
        if extra is not None:
            raise _refuse_in(self, f"{extra.value!r} at character {extra.position + 1} does not belong there "
                                     "(join comparisons with and / or)")
        return node

    def or_expr(self) -> Node:
        parts = [self.and_expr()]
        while (token := self.peek()) is not None and token.kind == "or":
            self.index += 1
            parts.append(self.and_expr())
        return parts[0] if len(parts) == 1 else Both(tuple(parts), "or")

    def and_expr(self) -> Node:
        parts = [self.not_expr()]
        while (token := self.peek()) is not None and token.kind == "and":
            self.index += 1
            parts.append(self.not_expr())
        return parts[0] if len(parts) == 1 else Both(tuple(parts), "and")

    def not_expr(self) -> Node:
        token = self.peek()
        if token is not None and token.kind == "not":
            self.index += 1
            return Not(self.not_expr())
        if token is not None and token.kind == "lparen":
            self.index += 1
            node = self.or_expr()
            self.take("rparen")
            return node
        return self.comparison()

    def literal(self) -> float | str:
        token = self.take("number", "text")
        return float(token.value) if token.kind == "number" else token.value

    def comparison(self) -> Node:
        column = self.take("name").value
        token = self.take("op", "in", "not")
        if token.kind in ("in", "not"):
            negate = token.kind == "not"
            if negate:
                self.take("in")
            self.take("lparen")
            values = [self.literal()]
            while (next_token := self.peek()) is not None and next_token.kind == "comma":
                self.index += 1
                values.append(self.literal())
            self.take("rparen")
            rules = tuple(Comparison(self.rule(column, "==", value)) for value in values)
            node: Node = rules[0] if len(rules) == 1 else Both(rules, "or")
            return Not(node) if negate else node
        op = "==" if token.value == "=" else token.value
        return Comparison(self.rule(column, op, self.literal()))

    def rule(self, column: str, op: str, value: float | str) -> HistoryRule:
        self.comparisons += 1
        if self.comparisons > MAX_COMPARISONS:
            raise _refuse_in(self, f"it has more than {MAX_COMPARISONS} comparisons")
        if isinstance(value, str) and op not in ("==", "!="):
            raise _refuse_in(self, f"text can only be compared with == or !=, not {op} ({column} {op} {value!r})")
        return HistoryRule(column=column, op=op, value=value)


def parse_segment(text: str | None, *, example: str | None = None) -> Segment | None:
    """The segment, or None for no segment (empty text); ``UserError`` when it cannot be read.
    ``example`` is shown in that error (``example_for`` makes one from the clients' columns)."""
    if text is None or not text.strip():
        return None
    if len(text) > MAX_LENGTH:
        raise _refuse(text[:40] + "…", f"it is {len(text)} characters long; at most {MAX_LENGTH}", example)
    normal = text.translate(_PHONE_PUNCTUATION).strip()
    return Segment(normal, _Parser(normal, example).parse())


def example_for(frame: pd.DataFrame, *, skip: Sequence[str] = ()) -> str | None:
    """A segment built from the clients' own columns, such as ``Contract == 'Month-to-month' and
    tenure < 12``: a text column with its most common value, and a numeric column below its
    median; None when the frame has neither."""
    parts: list[str] = []
    for column in frame.columns:
        name = str(column)
        if name in skip or frame[column].isna().all():
            continue
        values = frame[column].dropna()
        shown = name if _PLAIN_NAME.fullmatch(name) else f"`{name}`"
        if not any(" == " in part for part in parts) and not pd.api.types.is_numeric_dtype(values.dtype):
            common = values.astype(str).str.strip().value_counts()
            if len(common) >= 2 and "'" not in str(common.index[0]) and len(str(common.index[0])) <= 30:
                parts.insert(0, f"{shown} == '{common.index[0]}'")
        elif not any(" < " in part for part in parts) and pd.api.types.is_numeric_dtype(values.dtype) \
                and values.nunique() > 2:
            median = float(values.median())
            parts.append(f"{shown} < {int(median) if median.is_integer() else round(median, 2)}")
        if len(parts) == 2:
            break
    return " and ".join(parts) or None


def check(segment: Segment, frame: pd.DataFrame, *, what: str = "the clients") -> None:
    """Refuse a segment that cannot mean what the user wants on ``frame``'s columns."""
    columns = [str(column) for column in frame.columns]
    for rule in segment.comparisons():
        if rule.column not in columns:
            close = difflib.get_close_matches(rule.column, columns, n=3, cutoff=0.6)
            close += [c for c in columns if c.lower() == rule.column.lower() and c not in close]
            hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
            raise UserError(f"the segment names the column {rule.column!r}, which {what} do not have.{hint} "
                            f"Columns: {_listing(columns)}", segment=segment.text, column=rule.column)
        values = frame[rule.column]
        numeric = pd.api.types.is_numeric_dtype(values.dtype)
        if isinstance(rule.value, str) and numeric:
            raise UserError(f"{rule.column} holds numbers; compare it with a number, e.g. {rule.column} >= 12 "
                            f"(the segment has {rule})", segment=segment.text, column=rule.column)
        if isinstance(rule.value, float) and not numeric:
            parsed = pd.to_numeric(values.dropna().astype(str).str.strip(), errors="coerce")
            if len(parsed) and bool(parsed.isna().all()):
                examples = _top_values(values)
                raise UserError(f"{rule.column} holds text ({examples}); compare it with a quoted value, e.g. "
                                f"{rule.column} == {_first_value(values)!r} (the segment has {rule})",
                                segment=segment.text, column=rule.column)
        if isinstance(rule.value, str):
            present = set(values.dropna().astype(str).str.strip())
            if rule.value not in present:
                close = difflib.get_close_matches(rule.value, sorted(present), n=1, cutoff=0.5)
                close += [v for v in present if v.lower() == rule.value.lower() and v not in close]
                hint = f" Did you mean {close[0]!r}?" if close else ""
                raise UserError(f"no client has {rule.column} = {rule.value!r}.{hint} Values of {rule.column}: "
                                f"{_top_values(values)}", segment=segment.text, column=rule.column)


def _listing(names: Sequence[str], limit: int = 30) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def _top_values(values: pd.Series, limit: int = 8) -> str:
    counts = values.dropna().astype(str).str.strip().value_counts()
    shown = ", ".join(repr(value) for value in counts.index[:limit])
    return shown + (f" and {len(counts) - limit} more" if len(counts) > limit else "")


def _first_value(values: pd.Series) -> str:
    counts = values.dropna().astype(str).str.strip().value_counts()
    return str(counts.index[0]) if len(counts) else "value"


__all__ = ["EXAMPLE", "MAX_LENGTH", "Segment", "check", "example_for", "parse_segment"]
