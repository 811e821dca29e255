"""bench/stream.py reads ChurnGuard's answers defensively and sums them up honestly.

The benchmark itself runs ChurnGuard end to end (minutes); these tests pin the parts that
decide what it reports: which recall counts as "predicted", how a month's arrival scores are
recounted against the stream's truth, and how the acceptance figures are summed.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from bench.stream import PREDICTED_RECALL_KEYS, predicted_recall, recount, summarise, verdicts
from tests.storage.events.monthly_stream import ID_COLUMN, LABEL_COLUMN, read_month, write_monthly_stream

CARD = {"metrics": {"test": {"lightgbm": {"recall": 0.93, "roc_auc": 0.97}}}}


def test_predicted_recall_is_the_out_of_time_figure_when_the_report_has_one() -> None:
    assert predicted_recall(CARD) == (0.93, "metrics.test.lightgbm.recall")
    with_validation = {**CARD, "validation": {"kind": "out_of_time", "predicted_recall": {"estimate": 0.91}}}
    assert predicted_recall(with_validation) == (0.91, PREDICTED_RECALL_KEYS[0])


@pytest.mark.parametrize("bad", [None, "0.9", True, math.nan, {"value": 0.9}])
def test_a_missing_or_malformed_prediction_falls_back_to_the_card(bad: Any) -> None:
    for shape in ({"predicted_recall": bad}, {"predicted_recall": {"estimate": bad}}):
        assert predicted_recall({**CARD, "validation": shape}) == (0.93, "metrics.test.lightgbm.recall")
        assert predicted_recall({"validation": shape}) == (None, None)


def test_arrival_scores_are_recounted_against_the_streams_truth(tmp_path: Path) -> None:
    stream = write_monthly_stream(tmp_path, seed=2, accounts=80, months=1, warmup_months=1)
    month = stream.months[0]
    frame = read_month(month)
    churners = set(frame.loc[frame[LABEL_COLUMN] == "Yes", ID_COLUMN])
    # flag every churner but one, and one loyal client; rank churners first
    ids = frame[ID_COLUMN].tolist()
    missed = sorted(churners)[0]
    loyal = next(i for i in ids if i not in churners)
    scores = {cid: (0.9 if cid in churners else 0.1, (cid in churners and cid != missed) or cid == loyal, "v1")
              for cid in ids}
    got = recount(month, scores, "Yes", ID_COLUMN, LABEL_COLUMN)
    assert got["clients_scored"] == month.clients and got["churners"] == month.churners == len(churners)
    assert got["caught"] == len(churners) - 1
    assert got["recall"] == pytest.approx((len(churners) - 1) / len(churners))
    assert got["flagged_share"] == pytest.approx(len(churners) / month.clients)
    assert got["roc_auc"] == pytest.approx(1.0)


def _month(recall: float, low: float, high: float, predicted: float, champion: str, flagged: float,
           retrains: list[dict[str, Any]]) -> dict[str, Any]:
    return {"realised": {"recall": recall, "recall_low": low, "recall_high": high},
            "card": {"predicted_recall": predicted, "predicted_recall_source": "metrics.test.lightgbm.recall"},
            "recount": {"recall": recall}, "flagged_share": flagged, "champion_after": champion,
            "retrains": retrains}


def test_the_summary_counts_what_issue_10_asks_for() -> None:
    months = [
        _month(0.95, 0.85, 0.99, 0.93, "v1", 0.4, [{"version": "v2", "promoted": False, "gate_passed": False}]),
        _month(0.80, 0.70, 0.88, 0.93, "v3", 0.5, [{"version": "v3", "promoted": True, "gate_passed": True}]),
        _month(0.92, 0.84, 0.97, 0.91, "v3", 0.6, []),
    ]
    summary = summarise(months, {"verdict": "stable"}, first_champion="v1")
    assert summary["average_realised_recall"] == pytest.approx((0.95 + 0.80 + 0.92) / 3)
    assert summary["months_meeting_target"] == 2
    assert summary["predicted_inside_interval"] == 2 and summary["months_with_interval"] == 3
    assert summary["champion_changes"] == 1 and summary["champions"] == ["v1", "v1", "v3", "v3"]
    assert summary["average_flagged_share"] == pytest.approx(0.5)
    assert summary["performance_job_agrees_with_recount"] is True
    assert summary["checks"] == {"average_recall_at_least_target": False,  # 0.89 < 0.90
                                 "predicted_inside_interval_in_most_months": True,
                                 "champion_changes_only_through_the_gate": True,
                                 "no_drift_on_resample": True}


def test_a_drifting_resample_or_a_promotion_without_the_gate_fails_its_check() -> None:
    months = [_month(0.99, 0.95, 1.0, 0.93, "v2", 1.0, [{"version": "v2", "promoted": True, "gate_passed": None}])]
    summary = summarise(months, {"verdict": "drift"}, first_champion="v1")
    assert summary["checks"]["champion_changes_only_through_the_gate"] is False
    assert summary["checks"]["no_drift_on_resample"] is False
    assert summary["checks"]["predicted_inside_interval_in_most_months"] is False  # 0.93 < 0.95
    assert summarise(months, {"verdict": None}, first_champion="v1")["checks"]["no_drift_on_resample"] is False


def test_a_champion_that_flags_everyone_is_called_out_next_to_its_perfect_recall() -> None:
    everyone = summarise([_month(1.0, 0.97, 1.0, 0.94, "v1", 1.0, [])], {"verdict": "stable"}, first_champion="v1")
    some = summarise([_month(0.92, 0.85, 0.96, 0.93, "v1", 0.4, [])], {"verdict": "stable"}, first_champion="v1")
    assert verdicts(everyone).startswith("NOTE  the champion flagged 100% of the clients")
    assert "PASS  average realised recall 1.000" in verdicts(everyone)
    assert "NOTE" not in verdicts(some)
