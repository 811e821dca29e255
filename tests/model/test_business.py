"""Campaign ROI arithmetic."""

import pytest

from model.business import campaign_roi


def test_roi_of_contacting_flagged_clients():
    roi = campaign_roi(true_positives=100, flagged=400, rows=1000, contact_cost=5, retained_value=300,
                       offer_success_rate=0.25)

    assert roi["benefit"] == 100 * 0.25 * 300 == 7500
    assert roi["cost"] == 400 * 5 == 2000
    assert roi["net"] == 5500
    assert roi["roi"] == pytest.approx(5500 / 2000)
    assert roi["per_1000_clients"] == {"flagged": 400.0, "benefit": 7500.0, "cost": 2000.0, "net": 5500.0}
    assert roi["assumptions"]["offer_success_rate"] == 0.25


def test_per_thousand_scales_with_rows():
    roi = campaign_roi(true_positives=10, flagged=50, rows=200, contact_cost=2, retained_value=100,
                       offer_success_rate=0.5)

    assert roi["per_1000_clients"]["flagged"] == 250.0
    assert roi["per_1000_clients"]["benefit"] == pytest.approx(500 * 5)


def test_negative_roi_when_contacts_cost_more_than_they_save():
    roi = campaign_roi(true_positives=10, flagged=1000, rows=1000, contact_cost=10, retained_value=100,
                       offer_success_rate=0.1)

    assert roi["roi"] == pytest.approx((100 - 10000) / 10000)


def test_free_contacts_have_no_ratio():
    roi = campaign_roi(true_positives=5, flagged=10, rows=100, contact_cost=0, retained_value=100,
                       offer_success_rate=0.5)

    assert roi["roi"] is None and roi["benefit"] == 250


@pytest.mark.parametrize("tp,flagged,rows", [(5, 4, 10), (-1, 3, 10), (1, 11, 10)])
def test_inconsistent_counts_are_refused(tp, flagged, rows):
    with pytest.raises(ValueError):
        campaign_roi(true_positives=tp, flagged=flagged, rows=rows, contact_cost=1, retained_value=1,
                     offer_success_rate=1)
