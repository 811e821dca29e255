"""Quality benchmark: does the recall guarantee hold, and does tuning beat the peers?

For each dataset and seed, ChurnGuard's own lifecycle (default settings) is trained; then, on
the *same* split and with the *same* out-of-fold threshold rule, three peers: logistic
regression, LightGBM with default parameters, and scikit-learn's HistGradientBoosting.
Targets (issue 3): test recall >= 0.90 in >= 9 of 10 seeds on every dataset, and ChurnGuard's
mean precision at that point no lower than the best peer's.

    python bench/quality.py                    # 4 datasets x 10 seeds (about 30 min on 2 cores)
    python bench/quality.py --seeds 2 --tuning-seconds 5 --datasets telco   # smoke run

Prints a table and writes bench/results/quality.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.model_selection import StratifiedKFold

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from model.baselines import fit_proba, logistic_baseline  # noqa: E402
from model.config import TrainConfig  # noqa: E402
from model.evaluation import classification_metrics  # noqa: E402
from model.features import FeatureEncoder  # noqa: E402
from model.lifecycle import train_lifecycle  # noqa: E402
from model.split import split_rows  # noqa: E402
from model.threshold import choose_threshold  # noqa: E402
from storage.readers import Limits, read_table  # noqa: E402
from storage.schema import Schema  # noqa: E402

DATA = ROOT / "tests" / "data"
RESULTS = ROOT / "bench" / "results"


@dataclass(frozen=True)
class Dataset:
    name: str
    files: tuple[Path, ...]
    schema: Schema
    synthetic_id: bool = False


DATASETS = {
    "telco": Dataset("telco", (ROOT / "storage" / "sample_data" / "WA_Fn-UseC_-Telco-Customer-Churn.csv",),
                     Schema("customerID", "Churn", "Yes")),
    "bankchurners": Dataset("bankchurners", (DATA / "BankChurners.csv",),
                            Schema("CLIENTNUM", "Attrition_Flag", "Attrited Customer", (
                                "Naive_Bayes_Classifier_Attrition_Flag_Card_Category_Contacts_Count_12_mon_"
                                "Dependent_count_Education_Level_Months_Inactive_12_mon_1",
                                "Naive_Bayes_Classifier_Attrition_Flag_Card_Category_Contacts_Count_12_mon_"
                                "Dependent_count_Education_Level_Months_Inactive_12_mon_2"))),
    "churn_modelling": Dataset("churn_modelling", (DATA / "Churn_Modelling.csv",),
                               Schema("CustomerId", "Exited", "1", ("RowNumber", "Surname"))),
    "bigml": Dataset("bigml", (DATA / "churn-bigml-80.csv", DATA / "churn-bigml-20.csv"),
                     Schema("row_id", "Churn", "True"), synthetic_id=True),
}


def load(dataset: Dataset) -> pd.DataFrame:
    """Read through the project's own reader (type inference included), label as 0/1."""
    frames = [read_table(path, limits=Limits()).frame for path in dataset.files]
    frame = pd.concat(frames, ignore_index=True)
    if dataset.synthetic_id:
        frame.insert(0, dataset.schema.id_column, [f"r{i}" for i in range(len(frame))])
    label = frame[dataset.schema.label_column].astype(str).str.strip()
    positive = dataset.schema.positive_label
    frame[dataset.schema.label_column] = (label.isin([positive, f"{positive}.0"])).astype("int64")
    return frame


def _peer_lightgbm(categorical: list[int], seed: int) -> Callable[[np.ndarray, np.ndarray], Any]:
    def fit(x: np.ndarray, y: np.ndarray) -> Any:
        return lgb.LGBMClassifier(random_state=seed, verbose=-1, n_jobs=2).fit(
            x, y, categorical_feature=categorical or "auto")
    return fit


def _peer_hgb(categorical: list[int], seed: int, width: int) -> Callable[[np.ndarray, np.ndarray], Any]:
    mask = np.zeros(width, dtype=bool)
    mask[categorical] = True

    def fit(x: np.ndarray, y: np.ndarray) -> Any:
        return HistGradientBoostingClassifier(random_state=seed, categorical_features=mask if mask.any() else None
                                              ).fit(x, y)
    return fit


def evaluate_peers(frame: pd.DataFrame, schema: Schema, seed: int, target: float, z: float) -> dict[str, Any]:
    """Peers on ChurnGuard's split, encoding and out-of-fold threshold rule."""
    labels = frame[schema.label_column].to_numpy(dtype="int64")
    split = split_rows(labels, seed)
    encoder = FeatureEncoder().fit(frame.iloc[split.train], schema)
    matrix = encoder.transform(frame)
    x_fit, y_fit = matrix[split.fit], labels[split.fit]
    x_test, y_test = matrix[split.test], labels[split.test]
    folds = list(StratifiedKFold(n_splits=5, shuffle=True, random_state=seed).split(x_fit, y_fit))
    categorical, numeric = encoder.categorical_indices_, encoder.numeric_indices_
    results: dict[str, Any] = {}
    peers: dict[str, Callable[[np.ndarray, np.ndarray], Any]] = {
        "logistic": lambda x, y: fit_proba(logistic_baseline(numeric, categorical, seed), x, y),
        "lightgbm_defaults": _peer_lightgbm(categorical, seed),
        "hist_gradient_boosting": _peer_hgb(categorical, seed, matrix.shape[1]),
    }
    for name, fit in peers.items():
        started = time.perf_counter()
        oof = np.zeros(len(y_fit))
        for train_idx, valid_idx in folds:
            oof[valid_idx] = fit(x_fit[train_idx], y_fit[train_idx]).predict_proba(x_fit[valid_idx])[:, 1]
        choice = choose_threshold(oof, y_fit, target=target, n_positives_eval=int(y_test.sum()), z=z)
        scores = fit(x_fit, y_fit).predict_proba(x_test)[:, 1]
        metrics = classification_metrics(y_test, scores, choice.threshold)
        metrics["fit_seconds"] = time.perf_counter() - started
        results[name] = metrics
    return results


