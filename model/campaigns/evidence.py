"""Settings that learn from evidence: the offer success rate a campaign actually measured.

``CHURNGUARD_OFFER_SUCCESS_RATE`` is an assumption ("a contact keeps a quarter of the
churners it reaches").  Once a campaign with a control group has all its outcomes, its
report measures that rate; the model card's business-goal ROI then uses the measured
rate and says which campaign it comes from (model/business.py ``with_measured_offer``).
"""

from __future__ import annotations

import logging
from typing import Any

from model.campaigns.analysis import Economics
from model.campaigns.service import campaign_report
from storage.campaigns import list_campaigns
from storage.db import Database

log = logging.getLogger(__name__)

SEARCHED = 20  # campaigns looked at, newest first


def measured_offer_success(db: Database, economics: Economics) -> dict[str, Any] | None:
    """The newest complete campaign's measured offer success rate (per contacted would-be
    churner) with its interval, or None when no campaign has measured one."""
    for campaign in list_campaigns(db, SEARCHED):
        assert campaign.id is not None
        figures = campaign_report(db, campaign.id, economics=economics, timeline=False).figures
        measured = figures["offer_success_rate"]["measured"]
        if figures["complete"] and measured is not None:
            return {"rate": measured["estimate"], "low": measured["low"], "high": measured["high"],
                    "campaign_id": campaign.id, "campaign": campaign.name, "setting": economics.offer_success_rate,
                    "clients": figures["known"], "significant": figures["significant"]}
    return None


def measured_offer_or_none(db: Database, economics: Economics) -> dict[str, Any] | None:
    """``measured_offer_success``, but never an error: training must not fail because a
    campaign's outcomes cannot be read; the setting is used then."""
    try:
        return measured_offer_success(db, economics)
    except Exception:
        log.warning("could not read the campaigns' measured offer success rate; using the setting", exc_info=True)
        return None


def use_measured_offer(db: Database, config: Any, report: dict[str, Any]) -> None:
    """Replace ``report["roi"]`` (a training report) with the ROI at the measured offer success
    rate when a campaign measured one, saying so; ``config`` is the ``TrainConfig`` (contact
    cost, retained value, the assumed rate).  Called once, right after training."""
    from model.business import with_measured_offer

    economics = Economics(float(config.contact_cost), float(config.retained_value), float(config.offer_success_rate))
    report["roi"] = with_measured_offer(report["roi"], measured_offer_or_none(db, economics))


__all__ = ["measured_offer_or_none", "measured_offer_success", "use_measured_offer"]
