"""Charts draw CRM labels as written ("$60K - $80K" is not maths), say what their axes mean in
plain words, and the confusion matrix names its axes."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.text import Text

from model.artifact import Contribution
from model.card import _confusion_chart, _importance_chart
from model.monitoring.charts import drift_figure
from model.monitoring.drift import DriftSettings, detect_drift
from model.scoring import SCORED, ScoreResult, contribution_figure

INCOME = "$60K - $80K"


def shown(figure: Figure) -> list[str]:
    """Every text of the figure as matplotlib will draw it, failing on any that it reads as maths."""
    figure.canvas.draw()  # lays out tick labels
    texts = []
    for artist in figure.findobj(Text):
        raw = artist.get_text()
        drawn, is_maths = artist._preprocess_math(raw)
        assert not is_maths, f"{raw!r} would be drawn as mathtext"
        texts.append(drawn)
    return texts


def test_the_why_chart_keeps_dollar_labels_and_says_which_way_risk_goes() -> None:
    result = ScoreResult(client_id="C$1", status=SCORED, message="", probability=0.42, risk_band="medium",
                         flagged=True, threshold=0.2, model_version="v1",
                         reasons=(Contribution("Income_Category", INCOME, 0.6), Contribution("tenure", 3, -0.2)))

    texts = shown(contribution_figure(result))

    assert any(f"Income_Category = {INCOME}" in text for text in texts), texts
    assert any(text.startswith("Client C$1: 42.0%") for text in texts)
    axis = contribution_figure(result).axes[0].get_xlabel()
    assert "pushes risk up" in axis and "pushes risk down" in axis and "log-odds" not in axis


def test_the_drift_chart_keeps_dollar_levels_and_feature_names() -> None:
    rng = np.random.default_rng(0)
    levels = np.array(["Less than $40K", "$40K - $60K", INCOME])
    reference = pd.DataFrame({"Income $ band": rng.choice(levels, 600, p=[0.6, 0.3, 0.1])})
    current = pd.DataFrame({"Income $ band": rng.choice(levels, 600, p=[0.1, 0.3, 0.6])})
    report = detect_drift(reference, current, kinds={"Income $ band": "categorical"},
                          settings=DriftSettings(min_samples=100))

    texts = shown(drift_figure(report))

    assert any(INCOME in text for text in texts), texts
    assert any(text.startswith("Income $ band") for text in texts), texts


def test_the_card_charts_keep_dollar_feature_names_and_the_matrix_names_its_axes() -> None:
    importances = shown(_importance_chart({"Spend in $ last month": 0.7, "tenure": 0.3}))
    matrix = _confusion_chart({"tn": 50, "fp": 10, "fn": 3, "tp": 20, "threshold": 0.25})

    assert "Spend in $ last month" in importances
    axes = matrix.axes[0]
    assert (axes.get_xlabel(), axes.get_ylabel()) == ("Predicted", "Actual")
