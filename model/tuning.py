"""LightGBM hyperparameter search: Optuna TPE over cross-validation on the training split.

Why this shape:

* cross-validation (stratified, seeded folds, the same folds for every trial) on the training
  split only, so validation and test rows never influence the chosen parameters;
* early stopping inside the CV (LightGBM's ``cv`` stops when the mean fold PR-AUC stops
  improving), which also picks the number of boosting rounds the final model uses;
* the objective is the mean fold PR-AUC (average precision): it rewards ranking churners
  above stayers across the whole high-recall region the threshold lands in, and is far less
  noisy than "precision at exactly 90 % recall" on a few hundred positives per fold;
* a wall-clock budget (``tuning_seconds``) and a trial cap; the first two trials are sensible
  fixed configurations, so the search can only improve on them;
* one Optuna worker and two LightGBM threads: LightGBM's OpenMP pool and fork-based
  parallelism do not mix, and deterministic LightGBM needs a fixed thread count.  The
  number of completed trials depends on the machine's speed, so results for one seed are
  identical only when the same trials complete.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import lightgbm as lgb
import numpy as np
import optuna

from model.split import cv_folds

MAX_ROUNDS = 3000
EARLY_STOPPING_ROUNDS = 60
THREADS = 2

# The first trials: moderate trees and learning rate — a robust default on tabular churn data —
# then small, heavily regularised trees, which win where effects are nearly additive (Telco).
DEFAULT_TRIAL: dict[str, Any] = {
    "learning_rate": 0.05,
    "num_leaves": 15,
    "min_child_samples": 20,
    "feature_fraction": 0.8,
    "bagging_fraction": 0.8,
    "lambda_l2": 1.0,
    "cat_smooth": 10.0,
}
ADDITIVE_TRIAL: dict[str, Any] = {
    "learning_rate": 0.04,
    "num_leaves": 4,
    "min_child_samples": 50,
    "feature_fraction": 0.7,
    "bagging_fraction": 0.8,
    "lambda_l2": 10.0,
    "cat_smooth": 20.0,
}


def base_params(seed: int) -> dict[str, Any]:
    """Parameters every LightGBM fit shares: deterministic for a seed, two threads, quiet."""
    return {
        "objective": "binary",
        "verbosity": -1,
        "seed": seed,
        "deterministic": True,
        "force_row_wise": True,
        "num_threads": THREADS,
        "feature_pre_filter": False,
        "bagging_freq": 1,
    }


def dataset(x: np.ndarray, y: np.ndarray, categorical: list[int]) -> lgb.Dataset:
    return lgb.Dataset(x, label=y, categorical_feature=categorical, free_raw_data=False,
                       params={"verbosity": -1, "feature_pre_filter": False})


@dataclass
class TuningResult:
    """The winning parameters and how the search went (for the report)."""

    params: dict[str, Any]
    best_rounds: int
    cv_pr_auc: float
    trials: int
    seconds: float
    stopped_by: str
    history: list[dict[str, Any]] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        tuned = {key: self.params[key] for key in DEFAULT_TRIAL}
        return {
            "trials": self.trials,
            "best_params": {**tuned, "num_boost_round": self.best_rounds},
            "cv_pr_auc": self.cv_pr_auc,
            "seconds": round(self.seconds, 2),
            "stopped_by": self.stopped_by,
            "objective": "mean fold PR-AUC (average precision), early stopping inside CV",
        }


def suggest(trial: optuna.Trial) -> dict[str, Any]:
    return {
        "learning_rate": trial.suggest_float("learning_rate", 0.01, 0.2, log=True),
        "num_leaves": trial.suggest_int("num_leaves", 3, 63, log=True),
        "min_child_samples": trial.suggest_int("min_child_samples", 5, 200, log=True),
        "feature_fraction": trial.suggest_float("feature_fraction", 0.3, 1.0),
        "bagging_fraction": trial.suggest_float("bagging_fraction", 0.5, 1.0),
        "lambda_l2": trial.suggest_float("lambda_l2", 1e-3, 50.0, log=True),
        "cat_smooth": trial.suggest_float("cat_smooth", 1.0, 100.0, log=True),
    }


class _OutOfTime(Exception):
    """Raised inside a CV run when the search budget is spent (the trial is then dropped)."""


def _deadline(at: float) -> Callable[[Any], None]:
    def check(_env: Any) -> None:
        if time.perf_counter() > at:
            raise _OutOfTime
    return check


def cross_validate(params: dict[str, Any], x: np.ndarray, y: np.ndarray, categorical: list[int],
                   folds: list[tuple[np.ndarray, np.ndarray]], deadline: float | None = None) -> tuple[float, int]:
    """Mean fold PR-AUC at the early-stopped round, and that round."""
    callbacks: list[Callable[[Any], None]] = [lgb.early_stopping(EARLY_STOPPING_ROUNDS, verbose=False)]
    if deadline is not None:
        callbacks.append(_deadline(deadline))
    result = lgb.cv(
        {**params, "metric": "average_precision"},
        dataset(x, y, categorical),
        num_boost_round=MAX_ROUNDS,
        folds=folds,
        callbacks=callbacks,
    )
    curve: list[float] = result["valid average_precision-mean"]  # type: ignore[assignment]
    return float(curve[-1]), len(curve)


def tune_lightgbm(
    x: np.ndarray,
    y: np.ndarray,
    *,
    categorical: list[int],
    seed: int,
    seconds: float,
    max_trials: int,
    n_folds: int,
    progress: Callable[[str], None] | None = None,
    groups: np.ndarray | None = None,
) -> TuningResult:
    """Search LightGBM parameters within ``seconds`` (at most ``max_trials`` trials); with
    ``groups`` the CV folds keep each client's rows together (``model.split.cv_folds``)."""
    started = time.perf_counter()
    folds = cv_folds(y, n_folds, seed, groups)
    rounds: dict[int, int] = {}
    history: list[dict[str, Any]] = []

    deadline = started + seconds

    def objective(trial: optuna.Trial) -> float:
        params = {**base_params(seed), **suggest(trial)}
        # The first trial always completes (a model is needed); later ones stop at the deadline,
        # so one slow trial on a big data set cannot overrun the budget by much.
        try:
            score, best = cross_validate(params, x, y, categorical, folds,
                                         deadline=None if trial.number == 0 else deadline)
        except _OutOfTime:
            raise optuna.TrialPruned("time budget spent") from None
        rounds[trial.number] = best
        history.append({"trial": trial.number, "cv_pr_auc": score, "rounds": best})
        if progress is not None:
            progress(f"tuning {trial.number + 1}/{max_trials} trials, {time.perf_counter() - started:.0f}/"
                     f"{seconds:.0f} s (best CV PR-AUC {max(item['cv_pr_auc'] for item in history):.3f})")
        return score

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed))
    study.enqueue_trial(DEFAULT_TRIAL)
    study.enqueue_trial(ADDITIVE_TRIAL)
    study.optimize(objective, n_trials=max_trials, timeout=seconds, n_jobs=1, gc_after_trial=False)
    best = study.best_trial
    elapsed = time.perf_counter() - started
    return TuningResult(
        params={**base_params(seed), **best.params},
        best_rounds=rounds[best.number],
        cv_pr_auc=float(best.value) if best.value is not None else float("nan"),
        trials=len(history),
        seconds=elapsed,
        stopped_by="trials" if len(history) >= max_trials else "time",
        history=history,
    )




