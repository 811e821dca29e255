"""Realised recall with its interval and the churner floor; recall estimated before labels (CBPE)."""

import json
import math

import numpy as np
import pytest
from scipy.stats import binom, binomtest
from sklearn.metrics import average_precision_score, precision_score, recall_score

from model.monitoring.performance import (
    EstimatedPerformance,
    RealisedPerformance,
    estimate_performance,
    realised_performance,
    recall_interval,
)
from storage.errors import UserError


def calibrated(n: int, seed: int, threshold: float = 0.25):
    """Probabilities that are calibrated by construction: each outcome is drawn with its own p."""
    rng = np.random.default_rng(seed)
    p = rng.beta(1.2, 3.0, n)
    y = (rng.random(n) < p).astype(int)
    return y, p, p >= threshold


# --- realised ------------------------------------------------------------------------------


def test_realised_metrics_match_sklearn_computed_independently():
    y, p, flagged = calibrated(3000, seed=1)
    result = realised_performance(y, p, flagged, target=0.9)
    assert result.recall == pytest.approx(recall_score(y, flagged))
    assert result.precision == pytest.approx(precision_score(y, flagged))
    assert result.pr_auc == pytest.approx(average_precision_score(y, p))
    assert result.n_churners == int(y.sum()) and result.n_flagged == int(flagged.sum())
    assert result.true_positives == int((y & flagged).sum())
    assert result.recall_low < result.recall < result.recall_high


@pytest.mark.parametrize(
    ("caught", "churners", "min_churners", "status"),
    [
        (89, 100, 30, "below_target"),  # 0.89 < 0.90: alert on the point estimate
        (90, 100, 30, "ok"),  # exactly on target is not below it
        (95, 100, 30, "ok"),
        (10, 29, 30, "insufficient_data"),  # terrible, but too few churners to judge
        (10, 30, 30, "below_target"),  # the floor itself is enough
    ],
)
def test_alert_fires_on_point_recall_below_target_only_with_enough_churners(caught, churners, min_churners, status):
    # given churners of whom some were flagged, plus as many non-churners (none flagged)
    y = np.r_[np.ones(churners, int), np.zeros(churners, int)]
    flagged = np.r_[np.arange(churners) < caught, np.zeros(churners, bool)]
    p = np.where(flagged, 0.8, 0.1)
    # when the recall check runs
    result = realised_performance(y, p, flagged, target=0.9, min_churners=min_churners)
    # then recall is the independent count ratio and the alert follows the rule
    assert result.recall == pytest.approx(caught / churners)
    assert result.status == status
    assert result.alert == (status == "below_target")


def test_too_few_churners_says_so_and_never_alerts():
    y, p, flagged = calibrated(60, seed=3)
    result = realised_performance(y, p, np.zeros_like(flagged), target=0.9, min_churners=30)
    assert result.n_churners < 30 and result.recall == 0.0
    assert result.status == "insufficient_data" and not result.alert
    assert f"not enough churners for a reliable recall (n = {result.n_churners} < 30)" in result.to_text().lower()


def test_no_churners_and_nobody_flagged_give_no_metrics_rather_than_errors():
    result = realised_performance([0, 0, 0], [0.1, 0.2, 0.3], [False, False, False], target=0.9)
    assert result.recall is None and result.precision is None and result.pr_auc is None
    assert result.status == "insufficient_data"


@pytest.mark.parametrize(("caught", "churners"), [(45, 50), (0, 12), (12, 12), (7, 31), (880, 1000)])
@pytest.mark.parametrize("method", ["wilson", "exact"])
def test_recall_interval_matches_scipy_binomtest(caught, churners, method):
    expected = binomtest(caught, churners).proportion_ci(confidence_level=0.95, method=method)
    assert recall_interval(caught, churners, method=method) == pytest.approx((expected.low, expected.high), abs=1e-9)


def test_recall_interval_honours_the_confidence_level():
    narrow = recall_interval(40, 50, confidence=0.8)
    wide = recall_interval(40, 50, confidence=0.99)
    assert wide[0] < narrow[0] < 0.8 < narrow[1] < wide[1]


def exact_coverage(n: int, true_recall: float, method: str) -> float:
    """Probability, over all possible counts, that the interval contains the true recall."""
    covered = 0.0
    for k in range(n + 1):
        low, high = recall_interval(k, n, method=method)
        if low <= true_recall <= high:
            covered += binom.pmf(k, n, true_recall)
    return covered


def test_interval_coverage_is_near_95_percent_for_small_churner_counts():
    grid = np.linspace(0.5, 0.95, 10)
    wilson = [exact_coverage(50, p, "wilson") for p in grid]
    exact = [exact_coverage(50, p, "exact") for p in grid]
    assert 0.93 <= float(np.mean(wilson)) <= 0.97
    assert min(exact) >= 0.95  # Clopper-Pearson never under-covers


def test_realised_result_survives_json():
    y, p, flagged = calibrated(500, seed=4)
    result = realised_performance(y, p, flagged, target=0.9)
    data = json.loads(json.dumps(result.to_dict(), allow_nan=False))
    assert data["alert"] == result.alert
    assert RealisedPerformance.from_dict(data) == result


# --- estimated (CBPE) ----------------------------------------------------------------------


