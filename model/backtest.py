"""The backtest: how the model and the logistic baseline did on each as-of date out of time.

Each validation date is scored by models fitted on the earlier dates only (forward chaining),
and each test date by the final models, which never saw it; so every row of the table is what
the retention team would have seen had it used the model that month.  The report, the model
card (table and chart) and ``train --json`` show the same rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from model.evaluation import classification_metrics


@dataclass(frozen=True)
class Scored:
    """One model's out-of-time scores on some rows, and its threshold."""

    scores: np.ndarray
    threshold: float


def backtest_rows(dates: pd.Series | np.ndarray, labels: np.ndarray, parts: dict[str, dict[str, Scored]],
                  ) -> list[dict[str, Any]]:
    """One row per as-of date: ``parts`` maps a part name ("validation", "test") to each model's
    scores on that part's rows, aligned with ``dates``/``labels`` of the same rows."""
    rows: list[dict[str, Any]] = []
    for part, models in parts.items():
        first = next(iter(models.values()))
        mask = ~np.isnan(first.scores)
        part_dates = pd.to_datetime(pd.Series(np.asarray(dates)[mask])).dt.normalize()
        part_labels = np.asarray(labels)[mask]
        for date in sorted(part_dates.unique()):
            on = (part_dates == date).to_numpy()
            row: dict[str, Any] = {"as_of": pd.Timestamp(date).date().isoformat(), "part": part,
                                   "rows": int(on.sum()), "churners": int(part_labels[on].sum())}
            for name, scored in models.items():
                metrics = classification_metrics(part_labels[on], scored.scores[mask][on], scored.threshold)
                row[name] = {key: metrics[key] for key in ("recall", "precision", "flagged_share", "roc_auc",
                                                           "pr_auc")}
            rows.append(row)
    return rows


def backtest_text(rows: list[dict[str, Any]], models: tuple[str, ...] = ("lightgbm", "logistic")) -> list[str]:
    """The table as Markdown lines (the card and ``churnguard report``)."""
    if not rows:
        return []
    header = "| as of | part | clients | churners | " + " | ".join(
        f"{name} recall | {name} precision | {name} flagged" for name in models) + " |"
    lines = [header, "|" + "---|" * (4 + 3 * len(models))]
    for row in rows:
        cells = [row["as_of"], row["part"], f"{row['rows']:,}", f"{row['churners']:,}"]
        for name in models:
            figures = row.get(name) or {}
            cells += [_pct(figures.get("recall")), _pct(figures.get("precision")), _pct(figures.get("flagged_share"))]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _pct(value: Any) -> str:
    return "n/a" if value is None else f"{float(value):.1%}"


__all__ = ["Scored", "backtest_rows", "backtest_text"]
