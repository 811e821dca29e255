"""The whole training lifecycle on a labelled frame: split → encode → tune → threshold → evaluate → gate.

Order and data use (why each split is touched when):

1. Split 70 % train / 10 % validation / 20 % test, stratified, fixed by the seed.
2. Fit the feature encoder on *train* (medians, levels, ratios) and encode every row with it.
3. Tune LightGBM by cross-validation on *train* only; the CV's early stopping fixes the number
   of boosting rounds.
4. Score *train + validation* out of fold (``n_folds`` boosters with the tuned parameters and
   that number of rounds).  Those scores set the threshold (model/threshold.py) and fit the
   calibration (model/calibration.py).
5. The final booster is trained on all of *train + validation* with the same parameters and
   the same number of rounds.  It is each fold booster's twin on 1/(n_folds−1) more rows, so
   its scores on new clients behave like the out-of-fold scores — which is what makes the
   out-of-fold threshold and calibration valid for it; the extra rows can only sharpen it.
   (Retraining on train with early stopping on validation would have left the threshold to
   the 10 % validation split alone, the very noise the recall guarantee has to beat.)
6. The baselines go through the same out-of-fold threshold rule on the same folds.
7. Only now is *test* scored — once, by every model and by the current champion — and the
   acceptance gate and the ROI are computed on it.  The champion is compared with the new model
   only on the test clients it never trained on (the artifact records its training clients):
   on its own training rows it would look better than it is.  Too few such rows, or a champion
   that does not know its training clients, and the comparison is skipped with a note instead
   of deciding on an unfair one.

Everything the registry, the model card and the bot need comes back in ``TrainingOutcome``;
the report is plain JSON (floats, ints, strings, lists, dicts).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd

from model.artifact import ChurnModel
from model.backtest import Scored, backtest_rows
from model.baselines import fit_proba, logistic_baseline, majority_baseline, out_of_fold_proba
from model.business import campaign_roi
from model.calibration import CenteredIsotonicCalibrator
from model.config import TrainConfig
from model.evaluation import classification_metrics
from model.features import FeatureEncoder
from model.gate import acceptance_gate
from model.monitoring.performance import recall_interval
from model.signal import assess_signal
from model.split import TEST_SHARE, VALIDATION_SHARE
from model.threshold import ThresholdChoice, choose_threshold, rule_description
from model.tuning import fit_booster, out_of_fold_boosting, tune_lightgbm
from model.validation import AS_OF, evaluation_positives, plan_validation
from storage.errors import UserError
from storage.schema import Schema

MIN_ROWS = 200
MIN_POSITIVES = 50
MIN_NEGATIVES = 50
# Below this, PR-AUC and recall on the champion's unseen test rows are too noisy to judge by.
MIN_FRESH_ROWS = 200
MIN_FRESH_POSITIVES = 30
MIN_FRESH_NEGATIVES = 30


@dataclass
class TrainingOutcome:
    """The trained model, its JSON report and the test-split material the model card draws."""

    model: ChurnModel
    report: dict[str, Any]
    test_frame: pd.DataFrame
    test_labels: np.ndarray
    test_scores: dict[str, np.ndarray] = field(default_factory=dict)
    thresholds: dict[str, float] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return bool(self.report["gate"]["passed"])


def check_training_data(frame: pd.DataFrame, schema: Schema) -> np.ndarray:
    """The labels as 0/1 ints, or a clear refusal when the data cannot support a model."""
    if schema.label_column not in frame.columns:
        raise UserError(f"the training data has no label column {schema.label_column!r}",
                        column=schema.label_column)
    raw = pd.to_numeric(frame[schema.label_column], errors="coerce")
    bad = ~raw.isin([0, 1])
    if bool(bad.any()):
        examples = frame.loc[bad, schema.label_column].astype(str).head(3).tolist()
        raise UserError(f"{int(bad.sum())} rows have a label other than 0/1 (e.g. {examples}); "
                        "only labelled clients can be used for training", rows=int(bad.sum()))
    labels = raw.to_numpy(dtype="int64")
    rows, positives = len(labels), int(labels.sum())
    negatives = rows - positives
    if rows < MIN_ROWS or positives < MIN_POSITIVES or negatives < MIN_NEGATIVES:
        raise UserError(
            f"too little labelled data to train: {rows} rows with {positives} churners and {negatives} "
            f"non-churners; need at least {MIN_ROWS} rows, {MIN_POSITIVES} churners and {MIN_NEGATIVES} "
            "non-churners (the test split alone must hold enough churners to check the recall target)",
            rows=rows, positives=positives, negatives=negatives,
        )
    return labels


def train_lifecycle(
    frame: pd.DataFrame,
    *,
    schema: Schema,
    config: TrainConfig,
    champion: ChurnModel | None = None,
    progress: Callable[[str], None] | None = None,
    group_column: str | None = None,
    metadata: dict[str, Any] | None = None,
) -> TrainingOutcome:
    """Train, evaluate and gate a churn model on the labelled ``frame`` (see the module docstring).

    The frame holds one row per client and as-of date: the schema's id column, ``AS_OF``
    (optional: without it the rows have one date), the features and the label.  A client
    with rows at several dates is kept on one side of every random split (``group_column``,
    default the id column); with enough dates the validation is out of time
    (model/validation.py).  ``metadata`` is stored with the model (how its features are built,
    for scoring)."""
    started = time.perf_counter()

    def say(message: str) -> None:
        if progress is not None:
            progress(message)

    say("preparing data")
    labels = check_training_data(frame, schema)
    frame = frame.reset_index(drop=True)
    as_of = frame[AS_OF] if AS_OF in frame.columns else None
    if as_of is not None and not schema.ignores(AS_OF):
        schema = schema.with_ignored(AS_OF)
    groups = _groups(frame, group_column or (schema.id_column if schema.id_column in frame.columns else None))
    if groups is not None and len(np.unique(groups)) == len(groups):
        groups = None  # one row per client: nothing to keep together
    plan = plan_validation(labels, seed=config.seed, n_folds=config.n_folds, as_of=as_of, groups=groups,
                           horizon_days=config.churn_horizon_days, min_dates=config.out_of_time_min_dates)
    say(f"validation: {plan.kind.replace('_', ' ')} ({plan.reason})")
    encoder = FeatureEncoder().fit(frame.iloc[plan.train], schema)
    if not encoder.feature_names_:
        raise UserError("no usable feature columns: every column is the id, the label, ignored, empty or constant",
                        dropped=encoder.dropped_columns_)
    matrix = encoder.transform(frame)
    categorical, numeric = encoder.categorical_indices_, encoder.numeric_indices_
    fit_rows, test_rows = plan.fit, plan.test
    x_fit, y_fit = matrix[fit_rows], labels[fit_rows]
    x_test, y_test = matrix[test_rows], labels[test_rows]
    # The rule guards against the noise of one evaluation period (out of time: a date like the
    # validation dates; random: a test split's worth of clients), counted without a test label.
    eval_positives = evaluation_positives(plan, labels)

    tuning = tune_lightgbm(
        matrix[plan.train], labels[plan.train], categorical=categorical, seed=config.seed,
        seconds=config.tuning_seconds, max_trials=config.max_trials, n_folds=config.n_folds, progress=say,
        groups=None if groups is None else groups[plan.train],
    )
    folds = plan.folds
    oof_raw = out_of_fold_boosting(tuning.params, tuning.best_rounds, x_fit, y_fit, categorical, folds, progress=say)
    scored = plan.scored

    say("threshold")
    choice = choose_threshold(oof_raw[scored], y_fit[scored], target=config.recall_target,
                              n_positives_eval=eval_positives, z=config.confidence_z,
                              dispersion=config.recall_dispersion)
    calibrator = CenteredIsotonicCalibrator().fit(oof_raw[scored], y_fit[scored])
    threshold = calibrator.transform_one(choice.threshold)
    oof_proba = np.full(len(y_fit), np.nan)
    oof_proba[scored] = calibrator.transform(oof_raw[scored])

    say("final model")
    booster = fit_booster(tuning.params, tuning.best_rounds, x_fit, y_fit, categorical)
    fit_dates = sorted({pd.Timestamp(d).isoformat() for d in as_of.iloc[fit_rows]}) if as_of is not None else []
    metadata = {
        "trained_at": datetime.now(UTC).replace(tzinfo=None).isoformat(timespec="seconds"),
        "seed": config.seed,
        "recall_target": config.recall_target,
        "raw_threshold": choice.threshold,
        "params": _plain(tuning.params),
        "num_boost_round": tuning.best_rounds,
        "lightgbm_version": lgb.__version__,
        "schema": schema.as_dict(),
        "training_rows": len(fit_rows),
        "training_dates": fit_dates,
        "validation_kind": plan.kind,
        "horizon_days": config.churn_horizon_days,
        **(metadata or {}),
    }
    model = ChurnModel(booster, encoder, calibrator, threshold, metadata=metadata)
    model.set_reference(_reference_rows(frame.iloc[fit_rows], as_of), seed=config.seed)
    if schema.id_column in frame.columns:
        model.set_training_ids(frame[schema.id_column].iloc[fit_rows])

    say("baselines")
    baselines: dict[str, tuple[ThresholdChoice, np.ndarray, np.ndarray]] = {}
    for name, estimator in (("majority", majority_baseline()),
                            ("logistic", logistic_baseline(numeric, categorical, config.seed))):
        oof = out_of_fold_proba(estimator, x_fit, y_fit, folds)
        own = choose_threshold(oof[scored], y_fit[scored], target=config.recall_target,
                               n_positives_eval=eval_positives, z=config.confidence_z,
                               dispersion=config.recall_dispersion)
        fitted = fit_proba(estimator, x_fit, y_fit)
        baselines[name] = (own, oof, np.asarray(fitted.predict_proba(x_test)[:, 1], dtype="float64"))  # type: ignore[attr-defined]

    say("evaluating on the test split")
    test_frame = frame.iloc[test_rows].reset_index(drop=True)
    test_scores = {"lightgbm": model.predict_proba_frame(test_frame)}
    thresholds = {"lightgbm": threshold}
    test_metrics = {"lightgbm": classification_metrics(y_test, test_scores["lightgbm"], threshold)}
    for name, (own, _, scores) in baselines.items():
        test_scores[name], thresholds[name] = scores, own.threshold
        test_metrics[name] = classification_metrics(y_test, scores, own.threshold)

    comparison: ChampionComparison | None = None
    if champion is not None:
        say("comparing with the champion")
        comparison = compare_with_champion(champion, test_frame, y_test, test_scores["lightgbm"], threshold,
                                           id_column=schema.id_column)
        if comparison.champion is not None:
            test_metrics["champion"] = comparison.champion
            if comparison.scores is not None:
                test_scores["champion"], thresholds["champion"] = comparison.scores, champion.threshold_

    gate = acceptance_gate(
        test_metrics, recall_target=config.recall_target, champion_tolerance=config.champion_tolerance,
        champion=comparison.champion if comparison is not None else None,
        champion_note=comparison.note if comparison is not None else None,
        champion_candidate=comparison.challenger if comparison is not None else None,
        champion_rows=comparison.rows_description if comparison is not None else "the same test rows",
    )
    lgb_test = test_metrics["lightgbm"]
    roi = campaign_roi(true_positives=lgb_test["tp"], flagged=lgb_test["flagged"], rows=lgb_test["rows"],
                       contact_cost=config.contact_cost, retained_value=config.retained_value,
                       offer_success_rate=config.offer_success_rate)
    where = "on the newest period, out of time" if plan.out_of_time else "on the test clients"
    signal = assess_signal(lgb_test, roi=roi.get("roi"), recall_target=config.recall_target, where=where)

    logistic_own, logistic_oof, logistic_test = baselines["logistic"]
    backtest = backtest_rows(
        pd.concat([frame[AS_OF].iloc[fit_rows], frame[AS_OF].iloc[test_rows]]).to_numpy()
        if as_of is not None else np.zeros(len(fit_rows) + len(test_rows), dtype="datetime64[ns]"),
        np.concatenate([y_fit, y_test]),
        {"validation": {"lightgbm": Scored(np.concatenate([oof_proba, np.full(len(y_test), np.nan)]), threshold),
                        "logistic": Scored(np.concatenate([logistic_oof, np.full(len(y_test), np.nan)]),
                                           logistic_own.threshold)},
         "test": {"lightgbm": Scored(np.concatenate([np.full(len(y_fit), np.nan), test_scores["lightgbm"]]), threshold),
                  "logistic": Scored(np.concatenate([np.full(len(y_fit), np.nan), logistic_test]),
                                     logistic_own.threshold)}},
    ) if plan.out_of_time else []
    validated = classification_metrics(y_fit[scored], oof_proba[scored], threshold)
    predicted = _predicted_recall(choice, validated)

    report: dict[str, Any] = {
        "threshold": threshold,
        "threshold_rule": {
            **choice.as_dict(),
            "threshold_raw": choice.threshold,
            "threshold": threshold,
            "scale": "calibrated probability (the rule runs on raw out-of-fold scores; the monotone calibration "
                     "maps the raw threshold to this value, flagging exactly the same clients)",
            "description": rule_description(choice),
            "out_of_fold_on": ("the validation dates, each scored by a model of the earlier dates"
                               if plan.out_of_time else "train + validation"),
            "folds": len(folds),
        },
        "validation": {
            **plan.describe(),
            "predicted_recall": predicted,
            "roc_auc": validated.get("roc_auc"),
            "pr_auc": validated.get("pr_auc"),
            "flagged_share": validated.get("flagged_share"),
            "test_roc_auc": lgb_test.get("roc_auc"),
        },
        "backtest": backtest,
        "signal": signal.as_dict(),
        "split": {
            **plan.sizes(labels),
            "shares": ({"train": 1 - TEST_SHARE - VALIDATION_SHARE, "validation": VALIDATION_SHARE,
                        "test": TEST_SHARE} if not plan.out_of_time else None),
            "seed": config.seed,
            "stratified": not plan.out_of_time,
            "kind": plan.kind,
            "grouped_by": schema.id_column if groups is not None and not plan.out_of_time else None,
            "clients": None if groups is None else {
                name: len(np.unique(groups[part]))
                for name, part in (("train", plan.train), ("validation", plan.validation), ("test", plan.test))},
            "dates": plan.dates or None,
        },
        "metrics": {
            "test": test_metrics,
            "validation": {"lightgbm": validated},
            "oof": {"lightgbm": validated},
        },
        "baselines": {
            name: {
                "description": ("DummyClassifier(strategy='prior')" if name == "majority"
                                else "LogisticRegression on StandardScaler + OneHotEncoder"),
                "threshold": own.threshold,
                "threshold_rule": own.as_dict(),
                "test": test_metrics[name],
                "roi": campaign_roi(true_positives=test_metrics[name]["tp"], flagged=test_metrics[name]["flagged"],
                                    rows=test_metrics[name]["rows"], contact_cost=config.contact_cost,
                                    retained_value=config.retained_value,
                                    offer_success_rate=config.offer_success_rate),
            }
            for name, (own, _, _) in baselines.items()
        },
        "roi": roi,
        "processing": {
            "dropped_columns": encoder.dropped_columns_,
            "imputed": encoder.missing_counts(frame),
            "imputation": {"numeric": "training median", "categorical": "most frequent training level",
                           "unseen_levels": "treated as missing by LightGBM"},
            "engineered": [{"name": item.name, "formula": item.formula} for item in encoder.engineered_],
            "scaled_for": "logistic",
            "categorical": encoder.categorical_features_,
            "numeric": [c for c in encoder.raw_columns_ if c not in encoder.categorical_levels_],
            "features": len(encoder.feature_names_),
        },
        "tuning": tuning.summary(),
        "feature_importances": dict(list(model.importances_.items())[:15]),
        "calibration": {"method": "centred isotonic regression on "
                                  + ("out-of-time" if plan.out_of_time else "out-of-fold") + " scores",
                        "knots": len(calibrator.x_)},
        "champion": comparison.as_dict() if comparison is not None else None,
        "gate": gate.as_dict(),
        "config": config.as_dict(),
        "schema": schema.as_dict(),
        "training_seconds": round(time.perf_counter() - started, 2),
    }
    say("done")
    return TrainingOutcome(model=model, report=_plain(report), test_frame=test_frame, test_labels=y_test,
                           test_scores=test_scores, thresholds=thresholds)


def _reference_rows(fit_frame: pd.DataFrame, as_of: pd.Series | None) -> pd.DataFrame:
    """The rows new data are compared with for drift: the newest training date's (what a period
    looks like when it arrives), or every training row when the data have one date."""
    if as_of is None or AS_OF not in fit_frame.columns:
        return fit_frame
    dates = pd.to_datetime(fit_frame[AS_OF])
    return fit_frame.loc[dates == dates.max()]


def _predicted_recall(choice: ThresholdChoice, validated: dict[str, Any]) -> dict[str, Any]:
    """The recall the next period should show: the validation recall at the threshold, with the
    rule's own bound as the promise."""
    positives = int(validated.get("positives") or 0)
    recall = validated.get("recall")
    low, high = recall_interval(int(validated.get("tp") or 0), positives) if positives else (None, None)
    return {"estimate": recall, "low": low, "high": high, "lower_bound": choice.lower_bound,
            "churners": positives}


