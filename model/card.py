"""The model card: a Markdown page plus PNG charts a retention manager can read without a data scientist.

Charts use matplotlib's object API (``Figure``) rather than ``pyplot``: no global figure state,
so cards can be drawn from a scheduler thread next to the bot.  ``summary_text`` renders the
stored JSON report alone (no model needed), for ``churnguard report`` and the bot.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from matplotlib.figure import Figure
from sklearn.calibration import calibration_curve
from sklearn.metrics import precision_recall_curve, roc_curve

from model.backtest import backtest_text
from model.business import offer_source_text
from model.chart_labels import literal
from storage.files import write_atomically

if TYPE_CHECKING:
    from model.lifecycle import TrainingOutcome

CARD_FILE = "model_card.md"
CHARTS = {
    "pr_curve": "pr_curve.png",
    "roc_curve": "roc_curve.png",
    "calibration": "calibration.png",
    "confusion_matrix": "confusion_matrix.png",
    "importances": "importances.png",
}
# Drawn only when the validation was out of time (one point per as-of date).
TIME_CHARTS = {"backtest": "backtest.png"}
# "champion" is the champion when the version was trained, which it may since have replaced.
MODEL_LABELS = {"lightgbm": "LightGBM", "logistic": "Logistic regression", "majority": "Majority (prior)",
                "champion": "Champion at training time"}
_STYLE = {"lightgbm": "C0", "logistic": "C1", "majority": "C7", "champion": "C2"}


def write_model_card(outcome: TrainingOutcome, directory: Path, *, title: str = "ChurnGuard churn model"
                     ) -> list[Path]:
    """Draw the charts and the Markdown card into ``directory``; returns the written paths (card first)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    y = np.asarray(outcome.test_labels).astype(int)
    charts = [
        _save(_pr_chart(y, outcome.test_scores, outcome.thresholds), directory / CHARTS["pr_curve"]),
        _save(_roc_chart(y, outcome.test_scores, outcome.thresholds), directory / CHARTS["roc_curve"]),
        _save(_calibration_chart(y, outcome.test_scores), directory / CHARTS["calibration"]),
        _save(_confusion_chart(outcome.report["metrics"]["test"]["lightgbm"]), directory / CHARTS["confusion_matrix"]),
        _save(_importance_chart(outcome.model.importances_), directory / CHARTS["importances"]),
    ]
    if outcome.report.get("backtest"):
        charts.append(_save(_backtest_chart(outcome.report["backtest"], outcome.report["threshold_rule"]["target"]),
                            directory / TIME_CHARTS["backtest"]))
    card = directory / CARD_FILE
    write_atomically(card, card_markdown(outcome.report, title=title).encode("utf-8"))
    return [card, *charts]


# ---------------------------------------------------------------------- charts
def _pr_chart(y: np.ndarray, scores: Mapping[str, np.ndarray], thresholds: Mapping[str, float]) -> Figure:
    figure = Figure(figsize=(6, 4.5), dpi=100)
    axes = figure.subplots()
    for name, score in scores.items():
        if np.ptp(score) == 0:
            # A constant scorer (the prior) has one operating point; its PR "curve" is the
            # churn rate at every recall, not sklearn's interpolation up to precision 1.
            recall, precision = np.array([0.0, 1.0]), np.full(2, float(np.mean(y)))
        else:
            precision, recall, _ = precision_recall_curve(y, score)
        axes.plot(recall, precision, color=_STYLE.get(name, "C3"), lw=2 if name == "lightgbm" else 1,
                  label=MODEL_LABELS.get(name, name))
        flagged = score >= thresholds[name]
        if flagged.any() and name != "majority":
            tp = int((flagged & (y == 1)).sum())
            axes.scatter([tp / max(int(y.sum()), 1)], [tp / int(flagged.sum())], color=_STYLE.get(name, "C3"),
                         zorder=3, s=40 if name == "lightgbm" else 20)
    axes.annotate(f"threshold {thresholds['lightgbm']:.3f}", xy=_operating_point(y, scores["lightgbm"],
                  thresholds["lightgbm"]), xytext=(-110, -30), textcoords="offset points",
                  arrowprops={"arrowstyle": "->"})
    axes.set(xlabel="Recall (share of churners flagged)", ylabel="Precision (share of flagged who churn)",
             title="Precision–recall on the test split", xlim=(0, 1.01), ylim=(0, 1.01))
    axes.legend(loc="lower left", fontsize=8)
    axes.grid(alpha=0.3)
    return figure


