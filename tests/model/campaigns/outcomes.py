"""Outcomes for a stored campaign, simulated as a later labelled export would report them.

Each member leaves with its churn probability (the champion's scores are calibrated); a
treated member who would leave stays with probability ``saved``.  The true uplift of the
campaign is then the difference of the expected rates of its two groups.
"""

from __future__ import annotations

import csv
import io

import numpy as np

from storage.campaigns import members
from storage.db import Database


def simulated_outcomes(db: Database, campaign_id: int, *, saved: float, seed: int, id_column: str = "customerID",
                       label_column: str = "Churn", positive: str = "Yes", negative: str = "No"
                       ) -> tuple[bytes, float]:
    """(a CSV of ``id_column, label_column`` for every member, the true uplift)."""
    rng = np.random.default_rng(seed)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([id_column, label_column])
    expected: dict[str, list[float]] = {"treatment": [], "holdout": []}
    for member in members(db, campaign_id):
        p = member.probability
        left = rng.random() < p
        kept = member.arm == "treatment" and rng.random() < saved
        writer.writerow([member.client_id, positive if left and not kept else negative])
        expected[member.arm].append(p * (1 - saved) if member.arm == "treatment" else p)
    truth = float(np.mean(expected["holdout"]) - np.mean(expected["treatment"]))
    return buffer.getvalue().encode("utf-8"), truth
