"""The report's figures from members' outcomes: intention-to-treat, intervals, pending."""

from __future__ import annotations

import pytest

from model.campaigns.analysis import Economics, MemberOutcome, analyse
from model.campaigns.stats import newcombe_difference

MONEY = Economics(contact_cost=5.0, retained_value=300.0, offer_success_rate=0.25)


def members(treated: int, treated_churned: int, held: int, held_churned: int, *, band: str = "high",
            pending: int = 0, contacted: int | None = None) -> list[MemberOutcome]:
    rows = []
    for i in range(treated):
        outcome = None if i < pending else int(i - pending < treated_churned)
        reached = contacted is None or i < contacted
        rows.append(MemberOutcome(f"t{band}{i}", "treatment", band, outcome, reached))
    rows += [MemberOutcome(f"h{band}{i}", "holdout", band, int(i < held_churned)) for i in range(held)]
    return rows


def test_uplift_is_the_holdout_rate_minus_the_treatment_rate_with_newcombes_interval():
    figures = analyse(members(800, 160, 200, 60), MONEY, contact_log=True)

    expected = newcombe_difference(60, 200, 160, 800)
    assert figures["treatment"] == {**figures["treatment"], "clients": 800, "churned": 160, "rate": 0.2}
    assert figures["holdout"]["rate"] == 0.3
    assert figures["uplift"]["estimate"] == pytest.approx(0.1)
    assert figures["uplift"]["low"] == pytest.approx(expected.low, abs=1e-6)
    assert figures["uplift"]["high"] == pytest.approx(expected.high, abs=1e-6)
    assert figures["significant"] is True and figures["pending"] == 0 and figures["complete"]
    assert figures["saved"]["estimate"] == pytest.approx(80.0)
    assert figures["saved"]["low"] == pytest.approx(800 * expected.low, abs=0.01)


def test_roi_uses_the_logged_contacts_and_the_settings():
    figures = analyse(members(800, 160, 200, 60, contacted=400), MONEY, contact_log=True)

    assert figures["contacts"] == {"contacted": 400, "treated": 800, "rate": 0.5, "source": "contact log"}
    assert figures["cost"] == 2000.0
    assert figures["benefit"]["estimate"] == pytest.approx(80 * 300.0)
    assert figures["roi"]["estimate"] == pytest.approx((24000 - 2000) / 2000)
    # Intention-to-treat: the 400 never reached still count as treated, and the measured
    # success rate per *contacted* would-be churner is the ITT effect over the contact rate.
    itt = 1 - 0.2 / 0.3
    assert figures["offer_success_rate"]["intention_to_treat"]["estimate"] == pytest.approx(itt, abs=1e-6)
    assert figures["offer_success_rate"]["measured"]["estimate"] == pytest.approx(min(itt / 0.5, 1.0), abs=1e-6)
    assert figures["offer_success_rate"]["setting"] == 0.25


def test_without_a_contact_log_every_treated_client_counts_as_contacted_and_the_report_says_so():
    figures = analyse(members(800, 160, 200, 60, contacted=0), MONEY, contact_log=False)

    assert figures["contacts"]["contacted"] == 800 and figures["contacts"]["rate"] == 1.0
    assert figures["contacts"]["source"].startswith("assumed")
    assert figures["cost"] == 4000.0


def test_no_effect_is_not_significant():
    figures = analyse(members(800, 240, 200, 60), MONEY, contact_log=False)

    assert figures["uplift"]["estimate"] == pytest.approx(0.0)
    assert figures["uplift"]["low"] < 0 < figures["uplift"]["high"]
    assert figures["significant"] is False
    assert figures["roi"]["estimate"] == pytest.approx(-1.0)


def test_pending_outcomes_are_counted_and_left_out_of_the_rates():
    figures = analyse(members(800, 100, 200, 60, pending=300), MONEY, contact_log=False)

    assert figures["pending"] == 300 and not figures["complete"]
    assert figures["treatment"]["known"] == 500 and figures["treatment"]["rate"] == 0.2
    assert figures["saved"]["estimate"] == pytest.approx(0.1 * 500)


def test_before_any_outcome_the_figures_are_empty_not_invented():
    rows = [MemberOutcome(f"c{i}", "treatment" if i < 8 else "holdout", "high", None) for i in range(10)]
    figures = analyse(rows, MONEY, contact_log=False)

    assert figures["known"] == 0 and figures["pending"] == 10
    assert figures["uplift"]["estimate"] is None and figures["significant"] is False
    assert figures["roi"] == {"estimate": None, "low": None, "high": None}


def test_every_risk_band_gets_the_same_figures():
    rows = members(400, 160, 100, 50, band="high") + members(400, 40, 100, 12, band="medium")
    figures = analyse(rows, MONEY, contact_log=False)

    assert list(figures["bands"]) == ["high", "medium"]
    high, medium = figures["bands"]["high"], figures["bands"]["medium"]
    assert high["treatment"]["rate"] == 0.4 and high["holdout"]["rate"] == 0.5
    assert medium["uplift"]["estimate"] == pytest.approx(0.12 - 0.10)
    assert "bands" not in high
    assert figures["treatment"]["clients"] == 800


def test_no_churn_in_the_holdout_leaves_the_offer_success_rate_unmeasured():
    figures = analyse(members(100, 0, 50, 0), MONEY, contact_log=False)

    assert figures["offer_success_rate"]["measured"] is None
    assert "no would-be churners" in figures["offer_success_rate"]["note"]