def _operating_point(y: np.ndarray, score: np.ndarray, threshold: float) -> tuple[float, float]:
    flagged = score >= threshold
    tp = int((flagged & (y == 1)).sum())
    return tp / max(int(y.sum()), 1), tp / max(int(flagged.sum()), 1)


def _roc_chart(y: np.ndarray, scores: Mapping[str, np.ndarray], thresholds: Mapping[str, float]) -> Figure:
    figure = Figure(figsize=(6, 4.5), dpi=100)
    axes = figure.subplots()
    for name, score in scores.items():
        fpr, tpr, _ = roc_curve(y, score)
        axes.plot(fpr, tpr, color=_STYLE.get(name, "C3"), lw=2 if name == "lightgbm" else 1,
                  label=MODEL_LABELS.get(name, name))
    flagged = scores["lightgbm"] >= thresholds["lightgbm"]
    negatives = max(int((y == 0).sum()), 1)
    axes.scatter([int((flagged & (y == 0)).sum()) / negatives], [_operating_point(y, scores["lightgbm"],
                 thresholds["lightgbm"])[0]], color="C0", zorder=3)
    axes.plot([0, 1], [0, 1], ls=":", color="grey")
    axes.set(xlabel="False positive rate", ylabel="True positive rate (recall)", title="ROC on the test split")
    axes.legend(loc="lower right", fontsize=8)
    axes.grid(alpha=0.3)
    return figure


def _calibration_chart(y: np.ndarray, scores: Mapping[str, np.ndarray]) -> Figure:
    figure = Figure(figsize=(6, 4.5), dpi=100)
    axes = figure.subplots()
    axes.plot([0, 1], [0, 1], ls=":", color="grey", label="perfect calibration")
    for name in ("lightgbm", "logistic", "champion"):
        if name in scores:
            observed, predicted = calibration_curve(y, scores[name], n_bins=10, strategy="quantile")
            axes.plot(predicted, observed, marker="o", color=_STYLE[name], label=MODEL_LABELS[name])
    axes.set(xlabel="Predicted churn probability", ylabel="Observed churn rate",
             title="Calibration on the test split (deciles)", xlim=(0, 1), ylim=(0, 1))
    axes.legend(loc="upper left", fontsize=8)
    axes.grid(alpha=0.3)
    return figure


def _confusion_chart(metrics: Mapping[str, Any]) -> Figure:
    figure = Figure(figsize=(4.5, 4), dpi=100)
    axes = figure.subplots()
    cells = np.array([[metrics["tn"], metrics["fp"]], [metrics["fn"], metrics["tp"]]])
    axes.imshow(cells, cmap="Blues")
    names = [["stays, not flagged", "stays, flagged"], ["churns, missed", "churns, flagged"]]
    for row in range(2):
        for column in range(2):
            dark = cells[row, column] > cells.max() / 2
            axes.text(column, row, f"{cells[row, column]}\n{names[row][column]}", ha="center", va="center",
                      color="white" if dark else "black", fontsize=9)
    axes.set_xticks([0, 1], ["not flagged", "flagged"])
    axes.set_yticks([0, 1], ["stays", "churns"])
    axes.set_xlabel("Predicted")
    axes.set_ylabel("Actual")
    axes.set_title(f"Test split at threshold {metrics['threshold']:.3f}")
    return figure


def _backtest_chart(rows: list[dict[str, Any]], target: float) -> Figure:
    """Recall and share flagged per as-of date, the model against the logistic baseline."""
    figure = Figure(figsize=(7, 4.5), dpi=100)
    recall_axes, flagged_axes = figure.subplots(2, 1, sharex=True)
    dates = [row["as_of"] for row in rows]
    positions = np.arange(len(rows))
    for name, style in (("lightgbm", "C0"), ("logistic", "C1")):
        recall = [(row.get(name) or {}).get("recall") for row in rows]
        flagged = [(row.get(name) or {}).get("flagged_share") for row in rows]
        recall_axes.plot(positions, [np.nan if v is None else v for v in recall], marker="o", color=style,
                         label=MODEL_LABELS[name])
        flagged_axes.plot(positions, [np.nan if v is None else v for v in flagged], marker="o", color=style)
    recall_axes.axhline(target, ls="--", color="grey", lw=1, label=f"target {target:.0%}")
    test_start = next((i for i, row in enumerate(rows) if row["part"] == "test"), None)
    for axes in (recall_axes, flagged_axes):
        if test_start is not None:
            axes.axvspan(test_start - 0.5, len(rows) - 0.5, color="C2", alpha=0.08)
        axes.grid(alpha=0.3)
    recall_axes.set(ylabel="Recall", ylim=(0, 1.02), title="Each date scored by models of earlier dates only "
                    "(shaded: test)")
    flagged_axes.set(ylabel="Share flagged", ylim=(0, 1.02))
    flagged_axes.set_xticks(positions, dates, rotation=45, ha="right", fontsize=8)
    recall_axes.legend(loc="lower left", fontsize=8)
    figure.tight_layout()
    return figure