def test_cbpe_on_calibrated_data_estimates_the_recall_labels_later_confirm():
    # given calibrated probabilities and the outcomes they imply
    y, p, flagged = calibrated(4000, seed=7)
    # when recall is estimated without the labels, then measured with them
    estimate = estimate_performance(p, flagged, target=0.9, seed=1)
    realised = realised_performance(y, p, flagged, target=0.9)
    # then the estimate is within sampling error of the measurement (tolerance from the sample size)
    tolerance = 3 * math.sqrt(realised.recall * (1 - realised.recall) / realised.n_churners)
    assert abs(estimate.recall - realised.recall) < tolerance
    assert estimate.recall_low <= realised.recall <= estimate.recall_high
    assert abs(estimate.precision - realised.precision) < 3 * math.sqrt(0.25 / realised.n_flagged)
    assert estimate.expected_churners == pytest.approx(p.sum())


def test_cbpe_tolerance_catches_miscalibrated_probabilities():
    # given the same outcomes but probabilities that are not calibrated (p cubed)
    y, p, flagged = calibrated(4000, seed=7)
    estimate = estimate_performance(p**3, flagged, target=0.9, seed=1)
    realised = realised_performance(y, p, flagged, target=0.9)
    # then the estimate misses by more than the tolerance the calibrated test allows
    tolerance = 3 * math.sqrt(realised.recall * (1 - realised.recall) / realised.n_churners)
    assert abs(estimate.recall - realised.recall) > tolerance


def test_cbpe_interval_covers_realised_recall_across_repeated_outcomes():
    # given one set of calibrated probabilities and 200 possible worlds of outcomes
    rng = np.random.default_rng(11)
    p = rng.beta(1.2, 3.0, 600)
    flagged = p >= 0.3
    estimate = estimate_performance(p, flagged, target=0.9, seed=2)
    outcomes = rng.random((200, p.size)) < p
    realised = (outcomes & flagged).sum(axis=1) / outcomes.sum(axis=1)
    # then roughly 95 % of realised recalls fall inside the estimated range
    inside = np.mean((realised >= estimate.recall_low) & (realised <= estimate.recall_high))
    assert 0.90 <= inside <= 0.99


def test_estimate_below_target_is_an_early_warning():
    _, p, _ = calibrated(2000, seed=5)
    strict = estimate_performance(p, p >= 0.6, target=0.9)
    loose = estimate_performance(p, p >= 0.02, target=0.9)
    assert strict.status == "early_warning" and strict.early_warning
    assert "EARLY WARNING" in strict.to_text()
    assert loose.status == "ok" and not loose.early_warning


def test_estimate_with_too_few_expected_churners_gives_no_warning():
    p = np.full(100, 0.05)  # five expected churners
    result = estimate_performance(p, p > 0.5, target=0.9, min_churners=30)
    assert result.status == "insufficient_data" and not result.early_warning
    assert "Too few expected churners" in result.to_text()


def test_estimate_is_deterministic_by_seed_and_large_batches_use_the_normal_shortcut_consistently():
    _, p, flagged = calibrated(12000, seed=8)
    first = estimate_performance(p, flagged, target=0.9, simulations=1000, seed=3)
    again = estimate_performance(p, flagged, target=0.9, simulations=1000, seed=3)
    assert first == again
    # 12,000 × 2,000 draws is past the exact-simulation budget: normal approximation of the sums
    shortcut = estimate_performance(p, flagged, target=0.9, simulations=2000, seed=3)
    assert shortcut.recall_low == pytest.approx(first.recall_low, abs=0.01)
    assert shortcut.recall_high == pytest.approx(first.recall_high, abs=0.01)


def test_estimate_survives_json():
    _, p, flagged = calibrated(500, seed=4)
    result = estimate_performance(p, flagged, target=0.9)
    data = json.loads(json.dumps(result.to_dict(), allow_nan=False))
    assert EstimatedPerformance.from_dict(data) == result


# --- bad input -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"probability": [0.2, 1.5]}, "outside 0–1"),
        ({"probability": [0.2, float("nan")]}, "missing or outside 0–1"),
        ({"y_true": [0, 2]}, "outcomes must be 0/1"),
        ({"y_true": ["yes", "no"]}, "outcomes must be 0/1"),
        ({"flagged": [1, 0, 1]}, "differ in length"),
        ({"target": 1.5}, "recall target must be between 0 and 1"),
        ({"min_churners": 0}, "min_churners must be a whole number"),
        ({"confidence": 95}, "confidence level must be between 0 and 1"),
    ],
)
def test_bad_realised_inputs_are_refused_with_the_reason(kwargs, message):
    arguments = {"y_true": [0, 1], "probability": [0.2, 0.7], "flagged": [0, 1], "target": 0.9, **kwargs}
    target = arguments.pop("target")
    with pytest.raises(UserError, match=message):
        realised_performance(**{"target": target, **arguments})


def test_bad_estimate_inputs_are_refused_with_the_reason():
    with pytest.raises(UserError, match="simulations must be"):
        estimate_performance([0.5], [1], target=0.9, simulations=10)
    with pytest.raises(UserError, match="differ in length"):
        estimate_performance([0.5, 0.2], [1], target=0.9)
    with pytest.raises(UserError, match="interval method"):
        recall_interval(3, 5, method="normal")
