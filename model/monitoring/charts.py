"""Pictures for the monitoring messages: PNG bytes the bot sends as photos.

Figures are built with matplotlib's object API on the Agg canvas (never ``pyplot``), so
drawing holds no global state and works inside scheduler threads and on servers without a
display.  Every function returns the PNG bytes and, given ``path``, also writes them there.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Literal

import numpy as np
import numpy.typing as npt
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from model.chart_labels import literal
from model.monitoring.drift import DriftReport, FeatureDrift
from model.monitoring.performance import EstimatedPerformance, RealisedPerformance
from storage.errors import UserError

REFERENCE_COLOUR = "#4C72B0"
CURRENT_COLOUR = "#DD8452"
TARGET_COLOUR = "#C44E52"
DPI = 110


def _png(figure: Figure, path: Path | str | None) -> bytes:
    FigureCanvasAgg(figure)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI)
    data = buffer.getvalue()
    if path is not None:
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + ".part")
        partial.write_bytes(data)
        partial.replace(target)  # never leave a half-written picture behind
    return data


def _short(label: str, limit: int = 18) -> str:
    return label if len(label) <= limit else label[: limit - 1] + "…"


def _draw_bins(axes: Axes, row: FeatureDrift) -> None:
    positions = np.arange(len(row.bins))
    width = 0.4
    axes.bar(positions - width / 2, row.reference_share, width, label="reference", color=REFERENCE_COLOUR)
    axes.bar(positions + width / 2, row.current_share, width, label="current", color=CURRENT_COLOUR)
    axes.set_xticks(positions)
    rotated = len(row.bins) > 3
    axes.set_xticklabels(
        [literal(_short(b)) for b in row.bins], rotation=45 if rotated else 0, ha="right" if rotated else "center", fontsize=7
    )
    axes.set_ylabel("share of rows", fontsize=8)
    status = row.status.replace("_", " ")
    axes.set_title(f"{literal(_short(row.feature, 28))} — PSI {row.psi:.2f} ({status})", fontsize=9)
    axes.tick_params(axis="y", labelsize=7)


def drift_chart(report: DriftReport, *, top_k: int = 6, path: Path | str | None = None) -> bytes:
    """Reference vs current binned shares of the ``top_k`` most drifted features."""
    return _png(drift_figure(report, top_k=top_k), path)


def drift_figure(report: DriftReport, *, top_k: int = 6) -> Figure:
    """The figure of :func:`drift_chart`, not yet drawn to PNG."""
    if top_k < 1:
        raise UserError(f"top_k must be at least 1 (got {top_k})")
    rows = report.top(top_k)
    if not rows:
        raise UserError("the drift report has no features to draw")
    columns = min(3, len(rows))
    lines = math.ceil(len(rows) / columns)
    figure = Figure(figsize=(4.2 * columns, 3.3 * lines + 0.6))
    axes_grid = figure.subplots(lines, columns, squeeze=False)
    for axes, row in zip(axes_grid.flat, rows, strict=False):
        _draw_bins(axes, row)
    for axes in list(axes_grid.flat)[len(rows) :]:
        axes.set_visible(False)
    axes_grid.flat[0].legend(fontsize=7)
    verdict = report.verdict.replace("_", " ")
    figure.suptitle(
        f"Data drift: {verdict} — {report.drifted_share:.0%} of feature weight drifted "
        f"({report.n_current:,} current vs {report.n_reference:,} reference rows)",
        fontsize=10,
    )
    figure.tight_layout()
    return figure


def score_chart(
    reference_scores: npt.ArrayLike,
    current_scores: npt.ArrayLike,
    *,
    threshold: float | None = None,
    bins: int = 20,
    path: Path | str | None = None,
) -> bytes:
    """Distribution of churn probabilities, reference vs current, with the decision threshold."""
    reference = np.asarray(reference_scores, dtype=float).ravel()
    current = np.asarray(current_scores, dtype=float).ravel()
    reference, current = reference[np.isfinite(reference)], current[np.isfinite(current)]
    if reference.size == 0 or current.size == 0:
        raise UserError("a score chart needs reference and current scores")
    edges = [float(edge) for edge in np.linspace(0.0, 1.0, bins + 1)]
    figure = Figure(figsize=(7, 4))
    axes = figure.subplots()
    axes.hist(reference, bins=edges, weights=np.full(reference.size, 1 / reference.size), alpha=0.6,
              label=f"reference ({reference.size:,})", color=REFERENCE_COLOUR)  # fmt: skip
    axes.hist(current, bins=edges, weights=np.full(current.size, 1 / current.size), alpha=0.6,
              label=f"current ({current.size:,})", color=CURRENT_COLOUR)  # fmt: skip
    if threshold is not None:
        axes.axvline(threshold, color=TARGET_COLOUR, linestyle="--", label=f"threshold {threshold:.2f}")
    axes.set_xlabel("churn probability")
    axes.set_ylabel("share of clients")
    axes.set_title("Score distribution: reference vs current")
    axes.legend(fontsize=8)
    figure.tight_layout()
    return _png(figure, path)


@dataclass(frozen=True)
class RecallPoint:
    """One recall measurement for the chart: realised (from labels) or estimated (CBPE).

    ``reliable`` is False when the check had too few churners to judge; such points are
    drawn hollow and left out of the trend line.
    """

    at: datetime | date | str
    recall: float | None
    low: float | None = None
    high: float | None = None
    n_churners: float | None = None
    kind: Literal["realised", "estimated"] = "realised"
    reliable: bool = True

    @classmethod
    def from_realised(cls, at: datetime | date | str, result: RealisedPerformance) -> RecallPoint:
        return cls(
            at, result.recall, result.recall_low, result.recall_high, result.n_churners, "realised",
            result.status != "insufficient_data",
        )  # fmt: skip

    @classmethod
    def from_estimate(cls, at: datetime | date | str, result: EstimatedPerformance) -> RecallPoint:
        return cls(
            at, result.recall, result.recall_low, result.recall_high, result.expected_churners, "estimated",
            result.status != "insufficient_data",
        )  # fmt: skip


def _when(value: datetime | date | str) -> str:
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M") if (value.hour or value.minute) else value.strftime("%Y-%m-%d")
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def _errorbars(axes: Axes, points: Sequence[RecallPoint], chosen: list[int], **style: object) -> None:
    positions = np.array(chosen, dtype=float)
    values = np.array([points[i].recall for i in chosen], dtype=float)
    low = np.array([_or(points[i].low, points[i].recall) for i in chosen], dtype=float)
    high = np.array([_or(points[i].high, points[i].recall) for i in chosen], dtype=float)
    error = np.vstack([np.clip(values - low, 0, None), np.clip(high - values, 0, None)])
    axes.errorbar(positions, values, yerr=error, capsize=4, **style)  # type: ignore[arg-type]


def _or(value: float | None, default: float | None) -> float:
    chosen = value if value is not None else default
    return float("nan") if chosen is None else chosen


def recall_chart(
    points: Sequence[RecallPoint], *, target: float, title: str = "Recall over time", path: Path | str | None = None
) -> bytes:
    """Recall with its confidence interval per check, against the target line.

    Points are drawn in the given order (the caller sorts them).  Checks with too few
    churners are drawn hollow (or, without any recall, as a note), so a quiet period is
    visible as such instead of looking like a good month.
    """
    if not points:
        raise UserError("a recall chart needs at least one point")
    labels = [_when(point.at) for point in points]
    positions = np.arange(len(points))
    figure = Figure(figsize=(max(6.0, 0.8 * len(points) + 2), 4))
    axes = figure.subplots()
    for kind, colour, marker in (("realised", REFERENCE_COLOUR, "o"), ("estimated", CURRENT_COLOUR, "s")):
        name = "realised recall (95% CI)" if kind == "realised" else "estimated recall (range)"
        solid = [i for i, p in enumerate(points) if p.kind == kind and p.recall is not None and p.reliable]
        hollow = [i for i, p in enumerate(points) if p.kind == kind and p.recall is not None and not p.reliable]
        if solid:
            _errorbars(axes, points, solid, fmt=marker + "-", color=colour, label=name)
        if hollow:
            _errorbars(axes, points, hollow, fmt=marker, color=colour, markerfacecolor="white", alpha=0.6,
                       label=f"{kind}, too few churners")  # fmt: skip
    for i, point in enumerate(points):
        if point.n_churners is not None:
            sign = "≈" if point.kind == "estimated" else "="
            axes.annotate(f"n{sign}{point.n_churners:.0f}", (positions[i], 0.02), ha="center", fontsize=7,
                          color="grey")  # fmt: skip
        if point.recall is None:
            axes.annotate("no churners", (positions[i], 0.5), ha="center", fontsize=7, color="grey")
    axes.axhline(target, color=TARGET_COLOUR, linestyle="--", label=f"target {target:.2f}")
    axes.set_ylim(0, 1.05)
    axes.set_xlim(-0.5, len(points) - 0.5)
    axes.set_xticks(positions)
    rotated = len(points) > 4
    axes.set_xticklabels(labels, rotation=30 if rotated else 0, ha="right" if rotated else "center", fontsize=8)
    axes.set_ylabel("recall")
    axes.set_title(literal(title))
    axes.legend(fontsize=8, loc="lower left", bbox_to_anchor=(0, 0.06))
    figure.tight_layout()
    return _png(figure, path)
