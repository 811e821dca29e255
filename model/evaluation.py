"""Test-split metrics for every model, computed the same way so they can sit side by side.

All numbers come from scikit-learn; this module only fixes *which* numbers the report shows
and makes them JSON-friendly (plain floats and ints, ``None`` where a metric is undefined,
e.g. ROC-AUC on rows of a single class).  Threshold metrics use the rule the service
applies: a client is flagged when its probability is >= the model's threshold.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    brier_score_loss,
    confusion_matrix,
    f1_score,
    precision_score,
    recall_score,
    roc_auc_score,
)


def classification_metrics(labels: np.ndarray, probabilities: np.ndarray, threshold: float) -> dict[str, Any]:
    """Accuracy, precision, recall, F1, ROC-AUC, PR-AUC, Brier, share flagged and the confusion matrix."""
    y = np.asarray(labels).astype(int)
    p = np.asarray(probabilities, dtype="float64")
    if y.shape != p.shape:
        raise ValueError(f"{len(y)} labels but {len(p)} probabilities")
    flagged = (p >= threshold).astype(int)
    both_classes = 0 < int(y.sum()) < len(y)
    tn, fp, fn, tp = (int(v) for v in confusion_matrix(y, flagged, labels=[0, 1]).ravel())
    return {
        "rows": len(y),
        "positives": int(y.sum()),
        "threshold": float(threshold),
        "accuracy": float(accuracy_score(y, flagged)) if len(y) else None,
        "precision": float(precision_score(y, flagged, zero_division=0.0)),
        "recall": float(recall_score(y, flagged, zero_division=0.0)),
        "f1": float(f1_score(y, flagged, zero_division=0.0)),
        "roc_auc": float(roc_auc_score(y, p)) if both_classes else None,
        "pr_auc": float(average_precision_score(y, p)) if both_classes else None,
        "brier": float(brier_score_loss(y, p, labels=[0, 1])) if len(y) else None,
        "flagged": int(flagged.sum()),
        "flagged_share": float(flagged.mean()) if len(y) else None,
        "tn": tn,
        "fp": fp,
        "fn": fn,
        "tp": tp,
    }


def rounded(metrics: dict[str, Any], digits: int = 4) -> dict[str, Any]:
    """The same metrics with floats rounded for display (ints and None unchanged)."""
    return {
        key: (round(value, digits) if isinstance(value, float) and math.isfinite(value) else value)
        for key, value in metrics.items()
    }


__all__ = ["classification_metrics", "rounded"]
