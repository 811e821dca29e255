"""Metrics match scikit-learn and stay JSON-friendly."""

import json

import numpy as np
import pytest
from sklearn import metrics as sk

from model.evaluation import classification_metrics, rounded


def test_metrics_agree_with_sklearn():
    rng = np.random.default_rng(0)
    y = (rng.random(500) < 0.3).astype(int)
    p = np.clip(0.3 * y + rng.random(500) * 0.7, 0, 1)

    got = classification_metrics(y, p, 0.4)

    flagged = (p >= 0.4).astype(int)
    assert got["precision"] == pytest.approx(sk.precision_score(y, flagged))
    assert got["recall"] == pytest.approx(sk.recall_score(y, flagged))
    assert got["f1"] == pytest.approx(sk.f1_score(y, flagged))
    assert got["accuracy"] == pytest.approx(sk.accuracy_score(y, flagged))
    assert got["roc_auc"] == pytest.approx(sk.roc_auc_score(y, p))
    assert got["pr_auc"] == pytest.approx(sk.average_precision_score(y, p))
    assert got["brier"] == pytest.approx(sk.brier_score_loss(y, p))
    tn, fp, fn, tp = sk.confusion_matrix(y, flagged).ravel()
    assert (got["tn"], got["fp"], got["fn"], got["tp"]) == (tn, fp, fn, tp)
    assert got["flagged"] == tp + fp and got["flagged_share"] == pytest.approx((tp + fp) / 500)
    assert got["rows"] == 500 and got["positives"] == int(y.sum())
    json.dumps(got, allow_nan=False)


def test_threshold_is_inclusive():
    got = classification_metrics(np.array([1, 0]), np.array([0.5, 0.49]), 0.5)

    assert (got["tp"], got["fp"]) == (1, 0)


def test_single_class_rows_give_none_for_ranking_metrics():
    got = classification_metrics(np.zeros(10), np.linspace(0, 1, 10), 0.5)

    assert got["roc_auc"] is None and got["pr_auc"] is None
    assert got["recall"] == 0.0 and got["fp"] == 5


def test_mismatched_lengths_are_an_error():
    with pytest.raises(ValueError):
        classification_metrics(np.zeros(3), np.zeros(4), 0.5)


def test_rounded_keeps_ints_and_none():
    assert rounded({"a": 0.123456, "b": 3, "c": None}) == {"a": 0.1235, "b": 3, "c": None}
