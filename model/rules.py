"""Business rules around a score: who has too little history to be scored, and the risk bands.

The "insufficient history" rule is a setting (``CHURNGUARD_NO_HISTORY_RULE``) because each
CRM says "new client" differently: Telco has ``tenure`` in months, another export may have
``months_active`` or ``Customer_Age``.  It is a tiny comparison language (column, operator,
literal), parsed here rather than evaluated with ``eval`` or ``DataFrame.query`` so that a
setting can never run code.

Risk bands are relative to the model's threshold because the threshold moves with every
model (it is chosen to keep recall on churners at the target), while a fixed cut-off such
as 0.5 would flag nobody or everybody depending on the version.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from storage.errors import UserError

RULE_SETTING = "CHURNGUARD_NO_HISTORY_RULE"
DISABLED_WORDS = frozenset({"", "none", "off", "disabled", "false"})

_OPERATORS: dict[str, Callable[[Any, Any], Any]] = {
    "<=": operator.le,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    ">": operator.gt,
}

_RULE = re.compile(
    r"""^\s*
    (?: `(?P<quoted>[^`]+)` | (?P<name>[A-Za-z_][A-Za-z0-9_.]*) )   # column, `back quoted` if it has spaces
    \s*(?P<op><=|>=|==|!=|<|>|=)\s*
    (?: (?P<number>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)
      | '(?P<single>[^']*)' | "(?P<double>[^"]*)" )
    \s*$""",
    re.VERBOSE,
)


@dataclass(frozen=True)
class HistoryRule:
    """``column op value``: a client matching it has too little history to be scored.

    A record without the column, or with an empty or non-numeric value where a number is
    compared, does not match: the rule only withholds a score when it is sure.
    """

    column: str
    op: str
    value: float | str

    def __str__(self) -> str:
        column = self.column if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.]*", self.column) else f"`{self.column}`"
        value = _plain_number(self.value) if isinstance(self.value, float) else repr(self.value)
        return f"{column} {self.op} {value}"

    def applies_to(self, columns: object) -> bool:
        """False when the dataset has no such column (the rule is then switched off for it)."""
        return self.column in columns  # type: ignore[operator]

    def matches(self, record: Mapping[str, Any]) -> bool:
        if self.column not in record:
            return False
        given = record[self.column]
        if isinstance(self.value, str):
            if given is None or (isinstance(given, float) and math.isnan(given)):
                return False
            return bool(_OPERATORS[self.op](str(given).strip(), self.value))
        number = _as_number(given)
        if number is None:
            return False
        return bool(_OPERATORS[self.op](number, self.value))

    def mask(self, frame: pd.DataFrame) -> np.ndarray:
        """The vectorised ``matches`` over a frame: a boolean array, one entry per row."""
        if self.column not in frame.columns:
            return np.zeros(len(frame), dtype=bool)
        column = frame[self.column]
        if isinstance(self.value, str):
            text = column.astype("string").str.strip()
            result = _OPERATORS[self.op](text, self.value).fillna(False)
            return np.asarray(result.to_numpy(dtype=bool, na_value=False), dtype=bool)
        numbers = pd.to_numeric(column, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        with np.errstate(invalid="ignore"):
            hit = _OPERATORS[self.op](numbers, self.value)
        return np.asarray(hit & ~np.isnan(numbers), dtype=bool)


def parse_history_rule(text: str | None) -> HistoryRule | None:
    """The rule from its setting text; ``None`` when the user switched it off ("none").

    Raises a ``UserError`` naming the environment variable for anything else that is not
    ``column op literal``.
    """
    if text is None or text.strip().lower() in DISABLED_WORDS:
        return None
    found = _RULE.match(text)
    if found is None:
        raise UserError(
            f"invalid setting {RULE_SETTING}: {text!r} is not a rule of the form `column operator value` "
            "(operators < <= == != >= >, value a number or a quoted string; `back-quote` a column name "
            "with spaces), for example \"tenure <= 0\"; use \"none\" to switch the rule off",
            setting=RULE_SETTING,
            value=text,
        )
    column = found.group("quoted") or found.group("name")
    op = "==" if found.group("op") == "=" else found.group("op")
    value: float | str
    if found.group("number") is not None:
        value = float(found.group("number"))
    else:
        value = found.group("single") if found.group("single") is not None else found.group("double")
        if op not in ("==", "!="):
            raise UserError(
                f"invalid setting {RULE_SETTING}: {text!r} compares text with {op}; "
                "text values can only be compared with == or !=",
                setting=RULE_SETTING,
                value=text,
            )
    return HistoryRule(column=column.strip(), op=op, value=value)


def _as_number(value: object) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool | int | float | np.integer | np.floating):
        number = float(value)
    else:
        try:
            number = float(str(value).strip())
        except ValueError:
            return None
    return None if math.isnan(number) else number


def _plain_number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(value)


# --------------------------------------------------------------------------------------------
# Risk bands
# --------------------------------------------------------------------------------------------

HIGH, MEDIUM, LOW = "high", "medium", "low"


def high_cutoff(threshold: float) -> float:
    """Halfway from the threshold to 1: above it a client is far past the flagging point.

    With calibrated probabilities and a recall-driven threshold around 0.1-0.3, this puts
    "high" where churn is more likely than not, which a retention manager can act on first.
    """
    return (1.0 + threshold) / 2.0


def risk_band(probability: float, threshold: float) -> str:
    """high: p >= (1 + threshold) / 2; medium: threshold <= p < that (flagged); low: p < threshold."""
    if probability >= high_cutoff(threshold):
        return HIGH
    if probability >= threshold:
        return MEDIUM
    return LOW


def risk_bands(probabilities: np.ndarray, threshold: float) -> np.ndarray:
    """``risk_band`` over an array, for batch scoring."""
    return np.where(
        probabilities >= high_cutoff(threshold), HIGH, np.where(probabilities >= threshold, MEDIUM, LOW)
    )


__all__ = [
    "HIGH",
    "LOW",
    "MEDIUM",
    "RULE_SETTING",
    "HistoryRule",
    "high_cutoff",
    "parse_history_rule",
    "risk_band",
    "risk_bands",
]
