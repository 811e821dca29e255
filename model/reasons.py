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


def direction(effect: float, *, plural: bool = False) -> str:
    if effect > 0:
        return "raise risk" if plural else "raises risk"
    if effect < 0:
        return "lower risk" if plural else "lowers risk"
    return "do not change risk" if plural else "does not change risk"


def reason_text(contribution: ContributionLike) -> str:
    """'Contract = Month-to-month raises risk'; with a plain-words description of an event
    feature, '2 support tickets in the last 30 days raise risk'."""
    effect = float(contribution.effect)
    description = getattr(contribution, "description", None)
    if description:
        return f"{description} {direction(effect, plural=_plural_subject(description))}"
    return f"{contribution.feature} = {format_value(contribution.value)} {direction(effect)}"


def _plural_subject(text: str) -> bool:
    """Whether a description's subject is plural ("2 tickets ...", "no open tickets",
    "purchases up 40% ..."), for the verb that follows it."""
    first = text.split(" ", 1)[0]
    if first == "no":
        return True
    try:
        return float(first.replace(",", "")) != 1
    except ValueError:
        return first.endswith("s") and not first.endswith("ss")


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
    """Channel-neutral; its advice (``model.advice.INGEST_LATEST``) is appended per channel."""
    return f"No client with id {client_id!r} is stored. Check the id"


def insufficient_history_text(client_id: str, rule: str) -> str:
    return (
        f"Client {client_id} has too little history to be scored (rule: {rule}). "
        "New clients are scored once their record shows some history."
    )


def no_event_history_text(client_id: str, problem: str, as_of: str) -> str:
    return (
        f"Client {client_id} has no history to judge at {as_of}: {problem}. "
        "Clients are scored once they have some history."
    )


def not_active_text(client_id: str, as_of: str) -> str:
    return (
        f"Client {client_id} is not an active client at {as_of}: no subscription covers that date (already "
        "left, or not started yet). Only active clients are scored."
    )


def no_record_yet_text(client_id: str, as_of: str) -> str:
    return f"Client {client_id} has no record dated {as_of} or earlier; its first record is later."


def departed_text(client_id: str, when: str) -> str:
    """``when``: "on 2024-04-12", or "within 30 days after 2024-03-31" when only a label says so."""
    return (f"Client {client_id} has already left ({when}), so there is no one to contact: only active "
            "clients are scored.")


def malformed_id_text(problem: str) -> str:
    return f"malformed client id: {problem}"


def no_model_text() -> str:
    """Channel-neutral; its advice (``model.advice.TRAIN``) is appended per channel."""
    return "no model yet"


__all__ = [
    "ContributionLike",
    "departed_text",
    "direction",
    "format_value",
    "insufficient_history_text",
    "malformed_id_text",
    "no_event_history_text",
    "no_model_text",
    "no_record_yet_text",
    "not_active_text",
    "reason_dict",
    "reason_text",
    "unknown_client_text",
]