def fit_booster(params: dict[str, Any], rounds: int, x: np.ndarray, y: np.ndarray, categorical: list[int]
                ) -> lgb.Booster:
    """One LightGBM fit with a fixed number of rounds (no early stopping: the rounds come from the CV)."""
    return lgb.train({**params, "metric": "None"}, dataset(x, y, categorical), num_boost_round=max(int(rounds), 1))


def out_of_fold_boosting(params: dict[str, Any], rounds: int, x: np.ndarray, y: np.ndarray, categorical: list[int],
                         folds: list[tuple[np.ndarray, np.ndarray]],
                         progress: Callable[[str], None] | None = None) -> np.ndarray:
    """Raw LightGBM probability of each row from a booster that did not see the row."""
    scores = np.full(len(y), np.nan)
    for number, (fit_rows, held_out) in enumerate(folds, start=1):
        if progress is not None:
            progress(f"out-of-fold scores {number}/{len(folds)}")
        booster = fit_booster(params, rounds, x[fit_rows], y[fit_rows], categorical)
        scores[held_out] = booster.predict(x[held_out], num_threads=THREADS)
    return scores


__all__ = [
    "ADDITIVE_TRIAL",
    "DEFAULT_TRIAL",
    "TuningResult",
    "base_params",
    "cross_validate",
    "dataset",
    "fit_booster",
    "out_of_fold_boosting",
    "tune_lightgbm",
]
