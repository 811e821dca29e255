"""Intervals and power of a campaign, checked against published worked examples."""

from __future__ import annotations

import numpy as np
import pytest

from model.campaigns.stats import (
    TARGET_POWER,
    approximate_power,
    detectable_drop,
    holdout_share_needed,
    newcombe_difference,
    power,
    power_plan,
    risk_ratio,
    wilson,
)

# Newcombe (1998), Statistics in Medicine 17:873-890, Table II, method 10 (hybrid score,
# no continuity correction): examples (a)-(h).  (a) and (b) are also the values the R
# package propint tests against.
NEWCOMBE_TABLE_II = [
    ((56, 70, 48, 80), (0.0524, 0.3339)),
    ((9, 10, 3, 10), (0.1705, 0.8090)),
    ((6, 7, 2, 7), (0.0582, 0.8062)),
    ((5, 56, 0, 29), (-0.0381, 0.1926)),
    ((0, 10, 0, 20), (-0.1611, 0.2775)),
    ((0, 10, 0, 10), (-0.2775, 0.2775)),
    ((10, 10, 0, 20), (0.6791, 1.0000)),
    ((10, 10, 0, 10), (0.6075, 1.0000)),
]


@pytest.mark.parametrize(("counts", "expected"), NEWCOMBE_TABLE_II)
def test_the_newcombe_interval_reproduces_the_published_table(counts, expected):
    interval = newcombe_difference(*counts)

    assert interval.estimate == pytest.approx(counts[0] / counts[1] - counts[2] / counts[3])
    assert (round(interval.low, 4), round(interval.high, 4)) == expected


def test_wilson_matches_newcombes_single_proportion_examples():
    # Newcombe (1998), Statistics in Medicine 17:857-872, Table I, method 3 (score): 81/263 and 15/148.
    assert (round(wilson(81, 263).low, 4), round(wilson(81, 263).high, 4)) == (0.2553, 0.3662)
    assert (round(wilson(15, 148).low, 4), round(wilson(15, 148).high, 4)) == (0.0624, 0.1605)
    zero = wilson(0, 20)
    assert zero.low == 0.0 and round(zero.high, 4) == 0.1611


def test_counts_that_cannot_be_a_proportion_are_refused():
    for bad in ((3, 0), (-1, 10), (11, 10)):
        with pytest.raises(ValueError):
            wilson(*bad)


def test_power_reproduces_the_textbook_sample_size():
    # Fleiss' formula without continuity correction: 10 % vs 15 % needs 686 per group for 80 % power.
    assert approximate_power(0.15, 0.10, 686, 686) == pytest.approx(0.80, abs=0.001)
    assert power(0.15, 0.10, 686, 686) == pytest.approx(0.80, abs=0.005)
    assert power(0.15, 0.10, 400, 400) < 0.6
    assert approximate_power(0.15, 0.15, 1000, 1000) == pytest.approx(0.05, abs=0.001)
    assert power(0.15, 0.15, 1000, 1000) == pytest.approx(0.05, abs=0.005)


@pytest.mark.parametrize(("rates", "sizes"), [((0.35, 0.245), (135, 15)), ((0.5, 0.35), (60, 20)),
                                              ((0.3, 0.225), (900, 100))])
def test_power_is_the_frequency_of_a_significant_report_in_simulation(rates, sizes):
    rng = np.random.default_rng(1)
    control = rng.binomial(sizes[1], rates[0], 4000)
    treated = rng.binomial(sizes[0], rates[1], 4000)
    hits = np.mean([newcombe_difference(int(c), sizes[1], int(t), sizes[0]).excludes_zero
                    for c, t in zip(control, treated, strict=True)])

    assert power(rates[0], rates[1], sizes[0], sizes[1]) == pytest.approx(hits, abs=0.025)


def test_the_detectable_drop_is_the_drop_with_80_percent_power():
    drop = detectable_drop(0.30, 2400, 600)

    assert drop is not None and 0.04 < drop < 0.07
    assert power(0.30, 0.30 - drop, 2400, 600) == pytest.approx(TARGET_POWER, abs=1e-4)
    assert detectable_drop(0.05, 20, 5) is None  # not even zero churn would show


def test_a_holdout_too_small_for_the_assumed_effect_is_warned_with_the_share_needed():
    small = power_plan(treated=2850, holdout=150, baseline=0.30, offer_success_rate=0.25)
    hopeless = power_plan(treated=950, holdout=50, baseline=0.30, offer_success_rate=0.25)
    enough = power_plan(treated=2400, holdout=600, baseline=0.30, offer_success_rate=0.25)

    assert small.too_small and small.warning() is not None
    assert "7.5-point drop" in small.warning() and "Hold out at least" in small.warning()
    needed = holdout_share_needed(0.30, 0.075, 3000)
    assert needed is not None and f"{needed:.0%}" in small.warning()
    assert power(0.30, 0.225, 3000 - round(3000 * needed), round(3000 * needed)) >= TARGET_POWER
    assert power(0.30, 0.225, 3000 - round(3000 * (needed - 0.01)), round(3000 * (needed - 0.01))) < TARGET_POWER
    assert "needs more clients" in (hopeless.warning() or "")  # not even half and half of 1,000 is enough
    assert not enough.too_small and enough.warning() is None
    assert enough.statement().startswith("With 2,400 treated and 600 held out you can detect a ")
    assert "drop in churn with 80% power" in enough.statement()


def test_risk_ratio_uses_katz_log_interval():
    ratio = risk_ratio(20, 100, 40, 100)

    assert ratio is not None and ratio.estimate == pytest.approx(0.5)
    # exp(ln 0.5 ± 1.96 sqrt(1/20 - 1/100 + 1/40 - 1/100)) = 0.5 exp(± 0.4597)
    assert (round(ratio.low, 3), round(ratio.high, 3)) == (0.316, 0.792)
    assert risk_ratio(5, 100, 0, 100) is None
    zero = risk_ratio(0, 100, 10, 100)
    assert zero is not None and zero.estimate == 0 and zero.high < 1
