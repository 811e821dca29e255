"""Charts are real PNG pictures of a sensible size, also drawable from a stored report."""

import io
import json

import numpy as np
import pandas as pd
import pytest
from matplotlib.image import imread

from model.monitoring.charts import RecallPoint, drift_chart, recall_chart, score_chart
from model.monitoring.drift import DriftReport, detect_drift
from model.monitoring.performance import estimate_performance, realised_performance
from storage.errors import UserError

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def picture(data: bytes) -> np.ndarray:
    assert data.startswith(PNG_MAGIC)
    return imread(io.BytesIO(data), format="png")


def report() -> DriftReport:
    rng = np.random.default_rng(1)

    def batch(n, shift):
        return pd.DataFrame({
            "MonthlyCharges": rng.normal(60 + shift, 20, n),
            "tenure": rng.integers(0, 72, n),
            "Contract": rng.choice(["Month-to-month", "One year", "Two year"], n, p=[0.55 + shift / 100, 0.25, 0.2 - shift / 100]),
            "gender": rng.choice(["Female", "Male"], n),
        })  # fmt: skip

    return detect_drift(batch(3000, 0), batch(800, 15), reference_scores=rng.beta(2, 5, 3000),
                        current_scores=rng.beta(3, 4, 800))  # fmt: skip


def test_drift_chart_is_a_png_of_the_top_features_and_is_saved_when_asked(tmp_path):
    target = tmp_path / "charts" / "drift.png"
    data = drift_chart(report(), top_k=3, path=target)
    image = picture(data)
    assert len(data) > 10_000
    assert image.shape[0] > 300 and image.shape[1] > 800  # three panels side by side
    assert target.read_bytes() == data
    assert not list(target.parent.glob("*.part"))


def test_drift_chart_draws_from_a_report_restored_from_json():
    restored = DriftReport.from_dict(json.loads(json.dumps(report().to_dict())))
    data = drift_chart(restored, top_k=6)
    image = picture(data)
    assert image.shape[0] > 300  # four features: two rows of panels
    assert image.std() > 0.05  # not a blank canvas


def test_score_chart_is_a_png():
    rng = np.random.default_rng(2)
    data = score_chart(rng.beta(2, 5, 2000), rng.beta(3, 4, 500), threshold=0.35)
    image = picture(data)
    assert len(data) > 10_000 and image.shape[1] > 500


def test_recall_chart_shows_realised_estimated_and_too_few_churner_points():
    rng = np.random.default_rng(3)
    points = []
    for month, n in enumerate([900, 900, 60, 900], start=1):
        p = rng.beta(1.2, 3, n)
        y = rng.random(n) < p
        points.append(RecallPoint.from_realised(f"2025-{month:02d}", realised_performance(y, p, p > 0.3, target=0.9)))
    points.append(RecallPoint.from_estimate("2025-05", estimate_performance(p, p > 0.3, target=0.9)))
    points.append(RecallPoint("2025-06", None, n_churners=0))
    assert not points[2].reliable and points[0].reliable
    data = recall_chart(points, target=0.9)
    assert len(data) > 10_000
    assert picture(data).shape[1] > 500


@pytest.mark.parametrize(
    ("draw", "message"),
    [
        (lambda: recall_chart([], target=0.9), "at least one point"),
        (lambda: score_chart([], [0.5]), "needs reference and current scores"),
        (lambda: drift_chart(report(), top_k=0), "top_k must be at least 1"),
    ],
)
def test_impossible_charts_are_refused_clearly(draw, message):
    with pytest.raises(UserError, match=message):
        draw()
