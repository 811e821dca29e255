"""The paired statistics of the shadow comparison (model/monitoring/shadow.py), against
published worked examples and independent computations (scipy, scikit-learn, a plain loop)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import binomtest
from sklearn.metrics import average_precision_score

from model.monitoring.performance import realised_performance
from model.monitoring.shadow import (
    Difference,
    McNemar,
    PairedBootstrap,
    ShadowComparison,
    compare_models,
    mcnemar_exact_p,
    paired_bootstrap,
    paired_mcnemar,
    shadow_verdict,
)
from storage.errors import UserError

# --- McNemar ------------------------------------------------------------------------------


def test_mcnemar_matches_the_published_airway_example():
    """Fagerland, Lydersen & Laake (2013), BMC Med Res Methodol 13:91, Table 1 (Bentur et al.):
    airway hyper-responsiveness before and after stem cell transplantation in 21 children,
    discordant pairs 1 and 7; the exact conditional test gives p = 0.070 (= 18/256)."""
    assert mcnemar_exact_p(1, 7) == pytest.approx(18 / 256)
    assert round(mcnemar_exact_p(7, 1), 3) == 0.070


def test_mcnemar_matches_the_published_culture_media_example():
    """Armitage & Berry (1994, p. 127), as worked by StatsDirect: two media for culturing
    M. tuberculosis on 50 sputum specimens, discordant pairs 12 and 2; exact two-sided P = 0.0129."""
    assert round(mcnemar_exact_p(12, 2), 4) == 0.0129
    assert mcnemar_exact_p(12, 2) == pytest.approx(212 / 16384)


@pytest.mark.parametrize("b", [0, 1, 2, 5, 9, 17, 40, 133])
@pytest.mark.parametrize("c", [0, 1, 3, 8, 20, 61])
def test_mcnemar_equals_scipys_exact_binomial_test(b, c):
    expected = 1.0 if b + c == 0 else binomtest(b, b + c, 0.5, alternative="two-sided").pvalue
    assert mcnemar_exact_p(b, c) == pytest.approx(expected, rel=1e-12, abs=1e-15)


def test_mcnemar_refuses_negative_counts():
    with pytest.raises(ValueError):
        mcnemar_exact_p(-1, 3)


def test_the_two_by_two_table_counts_each_cell():
    champion = [1, 1, 1, 0, 0, 0, 0, 1]
    shadow = [1, 0, 0, 1, 0, 0, 1, 1]
    table = paired_mcnemar("churners", champion, shadow)
    assert (table.both, table.only_champion, table.only_shadow, table.neither) == (2, 2, 2, 2)
    assert table.p_value == 1.0 and table.discordant == 4
    assert McNemar.from_dict(table.to_dict()) == table


def test_flags_of_different_lengths_are_refused():
    with pytest.raises(UserError, match="different numbers"):
        paired_mcnemar("stayers", [1, 0], [1, 0, 1])


# --- the paired bootstrap ------------------------------------------------------------------


def _sample(n: int = 600, seed: int = 4, ties: bool = True):
    rng = np.random.default_rng(seed)
    y = rng.random(n) < 0.2
    champion = np.clip(0.25 * y + rng.random(n) * 0.75, 0, 1)
    shadow = np.clip(0.35 * y + rng.random(n) * 0.65, 0, 1)
    if ties:  # scores rounded as calibrated (isotonic) probabilities are: many ties
        champion, shadow = np.round(champion, 2), np.round(shadow, 2)
    return y, champion, shadow


def _naive_bootstrap(y, pc, fc, ps, fs, *, resamples, seed, confidence):
    """The textbook paired bootstrap with scikit-learn: the same draws (churners first, then
    stayers, with ``rng.integers``), each resample indexed and scored from scratch."""
    rng = np.random.default_rng(seed)
    positives, negatives = np.flatnonzero(y), np.flatnonzero(~y)
    pr, recall, precision = [], [], []
    for _ in range(resamples):
        take = np.concatenate([positives[rng.integers(0, len(positives), len(positives))],
                               negatives[rng.integers(0, len(negatives), len(negatives))]])
        yy = y[take]
        pr.append(average_precision_score(yy, ps[take]) - average_precision_score(yy, pc[take]))
        recall.append(fs[take][yy].mean() - fc[take][yy].mean())
        precision.append(yy[fs[take]].mean() - yy[fc[take]].mean())
    tail = (1 - confidence) / 2
    return {name: tuple(np.quantile(values, [tail, 1 - tail]))
            for name, values in (("pr_auc", pr), ("recall", recall), ("precision", precision))}


@pytest.mark.parametrize("ties", [True, False])
def test_the_bootstrap_equals_a_plain_loop_over_scikit_learn(ties):
    y, pc, ps = _sample(ties=ties)
    fc, fs = pc >= 0.5, ps >= 0.45
    boot = paired_bootstrap(y, pc, fc, ps, fs, resamples=300, seed=11, confidence=0.9)
    naive = _naive_bootstrap(y, pc, fc, ps, fs, resamples=300, seed=11, confidence=0.9)
    for name in ("pr_auc", "recall", "precision"):
        difference: Difference = getattr(boot, name)
        assert (difference.low, difference.high) == pytest.approx(naive[name], abs=1e-12), name
    assert boot.pr_auc.estimate == pytest.approx(average_precision_score(y, ps) - average_precision_score(y, pc))
    assert boot.recall.estimate == pytest.approx(fs[y].mean() - fc[y].mean())
    assert boot.precision.estimate == pytest.approx(y[fs].mean() - y[fc].mean())
    assert boot.pr_auc.low < boot.pr_auc.estimate < boot.pr_auc.high


def test_the_bootstrap_is_seeded_and_a_different_seed_moves_it():
    y, pc, ps = _sample()
    first = paired_bootstrap(y, pc, pc >= 0.5, ps, ps >= 0.5, seed=3)
    again = paired_bootstrap(y, pc, pc >= 0.5, ps, ps >= 0.5, seed=3)
    other = paired_bootstrap(y, pc, pc >= 0.5, ps, ps >= 0.5, seed=4)
    assert first == again and first.resamples == 1000
    assert first.pr_auc.low != other.pr_auc.low
    assert PairedBootstrap.from_dict(first.to_dict()) == first


def test_the_same_model_on_both_sides_differs_by_exactly_nothing():
    y, pc, _ = _sample()
    boot = paired_bootstrap(y, pc, pc >= 0.5, pc, pc >= 0.5, resamples=200)
    for difference in (boot.pr_auc, boot.recall, boot.precision):
        assert difference.estimate == difference.low == difference.high == 0


def test_the_bootstrap_interval_covers_the_truth_as_often_as_it_says():
    """Coverage of the PR-AUC difference interval over repeated samples from one population
    (the truth computed on a very large sample): near 95 %, as a 95 % interval must be."""
    rng = np.random.default_rng(0)

    def draw(n: int):
        y = rng.random(n) < 0.15
        return y, np.clip(0.3 * y + rng.random(n) * 0.7, 0, 1), np.clip(0.36 * y + rng.random(n) * 0.64, 0, 1)

    big_y, big_c, big_s = draw(400_000)
    truth = average_precision_score(big_y, big_s) - average_precision_score(big_y, big_c)
    covered = 0
    trials = 60
    for trial in range(trials):
        y, pc, ps = draw(800)
        boot = paired_bootstrap(y, pc, pc >= 0.5, ps, ps >= 0.5, resamples=400, seed=trial)
        covered += boot.pr_auc.low <= truth <= boot.pr_auc.high
    assert covered >= 0.85 * trials, covered


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"resamples": 10}, "at least 100"),
        ({"confidence": 1.5}, "between 0 and 1"),
        ({"y_true": np.zeros(600, dtype=bool)}, "at least one churner and one stayer"),
        ({"shadow_probability": np.full(599, 0.5)}, "differ in length"),
        ({"shadow_probability": np.full(600, 1.5)}, "outside 0–1"),
    ],
)
def test_bad_bootstrap_input_is_refused_with_a_message(change, message):
    y, pc, ps = _sample()
    arguments = {"y_true": y, "champion_probability": pc, "champion_flagged": pc >= 0.5,
                 "shadow_probability": ps, "shadow_flagged": ps >= 0.5}
    options = {key: change.pop(key) for key in ("resamples", "confidence") if key in change}
    arguments.update(change)
    with pytest.raises(UserError, match=message):
        paired_bootstrap(**arguments, **options)


# --- the comparison and the rule -------------------------------------------------------------


def _compare(y, pc, fc, ps, fs, **options):
    settings = {"champion_version": "v1", "shadow_version": "v2", "target": 0.9, "min_churners": 20,
                "resamples": 300, "seed": 5, **options}
    return compare_models(y, pc, fc, ps, fs, **settings)


def test_both_models_are_measured_on_the_same_clients_as_the_champion_alone_would_be():
    y, pc, ps = _sample()
    fc, fs = pc >= 0.3, ps >= 0.3
    comparison = _compare(y, pc, fc, ps, fs)
    alone = realised_performance(y, pc, fc, target=0.9, min_churners=20)
    assert comparison.champion == alone
    assert comparison.shadow == realised_performance(y, ps, fs, target=0.9, min_churners=20)
    assert comparison.churners.both + comparison.churners.only_champion == alone.true_positives
    assert comparison.n_clients == len(y)
    assert ShadowComparison.from_dict(comparison.to_dict()) == comparison
    text = comparison.to_text()
    assert "champion v1" in text and "shadow v2" in text and "exact McNemar" in text and "bootstrap" in text


def test_a_shadow_as_good_that_keeps_the_promise_is_promoted():
    y, pc, ps = _sample()
    comparison = _compare(y, pc, pc >= 0.2, ps, ps >= 0.25)
    assert comparison.shadow.recall >= 0.9
    assert comparison.verdict == "promote" and comparison.reasons == []
    assert "meets the recall target" in comparison.message and "not significantly worse" in comparison.message


def test_a_shadow_that_misses_churners_the_champion_caught_is_retired():
    y, pc, _ = _sample()
    comparison = _compare(y, pc, pc >= 0.2, pc, pc >= 0.6)  # same ranking, far fewer flagged
    assert comparison.shadow.recall < 0.9 and comparison.churners.p_value < 0.05
    assert comparison.verdict == "retire"
    assert any("missed" in reason and "below the target" in reason for reason in comparison.reasons)
    assert comparison.bootstrap is not None and not comparison.bootstrap.pr_auc.below_zero()


def test_a_shadow_that_ranks_churners_worse_is_retired_even_when_it_keeps_the_promise():
    rng = np.random.default_rng(8)
    y, pc, _ = _sample()
    noise = rng.random(len(y))
    comparison = _compare(y, pc, pc >= 0.2, noise, noise >= 0.02)  # flags nearly everyone: recall ~1
    assert comparison.shadow.recall >= 0.9
    assert comparison.verdict == "retire"
    assert comparison.bootstrap.pr_auc.below_zero()
    assert any("ranks churners worse" in reason for reason in comparison.reasons)


def test_extra_contacts_are_a_cost_shown_but_not_a_reason_to_retire():
    y, pc, _ = _sample()
    comparison = _compare(y, pc, pc >= 0.2, pc, pc >= 0.1)  # same ranking, more flagged
    assert comparison.stayers.only_shadow > comparison.stayers.only_champion
    assert comparison.stayers.p_value < 0.05
    assert comparison.verdict == "promote"
    assert "more stayers than v1" in comparison.message


def test_too_few_churners_waits_whatever_the_figures_say():
    y, pc, _ = _sample(n=200)
    comparison = _compare(y, pc, pc >= 0.2, pc, pc >= 0.9, min_churners=500)
    assert comparison.verdict == "wait" and not comparison.decisive
    assert "Too few churners" in comparison.message


def test_a_shadow_below_the_target_but_not_significantly_worse_waits():
    y = np.array([True] * 30 + [False] * 70)
    champion = np.array([True] * 26 + [False] * 4 + [False] * 70)  # recall 0.87
    shadow = np.array([True] * 25 + [False] * 5 + [False] * 70)  # recall 0.83: one fewer
    probability = np.linspace(0.99, 0.01, 100)
    comparison = _compare(y, probability, champion, probability, shadow)
    assert comparison.churners.p_value == 1.0
    assert comparison.verdict == "wait"
    assert "below the target" in comparison.message and "waiting" in comparison.message


def test_the_rule_reads_only_its_inputs():
    """The verdict function alone: a significantly lower recall above the target is no reason
    to retire (recall beyond the target is bought with contacts, as in the acceptance gate)."""
    churners = McNemar("churners", both=90, only_champion=9, only_shadow=0, neither=1, p_value=mcnemar_exact_p(9, 0))
    stayers = McNemar("stayers", both=10, only_champion=40, only_shadow=0, neither=350, p_value=mcnemar_exact_p(40, 0))
    y = np.array([True] * 100 + [False] * 400)
    shadow_flags = np.array([True] * 90 + [False] * 10 + [True] * 10 + [False] * 390)
    shadow = realised_performance(y, np.where(shadow_flags, 0.9, 0.1), shadow_flags, target=0.9, min_churners=20)
    champion = shadow  # not read beyond its recall
    verdict, reasons, message = shadow_verdict(
        champion_version="v1", shadow_version="v2", n_clients=500, champion=champion, shadow=shadow,
        churners=churners, stayers=stayers, bootstrap=None, target=0.9, min_churners=20, confidence=0.95)
    assert shadow.recall == 0.9 and churners.p_value < 0.05
    assert verdict == "promote" and reasons == []
    assert "40 fewer stayers" in message