def run(datasets: list[str], seeds: list[int], tuning_seconds: float) -> dict[str, Any]:
    warnings.filterwarnings("ignore")
    out: dict[str, Any] = {"seeds": seeds, "tuning_seconds": tuning_seconds, "datasets": {}}
    for key in datasets:
        dataset = DATASETS[key]
        frame = load(dataset)
        runs = []
        for seed in seeds:
            config = TrainConfig(seed=seed, tuning_seconds=tuning_seconds)
            started = time.perf_counter()
            outcome = train_lifecycle(frame, schema=dataset.schema, config=config)
            ours = dict(outcome.report["metrics"]["test"]["lightgbm"])
            ours["fit_seconds"] = time.perf_counter() - started
            peers = evaluate_peers(frame, dataset.schema, seed, config.recall_target, config.confidence_z)
            runs.append({"seed": seed, "churnguard": ours, **peers})
            print(f"  {key} seed {seed}: recall {ours['recall']:.3f} precision {ours['precision']:.3f} "
                  f"({ours['fit_seconds']:.0f}s)", file=sys.stderr, flush=True)
        out["datasets"][key] = {"rows": len(frame), "runs": runs, "summary": summarise(runs)}
    return out


def summarise(runs: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    names = [k for k in runs[0] if k != "seed"]
    summary = {}
    for name in names:
        rows = [run[name] for run in runs]
        summary[name] = {
            "mean_recall": float(np.mean([r["recall"] for r in rows])),
            "share_recall_ge_target": float(np.mean([r["recall"] >= 0.90 for r in rows])),
            "mean_precision": float(np.mean([r["precision"] for r in rows])),
            "mean_flagged_share": float(np.mean([r["flagged_share"] for r in rows])),
            "roc_auc": float(np.mean([r["roc_auc"] for r in rows])),
            "pr_auc": float(np.mean([r["pr_auc"] for r in rows])),
            "fit_seconds": float(np.mean([r["fit_seconds"] for r in rows])),
        }
    return summary


def verdict(result: dict[str, Any]) -> list[str]:
    lines = []
    for key, data in result["datasets"].items():
        s = data["summary"]
        ours = s["churnguard"]
        best_peer = max((v["mean_precision"], k) for k, v in s.items() if k != "churnguard")
        seeds_ok = ours["share_recall_ge_target"] >= 0.9
        precision_ok = ours["mean_precision"] >= best_peer[0] - 1e-9
        lines.append(f"{key}: recall>=0.90 in {ours['share_recall_ge_target']:.0%} of seeds "
                     f"({'PASS' if seeds_ok else 'FAIL'}); precision {ours['mean_precision']:.3f} vs best peer "
                     f"{best_peer[1]} {best_peer[0]:.3f} ({'PASS' if precision_ok else 'FAIL'})")
    return lines


def table(result: dict[str, Any]) -> str:
    header = (f"{'dataset':<16}{'model':<24}{'recall':>8}{'>=0.90':>8}{'precision':>10}{'flagged':>9}"
              f"{'ROC-AUC':>9}{'PR-AUC':>8}{'fit s':>8}")
    lines = [header, "-" * len(header)]
    for key, data in result["datasets"].items():
        for name, s in data["summary"].items():
            lines.append(f"{key:<16}{name:<24}{s['mean_recall']:>8.3f}{s['share_recall_ge_target']:>8.0%}"
                         f"{s['mean_precision']:>10.3f}{s['mean_flagged_share']:>9.3f}{s['roc_auc']:>9.3f}"
                         f"{s['pr_auc']:>8.3f}{s['fit_seconds']:>8.1f}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", default=",".join(DATASETS), help="comma-separated: " + ",".join(DATASETS))
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--tuning-seconds", type=float, default=TrainConfig().tuning_seconds)
    parser.add_argument("--out", type=Path, default=RESULTS / "quality.json")
    args = parser.parse_args()
    names = [n.strip() for n in args.datasets.split(",") if n.strip()]
    unknown = [n for n in names if n not in DATASETS]
    if unknown:
        parser.error(f"unknown dataset(s): {', '.join(unknown)}")
    result = run(names, list(range(args.seeds)), args.tuning_seconds)
    print(table(result))
    print()
    print("\n".join(verdict(result)))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
