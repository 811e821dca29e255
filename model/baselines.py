"""The two yardsticks a churn model must beat: the class prior and a logistic regression.

The majority model (``DummyClassifier(strategy="prior")``) gives every client the churn rate,
so its PR-AUC is the churn rate: anything below is worse than not modelling at all.  The
logistic regression is the simple, strong linear model a careful analyst would fit first; it
needs scaled numbers and one-hot categories (LightGBM needs neither), hence its own pipeline
on top of the shared encoded matrix: standardised numeric columns, one-hot categorical codes
(unseen levels, coded as missing, map to no column).  Both baselines get their threshold by
the same out-of-fold rule as LightGBM (see model/threshold.py), so the comparison is fair.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.compose import ColumnTransformer
from sklearn.dummy import DummyClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler


def majority_baseline() -> DummyClassifier:
    return DummyClassifier(strategy="prior")


def logistic_baseline(numeric: list[int], categorical: list[int], seed: int = 0) -> Pipeline:
    """Scaled numeric + one-hot categorical columns → L2 logistic regression."""
    columns = ColumnTransformer(
        [
            ("numeric", StandardScaler(), numeric),
            ("categorical", OneHotEncoder(handle_unknown="ignore", min_frequency=5), categorical),
        ],
        remainder="drop",
    )
    return Pipeline([("columns", columns), ("model", LogisticRegression(max_iter=2000, random_state=seed))])


def out_of_fold_proba(estimator: BaseEstimator | Pipeline, x: np.ndarray, y: np.ndarray,
                      folds: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """Churn probability of each held-out row from a clone fitted on that fold's other rows;
    NaN for rows no fold holds out (out-of-time folds score only the validation dates)."""
    scores = np.full(len(y), np.nan)
    for fit_rows, held_out in folds:
        fitted = fit_proba(estimator, x[fit_rows], y[fit_rows])
        scores[held_out] = fitted.predict_proba(x[held_out])[:, 1]  # type: ignore[attr-defined]
    return scores


def fit_proba(estimator: BaseEstimator | Pipeline, x: np.ndarray, y: np.ndarray) -> ClassifierMixin:
    """A fitted clone (the estimator passed in stays untouched)."""
    fitted: ClassifierMixin = clone(estimator).fit(x, y)
    return fitted


__all__ = ["fit_proba", "logistic_baseline", "majority_baseline", "out_of_fold_proba"]
