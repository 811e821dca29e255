"""What contacting the flagged clients is worth, in the retention team's own numbers.

The campaign contacts every client the model flags.  Each contact costs ``contact_cost``; a
contacted client who was really about to leave stays with probability ``offer_success_rate``
and is then worth ``retained_value``.  On the test split:

    benefit = true positives × offer_success_rate × retained_value
    cost    = flagged clients × contact_cost
    ROI     = (benefit − cost) / cost

Both benefit and cost are reported (an ROI alone hides the scale), plus the same numbers per
1,000 scored clients so that a manager can scale them to the customer base.  Clients who would
have stayed anyway are assumed to cost only the contact (no discount given away).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def campaign_roi(*, true_positives: int, flagged: int, rows: int, contact_cost: float, retained_value: float,
                 offer_success_rate: float) -> dict[str, Any]:
    """ROI of contacting every flagged client; ``roi`` is None when nothing is spent."""
    if not 0 <= true_positives <= flagged <= rows:
        raise ValueError(f"inconsistent counts: tp={true_positives}, flagged={flagged}, rows={rows}")
    benefit = true_positives * offer_success_rate * retained_value
    cost = flagged * contact_cost
    net = benefit - cost
    scale = 1000.0 / rows if rows else 0.0
    return {
        "benefit": float(benefit),
        "cost": float(cost),
        "net": float(net),
        "roi": float(net / cost) if cost > 0 else None,
        "flagged": int(flagged),
        "tp": int(true_positives),
        "rows": int(rows),
        "per_1000_clients": {
            "flagged": round(flagged * scale, 1),
            "benefit": round(benefit * scale, 2),
            "cost": round(cost * scale, 2),
            "net": round(net * scale, 2),
        },
        "assumptions": {
            "contact_cost": float(contact_cost),
            "retained_value": float(retained_value),
            "offer_success_rate": float(offer_success_rate),
            "formula": "benefit = tp * offer_success_rate * retained_value; cost = flagged * contact_cost; "
            "roi = (benefit - cost) / cost",
            "evaluated_on": "test split",
        },
    }


def with_measured_offer(roi: Mapping[str, Any], measured: Mapping[str, Any] | None) -> dict[str, Any]:
    """``roi`` recomputed with the offer success rate a campaign measured (model/campaigns/
    evidence.py), and saying so in ``assumptions.offer_success_source``; unchanged (but
    marked as the setting's) when nothing was measured."""
    result = dict(roi)
    assumptions = dict(result.get("assumptions") or {})
    if measured is None:
        assumptions["offer_success_source"] = {"kind": "setting"}
        result["assumptions"] = assumptions
        return result
    recomputed = campaign_roi(true_positives=int(roi["tp"]), flagged=int(roi["flagged"]), rows=int(roi["rows"]),
                              contact_cost=float(assumptions["contact_cost"]),
                              retained_value=float(assumptions["retained_value"]),
                              offer_success_rate=max(float(measured["rate"]), 0.0))
    recomputed["assumptions"] = {
        **assumptions, **recomputed["assumptions"],
        "offer_success_source": {"kind": "measured", "campaign_id": measured["campaign_id"],
                                 "campaign": measured.get("campaign"), "low": measured.get("low"),
                                 "high": measured.get("high"), "setting": assumptions.get("offer_success_rate")},
    }
    return recomputed


def offer_source_text(assumptions: Mapping[str, Any]) -> str:
    """" (measured in campaign 3 ...)" when the rate was measured; "" for the setting."""
    source = assumptions.get("offer_success_source") or {}
    if source.get("kind") != "measured":
        return ""
    interval = ""
    if source.get("low") is not None and source.get("high") is not None:
        interval = f", 95 % interval {100 * float(source['low']):.0f}–{100 * float(source['high']):.0f} %"
    setting = source.get("setting")
    told = "" if setting is None else f"; CHURNGUARD_OFFER_SUCCESS_RATE assumes {100 * float(setting):.0f} %"
    return f" (measured in campaign {source.get('campaign_id')} \u201c{source.get('campaign')}\u201d{interval}{told})"


__all__ = ["campaign_roi", "offer_source_text", "with_measured_offer"]
