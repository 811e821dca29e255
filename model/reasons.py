"""Plain-words reasons for a score, and the sentences shown for clients we cannot score.

A retention manager reads "Contract = Month-to-month raises risk", not a SHAP value, so the
numbers are formatted the way a person writes them (60, 70.35, 12,500) and the direction is
a verb.  The sizes of the effects stay in the JSON for whoever wants them.
"""

from __future__ import annotations

import math
from typing import Any, Protocol


class ContributionLike(Protocol):
    """What ``ChurnModel.explain_record`` returns per feature (pred_contrib, log-odds)."""

    @property
    def feature(self) -> str: ...

    @property
    def value(self) -> Any: ...

    @property
    def effect(self) -> float: ...


def format_value(value: object) -> str:
    """A value as a person would write it: 60 not 60.0, 70.35 not 70.3500001, 'missing' for NaN."""
    if value is None:
        return "missing"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}" if abs(value) >= 10_000 else str(value)
    if isinstance(value, float) or (hasattr(value, "__float__") and not isinstance(value, str)):
        try:
            number = float(value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            return str(value)
        if math.isnan(number):
            return "missing"
        if math.isinf(number):
            return "infinite" if number > 0 else "minus infinite"
        if number.is_integer() and abs(number) < 1e15:
            return format_value(int(number))
        rounded = f"{number:,.2f}" if abs(number) >= 10_000 else f"{number:.2f}"
        if abs(number) < 0.01:
            rounded = f"{number:.2g}"
        return rounded.rstrip("0").rstrip(".") if "." in rounded and "e" not in rounded else rounded
    text = str(value).strip()
    return text if text else "empty"


def direction(effect: float) -> str:
    if effect > 0:
        return "raises risk"
    if effect < 0:
        return "lowers risk"
    return "does not change risk"


def reason_text(contribution: ContributionLike) -> str:
    """'Contract = Month-to-month raises risk'."""
    return f"{contribution.feature} = {format_value(contribution.value)} {direction(float(contribution.effect))}"


def reason_dict(contribution: ContributionLike) -> dict[str, Any]:
    """The JSON form: the raw value (made JSON-safe) and the effect in log-odds."""
    value = contribution.value
    if hasattr(value, "item") and not isinstance(value, str):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        value = None
    return {
        "feature": contribution.feature,
        "value": value,
        "effect": round(float(contribution.effect), 6),
        "text": reason_text(contribution),
    }


# Messages for the statuses that carry no score.  Kept here so the CLI and the bot say the
# same thing.

def unknown_client_text(client_id: str) -> str:
    return (
        f"No client with id {client_id!r} is stored. Check the id, or ingest the latest CRM export "
        "(churnguard ingest FILE)."
    )


def insufficient_history_text(client_id: str, rule: str) -> str:
    return (
        f"Client {client_id} has too little history to be scored (rule: {rule}). "
        "New clients are scored once their record shows some history."
    )


def malformed_id_text(problem: str) -> str:
    return f"malformed client id: {problem}"


def no_model_text() -> str:
    return "no model yet: run churnguard train"


__all__ = [
    "ContributionLike",
    "direction",
    "format_value",
    "insufficient_history_text",
    "malformed_id_text",
    "no_model_text",
    "reason_dict",
    "reason_text",
    "unknown_client_text",
]