def _groups(frame: pd.DataFrame, group_column: str | None) -> np.ndarray | None:
    if group_column is None:
        return None
    if group_column not in frame.columns:
        raise UserError(f"the training frame has no group column {group_column!r}", column=group_column)
    groups = frame[group_column]
    if bool(groups.isna().any()):
        raise UserError(f"{int(groups.isna().sum())} training rows have no {group_column!r}", column=group_column)
    return groups.astype(str).to_numpy()


@dataclass
class ChampionComparison:
    """The champion against the new model on the test clients the champion never trained on.

    ``champion`` / ``challenger`` are both models' metrics on those rows, None when the
    comparison was skipped (``note`` says why).  ``scores`` are the champion's scores on the
    whole test split, kept for the model card's charts only when every test row is unseen by it.
    """

    note: str
    champion: dict[str, Any] | None = None
    challenger: dict[str, Any] | None = None
    scores: np.ndarray | None = None
    rows: int = 0
    positives: int = 0
    excluded_rows: int | None = None

    @property
    def compared(self) -> bool:
        return self.champion is not None

    @property
    def rows_description(self) -> str:
        return f"the {self.rows} test rows it never trained on"

    def as_dict(self) -> dict[str, Any]:
        def pick(metrics: dict[str, Any] | None) -> dict[str, Any] | None:
            return None if metrics is None else {key: metrics.get(key) for key in ("pr_auc", "recall")}

        return {"compared": self.compared, "note": self.note, "rows": self.rows, "positives": self.positives,
                "excluded_rows_champion_trained_on": self.excluded_rows,
                "champion": pick(self.champion), "challenger": pick(self.challenger)}


