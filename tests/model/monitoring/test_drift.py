"""Drift maths: PSI values, the three gates (PSI, test, sample size), weighting, storage."""

import json
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from model.monitoring.drift import (
    SCORE_FEATURE,
    DriftReport,
    DriftSettings,
    compare_feature,
    detect_drift,
    importance_weights,
    infer_kind,
    population_stability_index,
    score_drift,
)
from storage.errors import UserError


def normal(mean: float, n: int, seed: int) -> pd.Series:
    return pd.Series(np.random.default_rng(seed).normal(mean, 1.0, n))


def frame(n: int, seed: int, *, shift: float = 0.0, plan_b_share: float = 0.3) -> pd.DataFrame:
    """Three numeric features (a, b, c) and one categorical (plan); only 'a' and 'plan' can shift."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "a": rng.normal(shift, 1.0, n),
            "b": rng.normal(0.0, 1.0, n),
            "c": rng.exponential(1.0, n),
            "plan": rng.choice(["basic", "premium"], size=n, p=[1 - plan_b_share, plan_b_share]),
        }
    )


# --- PSI -----------------------------------------------------------------------------------


def test_psi_matches_the_formula_on_hand_computed_counts():
    # given shares 0.5/0.3/0.2 against 0.3/0.3/0.4
    # when PSI is computed
    psi = population_stability_index([50, 30, 20], [30, 30, 40])
    # then it is Σ (c − r)·ln(c/r) = 0.2·ln(5/3) + 0.2·ln(2)
    assert psi == pytest.approx(0.2 * math.log(5 / 3) + 0.2 * math.log(2), rel=1e-9)


@given(
    st.lists(st.integers(0, 1000), min_size=2, max_size=12).flatmap(
        lambda ref: st.tuples(st.just(ref), st.lists(st.integers(0, 1000), min_size=len(ref), max_size=len(ref)))
    )
)
def test_psi_is_non_negative_symmetric_and_zero_for_equal_shares(counts):
    reference, current = counts
    assume(sum(reference) > 0 and sum(current) > 0)
    psi = population_stability_index(reference, current)
    assert psi >= 0
    assert psi == pytest.approx(population_stability_index(current, reference), abs=1e-9)
    assert population_stability_index(reference, [3 * c for c in reference]) == pytest.approx(0.0, abs=1e-12)


def test_psi_smooths_an_empty_bin_with_epsilon():
    psi = population_stability_index([10, 0], [5, 5], epsilon=1e-4)
    r = np.array([1.0, 1e-4]) / 1.0001
    c = np.array([0.5, 0.5])
    assert math.isfinite(psi)
    assert psi == pytest.approx(float(np.sum((c - r) * np.log(c / r))), rel=1e-9)


def test_psi_of_identical_data_is_zero_and_of_two_samples_of_one_distribution_is_tiny():
    reference = normal(0.0, 5000, seed=1)
    assert compare_feature("x", reference, reference).psi == pytest.approx(0.0, abs=1e-12)
    row = compare_feature("x", reference, normal(0.0, 5000, seed=2))
    assert row.psi < 0.02
    assert row.status == "stable"


def test_a_one_sd_mean_shift_gives_a_psi_near_its_theoretical_value_and_drift():
    # given N(0,1) vs N(1,1): the (unbinned) PSI is the symmetric KL divergence, 1.0
    row = compare_feature("x", normal(0.0, 20000, seed=1), normal(1.0, 20000, seed=2))
    # then ten quantile bins capture most of it, and all gates agree on drift
    assert 0.8 < row.psi < 1.0
    assert row.kind == "numeric" and row.test == "ks"
    assert row.p_value < 1e-10
    assert row.status == "drift"


def test_a_small_shift_is_moderate_by_psi():
    # given a 0.4 sd shift (theoretical PSI 0.16)
    row = compare_feature("x", normal(0.0, 20000, seed=1), normal(0.4, 20000, seed=2))
    assert 0.1 <= row.psi <= 0.25
    assert row.status == "moderate"


def test_numeric_bins_come_from_reference_quantiles_with_open_outer_bins():
    reference = pd.Series(np.arange(1, 101, dtype=float))  # deciles at 10.9, 20.8, …
    current = pd.Series([-1000.0, 5.0, 50.0, 1000.0])
    row = compare_feature("x", reference, current, settings=DriftSettings(min_samples=1))
    assert len(row.bins) == 10
    assert row.reference_share == pytest.approx((0.1,) * 10)
    # far-out current values land in the outer bins instead of falling off the edges
    assert row.current_share[0] == pytest.approx(0.5) and row.current_share[-1] == pytest.approx(0.25)
    assert row.bins[0].startswith("≤") and row.bins[-1].startswith(">")


def test_numeric_edges_are_deduplicated_for_a_binary_column():
    reference = pd.Series([0] * 800 + [1] * 200)
    row = compare_feature("senior", reference, reference.sample(frac=1.0, random_state=1))
    assert row.bins == ("≤ 0", "0–1", "> 1")
    assert row.reference_share == pytest.approx((0.8, 0.2, 0.0))


def test_missing_values_get_their_own_bin_and_a_sudden_gap_is_drift():
    # given a numeric column that suddenly arrives one-third empty
    reference = normal(0.0, 3000, seed=1)
    current = normal(0.0, 3000, seed=2)
    current[current.index % 3 == 0] = np.nan
    row = compare_feature("x", reference, current)
    # then the missing share shows as its own bin, and the missing-share test flags it
    assert row.bins[-1] == "missing"
    assert row.reference_share[-1] == 0.0
    assert row.current_share[-1] == pytest.approx(1 / 3, abs=0.01)
    assert row.test == "ks+missing"
    assert row.status == "drift"


def test_numbers_stored_as_text_with_blanks_are_numeric():
    # Telco's TotalCharges: text, blanks for clients without history
    reference = pd.Series(["29.85", "1889.5", " ", "108.15"] * 100)
    assert infer_kind(reference) == "numeric"
    row = compare_feature("TotalCharges", reference, reference)
    assert row.kind == "numeric"
    assert row.bins[-1] == "missing" and row.reference_share[-1] == pytest.approx(0.25)
    assert infer_kind(pd.Series([True, False, None], dtype=object)) == "categorical"


def test_categorical_levels_unseen_in_the_reference_go_to_other():
    reference = pd.Series(["basic"] * 600 + ["premium"] * 400)
    current = pd.Series(["basic"] * 300 + ["premium"] * 200 + ["family"] * 400 + [None] * 100)
    row = compare_feature("plan", reference, current)
    assert row.kind == "categorical" and row.test == "chi2"
    assert row.bins == ("basic", "premium", "other", "missing")
    assert row.reference_share == pytest.approx((0.6, 0.4, 0.0, 0.0))
    assert row.current_share == pytest.approx((0.3, 0.2, 0.4, 0.1))
    expected = population_stability_index([600, 400, 0, 0], [300, 200, 400, 100])
    assert row.psi == pytest.approx(expected)
    assert row.status == "drift"


def test_categories_that_only_look_different_are_the_same_level():
    # given a reference of clean text and a batch of padded text and JSON-style numbers
    reference = pd.Series(["Yes", "No", "3"] * 100)
    current = pd.Series([" Yes", "No ", 3.0] * 100, dtype=object)
    row = compare_feature("x", reference, current)
    assert row.bins == ("3", "No", "Yes")
    assert row.psi == pytest.approx(0.0, abs=1e-12)
    # and blank cells count as missing
    blank = compare_feature("x", reference, pd.Series(["Yes", "  ", "3"] * 100))
    assert blank.bins[-1] == "missing" and blank.current_share[-1] == pytest.approx(1 / 3)


def test_rare_levels_beyond_max_levels_are_pooled_as_other():
    reference = pd.Series(["a"] * 500 + ["b"] * 300 + ["c"] * 150 + ["d"] * 50)
    row = compare_feature("x", reference, reference, settings=DriftSettings(max_levels=2))
    assert row.bins == ("a", "b", "other")
    assert row.reference_share == pytest.approx((0.5, 0.3, 0.2))
    assert row.psi == pytest.approx(0.0, abs=1e-12)


# --- gates ---------------------------------------------------------------------------------


def test_a_tiny_shifted_batch_is_insufficient_data_never_drift():
    # given a strongly shifted batch of only 50 rows
    reference = frame(5000, seed=1)
    batch = frame(50, seed=2, shift=2.0, plan_b_share=0.9)
    # when drift is checked
    report = detect_drift(reference, batch)
    # then PSI alone would alarm, but the verdict is "insufficient data" and nothing drifted
    assert report.feature("a").psi > 0.25
    assert report.verdict == "insufficient_data"
    assert report.drifted_features == []
    assert {row.status for row in report.features} == {"insufficient_data"}
    assert "not enough data" in report.to_text()


def test_a_high_psi_the_test_cannot_confirm_is_only_moderate():
    # given an alpha so strict that no p-value passes it
    settings = DriftSettings(alpha=1e-300)
    row = compare_feature("x", normal(0.0, 400, seed=1), normal(0.8, 400, seed=2), settings=settings)
    assert row.psi > 0.25
    assert row.status == "moderate"


def test_min_samples_is_configurable():
    reference, batch = frame(5000, seed=1), frame(150, seed=2, shift=2.0, plan_b_share=0.9)
    assert detect_drift(reference, batch).verdict == "insufficient_data"  # default 200
    assert detect_drift(reference, batch, settings=DriftSettings(min_samples=100)).verdict == "drift"


# --- weighting and verdict -----------------------------------------------------------------


def test_importance_weights_are_normalised_with_a_floor_for_unknown_features():
    weights = importance_weights(["a", "b", "c"], {"a": 3.0, "b": 1.0}, floor=0.01)
    assert sum(weights.values()) == pytest.approx(1.0)
    assert weights["a"] == pytest.approx(0.75 / 1.01)
    assert weights["b"] == pytest.approx(0.25 / 1.01)
    assert weights["c"] == pytest.approx(0.01 / 1.01)
    assert importance_weights(["a", "b"], None) == {"a": 0.5, "b": 0.5}
    assert importance_weights(["a", "b"], {"a": 0, "b": 0}) == {"a": 0.5, "b": 0.5}


@pytest.mark.parametrize(
    ("importance_a", "verdict"),
    [(0.2, "no_drift"), (0.29, "no_drift"), (0.31, "drift"), (0.9, "drift")],
)
def test_the_verdict_compares_the_weighted_share_of_drifted_features_with_the_setting(importance_a, verdict):
    # given only feature 'a' drifts, with a known share of the importance
    reference = frame(3000, seed=1).drop(columns="plan")
    batch = frame(1000, seed=2, shift=1.5).drop(columns="plan")
    rest = (1 - importance_a) / 2
    report = detect_drift(
        reference,
        batch,
        importances={"a": importance_a, "b": rest, "c": rest},
        settings=DriftSettings(importance_floor=0),
    )
    # then the drifted share is exactly a's weight and the verdict follows the 0.3 setting
    assert [row.feature for row in report.drifted_features] == ["a"]
    assert report.drifted_share == pytest.approx(importance_a)
    assert report.verdict == verdict


def test_equal_weights_without_importances():
    report = detect_drift(frame(3000, seed=1), frame(1000, seed=2, shift=1.5, plan_b_share=0.7))
    assert {row.feature for row in report.drifted_features} == {"a", "plan"}
    assert report.drifted_share == pytest.approx(0.5)
    assert report.verdict == "drift"
    assert [row.feature for row in report.top(2)] in (["a", "plan"], ["plan", "a"])
    text = report.to_text()
    assert text.startswith("Data drift: DRIFT — 50% of the feature weight drifted")
    assert "a: PSI" in text and "plan: PSI" in text


def test_same_distribution_gives_no_drift():
    report = detect_drift(frame(3000, seed=1), frame(1000, seed=2))
    assert report.verdict == "no_drift"
    assert report.drifted_share == 0.0
    assert "stable" in report.to_text()


# --- scores --------------------------------------------------------------------------------


def test_score_drift_is_tracked_apart_from_the_feature_verdict():
    rng = np.random.default_rng(5)
    reference_scores = rng.beta(2, 5, 3000)
    same = score_drift(reference_scores, rng.beta(2, 5, 1000))
    shifted = score_drift(reference_scores, rng.beta(4, 3, 1000))
    assert same.feature == SCORE_FEATURE and same.status == "stable"
    assert shifted.status == "drift" and shifted.psi > 0.25 and shifted.test == "ks"
    # and inside a report it is shown but does not make the features drift
    report = detect_drift(
        frame(3000, seed=1), frame(1000, seed=2), reference_scores=reference_scores, current_scores=rng.beta(4, 3, 1000)
    )
    assert report.score is not None and report.score_drifted
    assert report.verdict == "no_drift"
    assert "Score distribution" in report.to_text()


def test_a_tiny_batch_of_scores_is_insufficient_data():
    rng = np.random.default_rng(5)
    row = score_drift(rng.beta(2, 5, 3000), rng.beta(6, 2, 40))
    assert row.status == "insufficient_data"


# --- storage -------------------------------------------------------------------------------


def test_report_survives_json_and_restores_equal():
    rng = np.random.default_rng(3)
    batch = frame(1000, seed=2, shift=1.5)
    batch.loc[:50, "b"] = np.nan
    report = detect_drift(
        frame(3000, seed=1), batch, importances={"a": 5, "plan": 1},
        reference_scores=rng.random(500), current_scores=rng.random(500) ** 2,
    )  # fmt: skip
    text = json.dumps(report.to_dict(), allow_nan=False)  # PostgreSQL json has no NaN either
    restored = DriftReport.from_dict(json.loads(text))
    assert restored == report
    assert restored.to_text() == report.to_text()
    # a column that suddenly has 5 % missing values drifts as well
    assert sorted(json.loads(text)["drifted"]) == ["a", "b"]


def test_an_empty_batch_is_insufficient_and_still_json_able():
    reference = frame(500, seed=1)
    report = detect_drift(reference, reference.iloc[:0])
    assert report.verdict == "insufficient_data"
    json.dumps(report.to_dict(), allow_nan=False)


def test_a_damaged_stored_report_is_a_clear_error():
    data = detect_drift(frame(500, seed=1), frame(300, seed=2)).to_dict()
    with pytest.raises(UserError, match="damaged or from another version"):
        DriftReport.from_dict({**data, "version": 99})
    broken = {**data, "features": [{**data["features"][0], "kind": "weird"}]}
    with pytest.raises(UserError, match="damaged"):
        DriftReport.from_dict(broken)


# --- bad input -----------------------------------------------------------------------------


def test_feature_columns_missing_from_the_batch_are_named():
    reference = frame(500, seed=1)
    with pytest.raises(UserError, match=r"current data lacks 1 feature column\(s\): 'plan'"):
        detect_drift(reference, reference.drop(columns="plan"))


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"psi_moderate": 0.3, "psi_drift": 0.25}, "0 < moderate < drift"),
        ({"alpha": 0}, "alpha must be between 0 and 1"),
        ({"min_samples": 0}, "min_samples must be a whole number"),
        ({"min_samples": 2.5}, "min_samples must be a whole number"),
        ({"drifted_share": 1.0}, "drifted_share must be"),
        ({"bins": 1}, "bins must be"),
        ({"epsilon": 0}, "epsilon must be"),
    ],
)
def test_invalid_settings_are_refused_with_the_reason(settings, message):
    with pytest.raises(UserError, match=message):
        DriftSettings(**settings)


def test_other_bad_inputs_are_refused_clearly():
    reference = frame(300, seed=1)
    with pytest.raises(UserError, match=r"reference .* is empty"):
        detect_drift(reference.iloc[:0], reference)
    with pytest.raises(UserError, match="importance of 'a' must be a finite number"):
        detect_drift(reference, reference, importances={"a": -1})
    with pytest.raises(UserError, match="needs both reference scores and current scores"):
        detect_drift(reference, reference, reference_scores=[0.1, 0.2])
    with pytest.raises(UserError, match="no features"):
        detect_drift(reference, reference, features=[])
