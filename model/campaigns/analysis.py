"""What a campaign achieved, from its members' outcomes: intention-to-treat, with intervals.

Intention-to-treat: every treated client counts in the treatment group whether or not the
team reached them, because whom the team manages to reach is not random (the easy-to-reach
are often the loyal ones).  The comparison of the two randomised groups is then unbiased,
and the contact rate is reported beside it.

The figures (each with a 95 % interval where it is an estimate):

* churn rate of each group, among members whose outcome is known (Wilson);
* **uplift** = holdout churn rate − treatment churn rate: the drop in churn the campaign
  caused, in points (Newcombe's hybrid score interval); positive means fewer clients left;
* **significant** when the uplift interval excludes 0;
* **saved** = uplift × treated clients with a known outcome (the interval scales with it);
* **cost** = contacted clients × contact cost (the contact log; without any logged contact,
  every treated client is assumed contacted, and the report says so); **benefit** = saved ×
  retained value; **ROI** = (benefit − cost) / cost, its interval from the saved interval;
* **measured offer success rate** = saved / treated would-be churners (treated × holdout
  rate) = 1 − treated rate / holdout rate, divided by the contact rate so that it means what
  ``CHURNGUARD_OFFER_SUCCESS_RATE`` means ("share of *contacted* churners the offer keeps");
  its interval from the risk ratio's (Katz);
* the same per risk band, and how many outcomes are still pending.

Pure: the members and their outcomes come in as values (model/campaigns/service.py reads them).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from model.campaigns.assignment import HOLDOUT, TREATMENT
from model.campaigns.stats import Interval, newcombe_difference, risk_ratio, wilson

UPLIFT_DEFINITION = "holdout churn rate - treatment churn rate (positive: fewer clients left in the treatment group)"
BANDS = ("high", "medium", "low")


@dataclass(frozen=True)
class MemberOutcome:
    """One member: its arm and band, and what happened (1 left, 0 stayed, None not known yet)."""

    client_id: str
    arm: str
    band: str
    outcome: int | None
    contacted: bool = False


@dataclass(frozen=True)
class Economics:
    """The retention team's numbers (settings): what a contact costs, what a kept client is
    worth, and the offer success rate they assume."""

    contact_cost: float
    retained_value: float
    offer_success_rate: float


def _round(value: float | None, digits: int = 6) -> float | None:
    return None if value is None else round(float(value), digits)


def _interval(interval: Interval | None, digits: int = 6) -> dict[str, float | None]:
    if interval is None:
        return {"estimate": None, "low": None, "high": None}
    return {**interval.as_dict(digits)}


def _group(members: Sequence[MemberOutcome]) -> dict[str, Any]:
    known = [m for m in members if m.outcome is not None]
    churned = sum(1 for m in known if m.outcome == 1)
    rate = wilson(churned, len(known)) if known else None
    return {
        "clients": len(members),
        "known": len(known),
        "pending": len(members) - len(known),
        "churned": churned,
        "stayed": len(known) - churned,
        "rate": None if rate is None else _round(rate.estimate),
        "rate_interval": None if rate is None else {"low": _round(rate.low), "high": _round(rate.high)},
        "contacted": sum(1 for m in members if m.contacted),
    }


def analyse(members: Iterable[MemberOutcome], economics: Economics, *, contact_log: bool,
            bands: bool = True) -> dict[str, Any]:
    """The campaign's figures (see the module docstring) as plain JSON values.

    ``contact_log`` says whether any contact was logged for the campaign: without one, every
    treated client is taken as contacted (the plan), and ``contacts.source`` says so.
    """
    members = list(members)
    treated = [m for m in members if m.arm == TREATMENT]
    held = [m for m in members if m.arm == HOLDOUT]
    treatment, holdout = _group(treated), _group(held)
    if not contact_log:
        treatment["contacted"] = len(treated)
    contacted = int(treatment["contacted"])
    contact_rate = contacted / len(treated) if treated else None

    uplift: Interval | None = None
    if treatment["known"] and holdout["known"]:
        # holdout rate - treatment rate: Newcombe's interval of (holdout - treatment).
        uplift = newcombe_difference(holdout["churned"], holdout["known"], treatment["churned"], treatment["known"])
    saved = None if uplift is None else uplift.scaled(treatment["known"])
    cost = contacted * economics.contact_cost
    benefit = None if saved is None else saved.scaled(economics.retained_value)
    roi = None
    if benefit is not None and cost > 0:
        roi = benefit.scaled(1 / cost, -1.0)

    offer: dict[str, Any] = {"setting": economics.offer_success_rate, "measured": None, "intention_to_treat": None,
                             "note": None}
    if uplift is not None and holdout["churned"] > 0 and contact_rate:
        ratio = risk_ratio(treatment["churned"], treatment["known"], holdout["churned"], holdout["known"])
        if ratio is not None:
            itt = Interval(1 - ratio.estimate, 1 - ratio.high, 1 - ratio.low)
            raw = itt.scaled(1 / contact_rate)
            per_contact = Interval(*(min(max(value, -1.0), 1.0) for value in (raw.estimate, raw.low, raw.high)))
            offer["intention_to_treat"] = _interval(itt)
            offer["measured"] = _interval(per_contact)
            if raw.estimate > 1:
                offer["note"] = ("the treatment group kept more would-be churners than the logged contacts can "
                                 "explain: the contact log is probably incomplete")
            offer["would_be_churners"] = _round(treatment["known"] * holdout["churned"] / holdout["known"], 2)
    elif uplift is not None and holdout["churned"] == 0:
        offer["note"] = "nobody in the holdout left, so there were no would-be churners to save"

    significant = bool(uplift is not None and uplift.excludes_zero)
    result: dict[str, Any] = {
        "treatment": treatment,
        "holdout": holdout,
        "uplift": {**_interval(uplift), "definition": UPLIFT_DEFINITION},
        "significant": significant,
        "direction": None if uplift is None else ("fewer left with contact" if uplift.estimate > 0 else
                                                  "more left with contact" if uplift.estimate < 0 else "no change"),
        "saved": _interval(saved, 2),
        "cost": round(cost, 2),
        "benefit": _interval(benefit, 2),
        "net": None if benefit is None else _interval(benefit.scaled(1.0, -cost), 2),
        "roi": _interval(roi, 4),
        "contacts": {"contacted": contacted, "treated": len(treated),
                     "rate": _round(contact_rate, 4),
                     "source": "contact log" if contact_log else "assumed: no contact logged, every treated client "
                                                                 "counted as contacted"},
        "offer_success_rate": offer,
        "pending": treatment["pending"] + holdout["pending"],
        "known": treatment["known"] + holdout["known"],
        "complete": treatment["pending"] + holdout["pending"] == 0,
        "economics": {"contact_cost": economics.contact_cost, "retained_value": economics.retained_value},
    }
    if bands:
        result["bands"] = {
            band: analyse([m for m in members if m.band == band], economics, contact_log=contact_log, bands=False)
            for band in BANDS if any(m.band == band for m in members)
        }
    return result


__all__ = ["BANDS", "UPLIFT_DEFINITION", "Economics", "MemberOutcome", "analyse"]
