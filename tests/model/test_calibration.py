"""Centred isotonic calibration: calibrated, strictly increasing, exact threshold transfer."""

import numpy as np
import pytest

from model.calibration import CenteredIsotonicCalibrator


def skewed_scores(rows=20000, seed=0):
    """Raw scores that overstate risk: the true churn probability is score**2."""
    rng = np.random.default_rng(seed)
    scores = rng.random(rows)
    labels = (rng.random(rows) < scores**2).astype(int)
    return scores, labels


def test_calibrated_probabilities_match_observed_rates():
    scores, labels = skewed_scores()

    calibrator = CenteredIsotonicCalibrator().fit(scores, labels)

    grid = np.linspace(0.1, 0.9, 9)
    assert np.abs(calibrator.transform(grid) - grid**2).max() < 0.06


def test_curve_is_strictly_increasing_everywhere_so_thresholds_transfer_exactly():
    scores, labels = skewed_scores(rows=3000, seed=1)
    calibrator = CenteredIsotonicCalibrator().fit(scores, labels)
    grid = np.linspace(0, 1, 5001)

    assert (np.diff(calibrator.transform(grid)) > 0).all()
    raw_threshold = np.quantile(scores, 0.4)
    calibrated = calibrator.transform(scores)
    np.testing.assert_array_equal(scores >= raw_threshold, calibrated >= calibrator.transform_one(raw_threshold))


def test_round_trip_through_plain_lists():
    scores, labels = skewed_scores(rows=2000, seed=2)
    calibrator = CenteredIsotonicCalibrator().fit(scores, labels)

    again = CenteredIsotonicCalibrator.from_dict(calibrator.to_dict())

    np.testing.assert_array_equal(again.transform(scores), calibrator.transform(scores))
    assert all(isinstance(v, float) for v in calibrator.to_dict()["x"])
    assert again.transform_one(0.3) == pytest.approx(float(calibrator.transform(np.array([0.3]))[0]), abs=1e-15)


def test_malformed_knots_are_refused():
    with pytest.raises(ValueError):
        CenteredIsotonicCalibrator.from_dict({"x": [0.0, 1.0], "y": [0.5]})
