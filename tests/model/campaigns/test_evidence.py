"""Settings learn from evidence: the card's ROI with a campaign's measured offer success rate."""

from __future__ import annotations

import pytest

from model.business import campaign_roi, offer_source_text, with_measured_offer

MEASURED = {"rate": 0.34, "low": 0.24, "high": 0.42, "campaign_id": 3, "campaign": "spring"}


def roi() -> dict:
    return campaign_roi(true_positives=100, flagged=300, rows=1000, contact_cost=5.0, retained_value=300.0,
                        offer_success_rate=0.25)


def test_the_measured_rate_replaces_the_setting_and_says_where_it_comes_from():
    updated = with_measured_offer(roi(), MEASURED)

    assert updated["benefit"] == pytest.approx(100 * 0.34 * 300) and updated["cost"] == 1500
    assert updated["roi"] == pytest.approx((100 * 0.34 * 300 - 1500) / 1500)
    assert updated["assumptions"]["offer_success_rate"] == 0.34
    assert updated["assumptions"]["offer_success_source"] == {
        "kind": "measured", "campaign_id": 3, "campaign": "spring", "low": 0.24, "high": 0.42, "setting": 0.25}
    assert offer_source_text(updated["assumptions"]) == (
        " (measured in campaign 3 \u201cspring\u201d, 95 % interval 24–42 %; CHURNGUARD_OFFER_SUCCESS_RATE assumes "
        "25 %)")


def test_without_a_measurement_the_setting_stays_and_nothing_is_claimed():
    same = with_measured_offer(roi(), None)

    assert same["benefit"] == roi()["benefit"]
    assert same["assumptions"]["offer_success_source"] == {"kind": "setting"}
    assert offer_source_text(same["assumptions"]) == ""


def test_a_negative_measured_rate_counts_as_no_benefit():
    updated = with_measured_offer(roi(), {**MEASURED, "rate": -0.1})

    assert updated["benefit"] == 0 and updated["roi"] == -1.0
