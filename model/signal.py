"""How strong the churn signal is, said in the retention team's terms.

A model can pass every gate and still be of little use: when reaching the recall promise
means contacting most clients, the "model" is close to calling everyone.  That is a finding
to report plainly, with its cost, not something an ACCEPTED verdict may hide.  The verdict
reads figures measured on clients no model of the run trained on (the test period, out of
time when the data have dates):

* **weak** — ROC-AUC below ``WEAK_AUC``, or the threshold flags at least ``WEAK_FLAGGED`` of the
  clients, or the flagged clients churn less than ``WEAK_LIFT`` times as often as all clients;
* **moderate** — ROC-AUC below ``MODERATE_AUC`` or at least ``MODERATE_FLAGGED`` flagged;
* **strong** otherwise.

A weak model may still serve (it beats nothing), but the card, the report, ``/model`` and the
training reply say so, with what it costs.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

WEAK_AUC = 0.65
MODERATE_AUC = 0.75
WEAK_FLAGGED = 0.50
MODERATE_FLAGGED = 0.30
WEAK_LIFT = 1.3
STRONG, MODERATE, WEAK = "strong", "moderate", "weak"


@dataclass(frozen=True)
class Signal:
    strength: str
    message: str
    roc_auc: float | None
    flagged_share: float | None
    lift: float | None
    recall: float | None
    roi: float | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def weak(self) -> bool:
        return self.strength == WEAK


def assess_signal(metrics: dict[str, Any], *, roi: float | None, recall_target: float, where: str) -> Signal:
    """The verdict on one set of test metrics (``model.evaluation.classification_metrics``)."""
    auc = _number(metrics.get("roc_auc"))
    flagged = _number(metrics.get("flagged_share"))
    precision = _number(metrics.get("precision"))
    recall = _number(metrics.get("recall"))
    rows, positives = metrics.get("rows") or 0, metrics.get("positives")
    if positives is None:
        positives = (metrics.get("tp") or 0) + (metrics.get("fn") or 0)
    base_rate = positives / rows if rows else None
    lift = precision / base_rate if precision is not None and base_rate else None
    weak = ((auc is not None and auc < WEAK_AUC) or (flagged is not None and flagged >= WEAK_FLAGGED)
            or (lift is not None and lift < WEAK_LIFT))
    moderate = (auc is not None and auc < MODERATE_AUC) or (flagged is not None and flagged >= MODERATE_FLAGGED)
    strength = WEAK if weak else MODERATE if moderate else STRONG
    caught = f"{recall:.0%}" if recall is not None else f"{recall_target:.0%}"
    cost = (f"to catch {caught} of leavers you must contact {flagged:.0%} of clients"
            if flagged is not None else "the share of clients to contact is unknown")
    details = [cost]
    if lift is not None:
        details.append(f"flagged clients leave {lift:.1f}× as often as the average client")
    if roi is not None:
        details.append(f"campaign ROI at this threshold {roi:+.1f}")
    if auc is not None:
        details.append(f"ROC-AUC {auc:.2f} {where}")
    if strength == WEAK:
        message = ("weak signal: " + "; ".join(details) + ". It may still serve, since it beats contacting "
                   "everyone, but do not read it as a strong model.")
    elif strength == MODERATE:
        message = "moderate signal: " + "; ".join(details) + "."
    else:
        message = "strong signal: " + "; ".join(details) + "."
    return Signal(strength, message, auc, flagged, lift, recall, roi)


def _number(value: Any) -> float | None:
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError):
        return None


__all__ = ["MODERATE", "STRONG", "WEAK", "Signal", "assess_signal"]
