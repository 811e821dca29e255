"""Map raw model scores to calibrated churn probabilities with a strictly increasing curve.

Why calibrate: the drift monitor estimates performance without labels (CBPE), which only
works when a score of 0.3 really means "3 in 10 such clients leave".  Why *centred* isotonic
regression rather than plain isotonic: plain isotonic regression is a step function, so many
raw scores share one probability; a threshold on the calibrated scale could then only land on
a few coarse steps, and moving to the next step can flag hundreds of extra clients.  Placing one
knot at the centre of each isotonic block and interpolating linearly between the knots keeps the
calibration of the blocks but is strictly increasing, so a threshold chosen on raw scores maps to
exactly the same set of flagged clients on the calibrated scale.  Beyond the outermost knots
(and inside blocks of pure stayers or pure churners at the ends) the curve would still be flat,
so it is blended with the identity by a negligible weight (1e-6): strictly increasing
everywhere, hence the calibrated scores rank clients exactly like the raw ones (same ROC-AUC
and PR-AUC) while no probability moves by more than one in a million.  The fitted curve is two
plain arrays, stored as JSON in the model artifact.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from sklearn.isotonic import IsotonicRegression

IDENTITY_WEIGHT = 1e-6


class CenteredIsotonicCalibrator:
    """Piecewise-linear, strictly increasing map from raw score in [0, 1] to probability."""

    def fit(self, scores: np.ndarray, labels: np.ndarray) -> CenteredIsotonicCalibrator:
        scores = np.asarray(scores, dtype="float64")
        labels = np.asarray(labels, dtype="float64")
        order = np.argsort(scores, kind="mergesort")
        xs, ys = scores[order], labels[order]
        fitted = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(xs, ys).predict(xs)
        # Blocks are the runs of equal fitted value; each contributes its centre as a knot.
        starts = np.flatnonzero(np.r_[True, np.diff(fitted) != 0])
        ends = np.r_[starts[1:], len(xs)]
        knots_x = np.array([xs[a:b].mean() for a, b in zip(starts, ends, strict=True)])
        knots_y = fitted[starts]
        # Anchor the ends so that the curve keeps rising over the whole [0, 1] score range.
        if knots_x[0] > 0.0:
            knots_x, knots_y = np.r_[0.0, knots_x], np.r_[min(0.0, knots_y[0]), knots_y]
        if knots_x[-1] < 1.0:
            knots_x, knots_y = np.r_[knots_x, 1.0], np.r_[knots_y, max(1.0, knots_y[-1])]
        self.x_ = knots_x.astype("float64")
        self.y_ = knots_y.astype("float64")
        return self

    def transform(self, scores: np.ndarray) -> np.ndarray:
        raw = np.asarray(scores, dtype="float64")
        return (1.0 - IDENTITY_WEIGHT) * np.interp(raw, self.x_, self.y_) + IDENTITY_WEIGHT * raw

    def transform_one(self, score: float) -> float:
        return float((1.0 - IDENTITY_WEIGHT) * np.interp(score, self.x_, self.y_) + IDENTITY_WEIGHT * score)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "centered_isotonic", "x": self.x_.tolist(), "y": self.y_.tolist()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CenteredIsotonicCalibrator:
        calibrator = cls()
        calibrator.x_ = np.asarray(data["x"], dtype="float64")
        calibrator.y_ = np.asarray(data["y"], dtype="float64")
        if calibrator.x_.shape != calibrator.y_.shape or calibrator.x_.size < 2:
            raise ValueError("calibration knots are malformed")
        return calibrator


__all__ = ["CenteredIsotonicCalibrator"]