def _importance_chart(importances: Mapping[str, float], top: int = 15) -> Figure:
    items = list(importances.items())[:top][::-1]
    figure = Figure(figsize=(6, max(2.5, 0.3 * len(items) + 1)), dpi=100)
    axes = figure.subplots()
    axes.barh([literal(name) for name, _ in items], [share for _, share in items], color="C0")
    axes.set(xlabel="Share of total gain", title="Top features (LightGBM gain)")
    axes.tick_params(axis="y", labelsize=8)
    figure.tight_layout()
    return figure


def _save(figure: Figure, path: Path) -> Path:
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}-", suffix=".png")
    os.close(handle)
    try:
        figure.savefig(temporary, format="png", bbox_inches="tight")
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)
    return path


# ---------------------------------------------------------------------- text
def _pct(value: Any) -> str:
    return "n/a" if value is None else f"{100 * float(value):.1f} %"


def _num(value: Any, digits: int = 3) -> str:
    return "n/a" if value is None else f"{float(value):.{digits}f}"


def _money(value: Any) -> str:
    return "n/a" if value is None else f"{float(value):,.0f}"


def card_markdown(report: Mapping[str, Any], *, title: str = "ChurnGuard churn model") -> str:
    """The Markdown model card built from the report alone."""
    test = report["metrics"]["test"]
    rule = report["threshold_rule"]
    roi = report["roi"]
    processing = report["processing"]
    tuning = report["tuning"]
    gate = report["gate"]
    split = report["split"]
    signal = report.get("signal")
    validation = report.get("validation") or {}
    out_of_time = validation.get("kind") == "out_of_time"
    tested_on = (f"the newest period, {', '.join(d[:10] for d in validation.get('test_dates', []))}, which no "
                 "model of this run trained on" if out_of_time else "20 % of clients, never used before this evaluation")
    warnings = list(report.get("warnings") or [])  # model/data_checks.py; absent in older reports
    lines = [
        f"# {title}",
        "",
        f"**Verdict:** {'ACCEPTED — may become champion' if gate['passed'] else 'REJECTED'}"
        + (f" — read the {len(warnings)} warning(s) below first" if warnings else ""),
        "",
        *([f"**Signal:** {signal['message']}", ""] if signal else []),
    ]
    if warnings:
        lines += ["## Warnings", "", *[f"- ⚠️ {warning}" for warning in warnings], ""]
    lines += [
        "## What it does",
        "",
        "Scores each client's probability of churning (calibrated: 0.30 means about 3 in 10 such clients "
        f"leave). Clients with a probability of **{_num(report['threshold'])} or more** are flagged for the "
        f"retention campaign. The threshold is set so that at least **{_pct(rule['target'])} of churners** "
        "are flagged on new clients, with at least 95 % confidence.",
        "",
        f"## Test results: {tested_on}",
        "",
        "| model | recall | precision | flagged | PR-AUC | ROC-AUC | Brier | F1 | accuracy | threshold |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, metrics in test.items():
        lines.append(
            f"| {MODEL_LABELS.get(name, name)} | {_pct(metrics['recall'])} | {_pct(metrics['precision'])} | "
            f"{_pct(metrics['flagged_share'])} | {_num(metrics['pr_auc'])} | {_num(metrics['roc_auc'])} | "
            f"{_num(metrics['brier'])} | {_num(metrics['f1'])} | {_num(metrics['accuracy'])} | "
            f"{_num(metrics['threshold'])} |"
        )
    lgb_test = test["lightgbm"]
    lines += [
        "",
        f"Confusion matrix (LightGBM): {lgb_test['tp']} churners flagged, {lgb_test['fn']} missed, "
        f"{lgb_test['fp']} loyal clients flagged, {lgb_test['tn']} loyal clients left alone.",
        "",
        "## Business value of the campaign (test split)",
        "",
        f"- Contacting the {roi['flagged']} flagged clients costs **{_money(roi['cost'])}** "
        f"({_money(roi['assumptions']['contact_cost'])} each).",
        f"- It reaches {roi['tp']} real churners; with a {_pct(roi['assumptions']['offer_success_rate'])} offer "
        f"success rate{offer_source_text(roi['assumptions'])} and {_money(roi['assumptions']['retained_value'])} "
        f"per retained client, the expected benefit is **{_money(roi['benefit'])}**.",
        f"- ROI = (benefit − cost) / cost = **{_num(roi['roi'], 2)}**"
        + (" (nothing spent)" if roi["roi"] is None else f" (every 1 spent returns {1 + roi['roi']:.2f})"),
        f"- Per 1,000 clients: {roi['per_1000_clients']['flagged']} flagged, cost "
        f"{_money(roi['per_1000_clients']['cost'])}, benefit {_money(roi['per_1000_clients']['benefit'])}.",
        "",
        *_validation_lines(validation, report.get("backtest") or []),
        "## Acceptance gate",
        "",
    ]
    lines += [f"- {'✅' if check['passed'] else '❌'} {check['message']}" for check in gate["checks"]]
    lines += [
        "",
        "## Threshold rule",
        "",
        f"{rule['description']}.",
        "",
        f"Scores of {rule.get('out_of_fold_on', 'train + validation')} ({rule['n_positives_fit']} churners), "
        f"guarding against the sampling noise of an evaluation set with {rule['n_positives_eval']} churners. "
        f"Precision at this threshold on those scores: {_pct(rule['fit_precision'])}. Baselines use the same rule "
        "on their own scores.",
        "",
        "## Data",
        "",
        "| split | rows | churners |",
        "|---|---|---|",
    ]
    for part in ("train", "validation", "test"):
        lines.append(f"| {part} | {split[part]['rows']} | {split[part]['positives']} |")
    dropped = processing["dropped_columns"]
    imputed = {column: count for column, count in processing["imputed"].items() if count}
    lines += [
        "",
        (f"Split by date: trained on {_dates(validation.get('train_dates'))}, validated on "
         f"{_dates(validation.get('validation_dates'))}, tested on {_dates(validation.get('test_dates'))}; "
         f"{validation.get('embargoed_rows', 0)} rows whose outcome was still open at the test date were left out."
         if out_of_time else
         f"Split 70/10/20, stratified by the label, seed {split['seed']}"
         + ("; whole clients on one side." if split.get("grouped_by") else ".")),
        "",
        "## Processing",
        "",
        "- Dropped columns: " + (", ".join(f"{c} ({why})" for c, why in dropped.items()) or "none"),
        "- Filled missing cells (numeric: training median; categorical: most frequent level): "
        + (", ".join(f"{c}: {n}" for c, n in imputed.items()) or "none"),
        "- Engineered features: " + (", ".join(f"{e['name']} = {e['formula']}" for e in processing["engineered"])
                                     or "none"),
        "- Scaling and one-hot encoding: logistic regression only (LightGBM reads categories natively).",
        "",
        "## Model and tuning",
        "",
        f"LightGBM, {tuning['trials']} Optuna trials in {tuning['seconds']} s ({tuning['objective']}); "
        f"cross-validated PR-AUC {_num(tuning['cv_pr_auc'])}. Parameters: "
        + ", ".join(f"{k}={_short(v)}" for k, v in tuning["best_params"].items()) + ".",
        "",
        "## Charts",
        "",
        f"![Precision-recall]({CHARTS['pr_curve']})",
        f"![ROC]({CHARTS['roc_curve']})",
        f"![Calibration]({CHARTS['calibration']})",
        f"![Confusion matrix]({CHARTS['confusion_matrix']})",
        f"![Feature importance]({CHARTS['importances']})",
        "",
        "## Limitations",
        "",
        "- Measured on historical clients; behaviour can drift — the drift and recall monitors watch for it.",
        "- The recall guarantee is statistical (at least 95 %, one-sided): now and then an evaluation can "
        "fall short of the target.",
        "- ROI assumes contacting a loyal client costs only the contact.",
        "",
        f"Training took {report['training_seconds']} s.",
        "",
    ]
    return "\n".join(lines)


def _dates(values: Any) -> str:
    items = [str(v)[:10] for v in values or []]
    if len(items) > 3:
        return f"{items[0]} … {items[-1]} ({len(items)} dates)"
    return ", ".join(items) or "n/a"


def _validation_lines(validation: Mapping[str, Any], backtest: list[dict[str, Any]]) -> list[str]:
    """How the model was validated and what the next period should show."""
    if not validation:
        return []
    predicted = validation.get("predicted_recall") or {}
    lines = ["## Validation", ""]
    if validation.get("kind") == "out_of_time":
        lines.append("**Out of time.** " + str(validation.get("reason", "")) + ". Each validation date was scored "
                     "by a model fitted only on earlier dates whose outcomes were known by then, so these figures "
                     "are what the next period should show.")
    else:
        lines.append("**Random split.** " + str(validation.get("reason", "")) + ".")
    if predicted.get("estimate") is not None:
        lines.append("")
        lines.append(f"Predicted recall on the next period: **{_pct(predicted['estimate'])}** (95 % interval "
                     f"{_pct(predicted.get('low'))}–{_pct(predicted.get('high'))}, from {predicted.get('churners')} "
                     f"churners); ROC-AUC {_num(validation.get('roc_auc'))}, share flagged "
                     f"{_pct(validation.get('flagged_share'))}.")
    if backtest:
        lines += ["", "Backtest, one row per as-of date (each scored by models that never saw it):", "",
                  *backtest_text(backtest), "", f"![Backtest]({TIME_CHARTS['backtest']})"]
    return [*lines, ""]


def _short(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def summary_text(report: Mapping[str, Any]) -> str:
    """A few lines for ``churnguard report`` and the bot: verdict, threshold, test metrics, ROI, reasons."""
    test = report["metrics"]["test"]
    lgb_test, roi, gate = test["lightgbm"], report["roi"], report["gate"]
    validation = report.get("validation") or {}
    signal = report.get("signal")
    lines = [
        f"{'ACCEPTED' if gate['passed'] else 'REJECTED'} — threshold {_num(report['threshold'])} "
        f"(target recall {_pct(report['threshold_rule']['target'])})",
        *([f"Signal: {signal['message']}"] if signal else []),
        f"Test: recall {_pct(lgb_test['recall'])}, precision {_pct(lgb_test['precision'])}, "
        f"flagged {_pct(lgb_test['flagged_share'])}, PR-AUC {_num(lgb_test['pr_auc'])}, "
        f"ROC-AUC {_num(lgb_test['roc_auc'])}",
    ]
    for name in ("logistic", "majority", "champion"):
        if name in test:
            label = MODEL_LABELS[name]
            if name == "champion" and report.get("champion_compared"):
                label = f"{report['champion_compared']}, the champion when this version was trained"
            lines.append(f"  {label}: recall {_pct(test[name]['recall'])}, precision "
                         f"{_pct(test[name]['precision'])}, PR-AUC {_num(test[name]['pr_auc'])}")
    predicted = validation.get("predicted_recall") or {}
    if validation.get("kind") == "out_of_time":
        lines.append(f"Validated out of time: tested on {_dates(validation.get('test_dates'))}; predicted recall "
                     f"next period {_pct(predicted.get('estimate'))} ({_pct(predicted.get('low'))}–"
                     f"{_pct(predicted.get('high'))}), ROC-AUC {_num(validation.get('roc_auc'))}")
    elif validation:
        lines.append(f"Validated on a random split ({validation.get('reason')})")
    lines.append(f"Campaign: {roi['flagged']} contacted, cost {_money(roi['cost'])}, benefit "
                 f"{_money(roi['benefit'])}, ROI {_num(roi['roi'], 2)}"
                 + (f"; offer success rate {_pct(roi['assumptions']['offer_success_rate'])}"
                    f"{offer_source_text(roi['assumptions'])}" if offer_source_text(roi.get('assumptions') or {})
                    else ""))
    engineered = report["processing"]["engineered"]
    if engineered:
        lines.append("Engineered: " + ", ".join(item["name"] for item in engineered))
    lines += [f"Rejected because: {reason}" for reason in gate["reasons"]]
    lines += [f"Warning: {warning}" for warning in report.get("warnings") or []]
    return "\n".join(lines)


__all__ = ["CARD_FILE", "CHARTS", "TIME_CHARTS", "card_markdown", "summary_text", "write_model_card"]
