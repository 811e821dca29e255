"""Monitoring mathematics: data drift, realised and estimated recall, charts, demo streams.

Pure functions and JSON-able result types; the scheduled jobs store the results, decide
whom to alert and send the charts.  ``charts`` and ``stream`` are imported on demand (they
pull in matplotlib and are not needed to compute a check).
"""

from model.monitoring.drift import (
    DriftReport,
    DriftSettings,
    FeatureDrift,
    compare_feature,
    detect_drift,
    importance_weights,
    population_stability_index,
    score_drift,
)
from model.monitoring.performance import (
    EstimatedPerformance,
    RealisedPerformance,
    estimate_performance,
    realised_performance,
    recall_interval,
)

__all__ = [
    "DriftReport",
    "DriftSettings",
    "EstimatedPerformance",
    "FeatureDrift",
    "RealisedPerformance",
    "compare_feature",
    "detect_drift",
    "estimate_performance",
    "importance_weights",
    "population_stability_index",
    "realised_performance",
    "recall_interval",
    "score_drift",
]
