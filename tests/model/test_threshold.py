"""The threshold rule: exact search, the lower-bound math, and the guarantee it buys on unseen data."""

import math

import numpy as np
import pytest
from scipy import stats

from model.threshold import choose_threshold, recall_lower_bound


def test_lower_bound_formula():
    binomial = recall_lower_bound(0.93, 1500, 370, 1.645, dispersion=1.0)
    inflated = recall_lower_bound(0.93, 1500, 370, 1.645, dispersion=2.0)

    assert binomial == pytest.approx(0.93 - 1.645 * math.sqrt(0.93 * 0.07 * (1 / 1500 + 1 / 370)))
    assert inflated == pytest.approx(0.93 - 1.645 * math.sqrt(2 * 0.93 * 0.07 * (1 / 1500 + 1 / 370)))
    assert recall_lower_bound(1.0, 10, 10, 1.645) == 1.0
    assert recall_lower_bound(0.9, 100, 100, 0.0) == pytest.approx(0.9)


def test_picks_the_highest_threshold_whose_bound_reaches_the_target():
    rng = np.random.default_rng(1)
    y = (rng.random(2000) < 0.3).astype(int)
    scores = np.clip(rng.normal(0.35 + 0.3 * y, 0.2), 0, 1)

    choice = choose_threshold(scores, y, target=0.9, n_positives_eval=150)

    # brute force over every distinct score
    best = None
    for t in np.unique(scores):
        r = (scores[y == 1] >= t).mean()
        if recall_lower_bound(r, int(y.sum()), 150, 1.645) >= 0.9:
            best = t
    assert choice.threshold == best
    assert choice.fit_recall == pytest.approx((scores[y == 1] >= best).mean())
    assert choice.lower_bound >= 0.9
    flagged = scores >= best
    assert choice.fit_precision == pytest.approx(y[flagged].mean())


def test_constant_scores_flag_everyone():
    choice = choose_threshold(np.full(100, 0.2), np.r_[np.ones(20), np.zeros(80)], target=0.9, n_positives_eval=5)

    assert choice.threshold == 0.2 and choice.fit_recall == 1.0 and choice.fit_flagged_share == 1.0


def test_refuses_without_positives():
    with pytest.raises(ValueError):
        choose_threshold(np.random.default_rng(0).random(50), np.zeros(50), target=0.9, n_positives_eval=10)


def share_of_future_sets_meeting_target(z, n_fit, n_eval, target=0.9, repeats=200, dispersion=1.0):
    """Simulate: positives' scores ~ Beta(4, 2); fit the threshold on n_fit positives, then compute
    exactly the chance that a fresh evaluation set of n_eval positives shows recall >= target."""
    rng = np.random.default_rng(123)
    needed = math.ceil(target * n_eval - 1e-9)
    chances = []
    for _ in range(repeats):
        positives = rng.beta(4, 2, n_fit)
        negatives = rng.beta(2, 4, 3 * n_fit)
        scores = np.r_[positives, negatives]
        y = np.r_[np.ones(n_fit), np.zeros(3 * n_fit)]
        if z is None:  # the naive rule: highest threshold with fit recall >= target
            t = np.sort(positives)[::-1][needed * n_fit // n_eval - 1]
        else:
            t = choose_threshold(scores, y, target=target, n_positives_eval=n_eval, z=z,
                                 dispersion=dispersion).threshold
        true_recall = stats.beta.sf(t, 4, 2)
        chances.append(stats.binom.sf(needed - 1, n_eval, true_recall))
    return float(np.mean(chances))


def test_binomial_bound_holds_on_unseen_sets_at_least_nine_times_in_ten():
    # a fixed scoring model: nominal 95 % one-sided; discreteness costs a little with few positives
    assert share_of_future_sets_meeting_target(1.645, n_fit=1500, n_eval=375) >= 0.93
    assert share_of_future_sets_meeting_target(1.645, n_fit=300, n_eval=75) >= 0.92


def test_the_default_dispersion_buys_a_margin_for_model_variation():
    # with a fixed model the doubled variance is about a one-sided 99 % bound
    assert share_of_future_sets_meeting_target(1.645, n_fit=1500, n_eval=375, dispersion=2.0) >= 0.97


def test_the_naive_rule_fails_about_half_the_time():
    assert share_of_future_sets_meeting_target(None, n_fit=375, n_eval=375) < 0.6