def compare_with_champion(champion: ChurnModel, test_frame: pd.DataFrame, labels: np.ndarray,
                          challenger_scores: np.ndarray, challenger_threshold: float, *, id_column: str
                          ) -> ChampionComparison:
    """Both models' metrics on the test rows whose clients the champion never trained on.

    Columns the champion needs but the data lacks count as missing.  Any failure of the champion
    (another schema, a damaged artifact) is a note, never an abort.
    """
    missing = [c for c in champion.raw_columns_ if c not in test_frame.columns]
    try:
        scores = champion.predict_proba_frame(test_frame)
    except Exception as error:  # a champion from another schema/version must not abort training
        return ChampionComparison(f"the champion could not score the test rows ({type(error).__name__}: {error})")
    seen = champion.trained_on(test_frame[id_column]) if id_column in test_frame.columns else None
    newest = champion.newest_training_date()
    if seen is not None and newest is not None and AS_OF in test_frame.columns:
        # A client the champion learnt from is new to it again at a date after its training period:
        # that is exactly how it is used, month after month.
        seen = seen & (pd.to_datetime(test_frame[AS_OF]).to_numpy() <= np.datetime64(newest))
    if seen is None:
        why = ("its training clients are unknown (an artifact from before they were recorded)"
               if getattr(champion, "training_ids_", None) is None else f"the test rows have no {id_column!r} column")
        return ChampionComparison(f"comparison with the champion skipped: {why}, so the test rows it never "
                                  "trained on cannot be told apart; a comparison on rows it trained on would "
                                  "favour it")
    fresh = ~seen
    rows, positives = int(fresh.sum()), int(labels[fresh].sum())
    negatives = rows - positives
    if rows < MIN_FRESH_ROWS or positives < MIN_FRESH_POSITIVES or negatives < MIN_FRESH_NEGATIVES:
        return ChampionComparison(
            f"comparison with the champion skipped: only {rows} of {len(labels)} test rows ({positives} churners) "
            f"are clients it never trained on; a fair comparison needs at least {MIN_FRESH_ROWS} rows, "
            f"{MIN_FRESH_POSITIVES} churners and {MIN_FRESH_NEGATIVES} non-churners",
            rows=rows, positives=positives, excluded_rows=int(seen.sum()))
    note = (f"champion and challenger compared on the {rows} test rows ({positives} churners) whose clients the "
            f"champion never trained on; {int(seen.sum())} test rows it trained on were left out")
    if missing:
        note += f"; columns it was trained on but the data lacks were treated as missing: {', '.join(missing)}"
    return ChampionComparison(
        note,
        champion=classification_metrics(labels[fresh], scores[fresh], champion.threshold_),
        challenger=classification_metrics(labels[fresh], challenger_scores[fresh], challenger_threshold),
        scores=scores if bool(fresh.all()) else None,
        rows=rows, positives=positives, excluded_rows=int(seen.sum()),
    )


def _plain(value: Any) -> Any:
    """Numpy scalars and containers → JSON-ready Python values (NaN/inf → None)."""
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if isinstance(value, np.ndarray):
        return [_plain(item) for item in value.tolist()]
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        number = float(value)
        return number if math.isfinite(number) else None
    return value


__all__ = ["MIN_FRESH_NEGATIVES", "MIN_FRESH_POSITIVES", "MIN_FRESH_ROWS", "MIN_NEGATIVES", "MIN_POSITIVES",
           "MIN_ROWS", "ChampionComparison", "TrainingOutcome", "check_training_data", "compare_with_champion",
           "train_lifecycle"]
